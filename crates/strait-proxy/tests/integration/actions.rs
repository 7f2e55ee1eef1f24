//! Route actions and header edits end to end: redirect, direct, echo, request/response headers.

use crate::support;

use std::net::{SocketAddr, TcpListener};

use support::{curl, raw_request, Backend, Proxy, RawConn, RawResponse, Reply};

fn request(addr: SocketAddr, raw: &str) -> RawResponse {
    raw_request(addr, raw.as_bytes()).expect("response")
}

/// Every value of a header, in order.
fn all<'a>(response: &'a RawResponse, name: &str) -> Vec<&'a str> {
    response.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
}

// === redirect ===

#[test]
fn a_redirect_that_changes_only_the_path_keeps_host_and_port() {
    let proxy = Proxy::start("listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - redirect: { path: /new, status: 302 }\n");
    let response =
        request(proxy.addr("web"), "GET /old?q=1 HTTP/1.1\r\nHost: 127.0.0.1:18200\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 302);
    assert_eq!(response.header("location"), Some("http://127.0.0.1:18200/new?q=1"));
}

#[test]
fn redirect_to_https_keeps_host_path_and_query() {
    // nginx: `return 301 https://$host$request_uri`.
    let proxy = Proxy::start(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - redirect: { scheme: https }
"#,
    );
    let addr = proxy.addr("web");
    let response =
        request(addr, "GET /a/b.html?x=1&y=%20z HTTP/1.1\r\nHost: Example.com:8080\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 301);
    assert_eq!(
        response.header("location"),
        Some("https://example.com/a/b.html?x=1&y=%20z"),
        "no port, lower case: $host"
    );
    assert_eq!(response.header("x-strait-reason"), None, "a redirect is not an error");
    assert_eq!(response.header("content-length"), Some(response.body.len().to_string().as_str()));

    let response = request(addr, "POST / HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(response.status, 301);
    assert_eq!(response.header("location"), Some("https://shop.test/"));

    let url = format!("http://{addr}/login?next=%2Fhome");
    let curled = curl(&["-H", "Host: www.example.org", &url]);
    assert_eq!(curled.status, 301);
    assert_eq!(curled.header("location"), Some("https://www.example.org/login?next=%2Fhome"));
}

#[test]
fn redirect_replaces_host_and_path_with_the_configured_status() {
    let proxy = Proxy::start(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { hosts: [old.example.com] }
        redirect: { scheme: https, host: "www.example.com:8443", status: 308 }
      - match: { path: { prefix: /legacy } }
        redirect: { path: /new, status: 302 }
"#,
    );
    let addr = proxy.addr("web");
    let response = request(addr, "GET /p?q=1 HTTP/1.1\r\nHost: old.example.com\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 308);
    assert_eq!(response.header("location"), Some("https://www.example.com:8443/p?q=1"));
    let response = request(addr, "GET /legacy/x?q=1 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 302);
    assert_eq!(response.header("location"), Some("http://a.test/new?q=1"));
}

// === direct ===

#[test]
fn direct_health_answers_ok_with_configured_headers() {
    let proxy = Proxy::start(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { path: { exact: /health } }
        direct:
          status: 200
          body: OK
          headers: { content-type: text/plain, cache-control: no-store, x-served-by: strait }
      - match: { path: { exact: /ping } }
        direct: { status: 204 }
      - match: { path: { exact: /maintenance } }
        direct: { status: 503, body: "down for maintenance\n", headers: { retry-after: "120" } }
"#,
    );
    let addr = proxy.addr("web");
    let mut conn = RawConn::connect(addr);
    conn.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n");
    let ok = conn.read_response().expect("response");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.text(), "OK");
    assert_eq!(ok.header("content-length"), Some("2"));
    assert_eq!(ok.header("content-type"), Some("text/plain"));
    assert_eq!(ok.header("cache-control"), Some("no-store"));
    assert_eq!(ok.header("x-served-by"), Some("strait"));
    assert!(ok.header("date").is_some());
    assert_eq!(ok.header("x-strait-reason"), None);

    // HEAD: same head, no body; a small request body is read past, keeping the connection.
    conn.send(b"HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = conn.read_response_to(true).expect("HEAD response");
    assert_eq!(head.header("content-length"), Some("2"));
    conn.send(b"POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(conn.read_response().expect("POST response").text(), "OK");
    conn.send(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n");
    let ping = conn.read_response().expect("204");
    assert_eq!(ping.status, 204);
    assert_eq!(ping.header("content-length"), None, "no Content-Length on a 204 (RFC 9110 §8.6)");
    conn.send(b"GET /maintenance HTTP/1.1\r\nHost: t\r\n\r\n");
    let down = conn.read_response().expect("response on the same connection");
    assert_eq!(down.status, 503);
    assert_eq!(down.text(), "down for maintenance\n");
    assert_eq!(down.header("retry-after"), Some("120"));
}

// === echo ===

#[test]
fn echo_describes_the_request_it_received() {
    let proxy = Proxy::start(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - echo: { name: e1 }
"#,
    );
    let response = request(
        proxy.addr("web"),
        "POST /echo/x?y=1 HTTP/1.1\r\nHost: echo.test\r\nX-Custom: v\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-echo-name"), Some("e1"));
    assert_eq!(response.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = response.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "echo: e1");
    assert_eq!(lines[1], "client: 127.0.0.1");
    assert_eq!(lines[2], "POST /echo/x?y=1 HTTP/1.1");
    assert!(lines.contains(&"host: echo.test"), "{text}");
    assert!(lines.contains(&"x-custom: v"), "{text}");
    assert_eq!(lines.last(), Some(&"body-bytes: 5"));
}

// === header edits ===

const SECURITY_HEADERS: &str = r#"
        response_headers:
          set:
            strict-transport-security: "max-age=63072000; includeSubDomains"
            x-content-type-options: nosniff
            x-frame-options: DENY
          add: { x-extra: added }
          remove: [x-powered-by, server]"#;

/// A proxy whose every route carries [`SECURITY_HEADERS`]: `/up` forwards to `upstream`,
/// `/down` to a closed port, `/direct` and `/redirect` answer locally.
fn proxy_with_security_headers(upstream: SocketAddr, closed: SocketAddr) -> Proxy {
    Proxy::start(&format!(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: {{ path: {{ prefix: /up }} }}
        forward: {{ cluster: up }}{SECURITY_HEADERS}
      - match: {{ path: {{ prefix: /down }} }}
        forward: {{ cluster: down }}{SECURITY_HEADERS}
      - match: {{ path: {{ prefix: /direct }} }}
        direct: {{ status: 200, body: hi, headers: {{ x-powered-by: direct, x-frame-options: SAMEORIGIN }} }}{SECURITY_HEADERS}
      - match: {{ path: {{ prefix: /redirect }} }}
        redirect: {{ scheme: https }}{SECURITY_HEADERS}
clusters:
  - name: up
    endpoints: [{{ address: "{upstream}" }}]
  - name: down
    endpoints: [{{ address: "{closed}" }}]
"#
    ))
}

fn assert_security_headers(response: &RawResponse) {
    assert_eq!(all(response, "strict-transport-security"), ["max-age=63072000; includeSubDomains"], "{response:?}");
    assert_eq!(all(response, "x-content-type-options"), ["nosniff"], "{response:?}");
    assert_eq!(all(response, "x-frame-options"), ["DENY"], "set replaces: {response:?}");
    assert_eq!(response.header("x-powered-by"), None, "{response:?}");
    assert_eq!(response.header("server"), None, "{response:?}");
}

/// An address nothing listens on: a port the kernel gave out, released again.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[test]
fn response_headers_edit_upstream_answers() {
    let backend = Backend::start(|_| {
        Reply::text("from upstream")
            .header("x-powered-by", "php")
            .header("server", "backend/1.0")
            .header("x-frame-options", "ALLOWALL")
            .header("x-extra", "original")
    });
    let proxy = proxy_with_security_headers(backend.addr, closed_port());
    let response = request(proxy.addr("web"), "GET /up HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "from upstream");
    assert_security_headers(&response);
    assert_eq!(all(&response, "x-extra"), ["original", "added"], "add appends");
}

#[test]
fn response_headers_edit_strait_own_answers_too() {
    let backend = Backend::named("unused");
    let proxy = proxy_with_security_headers(backend.addr, closed_port());
    let addr = proxy.addr("web");

    let direct = request(addr, "GET /direct HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(direct.status, 200);
    assert_eq!(direct.text(), "hi");
    assert_security_headers(&direct);
    assert_eq!(all(&direct, "x-extra"), ["added"]);

    let redirect = request(addr, "GET /redirect/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(redirect.status, 301);
    assert_security_headers(&redirect);

    let failed = request(addr, "GET /down HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(failed.status, 502);
    assert_eq!(failed.header("x-strait-reason"), Some("upstream_connect_failed"));
    assert_security_headers(&failed);

    // No route, no route's edits.
    let missing = request(addr, "GET /none HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("strict-transport-security"), None);
    assert_eq!(backend.count(), 0);
}

#[test]
fn request_headers_edits_reach_the_backend() {
    let backend = Backend::named("b");
    let proxy = Proxy::start(&format!(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: {{ headers: [{{ name: x-internal, present: true }}] }}
        forward: {{ cluster: app }}
        request_headers:
          set: {{ x-env: production, x-new: "1" }}
          add: {{ x-tag: b }}
          remove: [x-internal, cookie]
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    ));
    let response = request(
        proxy.addr("web"),
        "GET /r HTTP/1.1\r\nHost: t\r\nX-Env: dev\r\nX-Env: test\r\nX-Tag: a\r\nX-Internal: secret\r\n\
         Cookie: s=1\r\nX-Kept: yes\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(response.status, 200, "the route matched on the header before it was removed");
    assert_eq!(response.header("x-env"), None, "request edits do not touch the response");
    let seen = &backend.requests()[0].headers;
    let values = |name: &str| -> Vec<&str> { seen.get_all(name).iter().map(|v| v.to_str().unwrap()).collect() };
    assert_eq!(values("x-env"), ["production"], "set replaces every value");
    assert_eq!(values("x-new"), ["1"]);
    assert_eq!(values("x-tag"), ["a", "b"], "add appends");
    assert!(values("x-internal").is_empty());
    assert!(values("cookie").is_empty());
    assert_eq!(values("x-kept"), ["yes"]);
}

#[test]
fn redirect_without_any_host_is_refused_instead_of_sending_an_empty_authority() {
    let proxy = Proxy::start(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - redirect: { scheme: https }
"#,
    );
    let response = support::raw_request(proxy.addr("web"), b"GET /x?y HTTP/1.0\r\n\r\n").expect("response");
    assert_eq!(response.status, 400);
    assert_eq!(response.header("x-strait-reason"), Some("bad_request"));
    assert_eq!(response.header("location"), None);
    let with_host =
        support::raw_request(proxy.addr("web"), b"GET /x?y HTTP/1.0\r\nHost: a.test\r\n\r\n").expect("response");
    assert_eq!(with_host.status, 301);
    assert_eq!(with_host.header("location"), Some("https://a.test/x?y"));
}
