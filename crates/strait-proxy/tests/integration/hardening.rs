//! Hardening end to end: hosts and request targets are checked and normalized before routing,
//! and paths get one spelling, so neither a route nor the upstream can be reached by a
//! spelling that routing did not see.

use crate::support;

use std::net::SocketAddr;

use support::{Backend, Proxy, RawConn, RawResponse, Reply};

// === helpers ===

/// A backend answering `<method> <uri>`, and a proxy in front of it whose listener `web`
/// answers `/admin` itself with 403, routes host `app.test` to a direct `app` answer and
/// forwards everything else; `listener` holds extra lines of the listener (indented 4).
fn backend_and_proxy(listener: &str) -> (Backend, Proxy) {
    let backend = Backend::start(|r| Reply::text(&format!("{} {}", r.method, r.uri)));
    let proxy = Proxy::start(&format!(
        "workers: 1\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n{listener}    routes:\n\
         \x20     - match: {{ path: {{ prefix: /admin }} }}\n        direct: {{ status: 403, body: admin }}\n\
         \x20     - match: {{ hosts: [app.test] }}\n        direct: {{ status: 200, body: app }}\n\
         \x20     - forward: {{ cluster: app }}\n\
         clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr
    ));
    (backend, proxy)
}

/// Sends `bytes` on a new connection and reads one response.
fn send(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut conn = RawConn::connect(addr);
    conn.send(bytes);
    conn.read_response().unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(bytes)))
}

/// A GET of `target` with `host` on a new connection.
fn get(addr: SocketAddr, target: &str, host: &str) -> RawResponse {
    send(addr, format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
}

/// Asserts that `response` is Strait's own refusal with this status and reason.
#[track_caller]
fn assert_refusal(response: &RawResponse, status: u16, reason: &str, what: &str) {
    assert_eq!(response.status, status, "{what}: {response:?}");
    assert_eq!(response.header("x-strait-reason"), Some(reason), "{what}: {response:?}");
}

/// Sends each request on its own connection and asserts a 400 `bad_request`, and that the
/// backend never even got a connection.
#[track_caller]
fn assert_all_refused(cases: &[(&str, &[u8])]) {
    let (backend, proxy) = backend_and_proxy("");
    for (what, bytes) in cases {
        assert_refusal(&send(proxy.addr("web"), bytes), 400, "bad_request", what);
    }
    assert_eq!(backend.count(), 0, "the backend received a request: {:?}", backend.requests());
    assert_eq!(backend.connections(), 0, "the proxy connected to the backend");
}

/// The one request the backend received.
#[track_caller]
fn only_request(backend: &Backend) -> support::Recorded {
    let requests = backend.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.into_iter().next().unwrap()
}

// === host syntax ===

#[test]
fn malformed_hosts_get_400() {
    assert_all_refused(&[
        ("userinfo", b"GET / HTTP/1.1\r\nHost: user@app.test\r\n\r\n"),
        ("space", b"GET / HTTP/1.1\r\nHost: app test\r\n\r\n"),
        ("slash", b"GET / HTTP/1.1\r\nHost: app.test/x\r\n\r\n"),
        ("empty", b"GET / HTTP/1.1\r\nHost: \r\n\r\n"),
        ("only a dot", b"GET / HTTP/1.1\r\nHost: .\r\n\r\n"),
        ("two trailing dots", b"GET / HTTP/1.1\r\nHost: app.test..\r\n\r\n"),
        ("empty port", b"GET / HTTP/1.1\r\nHost: app.test:\r\n\r\n"),
        ("port too large", b"GET / HTTP/1.1\r\nHost: app.test:65536\r\n\r\n"),
        ("port of six digits", b"GET / HTTP/1.1\r\nHost: app.test:000080\r\n\r\n"),
        ("port not digits", b"GET / HTTP/1.1\r\nHost: app.test:8o\r\n\r\n"),
        ("two ports", b"GET / HTTP/1.1\r\nHost: app.test:80:80\r\n\r\n"),
        ("unclosed IPv6", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"),
        ("not IPv6", b"GET / HTTP/1.1\r\nHost: [app.test]\r\n\r\n"),
        ("escaped slash", b"GET / HTTP/1.1\r\nHost: app.test%2Fx\r\n\r\n"),
        ("bad escape", b"GET / HTTP/1.1\r\nHost: app%zz.test\r\n\r\n"),
        ("absolute-form userinfo", b"GET http://u@app.test/ HTTP/1.1\r\nHost: app.test\r\n\r\n"),
        ("absolute-form empty port", b"GET http://app.test:/ HTTP/1.1\r\nHost: app.test\r\n\r\n"),
        ("absolute-form bad Host field", b"GET http://ok.test/ HTTP/1.1\r\nHost: a b\r\n\r\n"),
    ]);
}

#[test]
fn absolute_form_without_host_on_http11_gets_400() {
    assert_all_refused(&[("absolute form, no Host", b"GET http://other.test/x HTTP/1.1\r\n\r\n")]);
}

#[test]
fn hosts_are_normalized_for_routing_and_the_backend() {
    let (backend, proxy) = backend_and_proxy("");
    let addr = proxy.addr("web");
    for host in ["APP.Test", "app.test.", "App.TEST.:8080", "%61pp.test"] {
        let response = get(addr, "/", host);
        assert_eq!((response.status, response.text().as_str()), (200, "app"), "Host: {host}");
    }
    let response = get(addr, "/x", "WWW.Example.COM.:8080");
    assert_eq!(response.status, 200);
    let recorded = only_request(&backend);
    assert_eq!(recorded.headers["host"], "www.example.com:8080");
}

#[test]
fn absolute_form_authority_wins_over_the_host_header() {
    let (backend, proxy) = backend_and_proxy("");
    let addr = proxy.addr("web");
    let response = send(addr, b"GET http://APP.test./x HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n");
    assert_eq!((response.status, response.text().as_str()), (200, "app"));
    let response = send(addr, b"GET http://Other.Test:81/y HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(only_request(&backend).headers["host"], "other.test:81");
}

// === request target syntax ===

#[test]
fn asterisk_fragments_and_non_ascii_targets_get_400() {
    assert_all_refused(&[
        ("GET *", b"GET * HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("POST *", b"POST * HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"),
        ("fragment", b"GET /x#frag HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("fragment after the query", b"GET /x?a=1#frag HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("UTF-8 in the path", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("0xFF in the query", b"GET /x?\xff HTTP/1.1\r\nHost: t\r\n\r\n"),
    ]);
}

#[test]
fn options_asterisk_is_accepted() {
    let (_backend, proxy) = backend_and_proxy("");
    let response = send(proxy.addr("web"), b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_ne!(response.status, 400, "{response:?}");
}

// === path normalization ===

#[test]
fn other_spellings_of_admin_reach_the_admin_route() {
    let (backend, proxy) = backend_and_proxy("");
    let addr = proxy.addr("web");
    for target in ["/admin", "//admin", "/%61dmin", "/x/../admin", "/./admin", "/%2e/admin", "/a/b/%2E%2E/../admin/x"] {
        let response = get(addr, target, "t");
        assert_eq!((response.status, response.text().as_str()), (403, "admin"), "GET {target}");
    }
    assert_eq!(backend.count(), 0, "the backend received a request: {:?}", backend.requests());
}

#[test]
fn escaped_slashes_dot_dot_above_the_root_and_bad_escapes_get_400() {
    let (backend, proxy) = backend_and_proxy("");
    let addr = proxy.addr("web");
    for target in ["/admin%2Fx", "/admin%2fx", "/a%5Cb", "/..", "/%2e%2e/admin", "/a/../../admin", "/%zz", "/a%00"] {
        assert_refusal(&get(addr, target, "t"), 400, "bad_request", &format!("GET {target}"));
    }
    assert_eq!(backend.count(), 0, "the backend received a request: {:?}", backend.requests());
}

#[test]
fn the_backend_receives_the_normalized_path_and_the_query_untouched() {
    let (backend, proxy) = backend_and_proxy("");
    let response = get(proxy.addr("web"), "/a/./b/..//c/%7euser?q=/../%2e&r=%2F", "t");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(only_request(&backend).uri, "/a/c/~user?q=/../%2e&r=%2F");
}

#[test]
fn normalization_can_be_turned_off_per_listener() {
    let (backend, proxy) = backend_and_proxy("    path_normalization: { enabled: false }\n");
    let response = get(proxy.addr("web"), "//admin", "t");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(only_request(&backend).uri, "//admin");
}

#[test]
fn slashes_can_be_kept_unmerged() {
    let (backend, proxy) = backend_and_proxy("    path_normalization: { merge_slashes: false }\n");
    let addr = proxy.addr("web");
    assert_eq!(get(addr, "//admin", "t").status, 200);
    assert_eq!(get(addr, "/./admin", "t").status, 403, "dot segments are still removed");
    assert_eq!(only_request(&backend).uri, "//admin");
}

#[test]
fn escaped_slashes_can_be_kept_or_decoded() {
    let (backend, proxy) = backend_and_proxy("    path_normalization: { escaped_slashes: keep }\n");
    let response = get(proxy.addr("web"), "/admin%2fx", "t");
    assert_eq!(response.status, 200, "kept, `admin%2Fx` is one segment: {response:?}");
    assert_eq!(only_request(&backend).uri, "/admin%2Fx");

    let (backend, proxy) = backend_and_proxy("    path_normalization: { escaped_slashes: decode }\n");
    let addr = proxy.addr("web");
    assert_eq!(get(addr, "/admin%2Fx", "t").status, 403, "decoded, `/admin/x` is under /admin");
    assert_eq!(get(addr, "/x%2F..%2Fadmin", "t").status, 403);
    assert_eq!(get(addr, "/public%5Cfile", "t").status, 200);
    assert_eq!(only_request(&backend).uri, "/public/file");
}

#[test]
fn a_normalization_refusal_keeps_the_connection_usable() {
    let (_backend, proxy) = backend_and_proxy("");
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"GET /admin%2Fx HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_refusal(&conn.read_response().expect("a response"), 400, "bad_request", "escaped slash");
    conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let next = conn.read_response().expect("the next response");
    assert_eq!((next.status, next.text().as_str()), (200, "GET /ok"));
}
