//! Kong 3.x declarative configuration (`_format_version: "3.0"`) to Strait's.
//!
//! | Kong | Strait |
//! | --- | --- |
//! | service (`url` or `protocol`/`host`/`port`/`path`) | cluster, plus a path prefix for its routes |
//! | upstream with targets | the endpoints (and balancer) of the clusters whose service names it |
//! | route (`paths`, `methods`, `hosts`, `headers`, `strip_path`) | one route per path, on one listener |
//! | consumer with `jwt_secrets`, `keyauth_credentials`, `basicauth_credentials`, `acls` | consumer with credentials and groups |
//! | plugin (global, per service, route or consumer, or for one consumer on a route or service) | filter in the same scope (with `consumer:` for the last), dashes in the name read as `_` |
//!
//! `{vault://env/NAME}` values are kept: Strait reads them when it loads the file.

mod plugins;

use serde_json::{json, Map, Value};

use crate::Translation;

/// Choices the Kong file does not make.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the translated listener binds (Kong's proxy listens on port 8000).
    pub bind: String,
}

impl Default for Options {
    fn default() -> Options {
        Options { bind: "0.0.0.0:8000".into() }
    }
}

/// Translates the Kong declarative file `text`.
pub fn translate(text: &str, options: &Options) -> Result<Translation, String> {
    let source = crate::yaml::parse(text)?;
    let root = source.as_object().ok_or("a Kong declarative file is a mapping")?;
    let mut out = Output::default();
    match root.get("_format_version").and_then(Value::as_str) {
        Some("3.0") => {}
        Some(other) => out.warn("_format_version", format!("`{other}` read as 3.0")),
        None => return Err("`_format_version` is missing: is this a Kong declarative file?".into()),
    }
    for key in root.keys() {
        if !KNOWN_SECTIONS.contains(&key.as_str()) {
            out.warn(key, "section not translated");
        }
    }
    let upstreams = upstreams(root.get("upstreams"), &mut out);
    let mut routes = Vec::new();
    for (s, service) in list(root.get("services")).iter().enumerate() {
        let at = format!("services[{s}]");
        let Some(cluster) = out.service(service, &at, &upstreams) else { continue };
        for (r, route) in list(service.get("routes")).iter().enumerate() {
            routes.extend(out.route(route, &format!("{at}.routes[{r}]"), &cluster));
        }
        for (p, plugin) in list(service.get("plugins")).iter().enumerate() {
            out.plugin(plugin, &format!("{at}.plugins[{p}]"), Scope::Cluster(cluster.name.clone()));
        }
    }
    for (r, route) in list(root.get("routes")).iter().enumerate() {
        let at = format!("routes[{r}]");
        let service = route.get("service").and_then(name_of);
        match service.and_then(|name| out.clusters.iter().find(|c| c.name == name)).cloned() {
            Some(cluster) => routes.extend(out.route(route, &at, &cluster)),
            None => out.warn(&at, "a route without a known `service` is not translated"),
        }
    }
    for (c, consumer) in list(root.get("consumers")).iter().enumerate() {
        out.consumer(consumer, &format!("consumers[{c}]"));
    }
    for (p, plugin) in list(root.get("plugins")).iter().enumerate() {
        let at = format!("plugins[{p}]");
        let scope = if let Some(route) = plugin.get("route").and_then(name_of) {
            Scope::Route(route.to_owned())
        } else if let Some(service) = plugin.get("service").and_then(name_of) {
            Scope::Cluster(service.to_owned())
        } else if let Some(consumer) = plugin.get("consumer").and_then(name_of) {
            Scope::Consumer(consumer.to_owned())
        } else {
            Scope::Global
        };
        out.plugin(plugin, &at, scope);
    }
    out.place_route_filters(&mut routes);
    out.drop_unknown_consumers(&mut routes);
    if routes.iter().any(|r| r["match"]["path"].get("prefix").is_some()) {
        out.warnings.push(
            "routes: Kong matches a path prefix by characters (`/api` also matches `/apix`); Strait matches whole \
             segments (`/api` and `/api/...`)"
                .into(),
        );
    }
    let mut config = Map::new();
    config.insert("listeners".into(), json!([{ "name": "proxy", "bind": options.bind, "routes": routes }]));
    config.insert("clusters".into(), Value::Array(out.clusters.iter().map(|c| c.value.clone()).collect()));
    if !out.consumers.is_empty() {
        config.insert("consumers".into(), Value::Array(out.consumers.clone()));
    }
    if !out.global.is_empty() {
        config.insert("filters".into(), Value::Array(out.global.clone()));
    }
    let mut yaml = String::from("# Translated from a Kong declarative file by `strait import kong`.\n");
    yaml.push_str(&crate::yaml::emit(&Value::Object(config)));
    Ok(Translation { yaml, warnings: out.warnings })
}

/// Top-level sections this translation reads.
const KNOWN_SECTIONS: [&str; 6] = ["_format_version", "services", "routes", "upstreams", "consumers", "plugins"];

/// The items of an optional list.
fn list(value: Option<&Value>) -> Vec<Value> {
    value.and_then(Value::as_array).cloned().unwrap_or_default()
}

/// A reference to another entity: its name as a string, or `{ name: ... }` / `{ id: ... }`.
fn name_of(value: &Value) -> Option<&str> {
    value
        .as_str()
        .or_else(|| value.get("name").and_then(Value::as_str))
        .or_else(|| value.get("id").and_then(Value::as_str))
}

/// Where a filter goes.
#[derive(Debug, Clone)]
enum Scope {
    Global,
    Cluster(String),
    Route(String),
    Consumer(String),
}

/// A translated service.
#[derive(Debug, Clone)]
struct Cluster {
    name: String,
    /// The service's `path`, put in front of every forwarded path.
    path: Option<String>,
    value: Value,
}

/// What the translation has built so far.
#[derive(Debug, Default)]
struct Output {
    clusters: Vec<Cluster>,
    consumers: Vec<Value>,
    global: Vec<Value>,
    /// Filters for routes, by the label of their Kong route.
    route_filters: Vec<(String, Value)>,
    /// Kong route names and the labels of their translated routes.
    route_names: Vec<(String, String)>,
    warnings: Vec<String>,
}

/// An upstream's endpoints and balancer.
type Upstreams = Map<String, Value>;

fn upstreams(section: Option<&Value>, out: &mut Output) -> Upstreams {
    let mut found = Map::new();
    for (u, upstream) in list(section).iter().enumerate() {
        let at = format!("upstreams[{u}]");
        let Some(name) = upstream.get("name").and_then(Value::as_str) else {
            out.warn(&at, "an upstream without a name is not translated");
            continue;
        };
        let endpoints: Vec<Value> = list(upstream.get("targets"))
            .iter()
            .filter_map(|t| {
                let target = t.get("target").and_then(Value::as_str)?;
                let address = if target.contains(':') { target.to_owned() } else { format!("{target}:8000") };
                let weight = t.get("weight").and_then(Value::as_u64).unwrap_or(100);
                (weight > 0).then(|| json!({ "address": address, "weight": weight }))
            })
            .collect();
        let balancer = match upstream.get("algorithm").and_then(Value::as_str).unwrap_or("round-robin") {
            "round-robin" => "round_robin",
            "least-connections" => "least_request",
            "consistent-hashing" => "ring_hash",
            other => {
                out.warn(&format!("{at}.algorithm"), format!("`{other}` translated as round_robin"));
                "round_robin"
            }
        };
        if upstream.get("healthchecks").is_some() {
            out.warn(&format!("{at}.healthchecks"), "not translated: configure `health` on the cluster");
        }
        found.insert(name.to_owned(), json!({ "endpoints": endpoints, "balancer": balancer }));
    }
    found
}

impl Output {
    fn warn(&mut self, at: &str, message: impl AsRef<str>) {
        self.warnings.push(format!("{at}: {}", message.as_ref()));
    }

    /// Translates a service into a cluster.
    fn service(&mut self, service: &Value, at: &str, upstreams: &Upstreams) -> Option<Cluster> {
        let Some(name) = service.get("name").and_then(Value::as_str) else {
            self.warn(at, "a service without a name is not translated");
            return None;
        };
        let (scheme, host, port, path) = match service.get("url").and_then(Value::as_str) {
            Some(url) => match split_url(url) {
                Some(parts) => parts,
                None => {
                    self.warn(&format!("{at}.url"), format!("`{url}` is not an http(s) URL; service not translated"));
                    return None;
                }
            },
            None => {
                let scheme = service.get("protocol").and_then(Value::as_str).unwrap_or("http").to_owned();
                let host = service.get("host").and_then(Value::as_str).unwrap_or_default().to_owned();
                let port = service.get("port").and_then(Value::as_u64);
                if port.is_some_and(|p| u16::try_from(p).is_err()) {
                    self.warn(&format!("{at}.port"), "not a port: service not translated");
                    return None;
                }
                let port = port.and_then(|p| u16::try_from(p).ok());
                (scheme, host, port, service.get("path").and_then(Value::as_str).map(str::to_owned))
            }
        };
        let mut cluster = Map::new();
        cluster.insert("name".into(), json!(name));
        if let Some(Value::Object(upstream)) = upstreams.get(&host) {
            cluster.extend(upstream.clone());
        } else {
            let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
            cluster.insert("endpoints".into(), json!([{ "address": format!("{host}:{port}") }]));
        }
        // Kong sends the service's host unless a route preserves the client's.
        cluster.insert("host_header".into(), json!(host));
        if scheme == "https" {
            cluster.insert("tls".into(), json!({ "server_name": host }));
        }
        let mut timeouts = Map::new();
        for (kong, strait) in [("connect_timeout", "connect"), ("read_timeout", "response_header")] {
            if let Some(ms) = service.get(kong).and_then(Value::as_u64) {
                timeouts.insert(strait.into(), json!(format!("{ms}ms")));
            }
        }
        if !timeouts.is_empty() {
            cluster.insert("timeouts".into(), Value::Object(timeouts));
        }
        let translated =
            Cluster { name: name.to_owned(), path: path.filter(|p| p != "/"), value: Value::Object(cluster) };
        self.clusters.push(translated.clone());
        Some(translated)
    }

    /// Translates a route into one Strait route per path (or one without a path).
    fn route(&mut self, route: &Value, at: &str, cluster: &Cluster) -> Vec<Value> {
        let name = route.get("name").and_then(Value::as_str).map(str::to_owned);
        let mut matches = Map::new();
        let methods: Vec<Value> = list(route.get("methods"));
        if !methods.is_empty() {
            matches.insert("methods".into(), Value::Array(methods));
        }
        let hosts: Vec<Value> = list(route.get("hosts"));
        if !hosts.is_empty() {
            matches.insert("hosts".into(), Value::Array(hosts));
        }
        if let Some(Value::Object(headers)) = route.get("headers") {
            let conditions: Vec<Value> = headers
                .iter()
                .map(|(name, values)| {
                    let values: Vec<String> =
                        list(Some(values)).iter().filter_map(|v| v.as_str().map(regex_quote)).collect();
                    json!({ "name": name, "regex": values.join("|") })
                })
                .collect();
            matches.insert("headers".into(), Value::Array(conditions));
        }
        for key in ["snis", "sources", "destinations"] {
            if route.get(key).is_some() {
                self.warn(&format!("{at}.{key}"), "not translated");
            }
        }
        let strip = route.get("strip_path").and_then(Value::as_bool).unwrap_or(true);
        if route.get("preserve_host").and_then(Value::as_bool) == Some(true) {
            self.warn(&format!("{at}.preserve_host"), format!("applied to all of cluster `{}`", cluster.name));
            self.set_host_header(&cluster.name, "preserve");
        }
        let paths = list(route.get("paths"));
        let mut translated = Vec::new();
        let path_values: Vec<Option<String>> =
            if paths.is_empty() { vec![None] } else { paths.iter().map(|p| p.as_str().map(str::to_owned)).collect() };
        for (i, path) in path_values.into_iter().enumerate() {
            let mut entry = Map::new();
            if let Some(name) = &name {
                let name = if i == 0 { name.clone() } else { format!("{name}#{}", i + 1) };
                entry.insert("name".into(), json!(name));
            }
            let mut matched = matches.clone();
            let mut rewrite = None;
            match path.as_deref() {
                Some(regex) if regex.starts_with('~') => {
                    matched.insert("path".into(), json!({ "regex": format!("(?:{}).*", &regex[1..]) }));
                    if strip {
                        self.warn(&format!("{at}.strip_path"), "not applied to a regex path");
                    }
                }
                Some(prefix) => {
                    matched.insert("path".into(), json!({ "prefix": prefix }));
                    rewrite = match (&cluster.path, strip) {
                        (Some(base), true) => Some(json!({ "replace_prefix": base })),
                        (Some(base), false) => Some(json!({ "replace_prefix": format!("{base}{prefix}") })),
                        (None, true) if prefix != "/" => Some(json!({ "strip_prefix": prefix })),
                        (None, _) => None,
                    };
                }
                None => {}
            }
            if !matched.is_empty() {
                entry.insert("match".into(), Value::Object(matched));
            }
            if let Some(rewrite) = rewrite {
                entry.insert("rewrite".into(), rewrite);
            }
            entry.insert("forward".into(), json!({ "cluster": cluster.name }));
            translated.push(Value::Object(entry));
        }
        // A route's own plugins go on its translated routes directly (a Kong route may have no name).
        let label = format!("{at}#plugins");
        for entry in translated.iter_mut() {
            entry["_kong_route"] = json!(label);
        }
        for (p, plugin) in list(route.get("plugins")).iter().enumerate() {
            self.plugin(plugin, &format!("{at}.plugins[{p}]"), Scope::Route(label.clone()));
        }
        if let Some(name) = &name {
            // Top-level plugins name the route by its Kong name.
            self.route_names.push((name.clone(), label));
        }
        translated
    }

    fn set_host_header(&mut self, cluster: &str, value: &str) {
        if let Some(found) = self.clusters.iter_mut().find(|c| c.name == cluster) {
            found.value["host_header"] = json!(value);
        }
    }

    /// Translates a consumer and its credentials.
    fn consumer(&mut self, consumer: &Value, at: &str) {
        let Some(username) = consumer.get("username").and_then(Value::as_str) else {
            self.warn(at, "a consumer without a username is not translated");
            return;
        };
        let mut out = Map::new();
        out.insert("username".into(), json!(username));
        if let Some(custom_id) = consumer.get("custom_id").and_then(Value::as_str) {
            out.insert("custom_id".into(), json!(custom_id));
        }
        let groups: Vec<Value> = list(consumer.get("acls")).iter().filter_map(|a| a.get("group").cloned()).collect();
        if !groups.is_empty() {
            out.insert("groups".into(), Value::Array(groups));
        }
        let mut credentials = Map::new();
        let keys: Vec<Value> = list(consumer.get("keyauth_credentials"))
            .iter()
            .filter_map(|k| Some(json!({ "key": k.get("key")? })))
            .collect();
        if !keys.is_empty() {
            credentials.insert("key_auth".into(), Value::Array(keys));
        }
        let users: Vec<Value> = list(consumer.get("basicauth_credentials"))
            .iter()
            .filter_map(|b| Some(json!({ "username": b.get("username")?, "password": b.get("password")? })))
            .collect();
        if !users.is_empty() {
            credentials.insert("basic_auth".into(), Value::Array(users));
        }
        let mut jwts = Vec::new();
        for (j, secret) in list(consumer.get("jwt_secrets")).iter().enumerate() {
            let mut jwt = Map::new();
            for field in ["key", "algorithm", "secret", "rsa_public_key"] {
                if let Some(value) = secret.get(field) {
                    jwt.insert(field.into(), value.clone());
                }
            }
            if !jwt.contains_key("key") {
                self.warn(&format!("{at}.jwt_secrets[{j}]"), "a JWT secret without `key` is not translated");
                continue;
            }
            jwts.push(Value::Object(jwt));
        }
        if !jwts.is_empty() {
            credentials.insert("jwt".into(), Value::Array(jwts));
        }
        if !credentials.is_empty() {
            out.insert("credentials".into(), Value::Object(credentials));
        }
        self.consumers.push(Value::Object(out));
        for (p, plugin) in list(consumer.get("plugins")).iter().enumerate() {
            self.plugin(plugin, &format!("{at}.plugins[{p}]"), Scope::Consumer(username.to_owned()));
        }
    }

    /// Puts `filter` in `scope`.
    fn place(&mut self, at: &str, scope: Scope, filter: Value) {
        match scope {
            Scope::Global => self.global.push(filter),
            Scope::Route(route) => self.route_filters.push((route, filter)),
            Scope::Cluster(name) => match self.clusters.iter_mut().find(|c| c.name == name) {
                Some(cluster) => push_filter(&mut cluster.value, filter),
                None => self.warn(at, format!("unknown service `{name}`: plugin not translated")),
            },
            Scope::Consumer(name) => match self.consumers.iter_mut().find(|c| c["username"] == name.as_str()) {
                Some(consumer) => push_filter(consumer, filter),
                None => self.warn(at, format!("unknown consumer `{name}`: plugin not translated")),
            },
        }
    }

    /// Gives each translated route the filters of its Kong route, and drops the route names
    /// kept for that.
    fn place_route_filters(&mut self, routes: &mut [Value]) {
        for (route_name, filter) in std::mem::take(&mut self.route_filters) {
            let label = match self.route_names.iter().find(|(name, _)| *name == route_name) {
                Some((_, label)) => label.clone(),
                None => route_name.clone(),
            };
            let mut placed = false;
            for route in routes.iter_mut().filter(|r| r["_kong_route"] == label.as_str()) {
                push_filter(route, filter.clone());
                placed = true;
            }
            if !placed {
                self.warn("plugins", format!("unknown route `{route_name}`: plugin not translated"));
            }
        }
        for route in routes.iter_mut() {
            if let Some(entry) = route.as_object_mut() {
                entry.remove("_kong_route");
            }
        }
    }
}

/// Appends `filter` to the `filters` list of `entity`.
fn push_filter(entity: &mut Value, filter: Value) {
    if let Some(entry) = entity.as_object_mut() {
        let filters = entry.entry("filters").or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = filters.as_array_mut() {
            list.push(filter);
        }
    }
}

impl Output {
    /// Drops the route and cluster filters for a consumer that was not translated (named by
    /// an id, say), with a warning: Strait refuses a filter for an unknown consumer.
    fn drop_unknown_consumers(&mut self, routes: &mut [Value]) {
        let known: Vec<String> =
            self.consumers.iter().filter_map(|c| c["username"].as_str().map(str::to_owned)).collect();
        let mut dropped = Vec::new();
        let lists = routes.iter_mut().chain(self.clusters.iter_mut().map(|c| &mut c.value));
        for entity in lists {
            let Some(Value::Array(filters)) = entity.get_mut("filters") else { continue };
            filters.retain(|filter| match filter.get("consumer").and_then(Value::as_str) {
                Some(name) if !known.iter().any(|k| k == name) => {
                    dropped.push(format!("{} for `{name}`", filter["name"].as_str().unwrap_or("?")));
                    false
                }
                _ => true,
            });
        }
        for what in dropped {
            self.warn("plugins", format!("{what}: no translated consumer has that username; plugin not translated"));
        }
    }
}

/// `scheme://host[:port][/path]` split, for http and https.
fn split_url(url: &str) -> Option<(String, String, Option<u16>, Option<String>)> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], Some(rest[slash..].to_owned())),
        None => (rest, None),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => (host, Some(port.parse().ok()?)),
        _ => (authority, None),
    };
    Some((scheme.to_owned(), host.to_owned(), port, path))
}

/// `text` as a regular expression matching it literally.
fn regex_quote(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

#[cfg(test)]
mod tests;
