//! Loading whole files: positions of errors, expansion, units, and a complete valid file.

use std::path::Path;
use std::time::Duration;

use strait_config::{
    load_file, load_str, load_str_with_env, AccessLogFormat, Balancer, ConfigError, ConfigErrors, HashOn, HealthKind,
};

fn no_env(_: &str) -> Option<String> {
    None
}

/// Loads `text` expecting failure; returns the errors.
fn errors_of(text: &str) -> Vec<ConfigError> {
    match load_str_with_env(text, "test.yaml", &no_env) {
        Ok(config) => panic!("expected errors, loaded {config:?}"),
        Err(errors) => errors.0,
    }
}

/// Loads `text` expecting exactly one error; returns (line, column, path, message).
fn single_error(text: &str) -> (usize, usize, String, String) {
    let errors = errors_of(text);
    assert_eq!(errors.len(), 1, "expected one error, got:\n{}", ConfigErrors(errors.clone()));
    let error = errors.into_iter().next().unwrap();
    (error.line, error.column, error.path, error.message)
}

const MINIMAL_CLUSTER: &str = "clusters:\n  - name: app\n    endpoints:\n      - address: 127.0.0.1:9000\n";

#[test]
fn full_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/full.yaml");
    let config = load_file(&path).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.workers, 4);
    assert!(config.server.via);
    assert_eq!(config.server.trusted_proxies, ["10.0.0.0/8", "192.168.1.10", "fd00::/8"]);
    assert_eq!(config.server.limits.max_header_bytes.0, 32 * 1024);
    assert_eq!(config.server.limits.max_body_bytes.0, 10 << 20);
    assert_eq!(config.access_log.format, AccessLogFormat::Json);
    let listener = &config.listeners[0];
    assert_eq!(listener.bind, "0.0.0.0:8080");
    assert_eq!(listener.routes.len(), 6);
    let api = &listener.routes[1];
    assert_eq!(api.matches.hosts, ["api.example.com", "*.api.example.com"]);
    assert_eq!(api.matches.query[0].exact.as_deref(), Some("1"));
    assert_eq!(api.request_headers.add["x-via-strait"], "yes");
    assert_eq!(api.timeout.unwrap().0, Duration::from_secs(15));
    assert_eq!(api.retries.as_ref().unwrap().on_status, [502, 503]);
    let split = listener.routes[2].split.as_ref().unwrap();
    assert_eq!((split[1].cluster.as_str(), split[1].weight), ("shop-canary", 5));
    assert_eq!(listener.routes[3].direct.as_ref().unwrap().body, "ok\n");
    assert_eq!(listener.routes[4].static_files.as_ref().unwrap().expires.unwrap().0, Duration::from_secs(30 * 86400));
    let api_cluster = &config.clusters[0];
    assert_eq!(api_cluster.balancer, Balancer::LeastRequest);
    assert_eq!(api_cluster.endpoints[0].weight, 2);
    assert_eq!(api_cluster.endpoints[1].weight, 1);
    assert!(api_cluster.endpoints[2].backup);
    assert_eq!(api_cluster.health.active.as_ref().unwrap().timeout.0, Duration::from_secs(1));
    assert_eq!(config.clusters[1].hash_on, Some(HashOn::Cookie("session".into())));
    assert_eq!(config.clusters[2].hash_on, Some(HashOn::SourceIp));
    let canary_health = config.clusters[2].health.active.as_ref().unwrap();
    assert_eq!(canary_health.kind, HealthKind::Tcp);
    assert_eq!(canary_health.path, "/health");
}

#[test]
fn empty_file_is_the_default_configuration() {
    let config = load_str_with_env("# nothing yet\n", "empty.yaml", &no_env).unwrap();
    assert_eq!(config, strait_config::Config::default());
}

#[test]
fn unknown_field_points_at_the_key() {
    let text = "\
listeners:
  - name: web
    bind: 0.0.0.0:80
    routes:
      - match:
          paht: { prefix: / }
        echo: {}
";
    let (line, column, path, message) = single_error(text);
    assert_eq!((line, column), (6, 11));
    assert_eq!(path, "listeners[0].routes[0].match.paht");
    assert!(message.starts_with("unknown field `paht`, expected one of"), "{message}");
}

#[test]
fn unknown_top_level_field() {
    let (line, column, path, _) = single_error("workers: 2\nlisteners: []\nclusterz: []\n");
    assert_eq!((line, column, path.as_str()), (3, 1, "clusterz"));
}

#[test]
fn wrong_type_points_at_the_value() {
    let text = "workers: 2\nlisteners:\n  - name: web\n    bind: 0.0.0.0:80\n    routes: yes\n";
    let (line, column, path, message) = single_error(text);
    assert_eq!((line, column), (5, 13));
    assert_eq!(path, "listeners[0].routes");
    assert!(message.contains("invalid type: string \"yes\", expected a sequence"), "{message}");
}

#[test]
fn number_where_a_string_is_expected_suggests_quoting() {
    let text = "listeners:\n  - name: 8080\n    bind: 0.0.0.0:8080\n";
    let (line, column, path, message) = single_error(text);
    assert_eq!((line, column, path.as_str()), (2, 11, "listeners[0].name"));
    assert!(message.ends_with("quote the value to keep it a string"), "{message}");
}

#[test]
fn unknown_enum_variant() {
    let text = format!("{MINIMAL_CLUSTER}    balancer: round_robbin\n");
    let (line, column, path, message) = single_error(&text);
    assert_eq!((line, column, path.as_str()), (5, 15, "clusters[0].balancer"));
    assert!(message.starts_with("unknown variant `round_robbin`"), "{message}");
}

#[test]
fn missing_field_points_at_the_mapping() {
    let (line, column, path, message) = single_error("listeners:\n  - name: web\n");
    assert_eq!((line, column, path.as_str()), (2, 5, "listeners[0]"));
    assert_eq!(message, "missing field `bind`");
}

#[test]
fn missing_cluster_is_reported_at_the_reference() {
    let text = format!(
        "\
listeners:
  - name: web
    bind: 0.0.0.0:80
    routes:
      - forward: {{ cluster: ap }}
{MINIMAL_CLUSTER}"
    );
    let (line, column, path, message) = single_error(&text);
    assert_eq!((line, column), (5, 29));
    assert_eq!(path, "listeners[0].routes[0].forward.cluster");
    assert_eq!(message, "unknown cluster `ap` (defined clusters: `app`)");
}

#[test]
fn every_bad_route_is_reported() {
    let text = format!(
        "\
listeners:
  - name: web
    bind: 0.0.0.0:80
    routes:
      - match:
          path: {{ prefix: api }}
        forward: {{ cluster: app }}
      - match:
          methods: [get]
        forward: {{ cluster: app }}
{MINIMAL_CLUSTER}"
    );
    let errors = errors_of(&text);
    let found: Vec<_> = errors.iter().map(|error| (error.line, error.path.as_str())).collect();
    assert_eq!(
        found,
        vec![(6, "listeners[0].routes[0].match.path.prefix"), (9, "listeners[0].routes[1].match.methods[0]")]
    );
    assert_eq!(errors[0].message, "path `api` must start with `/`");
    assert!(errors[1].message.contains("write `GET`"), "{}", errors[1].message);
}

#[test]
fn many_problems_are_reported_together_in_file_order() {
    let text = "\
workers: 5000
server:
  trusted_proxies: [10.0.0.0/8, proxy.local]
listeners:
  - name: web
    bind: localhost:80
    routes:
      - match:
          hosts: [a.*.example.com]
          path: { exact: /a, prefix: /b }
          headers:
            - { name: x-a, exact: '1', present: true }
        direct: { status: 700, headers: { bad header: x } }
        echo: {}
      - redirect: { scheme: 'https://', status: 200 }
      - split: []
        rewrite: { strip_prefix: /a, regex: { pattern: '(', replace: x } }
  - name: web
    bind: 0.0.0.0:8080
clusters:
  - name: app
    endpoints: []
    hash_on: source_ip
  - name: app
    endpoints:
      - { address: 'app:0', weight: 0 }
    health:
      active: { interval: 0s, healthy_threshold: 0 }
    timeouts: { connect: 0 }
";
    let errors = errors_of(text);
    let found: Vec<_> = errors.iter().map(|error| (error.line, error.path.as_str())).collect();
    assert_eq!(
        found,
        vec![
            (1, "workers"),
            (3, "server.trusted_proxies[1]"),
            (6, "listeners[0].bind"),
            (8, "listeners[0].routes[0]"),
            (9, "listeners[0].routes[0].match.hosts[0]"),
            (10, "listeners[0].routes[0].match.path"),
            (12, "listeners[0].routes[0].match.headers[0]"),
            (13, "listeners[0].routes[0].direct.status"),
            (13, "listeners[0].routes[0].direct.headers.bad header"),
            (15, "listeners[0].routes[1].redirect.scheme"),
            (15, "listeners[0].routes[1].redirect.status"),
            (16, "listeners[0].routes[2].split"),
            (17, "listeners[0].routes[2].rewrite"),
            (17, "listeners[0].routes[2].rewrite.regex.pattern"),
            (18, "listeners[1].name"),
            (22, "clusters[0].endpoints"),
            (23, "clusters[0].hash_on"),
            (24, "clusters[1].name"),
            (26, "clusters[1].endpoints[0].address"),
            (26, "clusters[1].endpoints[0].weight"),
            (28, "clusters[1].health.active.interval"),
            (28, "clusters[1].health.active.healthy_threshold"),
            (29, "clusters[1].timeouts.connect"),
        ],
        "{}",
        ConfigErrors(errors.clone())
    );
}

#[test]
fn environment_references_expand() {
    let lookup = |name: &str| match name {
        "API_HOST" => Some("10.1.2.3".to_owned()),
        "WORKERS" => Some("8".to_owned()),
        _ => None,
    };
    let text = "\
workers: ${WORKERS}
listeners:
  - name: web
    bind: 0.0.0.0:${PORT:-8080}
    routes:
      - direct: { body: 'costs $${PRICE}' }
clusters:
  - name: app
    endpoints:
      - address: ${API_HOST}:9000
";
    let config = load_str_with_env(text, "env.yaml", &lookup).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.workers, 8);
    assert_eq!(config.listeners[0].bind, "0.0.0.0:8080");
    assert_eq!(config.listeners[0].routes[0].direct.as_ref().unwrap().body, "costs ${PRICE}");
    assert_eq!(config.clusters[0].endpoints[0].address, "10.1.2.3:9000");
}

#[test]
fn process_environment_is_read() {
    std::env::set_var("STRAIT_CONFIG_TEST_BIND", "127.0.0.1:7070");
    let config = load_str("listeners:\n  - name: web\n    bind: ${STRAIT_CONFIG_TEST_BIND}\n", "env.yaml").unwrap();
    assert_eq!(config.listeners[0].bind, "127.0.0.1:7070");
}

#[test]
fn unset_environment_variable_is_an_error_at_its_value() {
    let text = "listeners:\n  - name: web\n    bind: ${STRAIT_UNSET_BIND}\n";
    let (line, column, path, message) = single_error(text);
    assert_eq!((line, column, path.as_str()), (3, 11, "listeners[0].bind"));
    assert!(message.contains("environment variable `STRAIT_UNSET_BIND` is not set"), "{message}");
}

#[test]
fn units_are_read_from_strings_and_numbers() {
    let text = "\
server:
  limits: { max_header_bytes: 64KiB, max_uri_bytes: 2048, max_body_bytes: 1MB }
  timeouts: { client_header: 250ms, client_body: 2m, idle: 1.5 }
  drain_timeout: 1h
";
    let config = load_str_with_env(text, "units.yaml", &no_env).unwrap();
    let server = &config.server;
    assert_eq!(server.limits.max_header_bytes.0, 65536);
    assert_eq!(server.limits.max_uri_bytes.0, 2048);
    assert_eq!(server.limits.max_body_bytes.0, 1_000_000);
    assert_eq!(server.timeouts.client_header.0, Duration::from_millis(250));
    assert_eq!(server.timeouts.client_body.0, Duration::from_secs(120));
    assert_eq!(server.timeouts.idle.0, Duration::from_millis(1500));
    assert_eq!(server.drain_timeout.0, Duration::from_secs(3600));
}

#[test]
fn bad_unit_is_reported_at_the_value() {
    let (line, column, path, message) = single_error("server:\n  drain_timeout: 5 parsecs\n");
    assert_eq!((line, column, path.as_str()), (2, 18, "server.drain_timeout"));
    assert!(message.contains("invalid duration unit `parsecs`"), "{message}");
}

#[test]
fn duplicate_key_is_reported_at_the_second_key() {
    let text = "listeners:\n  - name: a\n    bind: 0.0.0.0:80\n    name: b\n";
    let (line, column, path, message) = single_error(text);
    assert_eq!((line, column, path.as_str()), (4, 5, "listeners[0].name"));
    assert_eq!(message, "duplicate key `name` (first given at line 2)");
}

#[test]
fn aliases_are_rejected() {
    let text = "listeners:\n  - name: &n web\n    bind: *n\n";
    let (line, _, path, message) = single_error(text);
    assert_eq!((line, path.as_str()), (3, "listeners[0].bind"));
    assert!(message.contains("aliases"), "{message}");
}

#[test]
fn yaml_syntax_error_has_a_position() {
    let errors = errors_of("listeners:\n  - name: web\n    bind: [0.0.0.0:80\n");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].line >= 3, "{}", errors[0]);
    assert!(errors[0].message.starts_with("YAML syntax: "), "{}", errors[0]);
}

#[test]
fn unreadable_file_names_the_file() {
    let errors = load_file(Path::new("/nonexistent/strait.yaml")).unwrap_err();
    assert_eq!(errors.len(), 1);
    let text = errors.to_string();
    assert!(text.starts_with("/nonexistent/strait.yaml:1:1: cannot read file:"), "{text}");
}

#[test]
fn errors_display_one_per_line() {
    let errors = errors_of("workers: 2000\nserver:\n  trusted_proxies: [nope]\n");
    assert_eq!(
        ConfigErrors(errors).to_string(),
        "test.yaml:1:10: workers: 2000 workers is more than the maximum of 1024\n\
         test.yaml:3:21: server.trusted_proxies[0]: `nope` is neither an IP address nor a CIDR block such as `10.0.0.0/8`"
    );
}

#[test]
fn unknown_hash_on_kind_points_at_its_key() {
    let text = format!("{MINIMAL_CLUSTER}    balancer: ring_hash\n    hash_on: {{ headr: x-user }}\n");
    let (line, column, path, message) = single_error(&text);
    assert_eq!((line, column, path.as_str()), (6, 16, "clusters[0].hash_on.headr"));
    assert!(message.starts_with("unknown variant `headr`"), "{message}");
}

#[test]
fn invalid_regex_message_is_one_line() {
    let text = "listeners:\n  - name: web\n    bind: 0.0.0.0:80\n    routes:\n      - match: { path: { regex: '/(a' } }\n        echo: {}\n";
    let (line, column, path, message) = single_error(text);
    assert_eq!((line, column, path.as_str()), (5, 33, "listeners[0].routes[0].match.path.regex"));
    assert_eq!(message, "invalid regular expression `/(a`: unclosed group");
}

#[test]
fn action_without_value_is_reported_once() {
    let text = "listeners:\n  - name: web\n    bind: 0.0.0.0:80\n    routes:\n      - match: { path: { prefix: / } }\n        echo:\n";
    let (line, column, path, message) = single_error(text);
    assert_eq!((line, column, path.as_str()), (6, 9, "listeners[0].routes[0].echo"));
    assert_eq!(message, "`echo` has no value; write for example `echo: {}`");
}

#[test]
fn edits_of_headers_strait_manages_are_refused_where_written() {
    let text = "\
listeners:
  - name: a
    bind: 127.0.0.1:0
    routes:
      - echo: {}
        request_headers:
          set: { host: x, x-ok: y }
          remove: [connection]
        response_headers:
          add: { Transfer-Encoding: chunked }
";
    let errors = errors_of(text);
    let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        found,
        [
            (7, "listeners[0].routes[0].request_headers.set.host"),
            (8, "listeners[0].routes[0].request_headers.remove[0]"),
            (10, "listeners[0].routes[0].response_headers.add.Transfer-Encoding"),
        ]
    );
    assert!(errors[0].message.contains("host_header"));
}

#[test]
fn direct_answers_cannot_use_an_interim_status() {
    let text = "listeners:\n  - name: a\n    bind: 127.0.0.1:0\n    routes:\n      - direct: { status: 100 }\n";
    let (line, _, path, message) = single_error(text);
    assert_eq!((line, path.as_str()), (5, "listeners[0].routes[0].direct.status"));
    assert!(message.contains("interim"), "{message}");
}
