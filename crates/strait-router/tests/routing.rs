//! Route selection through the public API: host and path precedence, conditions, fallthrough.

use http::{HeaderMap, HeaderValue, Method};
use strait_config::{PathMatch, Rewrite, RouteMatch, ValueMatch};
use strait_router::{PathRewrite, RequestView, RouteTable};

/// A route condition written tersely for tests.
#[derive(Default, Clone)]
struct Spec {
    hosts: &'static [&'static str],
    exact: Option<&'static str>,
    prefix: Option<&'static str>,
    regex: Option<&'static str>,
    methods: &'static [&'static str],
    header: Option<(&'static str, &'static str)>,
    query: Option<(&'static str, &'static str)>,
}

impl Spec {
    fn into_match(self) -> RouteMatch {
        let path = (self.exact.is_some() || self.prefix.is_some() || self.regex.is_some()).then(|| PathMatch {
            exact: self.exact.map(Into::into),
            prefix: self.prefix.map(Into::into),
            regex: self.regex.map(Into::into),
        });
        let exact = |(name, value): (&str, &str)| ValueMatch {
            name: name.into(),
            exact: Some(value.into()),
            ..Default::default()
        };
        RouteMatch {
            hosts: self.hosts.iter().map(|h| h.to_string()).collect(),
            path,
            methods: self.methods.iter().map(|m| m.to_string()).collect(),
            headers: self.header.into_iter().map(exact).collect(),
            query: self.query.into_iter().map(exact).collect(),
        }
    }
}

fn table(specs: Vec<(Spec, &'static str)>) -> RouteTable<&'static str> {
    RouteTable::build(specs.into_iter().map(|(spec, name)| (spec.into_match(), name)).collect()).unwrap()
}

/// A request to send through a table.
struct Request {
    host: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    method: Method,
    headers: HeaderMap,
}

fn get(host: &'static str, path: &'static str) -> Request {
    Request { host, path, query: None, method: Method::GET, headers: HeaderMap::new() }
}

impl Request {
    fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.append(name, HeaderValue::from_static(value));
        self
    }

    fn query(mut self, query: &'static str) -> Self {
        self.query = Some(query);
        self
    }

    fn view(&self) -> RequestView<'_> {
        RequestView {
            host: self.host,
            path: self.path,
            query: self.query,
            method: &self.method,
            headers: &self.headers,
        }
    }
}

fn route(table: &RouteTable<&'static str>, request: Request) -> Option<&'static str> {
    table.find(&request.view()).map(|found| *found.route)
}

#[test]
fn exact_host_beats_wildcard_beats_any_host() {
    let t = table(vec![
        (Spec::default(), "any"),
        (Spec { hosts: &["*.example.com"], ..Default::default() }, "wildcard"),
        (Spec { hosts: &["*.api.example.com"], ..Default::default() }, "longer-wildcard"),
        (Spec { hosts: &["api.example.com"], ..Default::default() }, "exact"),
    ]);
    assert_eq!(route(&t, get("api.example.com", "/")), Some("exact"));
    assert_eq!(route(&t, get("API.Example.COM", "/")), Some("exact"));
    assert_eq!(route(&t, get("api.example.com.", "/")), Some("exact"));
    assert_eq!(route(&t, get("v1.api.example.com", "/")), Some("longer-wildcard"));
    assert_eq!(route(&t, get("a.b.api.example.com", "/")), Some("longer-wildcard"));
    assert_eq!(route(&t, get("www.example.com", "/")), Some("wildcard"));
    assert_eq!(route(&t, get("a.b.example.com", "/")), Some("wildcard"));
    assert_eq!(route(&t, get("example.com", "/")), Some("any"));
    assert_eq!(route(&t, get("other.org", "/")), Some("any"));
    assert_eq!(route(&t, get("", "/")), Some("any"));
}

#[test]
fn host_only_routes_do_not_match_other_hosts() {
    let t = table(vec![
        (Spec { hosts: &["a.test"], ..Default::default() }, "a"),
        (Spec { hosts: &["*.b.test"], ..Default::default() }, "b"),
    ]);
    assert_eq!(route(&t, get("a.test", "/")), Some("a"));
    assert_eq!(route(&t, get("x.b.test", "/")), Some("b"));
    assert_eq!(route(&t, get("b.test", "/")), None);
    assert_eq!(route(&t, get("x.a.test", "/")), None);
}

#[test]
fn falls_through_to_less_specific_host_groups() {
    let t = table(vec![
        (Spec { hosts: &["api.example.com"], prefix: Some("/v1"), ..Default::default() }, "exact"),
        (Spec { hosts: &["*.example.com"], prefix: Some("/v2"), ..Default::default() }, "wildcard"),
        (Spec { prefix: Some("/"), ..Default::default() }, "fallback"),
    ]);
    assert_eq!(route(&t, get("api.example.com", "/v1/x")), Some("exact"));
    assert_eq!(route(&t, get("api.example.com", "/v2/x")), Some("wildcard"));
    assert_eq!(route(&t, get("api.example.com", "/v3")), Some("fallback"));
    assert_eq!(route(&t, get("www.example.com", "/v1")), Some("fallback"));
}

#[test]
fn host_group_wins_over_a_more_specific_path_elsewhere() {
    let t = table(vec![
        (Spec { exact: Some("/login"), ..Default::default() }, "any-host-exact"),
        (Spec { hosts: &["shop.test"], prefix: Some("/"), ..Default::default() }, "shop-root"),
    ]);
    assert_eq!(route(&t, get("shop.test", "/login")), Some("shop-root"));
    assert_eq!(route(&t, get("other.test", "/login")), Some("any-host-exact"));
}

#[test]
fn route_with_several_hosts_joins_each_group() {
    let t = table(vec![
        (Spec { hosts: &["a.test", "*.b.test", "A.TEST"], ..Default::default() }, "multi"),
        (Spec::default(), "any"),
    ]);
    assert_eq!(route(&t, get("a.test", "/")), Some("multi"));
    assert_eq!(route(&t, get("x.b.test", "/")), Some("multi"));
    assert_eq!(route(&t, get("c.test", "/")), Some("any"));
}

#[test]
fn exact_path_beats_prefix_beats_regex_beats_no_path() {
    let t = table(vec![
        (Spec::default(), "no-path"),
        (Spec { regex: Some("/users/[0-9]+"), ..Default::default() }, "regex"),
        (Spec { prefix: Some("/users"), ..Default::default() }, "prefix"),
        (Spec { exact: Some("/users/1"), ..Default::default() }, "exact"),
    ]);
    assert_eq!(route(&t, get("h", "/users/1")), Some("exact"));
    assert_eq!(route(&t, get("h", "/users/2")), Some("prefix"));
    assert_eq!(route(&t, get("h", "/other")), Some("no-path"));

    let t = table(vec![
        (Spec::default(), "no-path"),
        (Spec { regex: Some("/users/[0-9]+"), ..Default::default() }, "regex"),
    ]);
    assert_eq!(route(&t, get("h", "/users/2")), Some("regex"));
    assert_eq!(route(&t, get("h", "/users/2/x")), Some("no-path"));
}

#[test]
fn prefixes_match_whole_segments_longest_first() {
    let t = table(vec![
        (Spec { prefix: Some("/"), ..Default::default() }, "root"),
        (Spec { prefix: Some("/api"), ..Default::default() }, "api"),
        (Spec { prefix: Some("/api/"), ..Default::default() }, "api-slash"),
        (Spec { prefix: Some("/api/v1"), ..Default::default() }, "v1"),
    ]);
    assert_eq!(route(&t, get("h", "/api")), Some("api"));
    assert_eq!(route(&t, get("h", "/api/")), Some("api-slash"));
    assert_eq!(route(&t, get("h", "/api/x")), Some("api-slash"));
    assert_eq!(route(&t, get("h", "/apix")), Some("root"));
    assert_eq!(route(&t, get("h", "/api/v1")), Some("v1"));
    assert_eq!(route(&t, get("h", "/api/v1/users")), Some("v1"));
    assert_eq!(route(&t, get("h", "/api/v10")), Some("api-slash"));
    assert_eq!(route(&t, get("h", "/")), Some("root"));
    assert_eq!(route(&t, get("h", "/anything/else")), Some("root"));

    let found = t.find(&get("h", "/api/v1/users").view()).unwrap();
    assert_eq!((found.index, found.matched_prefix), (3, Some("/api/v1")));
}

#[test]
fn prefix_without_slash_does_not_match_longer_segment() {
    let t = table(vec![(Spec { prefix: Some("/api"), ..Default::default() }, "api")]);
    assert_eq!(route(&t, get("h", "/apix")), None);
    assert_eq!(route(&t, get("h", "/ap")), None);
    assert_eq!(route(&t, get("h", "/")), None);
    assert_eq!(route(&t, get("h", "/api/x/y")), Some("api"));
}

#[test]
fn paths_compare_as_received() {
    let t = table(vec![(Spec { prefix: Some("/api"), ..Default::default() }, "api")]);
    assert_eq!(route(&t, get("h", "/api%2Fx")), None);
    assert_eq!(route(&t, get("h", "/API")), None);
}

#[test]
fn regexes_are_anchored_and_tried_in_order() {
    let t = table(vec![
        (Spec { regex: Some("/img/.*\\.png"), ..Default::default() }, "png"),
        (Spec { regex: Some("/img/.*"), ..Default::default() }, "img"),
        (Spec { regex: Some("/img/a\\.png"), ..Default::default() }, "never"),
        (Spec { regex: Some("a|/b"), ..Default::default() }, "alternation"),
    ]);
    assert_eq!(route(&t, get("h", "/img/a.png")), Some("png"));
    assert_eq!(route(&t, get("h", "/img/a.png.gz")), Some("img"));
    assert_eq!(route(&t, get("h", "/x/img/a.png")), None);
    assert_eq!(route(&t, get("h", "/b")), Some("alternation"));
    assert_eq!(route(&t, get("h", "/bb")), None);
    assert_eq!(route(&t, get("h", "/a")), None);
    let found = t.find(&get("h", "/img/x").view()).unwrap();
    assert_eq!((found.index, found.matched_prefix), (1, None));
}

#[test]
fn more_conditions_first_then_config_order() {
    let t = table(vec![
        (Spec { prefix: Some("/p"), ..Default::default() }, "plain"),
        (Spec { prefix: Some("/p"), methods: &["POST"], ..Default::default() }, "post"),
        (Spec { prefix: Some("/p"), methods: &["POST"], header: Some(("x-v", "2")), ..Default::default() }, "post-v2"),
        (Spec { prefix: Some("/p"), header: Some(("x-v", "2")), ..Default::default() }, "v2"),
        (Spec { prefix: Some("/p"), query: Some(("debug", "1")), ..Default::default() }, "debug"),
    ]);
    assert_eq!(route(&t, get("h", "/p").method(Method::POST).header("x-v", "2")), Some("post-v2"));
    assert_eq!(route(&t, get("h", "/p").method(Method::POST)), Some("post"));
    // `post` and `v2` each have one condition: configuration order decides.
    assert_eq!(route(&t, get("h", "/p").header("x-v", "2")), Some("v2"));
    assert_eq!(route(&t, get("h", "/p").query("debug=1")), Some("debug"));
    assert_eq!(route(&t, get("h", "/p").method(Method::POST).query("debug=1")), Some("post"));
    assert_eq!(route(&t, get("h", "/p")), Some("plain"));
}

#[test]
fn failed_conditions_fall_through_to_shorter_prefixes() {
    let t = table(vec![
        (Spec { prefix: Some("/"), ..Default::default() }, "root"),
        (Spec { prefix: Some("/api"), methods: &["GET"], ..Default::default() }, "api-get"),
        (Spec { prefix: Some("/api/admin"), header: Some(("x-admin", "yes")), ..Default::default() }, "admin"),
        (Spec { exact: Some("/api/admin/x"), query: Some(("k", "v")), ..Default::default() }, "exact"),
    ]);
    let admin = |method: Method| get("h", "/api/admin/x").method(method);
    assert_eq!(route(&t, admin(Method::GET).query("k=v")), Some("exact"));
    assert_eq!(route(&t, admin(Method::GET).header("x-admin", "yes")), Some("admin"));
    assert_eq!(route(&t, admin(Method::GET).header("x-admin", "no")), Some("api-get"));
    assert_eq!(route(&t, admin(Method::DELETE)), Some("root"));
}

#[test]
fn failed_conditions_fall_through_to_regex_and_no_path() {
    let t = table(vec![
        (Spec { prefix: Some("/a"), methods: &["PUT"], ..Default::default() }, "prefix-put"),
        (Spec { regex: Some("/a/.*"), methods: &["POST"], ..Default::default() }, "regex-post"),
        (Spec { methods: &["GET"], ..Default::default() }, "no-path-get"),
    ]);
    assert_eq!(route(&t, get("h", "/a/b").method(Method::PUT)), Some("prefix-put"));
    assert_eq!(route(&t, get("h", "/a/b").method(Method::POST)), Some("regex-post"));
    assert_eq!(route(&t, get("h", "/a/b")), Some("no-path-get"));
    assert_eq!(route(&t, get("h", "/a/b").method(Method::DELETE)), None);
}

#[test]
fn header_and_query_conditions_select_routes() {
    let t = table(vec![
        (Spec { header: Some(("X-Env", "canary")), ..Default::default() }, "canary"),
        (Spec { query: Some(("lang", "fr ca")), ..Default::default() }, "fr"),
        (Spec::default(), "default"),
    ]);
    assert_eq!(route(&t, get("h", "/").header("x-env", "canary")), Some("canary"));
    assert_eq!(route(&t, get("h", "/").header("x-env", "a").header("x-env", "canary")), Some("canary"));
    assert_eq!(route(&t, get("h", "/").header("x-env", "Canary")), Some("default"));
    assert_eq!(route(&t, get("h", "/").query("x=1&lang=fr+ca")), Some("fr"));
    assert_eq!(route(&t, get("h", "/").query("lang=fr%20ca")), Some("fr"));
    assert_eq!(route(&t, get("h", "/").query("lang=fr")), Some("default"));
}

#[test]
fn build_errors_name_the_route() {
    let bad_regex =
        vec![(Spec::default().into_match(), ()), (Spec { regex: Some("("), ..Default::default() }.into_match(), ())];
    let error = RouteTable::build(bad_regex).unwrap_err();
    assert!(error.starts_with("route 1:"), "{error}");

    let bad_host = vec![(Spec { hosts: &["a.*.com"], ..Default::default() }.into_match(), ())];
    let error = RouteTable::build(bad_host).unwrap_err();
    assert!(error.starts_with("route 0:"), "{error}");
}

#[test]
fn empty_table_matches_nothing() {
    let t = table(vec![]);
    assert!(t.is_empty());
    assert_eq!(t.len(), 0);
    assert_eq!(route(&t, get("h", "/")), None);
    let t = table(vec![(Spec::default(), "a"), (Spec::default(), "b")]);
    assert_eq!((t.len(), t.is_empty()), (2, false));
    assert_eq!(route(&t, get("h", "/x")), Some("a"));
}

#[test]
fn ten_thousand_prefix_routes() {
    let routes: Vec<(RouteMatch, usize)> = (0..10_000)
        .map(|i| {
            let prefix = if i % 2 == 0 { format!("/svc/{i}") } else { format!("/team/{}/svc/{i}", i % 97) };
            let matches = RouteMatch {
                path: Some(PathMatch { prefix: Some(prefix), ..Default::default() }),
                ..Default::default()
            };
            (matches, i)
        })
        .collect();
    let t = RouteTable::build(routes).unwrap();
    assert_eq!(t.len(), 10_000);
    let headers = HeaderMap::new();
    for i in (0..10_000).step_by(7) {
        let prefix = if i % 2 == 0 { format!("/svc/{i}") } else { format!("/team/{}/svc/{i}", i % 97) };
        for path in [prefix.clone(), format!("{prefix}/"), format!("{prefix}/deep/path?")] {
            let view = RequestView { host: "h", path: &path, query: None, method: &Method::GET, headers: &headers };
            let found = t.find(&view).unwrap_or_else(|| panic!("{path} not routed"));
            assert_eq!((*found.route, found.index, found.matched_prefix), (i, i, Some(prefix.as_str())));
        }
        let sibling = format!("{prefix}0x");
        let view = RequestView { host: "h", path: &sibling, query: None, method: &Method::GET, headers: &headers };
        assert!(t.find(&view).is_none(), "{sibling} routed");
    }
}

#[test]
fn rewrite_uses_the_matched_prefix() {
    let t = table(vec![(Spec { prefix: Some("/api/"), ..Default::default() }, "api")]);
    let request = get("h", "/api/users/7");
    let found = t.find(&request.view()).unwrap();
    let rewrite = PathRewrite::compile(&Rewrite { replace_prefix: Some("/v2".into()), ..Default::default() }).unwrap();
    assert_eq!(rewrite.apply(request.path, found.matched_prefix), "/v2/users/7");
}
