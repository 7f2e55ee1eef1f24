//! Kong plugins to Strait filters: the name, and the fields of the configuration that have no
//! counterpart (reported, never dropped silently).

use serde_json::{json, Map, Value};

use super::{name_of, Output, Scope};

/// Kong plugin name → Strait filter name, and the Kong fields the filter does not take.
const PLUGINS: &[(&str, &str, &[&str])] = &[
    ("jwt", "jwt", &["run_on_preflight", "secret_is_base64"]),
    ("key-auth", "key_auth", &["run_on_preflight", "key_in_body"]),
    ("basic-auth", "basic_auth", &[]),
    ("acl", "acl", &["include_consumer_groups", "always_use_authenticated_groups"]),
    ("ip-restriction", "ip_restriction", &[]),
    ("cors", "cors", &[]),
    ("request-size-limiting", "request_size_limiting", &[]),
    ("request-transformer", "request_transformer", &[]),
    ("response-transformer", "response_transformer", &[]),
    ("proxy-cache", "proxy_cache", &["strategy", "memory"]),
    (
        "rate-limiting",
        "rate_limiting",
        &["sync_rate", "error_code", "error_message", "month", "year", "redis_server_name"],
    ),
];

impl Output {
    /// Translates one plugin entry into a filter in `scope`.
    pub(super) fn plugin(&mut self, plugin: &Value, at: &str, scope: Scope) {
        let Some(name) = plugin.get("name").and_then(Value::as_str) else {
            self.warn(at, "a plugin without a name is not translated");
            return;
        };
        let (scope, consumer) = consumer_scope(plugin, scope);
        if plugin.get("enabled").and_then(Value::as_bool) == Some(false) {
            self.warn(at, format!("`{name}` is disabled: not translated"));
            return;
        }
        let Some((_, filter, unsupported)) = PLUGINS.iter().find(|(kong, _, _)| *kong == name) else {
            self.warn(at, format!("plugin `{name}` has no Strait counterpart: not translated"));
            return;
        };
        let mut config = plugin.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
        for field in *unsupported {
            if config.remove(*field).is_some_and(|v| !v.is_null()) {
                self.warn(&format!("{at}.config.{field}"), format!("`{name}` option not translated"));
            }
        }
        config.retain(|_, value| !value.is_null());
        self.adjust(name, &mut config, at);
        let mut entry = Map::new();
        entry.insert("name".into(), json!(filter));
        if !config.is_empty() {
            entry.insert("config".into(), Value::Object(config));
        }
        if let Some(consumer) = consumer {
            entry.insert("consumer".into(), json!(consumer));
        }
        self.place(at, scope, Value::Object(entry));
    }

    /// Per-plugin differences of configuration.
    fn adjust(&mut self, name: &str, config: &mut Map<String, Value>, at: &str) {
        match name {
            "jwt" => {
                // Kong reads header names case-insensitively; Strait's are lower-case.
                if let Some(Value::Array(names)) = config.get_mut("header_names") {
                    for header in names.iter_mut() {
                        if let Some(text) = header.as_str() {
                            *header = json!(text.to_ascii_lowercase());
                        }
                    }
                }
            }
            "rate-limiting" => self.rate_limiting(config, at),
            _ => {}
        }
    }

    /// `rate-limiting`: the Redis settings Strait takes pass as they are (flat `redis_*` or
    /// Kong 3.6's `redis:` object); TLS to Redis is not taken, and `cluster` becomes `local`.
    fn rate_limiting(&mut self, config: &mut Map<String, Value>, at: &str) {
        for field in ["redis_ssl", "redis_ssl_verify"] {
            if config.remove(field).is_some_and(|v| v == json!(true)) {
                self.warn(&format!("{at}.config.{field}"), NO_REDIS_TLS);
            }
        }
        if let Some(Value::Object(redis)) = config.get_mut("redis") {
            for field in ["ssl", "ssl_verify", "server_name"] {
                if redis.remove(field).is_some_and(|v| !v.is_null() && v != json!(false)) {
                    self.warn(&format!("{at}.config.redis.{field}"), NO_REDIS_TLS);
                }
            }
            redis.retain(|_, value| !value.is_null());
            if redis.is_empty() {
                config.remove("redis");
            }
        }
        match config.get("policy").and_then(Value::as_str) {
            Some("redis") => self.warn(
                &format!("{at}.config.policy"),
                "`redis`: Strait keeps its own counters there (keys `strait:rl:*`), apart from Kong's: counts start afresh",
            ),
            Some("cluster") => {
                self.warn(&format!("{at}.config.policy"), "`cluster` (counters in Kong's database) read as `local`");
                config.insert("policy".into(), json!("local"));
            }
            _ => {}
        }
    }
}

/// Where a plugin for one consumer goes: with a route or service as well (Kong's most specific
/// scopes), that route's or cluster's filter limited to the consumer (`consumer:`); alone, the
/// consumer's filters.
fn consumer_scope(plugin: &Value, scope: Scope) -> (Scope, Option<String>) {
    let route = plugin.get("route").and_then(name_of);
    let service = plugin.get("service").and_then(name_of);
    match scope {
        Scope::Consumer(name) => match (route, service) {
            (Some(route), _) => (Scope::Route(route.to_owned()), Some(name)),
            (None, Some(service)) => (Scope::Cluster(service.to_owned()), Some(name)),
            (None, None) => (Scope::Consumer(name), None),
        },
        Scope::Global => (Scope::Global, None),
        scope => (scope, plugin.get("consumer").and_then(name_of).map(str::to_owned)),
    }
}

/// The warning about Kong's TLS settings for Redis.
const NO_REDIS_TLS: &str = "TLS to Redis is not supported: Strait connects over plain TCP (use a local TLS tunnel)";
