//! Route selection through a running proxy: hosts, paths, methods, headers, query, rewrites.

use crate::support;

use std::fmt::Write as _;
use std::net::SocketAddr;

use support::{raw_request, Backend, Proxy, RawResponse};

/// Starts a proxy whose listener `web` has these routes (YAML list items, indented by 6).
fn proxy_with_routes(routes: &str) -> Proxy {
    Proxy::start(&format!("listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n{routes}"))
}

/// A route answering its own name, so the chosen route shows in the body.
fn named(name: &str, matches: &str) -> String {
    format!("      - name: {name}\n        match: {matches}\n        direct: {{ body: {name} }}\n")
}

/// Sends one request on a new connection.
fn send(addr: SocketAddr, method: &str, host: &str, target: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    raw_request(addr, request.as_bytes()).expect("response")
}

/// The name of the route that answered, or `no_route` for Strait's 404.
fn chosen(addr: SocketAddr, method: &str, host: &str, target: &str, headers: &[(&str, &str)]) -> String {
    let response = send(addr, method, host, target, headers);
    match response.status {
        200 => response.text(),
        404 => {
            assert_eq!(response.header("x-strait-reason"), Some("no_route"), "{response:?}");
            "no_route".into()
        }
        other => panic!("unexpected status {other}: {response:?}"),
    }
}

// === hosts ===

#[test]
fn exact_host_beats_wildcard_beats_routes_without_hosts() {
    let routes = [
        named("any", "{}"),
        named("wild", r#"{ hosts: ["*.example.com"] }"#),
        named("exact", "{ hosts: [api.example.com] }"),
    ]
    .concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    let cases = [
        ("api.example.com", "exact"),
        ("API.Example.COM:8080", "exact"),
        ("api.example.com.", "exact"),
        ("www.example.com", "wild"),
        ("a.b.example.com", "wild"),
        ("example.com", "any"),
        ("notexample.com", "any"),
        ("other.test", "any"),
    ];
    for (host, want) in cases {
        assert_eq!(chosen(addr, "GET", host, "/", &[]), want, "host {host}");
    }
}

#[test]
fn longer_wildcard_is_tried_before_shorter_one() {
    let routes =
        [named("short", r#"{ hosts: ["*.example.com"] }"#), named("long", r#"{ hosts: ["*.eu.example.com"] }"#)]
            .concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    assert_eq!(chosen(addr, "GET", "shop.eu.example.com", "/", &[]), "long");
    assert_eq!(chosen(addr, "GET", "eu.example.com", "/", &[]), "short");
    assert_eq!(chosen(addr, "GET", "shop.us.example.com", "/", &[]), "short");
    assert_eq!(chosen(addr, "GET", "example.com", "/", &[]), "no_route");
}

#[test]
fn host_groups_fall_back_to_less_specific_ones_as_documented() {
    // The example of docs/CONFIG.md, "Route precedence".
    let routes = [
        named("a", "{ hosts: [api.example.com], path: { prefix: /v1 } }"),
        named("b", r#"{ hosts: ["*.example.com"], path: { prefix: /v1/admin } }"#),
        named("c", "{ path: { prefix: / }, methods: [GET] }"),
    ]
    .concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    assert_eq!(chosen(addr, "GET", "api.example.com", "/v1/admin/x", &[]), "a", "the exact host group wins first");
    assert_eq!(chosen(addr, "GET", "www.example.com", "/v1/admin/x", &[]), "b");
    assert_eq!(chosen(addr, "POST", "www.example.com", "/other", &[]), "no_route");
    // Nothing in the exact or wildcard group fits: the routes without hosts are tried.
    assert_eq!(chosen(addr, "GET", "api.example.com", "/other", &[]), "c");
    assert_eq!(chosen(addr, "GET", "www.example.com", "/v1/users", &[]), "c");
}

#[test]
fn route_listing_several_hosts_serves_each_and_absolute_form_host_counts() {
    let routes =
        [named("multi", "{ hosts: [a.test, b.test] }"), named("ipv6", r#"{ hosts: ["[::1]"] }"#), named("any", "{}")]
            .concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    assert_eq!(chosen(addr, "GET", "a.test", "/", &[]), "multi");
    assert_eq!(chosen(addr, "GET", "b.test", "/", &[]), "multi");
    assert_eq!(chosen(addr, "GET", "c.test", "/", &[]), "any");
    assert_eq!(chosen(addr, "GET", "[::1]:8080", "/", &[]), "ipv6");
    // An absolute-form target names the host; the Host header is not used then.
    assert_eq!(chosen(addr, "GET", "c.test", "http://a.test/x", &[]), "multi");
}

// === paths ===

#[test]
fn exact_path_beats_longest_prefix_beats_regex_beats_no_path() {
    // Written least specific first: the file order must not matter.
    let routes = [
        named("any", "{}"),
        named("regex", r#"{ path: { regex: "/api.*" } }"#),
        named("api", "{ path: { prefix: /api } }"),
        named("v1", "{ path: { prefix: /api/v1 } }"),
        named("users", "{ path: { exact: /api/v1/users } }"),
    ]
    .concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    let cases = [
        ("/api/v1/users", "users"),
        ("/api/v1/users?page=2", "users"),
        ("/api/v1/users/", "v1"),
        ("/api/v1/users/7", "v1"),
        ("/api/v1", "v1"),
        ("/api/v1x", "api"),
        ("/api/v2/users", "api"),
        ("/api", "api"),
        ("/apix", "regex"),
        ("/other", "any"),
    ];
    for (target, want) in cases {
        assert_eq!(chosen(addr, "GET", "t", target, &[]), want, "target {target}");
    }
}

#[test]
fn prefix_matches_whole_segments_only() {
    let routes =
        [named("api", "{ path: { prefix: /api } }"), named("static", "{ path: { prefix: /static/ } }")].concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    for target in ["/api", "/api/", "/api/x/y", "/api?x=1"] {
        assert_eq!(chosen(addr, "GET", "t", target, &[]), "api", "target {target}");
    }
    for target in ["/static/", "/static/app.js"] {
        assert_eq!(chosen(addr, "GET", "t", target, &[]), "static", "target {target}");
    }
    for target in ["/apix", "/ap", "/api-v2/x", "/static", "/staticx/a", "/"] {
        assert_eq!(chosen(addr, "GET", "t", target, &[]), "no_route", "target {target}");
    }
}

#[test]
fn regex_path_is_anchored_and_regexes_keep_file_order() {
    let routes = [
        named("digits", r#"{ path: { regex: "/item/[0-9]+" } }"#),
        named("any-item", r#"{ path: { regex: "/item/.+" } }"#),
    ]
    .concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    assert_eq!(chosen(addr, "GET", "t", "/item/42", &[]), "digits");
    assert_eq!(chosen(addr, "GET", "t", "/item/42x", &[]), "any-item", "anchored at the end");
    assert_eq!(chosen(addr, "GET", "t", "/x/item/42", &[]), "no_route", "anchored at the start");
}

#[test]
fn paths_compare_normalized_and_still_percent_encoded() {
    let routes =
        [named("encoded", "{ path: { exact: /a%3Ab } }"), named("space", "{ path: { prefix: /docs%20v1 } }")].concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    // Escapes of reserved characters stay escaped (their hex upper-cased); `%2F` is refused
    // by the default `escaped_slashes: reject`.
    assert_eq!(chosen(addr, "GET", "t", "/a%3Ab", &[]), "encoded");
    assert_eq!(chosen(addr, "GET", "t", "/a%3ab", &[]), "encoded");
    assert_eq!(chosen(addr, "GET", "t", "/a:b", &[]), "no_route");
    assert_eq!(send(addr, "GET", "t", "/a%2Fb", &[]).status, 400);
    assert_eq!(chosen(addr, "GET", "t", "/docs%20v1/intro", &[]), "space");
    assert_eq!(chosen(addr, "GET", "t", "/docs%20V1/intro", &[]), "no_route");
}

// === methods, headers, query ===

#[test]
fn methods_select_among_routes_with_the_same_path() {
    let routes = [
        named("read", "{ path: { prefix: /res }, methods: [GET, HEAD] }"),
        named("write", "{ path: { prefix: /res }, methods: [POST, PUT] }"),
        named("purge", "{ path: { prefix: /res }, methods: [PURGE] }"),
    ]
    .concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    assert_eq!(chosen(addr, "GET", "t", "/res/1", &[]), "read");
    assert_eq!(chosen(addr, "POST", "t", "/res/1", &[]), "write");
    assert_eq!(chosen(addr, "PUT", "t", "/res", &[]), "write");
    assert_eq!(chosen(addr, "PURGE", "t", "/res/1", &[]), "purge");
    assert_eq!(chosen(addr, "DELETE", "t", "/res/1", &[]), "no_route");
    assert_eq!(chosen(addr, "get", "t", "/res/1", &[]), "no_route", "methods are case-sensitive");
    let mut conn = support::RawConn::connect(addr);
    conn.send(b"HEAD /res/1 HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = conn.read_response_to(true).expect("HEAD response");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("4"));
}

#[test]
fn header_conditions_exact_regex_present_and_absent() {
    let routes = [
        named("exact", "{ path: { prefix: /h }, headers: [{ name: x-env, exact: canary }] }"),
        named("regex", r#"{ path: { prefix: /h }, headers: [{ name: x-version, regex: "v[0-9]+" }] }"#),
        named("present", "{ path: { prefix: /h }, headers: [{ name: x-debug }] }"),
        named("absent", "{ path: { prefix: /h }, headers: [{ name: x-block, present: false }] }"),
    ]
    .concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    let cases: [(&[(&str, &str)], &str); 9] = [
        (&[("x-env", "canary")], "exact"),
        (&[("X-ENV", "canary")], "exact"),
        (&[("x-env", "Canary")], "absent"),
        (&[("x-env", "other"), ("x-env", "canary")], "exact"),
        (&[("x-version", "v12")], "regex"),
        (&[("x-version", "v12-beta"), ("x-block", "1")], "no_route"),
        (&[("x-debug", ""), ("x-block", "1")], "present"),
        (&[("x-block", "1")], "no_route"),
        (&[], "absent"),
    ];
    for (headers, want) in cases {
        assert_eq!(chosen(addr, "GET", "t", "/h", headers), want, "headers {headers:?}");
    }
}

#[test]
fn query_conditions_exact_and_present_on_decoded_parameters() {
    let routes = [
        named("english", "{ path: { prefix: /q }, query: [{ name: lang, exact: en }] }"),
        named("search", r#"{ path: { prefix: /q }, query: [{ name: q, exact: "a b" }] }"#),
        named("debug", "{ path: { prefix: /q }, query: [{ name: debug, present: true }] }"),
        named("numeric", r#"{ path: { prefix: /q }, query: [{ name: id, regex: "[0-9]+" }] }"#),
        named("plain", "{ path: { prefix: /q }, query: [{ name: lang, present: false }] }"),
    ]
    .concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    let cases = [
        ("/q?lang=en", "english"),
        ("/q?x=1&lang=en", "english"),
        ("/q?lang=%65n", "english"),
        ("/q?l%61ng=en", "english"),
        ("/q?q=a+b&lang=de", "search"),
        ("/q?q=a%20b&lang=de", "search"),
        ("/q?debug&lang=de", "debug"),
        ("/q?lang=de", "no_route"),
        ("/q?lang=de&id=42", "numeric"),
        ("/q?lang=de&id=42a", "no_route"),
        ("/q?langx=en", "plain"),
        ("/q", "plain"),
    ];
    for (target, want) in cases {
        assert_eq!(chosen(addr, "GET", "t", target, &[]), want, "target {target}");
    }
}

#[test]
fn tie_breaks_more_conditions_first_then_file_order() {
    let routes = [
        named("one", "{ path: { prefix: /t }, methods: [GET] }"),
        named("two", "{ path: { prefix: /t }, methods: [GET], headers: [{ name: x-a }] }"),
        named("one-again", "{ path: { prefix: /t }, methods: [GET] }"),
        named("three", "{ path: { prefix: /t }, headers: [{ name: x-a }, { name: x-b }], query: [{ name: c }] }"),
        named("no-path-first", "{}"),
        named("no-path-second", "{}"),
    ]
    .concat();
    let proxy = proxy_with_routes(&routes);
    let addr = proxy.addr("web");
    assert_eq!(chosen(addr, "GET", "t", "/t?c", &[("x-a", "1"), ("x-b", "1")]), "three");
    assert_eq!(chosen(addr, "GET", "t", "/t", &[("x-a", "1"), ("x-b", "1")]), "two");
    assert_eq!(chosen(addr, "GET", "t", "/t", &[("x-a", "1")]), "two");
    assert_eq!(chosen(addr, "GET", "t", "/t", &[]), "one", "equal conditions: the first written wins");
    assert_eq!(chosen(addr, "POST", "t", "/t", &[]), "no-path-first");
}

// === rewrites ===

#[test]
fn rewrites_change_the_path_the_backend_sees_and_keep_the_query() {
    let backend = Backend::start(|r| support::Reply::text(&r.uri));
    let proxy = Proxy::start(&format!(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: {{ path: {{ prefix: /api }} }}
        forward: {{ cluster: app }}
        rewrite: {{ strip_prefix: /api }}
      - match: {{ path: {{ prefix: /old }} }}
        forward: {{ cluster: app }}
        rewrite: {{ replace_prefix: /new/v2 }}
      - match: {{ path: {{ regex: "/users/[0-9]+/profile" }} }}
        forward: {{ cluster: app }}
        rewrite: {{ regex: {{ pattern: "^/users/([0-9]+)/profile$", replace: "/profiles/$1" }} }}
      - forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    ));
    let addr = proxy.addr("web");
    let cases = [
        ("/api/users?x=1&y=%20", "/users?x=1&y=%20"),
        ("/api", "/"),
        ("/api/", "/"),
        ("/apix/users", "/apix/users"),
        ("/old/a/b?q=1", "/new/v2/a/b?q=1"),
        ("/old", "/new/v2"),
        ("/users/42/profile?full=1", "/profiles/42?full=1"),
        ("/users/x/profile", "/users/x/profile"),
    ];
    for (target, want) in cases {
        let response = send(addr, "GET", "t", target, &[]);
        assert_eq!(response.status, 200, "target {target}");
        assert_eq!(response.text(), want, "target {target}");
    }
    let seen: Vec<String> = backend.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(seen, cases.map(|(_, want)| want.to_owned()));
}

// === no route ===

#[test]
fn unmatched_request_gets_404_no_route() {
    let proxy = proxy_with_routes(&named("only", "{ hosts: [only.test], path: { exact: /x } }"));
    let addr = proxy.addr("web");
    for (method, host, target) in [("GET", "only.test", "/y"), ("GET", "other.test", "/x"), ("POST", "t", "/")] {
        let response = send(addr, method, host, target, &[]);
        assert_eq!(response.status, 404);
        assert_eq!(response.header("x-strait-reason"), Some("no_route"));
        assert!(response.text().contains("no_route"), "{}", response.text());
    }

    // Without routes at all, and with the reason header turned off.
    let quiet = Proxy::start(
        "server: { reason_header: false }\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes: []\n",
    );
    let response = send(quiet.addr("web"), "GET", "t", "/", &[]);
    assert_eq!(response.status, 404);
    assert_eq!(response.header("x-strait-reason"), None);
}

// === scale ===

#[test]
fn ten_thousand_prefix_routes_find_the_right_cluster() {
    const ROUTES: usize = 10_000;
    let backends: Vec<Backend> = (0..4).map(|i| Backend::named(&format!("b{i}"))).collect();
    let fallback = Backend::named("fallback");
    let mut yaml = String::from("listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n");
    for i in 0..ROUTES {
        let _ = writeln!(
            yaml,
            "      - {{ match: {{ path: {{ prefix: /svc/{i} }} }}, forward: {{ cluster: c{} }} }}",
            i % 4
        );
    }
    yaml.push_str("      - { match: { path: { prefix: /svc } }, forward: { cluster: fallback } }\nclusters:\n");
    for (i, backend) in backends.iter().enumerate() {
        let _ = writeln!(yaml, "  - {{ name: c{i}, endpoints: [{{ address: \"{}\" }}] }}", backend.addr);
    }
    let _ = writeln!(yaml, "  - {{ name: fallback, endpoints: [{{ address: \"{}\" }}] }}", fallback.addr);
    let proxy = Proxy::start(&yaml);
    let addr = proxy.addr("web");

    let mut cases: Vec<(String, String)> = [0usize, 1, 2, 3, 123, 1234, 4999, 5000, 9998, 9999]
        .iter()
        .map(|&i| (format!("/svc/{i}/deep/path?x={i}"), format!("b{}", i % 4)))
        .collect();
    // Segment prefixes: /svc/123 and /svc/1234 are different routes.
    cases.push(("/svc/123".into(), "b3".into()));
    cases.push(("/svc/1234".into(), "b2".into()));
    cases.push(("/svc/12345".into(), "fallback".into()));
    cases.push(("/svc/10000/x".into(), "fallback".into()));
    cases.push(("/svc".into(), "fallback".into()));
    for _ in 0..20 {
        let i = fastrand_index(ROUTES);
        cases.push((format!("/svc/{i}"), format!("b{}", i % 4)));
    }
    for (target, want) in &cases {
        let response = send(addr, "GET", "t", target, &[]);
        assert_eq!(response.status, 200, "target {target}");
        assert_eq!(&response.text(), want, "target {target}");
    }
    assert_eq!(backends[1].requests()[0].uri, "/svc/1/deep/path?x=1");
    assert_eq!(send(addr, "GET", "t", "/other", &[]).status, 404);
}

/// A pseudo-random index below `n` (seeded from the clock; the chosen routes are printed on failure).
fn fastrand_index(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(n);
    (hasher.finish() % n as u64) as usize
}
