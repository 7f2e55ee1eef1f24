//! `request_transformer` and `response_transformer` end to end: header, query string, path and
//! method edits seen by the backend and the client; JSON body field edits both ways on HTTP/1.1
//! and HTTP/2; bodies that pass unchanged (not JSON, too large, malformed); a backend-for-
//! frontend pair of routes; configuration errors that name their field.

use crate::support;

use bytes::Bytes;
use http::header::HeaderValue;
use http_body_util::Full;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::pki;
use support::{Backend, Proxy, Recorded, Reply};

// === helpers ===

/// A proxy with an h2c-capable `web` listener and one route per `(prefix, filters)` entry,
/// each forwarding to `backend`.
fn proxy(backend: &Backend, routes: &[(&str, &str)]) -> Proxy {
    let routes: String = routes
        .iter()
        .map(|(prefix, filters)| {
            format!(
                "      - match: {{ path: {{ prefix: {prefix} }} }}\n        filters: {filters}\n        forward: {{ cluster: app }}\n"
            )
        })
        .collect();
    Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    http2: true\n    routes:\n{routes}clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr
    ))
}

/// Which protocol a test client speaks.
#[derive(Debug, Clone, Copy)]
enum Proto {
    H1,
    H2,
}

/// Sends one request with hyper over `proto` (over HTTP/1.1 with the `Host` its URI names).
fn send(addr: std::net::SocketAddr, proto: Proto, mut request: http::Request<Full<Bytes>>) -> pki::Got {
    if let (Proto::H1, Some(host)) = (proto, request.uri().host().map(str::to_owned)) {
        request.headers_mut().entry(http::header::HOST).or_insert(HeaderValue::from_str(&host).unwrap());
    }
    let rt = pki::runtime();
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        match proto {
            Proto::H1 => pki::http1_requests(tcp, vec![request]).await.remove(0),
            Proto::H2 => pki::http2_requests(tcp, vec![request]).await.remove(0),
        }
    })
}

/// A request builder for `path` on the test host.
fn request(method: &str, path: &str) -> http::request::Builder {
    http::Request::builder().method(method).uri(format!("http://transforms.test{path}"))
}

/// A POST of `body` with `content_type`.
fn post(path: &str, content_type: &str, body: impl Into<Bytes>) -> http::Request<Full<Bytes>> {
    request("POST", path).header("content-type", content_type).body(Full::new(body.into())).unwrap()
}

/// A GET without body.
fn get(path: &str) -> http::Request<Full<Bytes>> {
    request("GET", path).body(Full::new(Bytes::new())).unwrap()
}

/// SHA-256 of `bytes`, hex, as [`Recorded::body_sha256`].
fn sha256(bytes: &[u8]) -> String {
    support::hex(&Sha256::digest(bytes))
}

/// Asserts the backend received exactly `body`, without a stale length.
fn assert_received(recorded: &Recorded, body: &[u8], what: &str) {
    assert_eq!(recorded.body_len, body.len() as u64, "{what}: length");
    assert_eq!(recorded.body_sha256, sha256(body), "{what}: bytes");
    let length = recorded.headers.get("content-length").map(|v| v.to_str().unwrap().to_owned());
    assert!(length.as_ref().is_none_or(|l| *l == body.len().to_string()), "{what}: content-length {length:?}");
}

/// Asserts a client response's `content-length`, when it has one, matches its body.
fn assert_length_matches(got: &pki::Got, what: &str) {
    if let Some(length) = got.parts.headers.get("content-length") {
        assert_eq!(length.to_str().unwrap(), got.body.len().to_string(), "{what}");
    }
}

/// Every value of header `name` in `headers`.
fn values<'a>(headers: &'a http::HeaderMap, name: &str) -> Vec<&'a str> {
    headers.get_all(name).iter().map(|v| v.to_str().unwrap()).collect()
}

/// A JSON reply.
fn json_reply(body: &str) -> Reply {
    Reply::text(body).header("content-type", "application/json")
}

// === headers, query string, path and method ===

#[test]
fn header_edits_apply_to_what_the_backend_and_the_client_receive() {
    let backend = Backend::start(|_| {
        Reply::text("ok")
            .header("x-powered-by", "php")
            .header("x-old-id", "r1")
            .header("x-version", "1")
            .header("x-cache", "miss")
    });
    let filters = r#"[
          { name: request_transformer, config: {
              remove: { headers: [x-debug] },
              rename: { headers: ["x-client-id:x-consumer-id"] },
              replace: { headers: ["x-tier:gold", "x-absent:never"] },
              add: { headers: ["x-tier:not-added", "x-gateway:strait"] },
              append: { headers: ["x-tags:edge"] } } },
          { name: response_transformer, config: {
              remove: { headers: [x-powered-by] },
              rename: { headers: ["x-old-id:x-request-ref"] },
              replace: { headers: ["x-version:2", "x-missing:never"] },
              add: { headers: ["x-version:not-added", "x-frame-options:DENY"] },
              append: { headers: ["x-cache:edge-hit"] } } } ]"#;
    let proxy = proxy(&backend, &[("/", filters)]);
    for proto in [Proto::H1, Proto::H2] {
        let sent = request("GET", "/h")
            .header("x-debug", "1")
            .header("x-client-id", "c-7")
            .header("x-tier", "bronze")
            .header("x-tags", "mobile")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let got = send(proxy.addr("web"), proto, sent);
        assert_eq!(got.parts.status, 200, "{proto:?}");
        let upstream = backend.requests().pop().unwrap();
        let headers = &upstream.headers;
        assert!(headers.get("x-debug").is_none(), "{proto:?}: removed");
        assert!(headers.get("x-client-id").is_none(), "{proto:?}: renamed away");
        assert_eq!(values(headers, "x-consumer-id"), ["c-7"], "{proto:?}");
        assert_eq!(values(headers, "x-tier"), ["gold"], "{proto:?}: replaced, not added");
        assert!(headers.get("x-absent").is_none(), "{proto:?}: replace only touches present fields");
        assert_eq!(values(headers, "x-gateway"), ["strait"], "{proto:?}");
        assert_eq!(values(headers, "x-tags"), ["mobile", "edge"], "{proto:?}");

        let headers = &got.parts.headers;
        assert!(headers.get("x-powered-by").is_none(), "{proto:?}");
        assert!(headers.get("x-old-id").is_none(), "{proto:?}");
        assert_eq!(values(headers, "x-request-ref"), ["r1"], "{proto:?}");
        assert_eq!(values(headers, "x-version"), ["2"], "{proto:?}");
        assert!(headers.get("x-missing").is_none(), "{proto:?}");
        assert_eq!(values(headers, "x-frame-options"), ["DENY"], "{proto:?}");
        assert_eq!(values(headers, "x-cache"), ["miss", "edge-hit"], "{proto:?}");
        assert_eq!(got.body, "ok");
    }
}

#[test]
fn fields_a_filter_adds_replace_the_upstreams_and_later_filters_find_them() {
    let backend = Backend::start(|_| {
        Reply::text("ok")
            .header("x-ratelimit-remaining-hour", "999")
            .header("ratelimit-limit", "999")
            .header("x-upstream", "kept")
    });
    // Higher priority: the transformer runs before `rate_limiting` on the way in, after it on
    // the way back, and edits the fields the limit set.
    let filters = r#"[
          { name: rate_limiting, config: { hour: 100, limit_by: ip } },
          { name: response_transformer, priority: 2000, config: {
              remove: { headers: [ratelimit-policy] },
              rename: { headers: ["ratelimit-reset:x-reset"] } } } ]"#;
    let with_later = proxy(&backend, &[("/", filters)]);
    let alone = proxy(&backend, &[("/", "[{ name: rate_limiting, config: { hour: 100, limit_by: ip } }]")]);
    // A body filter in the chain (the transformer, lower priority: it runs before the limit on
    // the way back): the fields are moved into the map before the body filters start.
    let with_body_filter = proxy(
        &backend,
        &[(
            "/",
            r#"[{ name: rate_limiting, config: { hour: 100, limit_by: ip } },
                { name: response_transformer, priority: 100, config: { remove: { json: [secret] } } }]"#,
        )],
    );
    for (proto, remaining) in [(Proto::H1, "99"), (Proto::H2, "98")] {
        let got = send(with_later.addr("web"), proto, get("/"));
        assert_eq!(got.parts.status, 200, "{proto:?}");
        let headers = &got.parts.headers;
        assert_eq!(values(headers, "x-ratelimit-remaining-hour"), [remaining], "{proto:?}: in place of the upstream's");
        assert_eq!(values(headers, "ratelimit-limit"), ["100"], "{proto:?}: in place of the upstream's");
        assert_eq!(values(headers, "x-ratelimit-limit-hour"), ["100"], "{proto:?}");
        assert!(headers.get("ratelimit-policy").is_none(), "{proto:?}: removed by the later filter");
        assert!(headers.get("ratelimit-reset").is_none(), "{proto:?}: renamed by the later filter");
        assert!(values(headers, "x-reset")[0].parse::<u64>().is_ok(), "{proto:?}");
        assert_eq!(values(headers, "x-upstream"), ["kept"], "{proto:?}");

        // Written beside the map when no filter reads it after.
        let got = send(alone.addr("web"), proto, get("/"));
        let headers = &got.parts.headers;
        assert_eq!(values(headers, "x-ratelimit-remaining-hour"), [remaining], "{proto:?}: in place of the upstream's");
        assert_eq!(values(headers, "ratelimit-limit"), ["100"], "{proto:?}: in place of the upstream's");
        assert_eq!(values(headers, "ratelimit-policy"), ["100;w=3600"], "{proto:?}");
        assert_eq!(values(headers, "x-upstream"), ["kept"], "{proto:?}");
        assert_eq!(got.body, "ok", "{proto:?}");

        let got = send(with_body_filter.addr("web"), proto, get("/"));
        let headers = &got.parts.headers;
        assert_eq!(values(headers, "x-ratelimit-remaining-hour"), [remaining], "{proto:?}: with a body filter");
        assert_eq!(values(headers, "ratelimit-limit"), ["100"], "{proto:?}: with a body filter");
        assert_eq!(got.body, "ok", "{proto:?}");
    }
    // A HEAD answer carries them too (on the limit's third request from this client).
    let head = request("HEAD", "/").body(Full::new(Bytes::new())).unwrap();
    let got = send(alone.addr("web"), Proto::H1, head);
    assert_eq!(got.parts.status, 200);
    assert_eq!(values(&got.parts.headers, "x-ratelimit-remaining-hour"), ["97"], "HEAD");
    assert_eq!(values(&got.parts.headers, "ratelimit-limit"), ["100"], "HEAD");
    assert!(got.body.is_empty(), "HEAD has no body");
}

#[test]
fn querystring_edits_reach_the_backend() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let filters = r#"[{ name: request_transformer, config: {
          remove: { querystring: [debug] },
          rename: { querystring: ["q:search"] },
          replace: { querystring: ["page:1"] },
          add: { querystring: ["lang:en", "page:9"] },
          append: { querystring: ["tag:a b"] } } }]"#;
    let proxy = proxy(&backend, &[("/", filters)]);
    let got = send(proxy.addr("web"), Proto::H1, get("/search?debug=true&q=rust&page=3&tag=x"));
    assert_eq!(got.parts.status, 200);
    assert_eq!(backend.requests()[0].uri, "/search?search=rust&page=1&tag=x&lang=en&tag=a%20b");
    // Without a query: only the additions (`page` is absent, so `add` sets it).
    send(proxy.addr("web"), Proto::H1, get("/plain"));
    assert_eq!(backend.requests()[1].uri, "/plain?lang=en&page=9&tag=a%20b");
}

#[test]
fn uri_replace_and_method_change_reach_the_backend() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let filters = r#"[{ name: request_transformer, config: { http_method: POST, replace: { uri: /v2/items } } }]"#;
    let proxy = proxy(&backend, &[("/items", filters), ("/", "[]")]);
    for proto in [Proto::H1, Proto::H2] {
        let got = send(proxy.addr("web"), proto, get("/items/7?fields=name"));
        assert_eq!(got.parts.status, 200, "{proto:?}");
        let upstream = backend.requests().pop().unwrap();
        assert_eq!(upstream.method, "POST", "{proto:?}");
        assert_eq!(upstream.uri, "/v2/items?fields=name", "{proto:?}: the path is replaced, the query kept");
    }
    send(proxy.addr("web"), Proto::H1, get("/other"));
    let untouched = backend.requests().pop().unwrap();
    assert_eq!((untouched.method.as_str(), untouched.uri.as_str()), ("GET", "/other"), "other routes are untouched");
}

// === JSON bodies ===

/// The request edits the JSON tests share, on a route under `/json`, with a small bound.
const REQUEST_JSON: &str = r#"[{ name: request_transformer, config: {
          max_body_size: 256,
          remove: { json: [password] },
          rename: { json: ["mail:user.email"] },
          replace: { json: ["user.name:Bob"] },
          add: { json: ["source:gateway", "user.age:42", "user.admin:false"], json_types: [string, number, boolean] } } }]"#;

#[test]
fn request_json_fields_are_edited_and_sent_with_a_correct_length() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = proxy(&backend, &[("/json", REQUEST_JSON)]);
    let body = json!({ "password": "hunter2", "mail": "bob@example.com", "user": { "name": "Ann" } }).to_string();
    let expected = serde_json::to_vec(&json!({
        "user": { "name": "Bob", "email": "bob@example.com", "age": 42, "admin": false },
        "source": "gateway"
    }))
    .unwrap();
    for (proto, content_type) in [(Proto::H1, "application/json"), (Proto::H2, "application/json; charset=utf-8")] {
        let got = send(proxy.addr("web"), proto, post("/json", content_type, body.clone()));
        assert_eq!(got.parts.status, 200, "{proto:?}");
        let upstream = backend.requests().pop().unwrap();
        assert_received(&upstream, &expected, &format!("{proto:?}"));
    }
}

#[test]
fn response_json_fields_are_edited_for_the_client() {
    let backend = Backend::start(|_| {
        json_reply(r#"{"id":7,"internal":{"shard":3,"node":"db-2"},"name":"Ann","tags":["a"],"nick":"an"}"#)
    });
    let filters = r#"[{ name: response_transformer, config: {
          remove: { json: [internal.shard] },
          rename: { json: ["nick:profile.nickname"] },
          replace: { json: ["name:ANN", "absent:never"] },
          add: { json: ["id:not-added", "version:2"], json_types: [string, number] },
          append: { json: ["tags:b"] } } }]"#;
    let proxy = proxy(&backend, &[("/", filters)]);
    for proto in [Proto::H1, Proto::H2] {
        let got = send(proxy.addr("web"), proto, get("/user"));
        assert_eq!(got.parts.status, 200, "{proto:?}");
        let body: Value = serde_json::from_slice(&got.body).unwrap();
        let expected = json!({
            "id": 7, "internal": { "node": "db-2" }, "name": "ANN", "tags": ["a", "b"],
            "profile": { "nickname": "an" }, "version": 2
        });
        assert_eq!(body, expected, "{proto:?}");
        assert_length_matches(&got, &format!("{proto:?}"));
    }
}

#[test]
fn bodies_not_json_too_large_malformed_or_untouched_pass_unchanged() {
    let backend = Backend::start(|r: &Recorded| match r.uri.as_str() {
        "/json/text" => Reply::text(r#"{"password":"in text"}"#).header("content-type", "text/plain"),
        "/json/large" => json_reply(&format!(r#"{{"password":"{}"}}"#, "x".repeat(400))),
        "/json/untouched" => json_reply(r#"{ "name": "Ann",  "id": 1 }"#),
        _ => json_reply(r#"{"password": "oops","#),
    });
    let filters = r#"[{ name: request_transformer, config: { max_body_size: 256, remove: { json: [password] } } },
          { name: response_transformer, config: { max_body_size: 256, remove: { json: [password] } } }]"#;
    let proxy = proxy(&backend, &[("/json", filters)]);
    let addr = proxy.addr("web");

    let text = r#"{"password":"in text"}"#;
    let large = format!(r#"{{"password":"{}"}}"#, "x".repeat(400));
    let malformed = r#"{"password": "oops","#;
    // Valid JSON that no edit applies to keeps its bytes (spacing, key order).
    let untouched = r#"{ "name": "Ann",  "id": 1 }"#;
    let cases = [
        ("/json/text", "text/plain", text),
        ("/json/large", "application/json", &large),
        ("/json/bad", "application/json", malformed),
        ("/json/untouched", "application/json", untouched),
    ];
    for proto in [Proto::H1, Proto::H2] {
        for (path, content_type, body) in cases {
            let got = send(addr, proto, post(path, content_type, body.to_owned()));
            assert_eq!(got.parts.status, 200, "{proto:?} {path}");
            let upstream = backend.requests().pop().unwrap();
            assert_received(&upstream, body.as_bytes(), &format!("{proto:?} {path}: request"));
            assert_eq!(got.body, body.as_bytes(), "{proto:?} {path}: response");
            assert_length_matches(&got, &format!("{proto:?} {path}"));
        }
    }
    // A response whose length says it is over the bound keeps its length.
    let got = send(addr, Proto::H1, get("/json/large"));
    assert_eq!(got.parts.headers["content-length"], large.len().to_string());
}

#[test]
fn a_compressor_that_runs_after_the_transformer_compresses_the_edited_json() {
    let backend =
        Backend::start(|_| json_reply(&format!(r#"{{"id":1,"secret":"s","padding":"{}"}}"#, "p".repeat(500))));
    // A higher priority puts compression first on the request, so last on the response.
    let filters = r#"[{ name: compression, priority: 900, config: { algorithms: [gzip] } },
          { name: response_transformer, config: { remove: { json: [secret] } } }]"#;
    let proxy = proxy(&backend, &[("/", filters)]);
    for proto in [Proto::H1, Proto::H2] {
        let asked = request("GET", "/data").header("accept-encoding", "gzip").body(Full::new(Bytes::new())).unwrap();
        let got = send(proxy.addr("web"), proto, asked);
        assert_eq!(got.parts.headers["content-encoding"], "gzip", "{proto:?}");
        let body: Value = serde_json::from_slice(&gunzip(&got.body)).unwrap();
        assert_eq!(body, json!({ "id": 1, "padding": "p".repeat(500) }), "{proto:?}");
    }
}

/// The gzip stream `bytes` decoded.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

// === backend for frontend ===

#[test]
fn a_mobile_route_gets_a_smaller_payload_from_the_same_backend() {
    let profile = json!({
        "id": 42,
        "name": "Ann",
        "avatar": { "small": "/a/s.png", "large": "/a/l.png", "original": "/a/o.png" },
        "biography": "A long biography only the web page shows. ".repeat(20),
        "recent_activity": [{ "kind": "login" }, { "kind": "purchase" }]
    });
    let served = profile.to_string();
    let backend = Backend::start(move |r: &Recorded| match r.uri.as_str() {
        "/api/profile" => json_reply(&served),
        _ => Reply::status(404),
    });
    let web = "[{ name: request_transformer, config: { replace: { uri: /api/profile } } }]";
    let mobile = r#"[{ name: request_transformer, config: { replace: { uri: /api/profile } } },
          { name: response_transformer, config: {
              remove: { json: [biography, recent_activity, avatar.large, avatar.original] } } }]"#;
    let proxy = proxy(&backend, &[("/web/profile", web), ("/mobile/profile", mobile)]);
    let addr = proxy.addr("web");

    let full = send(addr, Proto::H1, get("/web/profile"));
    assert_eq!(full.parts.status, 200);
    assert_eq!(serde_json::from_slice::<Value>(&full.body).unwrap(), profile, "the web route gets everything");

    let small = send(addr, Proto::H2, get("/mobile/profile"));
    assert_eq!(small.parts.status, 200);
    let expected = json!({ "id": 42, "name": "Ann", "avatar": { "small": "/a/s.png" } });
    assert_eq!(serde_json::from_slice::<Value>(&small.body).unwrap(), expected);
    assert!(small.body.len() * 5 < full.body.len(), "mobile {} bytes, web {}", small.body.len(), full.body.len());
    let asked: Vec<String> = backend.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(asked, ["/api/profile", "/api/profile"], "both routes ask the backend the same");
}

// === configuration errors ===

#[test]
fn configuration_errors_name_the_field() {
    let cases = [
        ("request_transformer", r#"{ add: { headers: ["x-no-colon"] } }"#, "config.add.headers[0]", "no `:`"),
        (
            "request_transformer",
            r#"{ rename: { querystring: ["a:"] } }"#,
            "config.rename.querystring[0]",
            "no new name",
        ),
        (
            "request_transformer",
            r#"{ append: { headers: ["x-a:1", "transfer-encoding:chunked"] } }"#,
            "config.append.headers[1]",
            "managed by Strait",
        ),
        ("request_transformer", r#"{ http_method: get }"#, "config.http_method", "upper-case"),
        ("request_transformer", r#"{ replace: { uri: "no-slash" } }"#, "config.replace.uri", "starting with `/`"),
        (
            "response_transformer",
            r#"{ add: { json: ["n:x"], json_types: [number] } }"#,
            "config.add.json[0]",
            "not a number",
        ),
        (
            "response_transformer",
            r#"{ add: { json: ["n:1"], json_types: [integer] } }"#,
            "config.add.json_types[0]",
            "unknown variant",
        ),
        ("response_transformer", r#"{ remove: { querystring: [q] } }"#, "config.remove", "unknown field `querystring`"),
        (
            "response_transformer",
            r#"{ remove: { headers: [content-length] } }"#,
            "config.remove.headers[0]",
            "managed by Strait",
        ),
        ("response_transformer", r#"{ status_code: 99 }"#, "config.status_code", "between 200 and 599"),
    ];
    for (name, config, field, message) in cases {
        let text = format!(
            "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - direct: {{ body: x }}\n        filters:\n          - name: {name}\n            config: {config}\n"
        );
        let config = strait_config::load_str(&text, "transforms.yaml").unwrap();
        let errors = strait_proxy::check(&config).unwrap_err().to_string();
        let path = "transforms.yaml:8:";
        assert!(errors.contains(path), "{name} {field}: no position in {errors}");
        assert!(errors.contains(&format!("listeners[0].routes[0].filters[0].{field}")), "{field}: {errors}");
        assert!(errors.contains(message), "{field}: {errors}");
    }
}
