//! Header handling end to end: what the upstream receives (hop-by-hop removal, Host, X-Forwarded-*, X-Real-IP, request id, Via, edits) and what the client receives.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use support::{Backend, Proxy, RawConn, RawResponse, RawUpstream, Recorded, Reply};

// === helpers ===

/// A proxy with listener `web`: requests to `/local` get no route (Strait answers itself),
/// everything else is forwarded to `upstream`. `server` holds lines of the `server` section
/// (indented 2), `route` extra lines of the forwarding route (indented 8), `cluster` extra
/// lines of the cluster (indented 4).
fn proxy_to(upstream: SocketAddr, server: &str, route: &str, cluster: &str) -> Proxy {
    let server = if server.is_empty() { "server: {}\n".to_owned() } else { format!("server:\n{server}") };
    Proxy::start(&format!(
        "workers: 1\n{server}listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n\
         \x20     - match: {{ path: {{ regex: \"/[^l].*\" }} }}\n        forward: {{ cluster: app }}\n{route}\
         clusters:\n  - name: app\n{cluster}    endpoints: [{{ address: \"{upstream}\" }}]\n"
    ))
}

/// A backend answering 200 `ok`, and a proxy in front of it.
fn backend_and_proxy(server: &str, route: &str, cluster: &str) -> (Backend, Proxy) {
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = proxy_to(backend.addr, server, route, cluster);
    (backend, proxy)
}

/// Sends `GET <path>` with these extra header lines (each ending in CRLF) on a new connection.
fn get_with(addr: SocketAddr, path: &str, headers: &str) -> RawResponse {
    let mut conn = RawConn::connect(addr);
    conn.send(format!("GET {path} HTTP/1.1\r\n{headers}\r\n").as_bytes());
    conn.read_response().expect("response")
}

/// Sends a forwarded GET with `Host: app.test` and these extra header lines; returns what the
/// backend received.
fn forwarded(backend: &Backend, proxy: &Proxy, headers: &str) -> Recorded {
    let before = backend.count();
    let response = get_with(proxy.addr("web"), "/x", &format!("Host: app.test\r\n{headers}"));
    assert_eq!(response.status, 200, "{response:?}");
    let requests = backend.requests();
    assert_eq!(requests.len(), before + 1, "{requests:?}");
    requests[before].clone()
}

/// Every value of a header as text, in order.
fn values<'a>(headers: &'a http::HeaderMap, name: &str) -> Vec<&'a str> {
    headers.get_all(name).iter().map(|v| v.to_str().expect("text value")).collect()
}

/// Every value of a header in a raw response, in order.
fn response_values<'a>(response: &'a RawResponse, name: &str) -> Vec<&'a str> {
    response.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
}

/// The single value of a header the backend received (panics when absent or repeated).
fn one<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
    match values(headers, name).as_slice() {
        [value] => value,
        other => panic!("expected one `{name}`, got {other:?} in {headers:?}"),
    }
}

// === hop-by-hop ===

/// Hop-by-hop headers a client may send; none may reach the upstream.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "proxy-authorization",
    "x-early",
    "x-secret",
    "x-other",
];

#[test]
fn hop_by_hop_request_headers_are_not_forwarded() {
    // A raw upstream sees the bytes themselves, whatever an HTTP library would hide.
    let upstream = RawUpstream::answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let proxy = proxy_to(upstream.addr, "", "", "");
    let response = get_with(
        proxy.addr("web"),
        "/x",
        "Host: app.test\r\n\
         X-Early: named before the Connection header\r\n\
         Connection: keep-alive, X-Secret, x-other, X-Early\r\n\
         X-Secret: s\r\n\
         X-Other: o\r\n\
         Keep-Alive: timeout=5\r\n\
         TE: trailers\r\n\
         Trailer: x-sum\r\n\
         Upgrade: websocket\r\n\
         Proxy-Connection: keep-alive\r\n\
         Proxy-Authorization: Basic Zm9vOmJhcg==\r\n\
         X-Keep: yes\r\n",
    );
    assert_eq!(response.status, 200, "{response:?}");
    let captured = upstream.connections();
    let text = String::from_utf8_lossy(&captured[0].bytes).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap();
    let names: Vec<String> =
        head.split("\r\n").skip(1).map(|l| l.split(':').next().unwrap().trim().to_ascii_lowercase()).collect();
    for name in HOP_BY_HOP {
        assert!(!names.iter().any(|n| n == name), "`{name}` reached the upstream:\n{head}");
    }
    assert!(head.starts_with("GET /x HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nx-keep: yes"), "an end-to-end header was lost:\n{head}");
    assert!(head.contains("\r\nhost: app.test"), "{head}");
}

#[test]
fn hop_by_hop_response_headers_are_not_relayed() {
    let upstream = RawUpstream::answering(
        b"HTTP/1.1 200 OK\r\nConnection: x-internal\r\nX-Internal: 1\r\nKeep-Alive: timeout=5\r\n\
          Proxy-Authenticate: Basic\r\nProxy-Connection: keep-alive\r\nTrailer: x-sum\r\nUpgrade: h2c\r\n\
          X-Public: 1\r\nContent-Length: 2\r\n\r\nok",
    );
    let proxy = proxy_to(upstream.addr, "", "", "");
    let response = get_with(proxy.addr("web"), "/x", "Host: app.test\r\n");
    assert_eq!((response.status, response.text().as_str()), (200, "ok"));
    for name in
        ["connection", "x-internal", "keep-alive", "proxy-authenticate", "proxy-connection", "trailer", "upgrade"]
    {
        assert_eq!(response.header(name), None, "`{name}` reached the client: {:?}", response.headers);
    }
    assert_eq!(response.header("x-public"), Some("1"));
}

// === Host ===

#[test]
fn host_header_is_preserved_by_default_in_the_normalized_form_routing_used() {
    let (backend, proxy) = backend_and_proxy("", "", "");
    let response = get_with(proxy.addr("web"), "/x", "Host: App.Test:8080\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(one(&backend.requests()[0].headers, "host"), "app.test:8080");
}

#[test]
fn host_header_endpoint_sends_the_endpoint_address() {
    let (backend, proxy) = backend_and_proxy("", "", "    host_header: endpoint\n");
    let recorded = forwarded(&backend, &proxy, "");
    assert_eq!(one(&recorded.headers, "host"), backend.addr.to_string());
}

#[test]
fn literal_host_header_replaces_the_clients() {
    let (backend, proxy) = backend_and_proxy("", "", "    host_header: internal.example:81\n");
    let recorded = forwarded(&backend, &proxy, "");
    assert_eq!(one(&recorded.headers, "host"), "internal.example:81");
    assert_eq!(one(&recorded.headers, "x-forwarded-host"), "app.test", "X-Forwarded-Host keeps the client's host");
}

#[test]
fn absolute_form_target_authority_becomes_the_host() {
    let (backend, proxy) = backend_and_proxy("", "", "");
    let response = get_with(proxy.addr("web"), "http://abs.test:8080/x?q=1", "Host: other.test\r\n");
    assert_eq!(response.status, 200);
    let recorded = &backend.requests()[0];
    assert_eq!(recorded.uri, "/x?q=1", "the upstream gets origin-form");
    assert_eq!(one(&recorded.headers, "host"), "abs.test:8080", "the target's authority wins over Host");
    assert_eq!(one(&recorded.headers, "x-forwarded-host"), "abs.test:8080");
}

#[test]
fn http10_request_without_host_gets_the_endpoint_address_as_host() {
    let (backend, proxy) = backend_and_proxy("", "", "");
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"GET /x HTTP/1.0\r\n\r\n");
    assert_eq!(conn.read_response().expect("response").status, 200);
    let recorded = &backend.requests()[0];
    assert_eq!(one(&recorded.headers, "host"), backend.addr.to_string());
    assert!(values(&recorded.headers, "x-forwarded-host").is_empty(), "no client host to report");
}

// === X-Forwarded-*, X-Real-IP ===

#[test]
fn x_forwarded_for_is_the_peer_unless_a_trusted_proxy_sent_a_chain() {
    let (backend, proxy) = backend_and_proxy("", "", "");
    let fresh = forwarded(&backend, &proxy, "");
    assert_eq!(one(&fresh.headers, "x-forwarded-for"), "127.0.0.1");
    let replaced = forwarded(&backend, &proxy, "X-Forwarded-For: 1.2.3.4\r\n");
    assert_eq!(one(&replaced.headers, "x-forwarded-for"), "127.0.0.1", "an untrusted client's chain is replaced");
    let (backend, proxy) = backend_and_proxy("  trusted_proxies: [127.0.0.1]\n", "", "");
    let appended = forwarded(&backend, &proxy, "X-Forwarded-For: 1.2.3.4\r\n");
    assert_eq!(one(&appended.headers, "x-forwarded-for"), "1.2.3.4, 127.0.0.1");
}

#[test]
fn untrusted_identity_claims_are_removed_in_every_spelling() {
    let (backend, proxy) = backend_and_proxy("", "", "");
    let claims = "Forwarded: for=6.6.6.6;proto=https\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /admin\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\nX-Forwarded-Server: evil\r\nX-Keep: 1\r\n";
    let recorded = forwarded(&backend, &proxy, claims);
    for name in
        ["forwarded", "x-forwarded-port", "x-forwarded-prefix", "x_forwarded_for", "x_real_ip", "x-forwarded-server"]
    {
        assert!(values(&recorded.headers, name).is_empty(), "`{name}` reached the backend: {:?}", recorded.headers);
    }
    assert_eq!(one(&recorded.headers, "x-keep"), "1");
    // From a trusted proxy they are its own business and pass.
    let (backend, proxy) = backend_and_proxy("  trusted_proxies: [127.0.0.1]\n", "", "");
    let recorded = forwarded(&backend, &proxy, "Forwarded: for=10.1.1.1\r\nX-Forwarded-Prefix: /app\r\n");
    assert_eq!(one(&recorded.headers, "forwarded"), "for=10.1.1.1");
    assert_eq!(one(&recorded.headers, "x-forwarded-prefix"), "/app");
}

#[test]
fn a_clients_request_id_is_replaced_when_not_trusted() {
    let (backend, proxy) = backend_and_proxy("  trust_request_id: false\n", "", "");
    let recorded = forwarded(&backend, &proxy, "X-Request-Id: chosen-by-client\r\n");
    let id = one(&recorded.headers, "x-request-id");
    assert_ne!(id, "chosen-by-client");
    assert_eq!(id.len(), 32);
    let (backend, proxy) = backend_and_proxy("", "", "");
    let recorded = forwarded(&backend, &proxy, "X-Request-Id: chosen-by-client\r\n");
    assert_eq!(one(&recorded.headers, "x-request-id"), "chosen-by-client", "trusted by default");
}

#[test]
fn an_http10_upstream_connection_is_never_reused() {
    let upstream = RawUpstream::answering(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok");
    let proxy = proxy_to(upstream.addr, "", "", "");
    for _ in 0..3 {
        let response = get_with(proxy.addr("web"), "/x", "Host: app.test\r\n");
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "ok");
    }
    support::wait_until("three upstream connections", || upstream.connections().len() == 3);
}

#[test]
fn multiple_x_forwarded_for_headers_are_joined_into_one() {
    let (backend, proxy) = backend_and_proxy("  trusted_proxies: [127.0.0.1]\n", "", "");
    let recorded = forwarded(
        &backend,
        &proxy,
        "X-Forwarded-For: 1.1.1.1\r\nX-A: between\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n",
    );
    assert_eq!(one(&recorded.headers, "x-forwarded-for"), "1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1");
}

#[test]
fn x_forwarded_proto_host_and_real_ip_describe_the_client_connection() {
    let (backend, proxy) = backend_and_proxy("", "", "");
    let response = get_with(proxy.addr("web"), "/x", "Host: app.test:8080\r\n");
    assert_eq!(response.status, 200);
    let headers = &backend.requests()[0].headers;
    assert_eq!(one(headers, "x-forwarded-proto"), "http");
    assert_eq!(one(headers, "x-forwarded-host"), "app.test:8080");
    assert_eq!(one(headers, "x-real-ip"), "127.0.0.1");
}

#[test]
fn untrusted_client_cannot_set_forwarding_headers() {
    let (backend, proxy) = backend_and_proxy("", "", "");
    let recorded = forwarded(
        &backend,
        &proxy,
        "X-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\nX-Forwarded-For: 9.9.9.9\r\n",
    );
    let headers = &recorded.headers;
    assert_eq!(one(headers, "x-real-ip"), "127.0.0.1", "an untrusted peer's X-Forwarded-For is not believed");
    assert_eq!(one(headers, "x-forwarded-proto"), "http");
    assert_eq!(one(headers, "x-forwarded-host"), "app.test");
    assert_eq!(one(headers, "x-forwarded-for"), "127.0.0.1", "an untrusted chain is replaced");
}

#[test]
fn trusted_peer_real_ip_is_the_rightmost_untrusted_forwarded_address() {
    let (backend, proxy) = backend_and_proxy("  trusted_proxies: [127.0.0.1]\n", "", "");
    let recorded = forwarded(&backend, &proxy, "X-Forwarded-For: 9.9.9.9, 10.0.0.1\r\nX-Real-IP: 6.6.6.6\r\n");
    assert_eq!(one(&recorded.headers, "x-real-ip"), "10.0.0.1");
    assert_eq!(one(&recorded.headers, "x-forwarded-for"), "9.9.9.9, 10.0.0.1, 127.0.0.1");

    let (backend, proxy) = backend_and_proxy("  trusted_proxies: [127.0.0.1, 10.0.0.0/8]\n", "", "");
    let recorded = forwarded(&backend, &proxy, "X-Forwarded-For: 9.9.9.9, 10.0.0.1\r\n");
    assert_eq!(one(&recorded.headers, "x-real-ip"), "9.9.9.9", "trusted hops are skipped");
}

#[test]
fn trusted_peer_keeps_its_forwarded_proto_and_host() {
    let (backend, proxy) = backend_and_proxy("  trusted_proxies: [127.0.0.0/8]\n", "", "");
    let recorded = forwarded(&backend, &proxy, "X-Forwarded-Proto: https\r\nX-Forwarded-Host: www.example.com\r\n");
    assert_eq!(one(&recorded.headers, "x-forwarded-proto"), "https");
    assert_eq!(one(&recorded.headers, "x-forwarded-host"), "www.example.com");
    // Without them, the proxy adds its own.
    let recorded = forwarded(&backend, &proxy, "");
    assert_eq!(one(&recorded.headers, "x-forwarded-proto"), "http");
    assert_eq!(one(&recorded.headers, "x-forwarded-host"), "app.test");
}

#[test]
fn forwarded_headers_false_adds_none() {
    let (backend, proxy) = backend_and_proxy("  forwarded_headers: false\n", "", "");
    let recorded = forwarded(&backend, &proxy, "");
    for name in ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip"] {
        assert!(values(&recorded.headers, name).is_empty(), "`{name}` was added: {:?}", recorded.headers);
    }
    // What the client sent is an ordinary header then, passed on as it is.
    let recorded = forwarded(&backend, &proxy, "X-Forwarded-For: 1.2.3.4\r\n");
    assert_eq!(one(&recorded.headers, "x-forwarded-for"), "1.2.3.4");
}

// === request id ===

/// Whether `id` is 32 lower-case hex digits.
fn is_generated_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn request_id_is_generated_when_missing_and_passed_on_when_present() {
    let (backend, proxy) = backend_and_proxy("", "", "");
    let first = forwarded(&backend, &proxy, "");
    let second = forwarded(&backend, &proxy, "");
    let (first, second) = (one(&first.headers, "x-request-id"), one(&second.headers, "x-request-id"));
    assert!(is_generated_id(first), "{first:?}");
    assert!(is_generated_id(second), "{second:?}");
    assert_ne!(first, second, "each request gets its own id");

    let given = forwarded(&backend, &proxy, "X-Request-Id: client-chosen.42\r\n");
    assert_eq!(one(&given.headers, "x-request-id"), "client-chosen.42");
}

#[test]
fn request_id_appears_in_strait_own_answers() {
    let (_backend, proxy) = backend_and_proxy("", "", "");
    let given = get_with(proxy.addr("web"), "/local", "Host: app.test\r\nX-Request-Id: abc-123\r\n");
    assert_eq!((given.status, given.header("x-strait-reason")), (404, Some("no_route")));
    assert_eq!(response_values(&given, "x-request-id"), ["abc-123"]);
    let generated = get_with(proxy.addr("web"), "/local", "Host: app.test\r\n");
    let id = generated.header("x-request-id").expect("a generated id");
    assert!(is_generated_id(id), "{id:?}");
}

#[test]
fn request_id_false_adds_none() {
    let (backend, proxy) = backend_and_proxy("  request_id: false\n", "", "");
    let recorded = forwarded(&backend, &proxy, "");
    assert!(values(&recorded.headers, "x-request-id").is_empty(), "{:?}", recorded.headers);
    let local = get_with(proxy.addr("web"), "/local", "Host: app.test\r\n");
    assert_eq!(local.status, 404);
    assert_eq!(local.header("x-request-id"), None);
}

// === Via ===

#[test]
fn via_is_added_both_ways_after_any_existing_one() {
    let backend = Backend::start(|_| Reply::text("ok").header("via", "1.1 origin-cache"));
    let proxy = proxy_to(backend.addr, "  via: true\n", "", "");
    let response = get_with(proxy.addr("web"), "/x", "Host: app.test\r\nVia: 1.0 edge\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(values(&backend.requests()[0].headers, "via").join(", "), "1.0 edge, 1.1 strait");
    assert_eq!(response_values(&response, "via").join(", "), "1.1 origin-cache, 1.1 strait");

    let response = get_with(proxy.addr("web"), "/x", "Host: app.test\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(values(&backend.requests()[1].headers, "via"), ["1.1 strait"]);
}

#[test]
fn via_is_not_added_by_default() {
    let (backend, proxy) = backend_and_proxy("", "", "");
    let response = get_with(proxy.addr("web"), "/x", "Host: app.test\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("via"), None);
    assert!(values(&backend.requests()[0].headers, "via").is_empty());
}

// === Strait's own answers ===

#[test]
fn reason_header_false_removes_x_strait_reason() {
    let (_backend, proxy) = backend_and_proxy("  reason_header: false\n", "", "");
    let no_route = get_with(proxy.addr("web"), "/local", "Host: app.test\r\n");
    assert_eq!(no_route.status, 404);
    assert_eq!(no_route.header("x-strait-reason"), None, "{no_route:?}");
    // A refused head too.
    let bad = get_with(proxy.addr("web"), "/x", "Host: a\r\nHost: b\r\n");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.header("x-strait-reason"), None, "{bad:?}");
}

#[test]
fn strait_own_answers_carry_a_current_date() {
    let (_backend, proxy) = backend_and_proxy("", "", "");
    let no_route = get_with(proxy.addr("web"), "/local", "Host: app.test\r\n");
    let refused = get_with(proxy.addr("web"), "/x", "Host: a\r\nHost: b\r\n");
    for response in [no_route, refused] {
        let date = response.header("date").unwrap_or_else(|| panic!("no Date: {response:?}"));
        let date = httpdate::parse_http_date(date).unwrap_or_else(|e| panic!("bad Date {date:?}: {e}"));
        let now = SystemTime::now();
        let skew = now.duration_since(date).unwrap_or_else(|e| e.duration());
        assert!(skew < Duration::from_secs(5), "Date is {skew:?} away from now");
    }
}

// === header edits ===

#[test]
fn request_header_edits_reach_the_backend() {
    let (backend, proxy) = backend_and_proxy(
        "",
        "        request_headers:\n          set: { x-env: production }\n          add: { x-tag: from-proxy }\n\
         \x20         remove: [x-internal]\n",
        "",
    );
    let recorded =
        forwarded(&backend, &proxy, "X-Env: dev\r\nX-Env: test\r\nX-Tag: from-client\r\nX-Internal: secret\r\n");
    assert_eq!(values(&recorded.headers, "x-env"), ["production"], "set replaces every value");
    assert_eq!(values(&recorded.headers, "x-tag"), ["from-client", "from-proxy"], "add appends");
    assert!(values(&recorded.headers, "x-internal").is_empty(), "remove removes");
}
