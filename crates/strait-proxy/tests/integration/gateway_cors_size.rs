//! The `cors` and `request_size_limiting` filters end to end, with raw HTTP/1.1 requests:
//! preflights answered or refused, CORS fields on upstream and local answers, and bodies
//! refused by their declared length, their `Expect`, or as they stream.

use crate::support;

use support::{raw_request, Backend, Proxy, RawConn, RawResponse, RawUpstream, Reply};

/// A proxy whose `web` listener has these routes (YAML list items, indented by six), in front
/// of the cluster `app` at `upstream`.
fn proxy(upstream: std::net::SocketAddr, routes: &str) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n{routes}clusters:\n  - name: app\n    endpoints: [{{ address: \"{upstream}\" }}]\n"
    ))
}

/// Sends one request: the request line, then `headers` (each ending in CRLF), then `body`.
fn send(proxy: &Proxy, line: &str, headers: &str, body: &[u8]) -> RawResponse {
    let mut bytes = format!("{line} HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n{headers}\r\n").into_bytes();
    bytes.extend_from_slice(body);
    raw_request(proxy.addr("web"), &bytes).expect("a response")
}

/// Every value of a response field, in order.
fn all<'r>(response: &'r RawResponse, name: &str) -> Vec<&'r str> {
    response.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
}

/// Whether the response carries any `Access-Control-*` field.
fn has_cors_fields(response: &RawResponse) -> bool {
    response.headers.iter().any(|(name, _)| name.starts_with("access-control-"))
}

// === cors ===

/// Routes: `/strict` (listed origins, a regex, credentials), `/open` (defaults: every origin),
/// `/continue` (preflights go upstream) and `/files` (static files, a local 404).
fn cors_routes(root: &str) -> String {
    format!(
        r#"      - match: {{ path: {{ prefix: /strict }} }}
        filters:
          - name: cors
            config:
              origins: ["https://app.test", "~https://[a-z]+\\.shop\\.test"]
              methods: [GET, PUT]
              headers: [x-token]
              exposed_headers: [x-total, x-page]
              credentials: true
              max_age: 600
        forward: {{ cluster: app }}
      - match: {{ path: {{ prefix: /open }} }}
        filters: [{{ name: cors }}]
        forward: {{ cluster: app }}
      - match: {{ path: {{ prefix: /continue }} }}
        filters: [{{ name: cors, config: {{ preflight_continue: true }} }}]
        forward: {{ cluster: app }}
      - match: {{ path: {{ prefix: /files }} }}
        filters: [{{ name: cors, config: {{ origins: ["https://app.test"], credentials: true }} }}]
        static: {{ root: "{root}" }}
"#
    )
}

fn preflight(origin: &str, method: &str, headers: Option<&str>) -> String {
    let mut fields = format!("Origin: {origin}\r\nAccess-Control-Request-Method: {method}\r\n");
    if let Some(headers) = headers {
        fields.push_str(&format!("Access-Control-Request-Headers: {headers}\r\n"));
    }
    fields
}

#[test]
fn preflights_are_answered_by_strait_or_refused() {
    let backend = Backend::start(|_| Reply::text("upstream"));
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy(backend.addr, &cors_routes(dir.path().to_str().unwrap()));

    let allowed = send(&proxy, "OPTIONS /strict/items", &preflight("https://app.test", "PUT", Some("X-Token")), b"");
    assert_eq!(allowed.status, 204);
    assert_eq!(allowed.header("access-control-allow-origin"), Some("https://app.test"));
    assert_eq!(allowed.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(allowed.header("access-control-allow-methods"), Some("GET,PUT"));
    assert_eq!(allowed.header("access-control-allow-headers"), Some("x-token"));
    assert_eq!(allowed.header("access-control-max-age"), Some("600"));
    assert_eq!(all(&allowed, "vary"), ["Origin"]);

    let by_regex = send(&proxy, "OPTIONS /strict/items", &preflight("https://red.shop.test", "GET", None), b"");
    assert_eq!(by_regex.status, 204);
    assert_eq!(by_regex.header("access-control-allow-origin"), Some("https://red.shop.test"));

    for fields in [
        preflight("https://evil.test", "GET", None),
        preflight("https://red.shop.test.evil.test", "GET", None),
        preflight("https://app.test", "DELETE", None),
        preflight("https://app.test", "GET", Some("x-token, x-secret")),
    ] {
        let refused = send(&proxy, "OPTIONS /strict/items", &fields, b"");
        assert_eq!(refused.status, 403, "{fields}");
        assert_eq!(refused.header("x-strait-reason"), Some("cors_rejected"), "{fields}");
        assert!(!has_cors_fields(&refused), "{fields}: {:?}", refused.headers);
    }

    // Every origin by default: `*` (no credentials), and the requested headers echoed.
    let open = send(&proxy, "OPTIONS /open", &preflight("https://any.test", "PATCH", Some("x-a, x-b")), b"");
    assert_eq!(open.status, 204);
    assert_eq!(open.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        open.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT")
    );
    assert_eq!(open.header("access-control-allow-headers"), Some("x-a, x-b"));
    assert_eq!(backend.count(), 0, "no preflight so far reached the upstream");

    // `preflight_continue`: the upstream answers, untouched.
    let passed = send(&proxy, "OPTIONS /continue", &preflight("https://any.test", "PUT", None), b"");
    assert_eq!(passed.status, 200);
    assert_eq!(passed.text(), "upstream");
    assert!(!has_cors_fields(&passed), "{:?}", passed.headers);
    let recorded = backend.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "OPTIONS");
    assert_eq!(recorded[0].headers["access-control-request-method"], "PUT");
}

#[test]
fn actual_responses_get_the_origin_credentials_exposed_headers_and_vary() {
    let backend = Backend::start(|_| Reply::text("data").header("vary", "Accept-Encoding").header("x-total", "7"));
    let dir = tempfile::tempdir().unwrap();
    let proxy = proxy(backend.addr, &cors_routes(dir.path().to_str().unwrap()));

    let got = send(&proxy, "GET /strict/items", "Origin: https://app.test\r\n", b"");
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "data");
    assert_eq!(got.header("access-control-allow-origin"), Some("https://app.test"), "never `*` with credentials");
    assert_eq!(got.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(got.header("access-control-expose-headers"), Some("x-total,x-page"));
    assert_eq!(all(&got, "vary"), ["Accept-Encoding", "Origin"], "appended to the upstream's Vary");
    assert_eq!(backend.requests()[0].headers["origin"], "https://app.test", "the request goes on as it came");

    let by_regex = send(&proxy, "GET /strict/items", "Origin: https://blue.shop.test\r\n", b"");
    assert_eq!(by_regex.header("access-control-allow-origin"), Some("https://blue.shop.test"));

    // Another origin is served (the browser keeps the answer from the page) without CORS fields.
    let other = send(&proxy, "GET /strict/items", "Origin: https://evil.test\r\n", b"");
    assert_eq!(other.status, 200);
    assert!(!has_cors_fields(&other), "{:?}", other.headers);
    assert_eq!(all(&other, "vary"), ["Accept-Encoding", "Origin"]);

    // Every origin allowed, without credentials: `*`.
    let open = send(&proxy, "GET /open", "Origin: https://any.test\r\n", b"");
    assert_eq!(open.header("access-control-allow-origin"), Some("*"));
    assert_eq!(open.header("access-control-allow-credentials"), None);

    // No `Origin`: no CORS field, the request untouched; only `Vary` tells caches the answer depends on it.
    let plain = send(&proxy, "GET /strict/items", "", b"");
    assert_eq!(plain.status, 200);
    assert!(!has_cors_fields(&plain), "{:?}", plain.headers);
    assert_eq!(all(&plain, "vary"), ["Accept-Encoding", "Origin"]);
    let recorded = backend.requests();
    let last = recorded.last().unwrap();
    assert!(last.headers.keys().all(|name| name != "origin" && !name.as_str().starts_with("access-control-")));
    assert_eq!(recorded.len(), 5);
}

#[test]
fn local_answers_of_a_route_with_cors_carry_its_fields() {
    let backend = Backend::start(|_| Reply::text("unused"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("files")).unwrap();
    std::fs::write(dir.path().join("files/here.txt"), "here").unwrap();
    let proxy = proxy(backend.addr, &cors_routes(dir.path().to_str().unwrap()));

    let missing = send(&proxy, "GET /files/missing.txt", "Origin: https://app.test\r\n", b"");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-strait-reason"), Some("file_not_found"));
    assert_eq!(missing.header("access-control-allow-origin"), Some("https://app.test"));
    assert_eq!(missing.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(all(&missing, "vary"), ["Origin"]);

    let found = send(&proxy, "GET /files/here.txt", "Origin: https://app.test\r\n", b"");
    assert_eq!(found.status, 200);
    assert_eq!(found.text(), "here");
    assert_eq!(found.header("access-control-allow-origin"), Some("https://app.test"));
    assert_eq!(backend.count(), 0);
}

// === request_size_limiting ===

/// Routes: `/upload` (1 KiB, with `cors`) and `/strict` (1 KiB, a declared length required).
const SIZE_ROUTES: &str = r#"      - match: { path: { prefix: /upload } }
        filters:
          - name: cors
            config: { origins: ["https://app.test"] }
          - name: request_size_limiting
            config: { allowed_payload_size: 1, size_unit: kilobytes }
        forward: { cluster: app }
      - match: { path: { prefix: /strict } }
        filters:
          - name: request_size_limiting
            config: { allowed_payload_size: 1024, size_unit: bytes, require_content_length: true }
        forward: { cluster: app }
"#;

#[test]
fn declared_lengths_over_the_limit_are_refused_before_anything_is_forwarded() {
    let backend = Backend::start(|r| Reply::text(&format!("got {}", r.body_len)));
    let proxy = proxy(backend.addr, SIZE_ROUTES);

    let within = send(&proxy, "POST /upload", "Content-Length: 1024\r\n", &[b'a'; 1024]);
    assert_eq!(within.status, 200);
    assert_eq!(within.text(), "got 1024");
    assert_eq!(backend.requests()[0].headers["content-length"], "1024", "the declared length goes on");

    let over = send(&proxy, "POST /upload", "Content-Length: 1025\r\nOrigin: https://app.test\r\n", &[b'a'; 1025]);
    assert_eq!(over.status, 413);
    assert_eq!(over.header("x-strait-reason"), Some("body_too_large"));
    assert_eq!(over.header("access-control-allow-origin"), Some("https://app.test"), "a local answer gets CORS fields");

    // `Expect: 100-continue` with a length over the limit: 417 first, and no `100 Continue`.
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"POST /upload HTTP/1.1\r\nHost: api.test\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n");
    let (status, fields) = conn.read_head().expect("an answer");
    assert_eq!(status, 417, "{fields:?}");
    assert!(fields.iter().any(|(n, v)| n == "x-strait-reason" && v == "expectation_failed"), "{fields:?}");

    // Within the limit, the expectation is met and the body goes on.
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"POST /upload HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let (status, _) = conn.read_head().expect("an interim answer");
    assert_eq!(status, 100);
    conn.send(b"hello");
    let answer = conn.read_response().expect("an answer");
    assert_eq!(answer.text(), "got 5");
    assert_eq!(backend.count(), 2, "refused bodies never reached the upstream");
}

#[test]
fn a_chunked_body_is_refused_when_it_grows_past_the_limit() {
    let upstream = RawUpstream::silent();
    let proxy = proxy(upstream.addr, SIZE_ROUTES);
    let mut body = Vec::new();
    for (byte, len) in [(b'a', 600usize), (b'b', 600)] {
        body.extend_from_slice(format!("{len:x}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(byte, len));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let refused = send(&proxy, "POST /upload", "Transfer-Encoding: chunked\r\n", &body);
    assert_eq!(refused.status, 413);
    assert_eq!(refused.header("x-strait-reason"), Some("body_too_large"));
    // Whatever reached the upstream stops before the limit: the chunk that crossed it, and the
    // body's end, never went out, and the unfinished request's connection is closed.
    support::wait_until("the upstream connection to close", || upstream.connections().iter().all(|c| c.closed));
    for conn in upstream.connections() {
        let head_end = conn.bytes.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |i| i + 4);
        let forwarded = &conn.bytes[head_end..];
        assert!(!forwarded.contains(&b'b'), "the chunk over the limit was forwarded");
        assert!(!forwarded.ends_with(b"0\r\n\r\n"), "the body was forwarded whole");
    }
}

#[test]
fn a_declared_length_can_be_required() {
    let backend = Backend::start(|r| Reply::text(&format!("got {}", r.body_len)));
    let proxy = proxy(backend.addr, SIZE_ROUTES);

    let chunked = send(&proxy, "POST /strict", "Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(chunked.status, 411);
    assert_eq!(chunked.header("x-strait-reason"), Some("length_required"));
    let declared = send(&proxy, "POST /strict", "Content-Length: 5\r\n", b"hello");
    assert_eq!(declared.text(), "got 5");
    let bodyless = send(&proxy, "GET /strict", "", b"");
    assert_eq!(bodyless.status, 200, "a request without a body has nothing to declare");
    assert_eq!(backend.count(), 2);

    // Without the requirement, a small chunked body streams through whole.
    let streamed = send(&proxy, "POST /upload", "Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(streamed.text(), "got 5");
    assert_eq!(backend.count(), 3);
}

/// A request body sent as these frames; its length is announced only when `declared`.
struct Frames {
    frames: std::collections::VecDeque<bytes::Bytes>,
    declared: bool,
}

impl Frames {
    fn new(lengths: &[usize], declared: bool) -> Frames {
        Frames { frames: lengths.iter().map(|n| bytes::Bytes::from(vec![b'x'; *n])).collect(), declared }
    }
}

impl http_body::Body for Frames {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.frames.pop_front().map(|data| Ok(http_body::Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.declared {
            http_body::SizeHint::with_exact(self.frames.iter().map(|f| f.len() as u64).sum())
        } else {
            http_body::SizeHint::default()
        }
    }
}

#[test]
fn http2_bodies_are_limited_by_their_content_length_or_as_they_stream() {
    let backend = Backend::start(|r| Reply::text(&format!("got {}", r.body_len)));
    let proxy = Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    http2: true\n    routes:\n{SIZE_ROUTES}clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr
    ));
    let post = |path: &str, body: Frames| http::Request::post(format!("http://api.test{path}")).body(body).unwrap();
    let requests = vec![
        post("/upload", Frames::new(&[2000], true)),
        post("/upload", Frames::new(&[600, 600], false)),
        post("/upload", Frames::new(&[100, 100], false)),
        post("/strict", Frames::new(&[10], false)),
        post("/strict", Frames::new(&[10], true)),
    ];
    let addr = proxy.addr("web");
    let got = support::pki::runtime().block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        support::pki::http2_requests(tcp, requests).await
    });
    let answers: Vec<(u16, Option<&str>)> = got
        .iter()
        .map(|g| (g.parts.status.as_u16(), g.parts.headers.get("x-strait-reason").map(|v| v.to_str().unwrap())))
        .collect();
    assert_eq!(
        answers,
        [
            (413, Some("body_too_large")),
            (413, Some("body_too_large")),
            (200, None),
            (411, Some("length_required")),
            (200, None)
        ]
    );
    assert_eq!(got[2].body, "got 200");
    assert_eq!(got[4].body, "got 10");
    assert!(backend.requests().iter().all(|r| r.body_len <= 1024), "no oversized body reached the backend");
}

#[test]
fn a_route_size_limit_sees_the_declared_length_behind_listener_filters() {
    let backend = Backend::start(|r| Reply::text(&format!("got {}", r.body_len)));
    // The listener's filter reads no body: the route's limit must still be told the length.
    let proxy = Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    filters:\n      - {{ name: cors, config: {{ origins: [\"https://app.test\"] }} }}\n    routes:\n{SIZE_ROUTES}clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr
    ));
    let declared = send(&proxy, "POST /strict", "Content-Length: 10\r\n", b"0123456789");
    assert_eq!((declared.status, declared.text().as_str()), (200, "got 10"), "a declared length is not 411");
    let over = send(&proxy, "POST /strict", "Content-Length: 1025\r\n", &[b'a'; 1025]);
    assert_eq!((over.status, over.header("x-strait-reason")), (413, Some("body_too_large")));
    assert_eq!(backend.count(), 1, "the oversized body never reached the upstream");
}
