//! Filter scopes end to end: global, cluster, route, listener and consumer filters, which one
//! of a name a request gets, and the priority order a chain runs in.

use crate::support;

use std::sync::Arc;

use http::header::HeaderValue;
use http::request;
use strait_http::consumer::{Consumer, Credential};
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, Phase, Phases, Registry, RequestCtx};
use support::{Backend, Proxy, Reply};

/// Appends `x-tag: <label>` to the request the upstream receives.
#[derive(Debug)]
struct Tag(String);

impl FilterFactory for Tag {
    fn name(&self) -> &'static str {
        "tag"
    }
    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }
    fn create(&self) -> Box<dyn Filter> {
        Box::new(TagFilter(self.0.clone()))
    }
}

struct TagFilter(String);

impl Filter for TagFilter {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, _ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        request.headers.append("x-tag", HeaderValue::from_str(&self.0).unwrap());
        Phase::Ready(Flow::Continue)
    }
}

/// A stand-in for an authentication filter: `login` identifies the consumer named by the
/// `x-user` header; `guest` identifies the consumer `guest` without a credential, as a filter
/// with `anonymous` does when its check fails.
#[derive(Debug)]
struct Login {
    name: &'static str,
    consumers: Vec<strait_config::Consumer>,
}

impl FilterFactory for Login {
    fn name(&self) -> &'static str {
        self.name
    }
    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }
    fn create(&self) -> Box<dyn Filter> {
        Box::new(LoginFilter { guest: self.name == "guest", consumers: self.consumers.clone() })
    }
}

struct LoginFilter {
    guest: bool,
    consumers: Vec<strait_config::Consumer>,
}

impl Filter for LoginFilter {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        let user = match self.guest {
            true => Some("guest".to_owned()),
            false => request.headers.get("x-user").and_then(|v| v.to_str().ok()).map(str::to_owned),
        };
        if let Some(spec) = user.and_then(|u| self.consumers.iter().find(|c| c.username == u)) {
            let credential = Credential { kind: "login", id: spec.username.as_str().into() };
            let consumer = Consumer::from_config(spec, (!self.guest).then_some(credential));
            ctx.identify(&mut request.headers, consumer, self.guest);
        }
        Phase::Ready(Flow::Continue)
    }
}

/// The built-in plugins, `tag` (priority 0 unless configured) `login` (priority 1000) and `guest` (priority 1100).
fn registry() -> Registry {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TagConfig {
        label: String,
    }
    let mut registry = strait_plugins::builtin();
    registry
        .register(typed("tag", |c: TagConfig, _: &BuildEnv<'_>| Ok(Arc::new(Tag(c.label)) as Arc<dyn FilterFactory>)));
    for (name, priority) in [("login", 1000), ("guest", 1100)] {
        let plugin = typed(name, move |_: std::collections::BTreeMap<String, String>, env: &BuildEnv<'_>| {
            Ok(Arc::new(Login { name, consumers: env.config.consumers.clone() }) as Arc<dyn FilterFactory>)
        });
        registry.register(prioritized(plugin, priority));
    }
    registry
}

/// The `x-tag` values the backend received for `path`, with `headers` added to the request.
fn tags(proxy: &Proxy, backend: &Backend, path: &str, headers: &str) -> Vec<String> {
    let before = backend.requests().len();
    let raw = format!("GET {path} HTTP/1.1\r\nHost: scopes.test\r\n{headers}Connection: close\r\n\r\n");
    let response = support::raw_request(proxy.addr("web"), raw.as_bytes()).expect("response");
    assert_eq!(response.status, 200, "{path}: {response:?}");
    let requests = backend.requests();
    assert_eq!(requests.len(), before + 1, "{path} reached the backend once");
    let last = requests.last().unwrap();
    last.headers.get_all("x-tag").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

fn tag(label: &str) -> String {
    format!("{{ name: tag, config: {{ label: {label} }} }}")
}

#[test]
fn route_filters_replace_cluster_filters_which_replace_global_ones() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let other = Backend::start(|_| Reply::text("ok"));
    let yaml = format!(
        r#"
filters: [ {global} ]
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: {{ path: {{ prefix: /plain }} }}
        forward: {{ cluster: other }}
      - match: {{ path: {{ prefix: /service }} }}
        forward: {{ cluster: app }}
      - match: {{ path: {{ prefix: /route }} }}
        filters: [ {route} ]
        forward: {{ cluster: app }}
clusters:
  - name: app
    filters: [ {cluster} ]
    endpoints: [{{ address: "{}" }}]
  - name: other
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr,
        other.addr,
        global = tag("global"),
        route = tag("route"),
        cluster = tag("cluster"),
    );
    let proxy = Proxy::start_with(&yaml, registry());
    assert_eq!(tags(&proxy, &other, "/plain", ""), ["global"]);
    assert_eq!(tags(&proxy, &backend, "/service", ""), ["cluster"]);
    assert_eq!(tags(&proxy, &backend, "/route", ""), ["route"]);
}

#[test]
fn chains_run_by_priority_then_in_list_order() {
    let backend = Backend::start(|_| Reply::text("ok"));
    // `first` has the highest priority though it is listed last; `a` and `b` tie.
    let yaml = format!(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - filters:
          - {{ name: tag, config: {{ label: a }} }}
          - {{ name: request_headers, config: {{ add: {{ x-tag: b }} }} }}
          - {{ name: response_headers, config: {{ add: {{ x-seen: "1" }} }}, priority: 5 }}
          - {{ name: tag, config: {{ label: first }}, priority: 10 }}
        forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    );
    let proxy = Proxy::start_with(&yaml, registry());
    assert_eq!(tags(&proxy, &backend, "/", ""), ["first", "a", "b"]);
}

#[test]
fn a_consumers_filters_replace_or_join_the_route_chain_once_it_is_identified() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let yaml = format!(
        r#"
consumers:
  - username: alice
    filters:
      - {{ name: tag, config: {{ label: alice }} }}
      - {{ name: request_headers, config: {{ set: {{ x-plan: gold }} }} }}
  - username: bob
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - filters:
          - {{ name: login }}
          - {{ name: tag, config: {{ label: route }} }}
        forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    );
    let proxy = Proxy::start_with(&yaml, registry());
    assert_eq!(tags(&proxy, &backend, "/", "x-user: alice\r\n"), ["alice"]);
    let alice = backend.requests().pop().unwrap();
    assert_eq!(alice.headers["x-plan"], "gold", "alice's own filter joined the chain");
    assert_eq!(alice.headers["x-consumer-username"], "alice");
    assert_eq!(tags(&proxy, &backend, "/", "x-user: bob\r\n"), ["route"], "bob has no filters of his own");
    assert_eq!(tags(&proxy, &backend, "/", "x-consumer-username: alice\r\n"), ["route"], "nobody identified");
    let anonymous = backend.requests().pop().unwrap();
    assert!(anonymous.headers.get("x-plan").is_none());
}

#[test]
fn a_consumer_identified_before_routing_gets_its_filters_on_the_route() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let yaml = format!(
        r#"
consumers:
  - username: alice
    filters: [ {{ name: tag, config: {{ label: alice }} }} ]
listeners:
  - name: web
    bind: 127.0.0.1:0
    filters: [ {{ name: login }} ]
    routes:
      - filters: [ {{ name: tag, config: {{ label: route }} }} ]
        forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    );
    let proxy = Proxy::start_with(&yaml, registry());
    // Alice's `tag` takes the route's place; the others keep the route's.
    assert_eq!(tags(&proxy, &backend, "/", "x-user: alice\r\n"), ["alice"]);
    assert_eq!(tags(&proxy, &backend, "/", ""), ["route"]);
}

#[test]
fn filter_errors_in_every_scope_name_their_field() {
    let text = "filters:\n  - name: nope_global\nconsumers:\n  - username: alice\n    filters:\n      - name: nope_consumer\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: { cluster: app }\nclusters:\n  - name: app\n    filters:\n      - name: compression\n        config: { gzip_level: 42 }\n    endpoints: [{ address: \"127.0.0.1:9\" }]\n";
    let config = strait_config::load_str(text, "scopes.yaml").unwrap();
    let errors = strait_proxy::check(&config).unwrap_err().to_string();
    assert!(errors.contains("scopes.yaml:2:11: filters[0].name: unknown filter `nope_global`"), "{errors}");
    assert!(errors.contains("consumers[0].filters[0].name: unknown filter `nope_consumer`"), "{errors}");
    assert!(errors.contains("clusters[0].filters[0].config.gzip_level"), "{errors}");
}

#[test]
fn a_filter_for_one_consumer_on_a_route_or_cluster_beats_the_consumers_own() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let other = Backend::start(|_| Reply::text("ok"));
    // Kong's precedence: consumer and route, then consumer and service, then consumer alone,
    // then route, service, global.
    let yaml = format!(
        r#"
filters:
  - {{ name: tag, config: {{ label: global }} }}
  - {{ name: tag, config: {{ label: carol-global }}, consumer: carol }}
consumers:
  - username: alice
    filters: [ {{ name: tag, config: {{ label: alice }} }} ]
  - username: bob
  - username: carol
listeners:
  - name: web
    bind: 127.0.0.1:0
    filters: [ {{ name: login }} ]
    routes:
      - match: {{ path: {{ prefix: /special }} }}
        filters:
          - {{ name: tag, config: {{ label: route }} }}
          - {{ name: tag, config: {{ label: alice-special }}, consumer: alice }}
          - {{ name: request_headers, config: {{ set: {{ x-plan: bob-special }} }}, consumer: bob }}
        forward: {{ cluster: app }}
      - match: {{ path: {{ prefix: /app }} }}
        forward: {{ cluster: app }}
      - forward: {{ cluster: other }}
clusters:
  - name: app
    filters:
      - {{ name: tag, config: {{ label: bob-app }}, consumer: bob }}
    endpoints: [{{ address: "{}" }}]
  - name: other
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr, other.addr
    );
    let proxy = Proxy::start_with(&yaml, registry());
    let alice = "x-user: alice\r\n";
    let bob = "x-user: bob\r\n";
    let carol = "x-user: carol\r\n";
    // Route and consumer over the consumer's own.
    assert_eq!(tags(&proxy, &backend, "/special", alice), ["alice-special"]);
    // Cluster and consumer over route alone; the route's filter for bob joins.
    assert_eq!(tags(&proxy, &backend, "/special", bob), ["bob-app"]);
    assert_eq!(backend.requests().pop().unwrap().headers["x-plan"], "bob-special");
    // A top-level filter for one consumer acts like that consumer's own.
    assert_eq!(tags(&proxy, &backend, "/special", carol), ["carol-global"]);
    assert_eq!(tags(&proxy, &backend, "/special", ""), ["route"]);
    // Elsewhere, the consumer's own filters, and nobody else gets another's.
    assert_eq!(tags(&proxy, &backend, "/app", alice), ["alice"]);
    assert_eq!(tags(&proxy, &backend, "/app", bob), ["bob-app"]);
    assert!(backend.requests().pop().unwrap().headers.get("x-plan").is_none(), "bob's route filter stays on /special");
    assert_eq!(tags(&proxy, &other, "/", bob), ["global"]);
    assert_eq!(tags(&proxy, &other, "/", alice), ["alice"]);
    assert_eq!(tags(&proxy, &other, "/", carol), ["carol-global"]);
}

#[test]
fn a_filter_for_an_unknown_consumer_or_in_the_wrong_list_is_refused() {
    let text = "consumers:\n  - username: alice\n    filters:\n      - { name: cors, consumer: alice }\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n    filters:\n      - { name: cors, consumer: alice }\n    routes:\n      - filters:\n          - { name: cors, consumer: mallory }\n        forward: { cluster: app }\nclusters:\n  - name: app\n    endpoints: [{ address: \"127.0.0.1:9\" }]\n";
    let errors = strait_config::load_str(text, "scoped.yaml").unwrap_err().to_string();
    assert!(
        errors.contains("scoped.yaml:12:37: listeners[0].routes[0].filters[0].consumer: unknown consumer `mallory`"),
        "{errors}"
    );
    assert!(
        errors.contains("scoped.yaml:9:33: listeners[0].filters[0].consumer: a listener's filters run"),
        "{errors}"
    );
    assert!(errors.contains("scoped.yaml:4:33: consumers[0].filters[0].consumer: a consumer's filters"), "{errors}");
    let twice = "filters:\n  - { name: cors, consumer: alice }\nconsumers:\n  - username: alice\n    filters: [ { name: cors } ]\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: { cluster: app }\nclusters:\n  - name: app\n    endpoints: [{ address: \"127.0.0.1:9\" }]\n";
    let errors = strait_config::load_str(twice, "twice.yaml").unwrap_err().to_string();
    assert!(errors.contains("filters[0].consumer: consumers[0].filters has a `cors` filter already"), "{errors}");
}

#[test]
fn a_real_consumer_identified_after_the_anonymous_one_gets_its_own_filters() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let yaml = format!(
        r#"
consumers:
  - username: guest
    filters:
      - {{ name: tag, config: {{ label: guest }} }}
      - {{ name: request_headers, config: {{ set: {{ x-plan: guest-only }} }} }}
  - username: alice
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - filters:
          - {{ name: guest }}
          - {{ name: login }}
          - {{ name: tag, config: {{ label: route }} }}
        forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    );
    let proxy = Proxy::start_with(&yaml, registry());
    // Nobody else authenticates: the stand-in's filters apply.
    assert_eq!(tags(&proxy, &backend, "/", ""), ["guest"]);
    assert_eq!(backend.requests().pop().unwrap().headers["x-plan"], "guest-only");
    // Alice is identified after the stand-in: the route's own filter comes back, the stand-in's
    // extra one goes.
    assert_eq!(tags(&proxy, &backend, "/", "x-user: alice\r\n"), ["route"]);
    let alice = backend.requests().pop().unwrap();
    assert_eq!(alice.headers["x-consumer-username"], "alice");
    assert!(alice.headers.get("x-plan").is_none(), "{:?}", alice.headers);
    assert!(alice.headers.get("x-anonymous-consumer").is_none());
}
