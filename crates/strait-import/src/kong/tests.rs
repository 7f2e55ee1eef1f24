//! Translation of Kong files: the seed's `kong.yml`, and each entity on its own.

use super::*;

fn seed() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/seeds/configs/kong.yml");
    std::fs::read_to_string(path).unwrap_or_else(|_| include_str!("../../tests/data/kong.yml").to_owned())
}

fn translate_ok(text: &str) -> (Value, Vec<String>) {
    let translation = translate(text, &Options { bind: "127.0.0.1:0".into() }).unwrap();
    (crate::yaml::parse(&translation.yaml).unwrap(), translation.warnings)
}

#[test]
fn the_seed_translates_services_routes_plugins_and_consumers() {
    let (config, warnings) = translate_ok(&seed());
    let clusters = config["clusters"].as_array().unwrap();
    assert_eq!(clusters[0]["name"], "user-service");
    assert_eq!(clusters[0]["endpoints"][0]["address"], "user-svc.internal:8080");
    assert_eq!(clusters[0]["host_header"], "user-svc.internal");
    assert_eq!(clusters[0]["filters"][0]["name"], "response_transformer");
    let routes = config["listeners"][0]["routes"].as_array().unwrap();
    assert_eq!(routes[0]["name"], "user-routes");
    assert_eq!(routes[0]["match"]["path"]["prefix"], "/api/v1/users");
    assert_eq!(routes[0]["match"]["methods"].as_array().unwrap().len(), 4);
    assert!(routes[0].get("rewrite").is_none(), "strip_path: false keeps the path");
    assert_eq!(routes[1]["forward"]["cluster"], "order-service");
    let filters: Vec<&str> =
        config["filters"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(filters, ["jwt", "rate_limiting", "request_size_limiting"]);
    assert_eq!(config["filters"][0]["config"]["header_names"][0], "authorization");
    let limit = &config["filters"][1]["config"];
    assert_eq!(limit["policy"], "redis", "the shared counters stay shared");
    assert_eq!(limit["redis_host"], "redis.internal");
    assert_eq!((limit["minute"].as_u64(), limit["hour"].as_u64()), (Some(100), Some(5000)));
    assert!(
        warnings.iter().any(|w| w.starts_with("plugins[1].config.policy: `redis`: Strait keeps its own counters")),
        "{warnings:?}"
    );
    let consumers = config["consumers"].as_array().unwrap();
    assert_eq!(consumers[0]["credentials"]["jwt"][0]["secret"], "{vault://env/MOBILE_JWT_SECRET}");
    assert_eq!(consumers[1]["credentials"]["jwt"][0]["algorithm"], "RS256");
    assert!(
        warnings.iter().any(|w| w.starts_with("plugins[4]: plugin `prometheus` has no Strait counterpart")),
        "{warnings:?}"
    );
}

#[test]
fn the_translation_is_a_configuration_strait_loads() {
    let translation = translate(&seed(), &Options { bind: "127.0.0.1:0".into() }).unwrap();
    let env = |name: &str| match name {
        "MOBILE_JWT_SECRET" => Some("mobile-secret".to_owned()),
        "PARTNER_PUBLIC_KEY" => Some("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n".to_owned()),
        _ => None,
    };
    let config = strait_config::load_str_with_env(&translation.yaml, "kong.strait.yaml", &env)
        .unwrap_or_else(|errors| panic!("{errors}\n{}", translation.yaml));
    assert_eq!(config.consumers[0].credentials.jwt[0].secret.as_deref(), Some("mobile-secret"));
    assert_eq!(config.listeners[0].routes.len(), 2);
}

#[test]
fn upstreams_strip_path_service_paths_and_regex_paths() {
    let text = r#"
_format_version: "3.0"
upstreams:
  - name: pool
    algorithm: least-connections
    targets: [{ target: "10.0.0.1:9000", weight: 50 }, { target: "10.0.0.2:9000" }]
services:
  - name: api
    url: http://pool/v2
    routes:
      - { name: a, paths: ["/a", "/b"] }
      - { name: r, paths: ["~/items/\\d+"], strip_path: false, headers: { x-version: ["1.0", "2"] } }
  - name: legacy
    protocol: https
    host: legacy.example
    routes:
      - { name: l, paths: ["/old"], preserve_host: true, plugins: [{ name: key-auth, config: { hide_credentials: true } }] }
      - { paths: ["/unnamed"], plugins: [{ name: basic-auth }] }
"#;
    let (config, warnings) = translate_ok(text);
    let api = &config["clusters"][0];
    assert_eq!(api["balancer"], "least_request");
    assert_eq!(api["endpoints"][0], json!({ "address": "10.0.0.1:9000", "weight": 50 }));
    assert_eq!(api["endpoints"][1]["weight"], 100);
    let routes = config["listeners"][0]["routes"].as_array().unwrap();
    assert_eq!((routes[0]["name"].as_str(), routes[1]["name"].as_str()), (Some("a"), Some("a#2")));
    assert_eq!(routes[0]["rewrite"], json!({ "replace_prefix": "/v2" }), "stripped, then the service path");
    assert_eq!(routes[2]["match"]["path"]["regex"], "(?:/items/\\d+).*");
    assert_eq!(routes[2]["match"]["headers"][0], json!({ "name": "x-version", "regex": "1\\.0|2" }));
    let legacy = &config["clusters"][1];
    assert_eq!(legacy["endpoints"][0]["address"], "legacy.example:443");
    assert_eq!(legacy["tls"]["server_name"], "legacy.example");
    assert_eq!(legacy["host_header"], "preserve");
    assert_eq!(routes[3]["filters"][0], json!({ "name": "key_auth", "config": { "hide_credentials": true } }));
    assert_eq!(routes[4]["filters"][0], json!({ "name": "basic_auth" }), "a route without a name keeps its plugins");
    assert!(routes.iter().all(|r| r.get("_kong_route").is_none()));
    assert!(warnings.iter().any(|w| w.contains("preserve_host")), "{warnings:?}");
}

#[test]
fn what_cannot_be_translated_is_reported_with_its_place() {
    let text = r#"
_format_version: "3.0"
certificates: []
services:
  - { name: s, url: "grpc://x:1" }
plugins:
  - { name: rate-limiting, config: { minute: 5, sync_rate: 10, policy: cluster } }
  - { name: zipkin }
"#;
    let (_, warnings) = translate_ok(text);
    for expected in [
        "certificates: section not translated",
        "services[0].url: `grpc://x:1` is not an http(s) URL",
        "plugins[0].config.sync_rate: `rate-limiting` option not translated",
        "plugins[0].config.policy: `cluster`",
        "plugins[1]: plugin `zipkin` has no Strait counterpart",
    ] {
        assert!(warnings.iter().any(|w| w.starts_with(expected)), "missing `{expected}` in {warnings:?}");
    }
    assert!(translate("services: []", &Options::default()).unwrap_err().contains("_format_version"));
}

#[test]
fn rate_limiting_keeps_kong_s_redis_settings_in_either_form() {
    let text = r#"
_format_version: "3.0"
plugins:
  - name: rate-limiting
    config:
      second: 5
      policy: redis
      fault_tolerant: false
      redis_host: redis.internal
      redis_port: 6380
      redis_password: "{vault://env/REDIS_PASSWORD}"
      redis_database: 2
      redis_timeout: 50
      redis_ssl: false
      redis_ssl_verify: true
      redis_server_name: null
services:
  - name: s
    url: http://s.internal:8080
    plugins:
      - name: rate-limiting
        config:
          minute: 5
          policy: redis
          redis: { host: r.internal, port: 6379, username: strait, password: null, ssl: false, ssl_verify: false, server_name: null, timeout: 2000 }
"#;
    let (config, warnings) = translate_ok(text);
    let flat = &config["filters"][0]["config"];
    assert_eq!(
        *flat,
        json!({
            "second": 5, "policy": "redis", "fault_tolerant": false, "redis_host": "redis.internal",
            "redis_port": 6380, "redis_password": "{vault://env/REDIS_PASSWORD}", "redis_database": 2,
            "redis_timeout": 50
        })
    );
    assert!(warnings.iter().any(|w| w.starts_with("plugins[0].config.redis_ssl_verify: TLS to Redis")), "{warnings:?}");
    assert!(
        !warnings.iter().any(|w| w.starts_with("plugins[0].config.redis_ssl:")),
        "false is the default: {warnings:?}"
    );
    let nested = &config["clusters"][0]["filters"][0]["config"]["redis"];
    assert_eq!(*nested, json!({ "host": "r.internal", "port": 6379, "username": "strait", "timeout": 2000 }));
    assert!(!warnings.iter().any(|w| w.contains("config.redis.")), "{warnings:?}");
}

#[test]
fn a_plugin_for_one_consumer_on_a_route_or_service_keeps_both_scopes() {
    let text = r#"
_format_version: "3.0"
services:
  - name: s
    url: http://127.0.0.1:8080
    routes:
      - name: r
        paths: [/r]
        plugins:
          - { name: cors, consumer: alice }
    plugins:
      - { name: request-size-limiting, consumer: bob, config: { allowed_payload_size: 1 } }
consumers:
  - username: alice
    plugins:
      - { name: rate-limiting, route: r, config: { minute: 5 } }
      - { name: rate-limiting, config: { minute: 50 } }
  - username: bob
plugins:
  - { name: rate-limiting, route: r, consumer: bob, config: { minute: 7 } }
  - { name: cors, route: r, consumer: 0d5e-id-of-nobody }
"#;
    let (config, warnings) = translate_ok(text);
    let route = &config["listeners"][0]["routes"][0];
    let on_route: Vec<(String, String)> = route["filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_owned(), f["consumer"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert!(on_route.contains(&("cors".into(), "alice".into())), "{on_route:?}");
    assert!(on_route.contains(&("rate_limiting".into(), "alice".into())), "{on_route:?}");
    assert!(on_route.contains(&("rate_limiting".into(), "bob".into())), "{on_route:?}");
    assert_eq!(config["clusters"][0]["filters"][0]["consumer"], "bob");
    let alice = &config["consumers"][0]["filters"];
    assert_eq!(alice.as_array().unwrap().len(), 1, "{alice}");
    assert_eq!(alice[0]["config"]["minute"], 50);
    assert!(
        warnings.iter().any(|w| w.contains("cors for `0d5e-id-of-nobody`: no translated consumer")),
        "{warnings:?}"
    );
    assert_eq!(warnings.iter().filter(|w| w.contains("consumer")).count(), 1, "{warnings:?}");
    let translation = translate(text, &Options { bind: "127.0.0.1:0".into() }).unwrap();
    strait_config::load_str(&translation.yaml, "scoped.strait.yaml")
        .unwrap_or_else(|errors| panic!("{errors}\n{}", translation.yaml));
}
