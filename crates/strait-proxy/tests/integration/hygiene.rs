//! Request hygiene end to end: malformed, ambiguous (smuggling) and oversized requests are refused and never reach the upstream complete, and pipelines stay in step.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use sha2::Digest;
use support::{Backend, Proxy, RawConn, RawResponse, RawUpstream, Reply};

// === helpers ===

/// Limits small enough to reach with a few KiB.
const LIMITS: &str =
    "  limits: { max_header_bytes: 4KiB, max_uri_bytes: 1KiB, max_headers: 20, max_body_bytes: 1KiB }\n";

/// A proxy whose listener `web` forwards everything to `upstream`; `server` holds extra
/// lines of the `server` section (indented 2).
fn proxy_to(upstream: SocketAddr, server: &str) -> Proxy {
    Proxy::start(&format!(
        "workers: 1\nserver:\n{LIMITS}{server}listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n\
         \x20     - forward: {{ cluster: app }}\nclusters:\n  - name: app\n    endpoints: [{{ address: \"{upstream}\" }}]\n"
    ))
}

/// A backend answering `<method> <uri>` and a proxy in front of it.
fn backend_and_proxy() -> (Backend, Proxy) {
    let backend = Backend::start(|r| Reply::text(&format!("{} {}", r.method, r.uri)));
    let proxy = proxy_to(backend.addr, "");
    (backend, proxy)
}

/// How long the proxy may take to close a connection it has given up.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Sends `bytes` on a new connection and reads one response; the connection is returned to
/// check what happens next.
fn send(addr: SocketAddr, bytes: &[u8]) -> (RawResponse, RawConn) {
    let mut conn = RawConn::connect(addr);
    conn.send(bytes);
    let response =
        conn.read_response().unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(bytes)));
    (response, conn)
}

/// Sends `bytes` on a new connection; returns the response and whether the proxy then closed
/// the connection without sending anything more.
fn send_then_closed(addr: SocketAddr, bytes: &[u8]) -> (RawResponse, bool) {
    let (response, mut conn) = send(addr, bytes);
    (response, conn.closes_within(CLOSE_WAIT))
}

/// Asserts that `response` is Strait's own refusal with this status and reason, announcing
/// that the connection closes.
fn assert_refusal(response: &RawResponse, status: u16, reason: &str, what: &str) {
    assert_eq!(response.status, status, "{what}: {response:?}");
    assert_eq!(response.header("x-strait-reason"), Some(reason), "{what}: {response:?}");
    assert_eq!(response.header("connection"), Some("close"), "{what}: {response:?}");
}

/// Sends each request on its own connection and asserts the refusal, the close, and that the
/// backend never even got a connection.
fn assert_all_refused(cases: &[(&str, &[u8])], status: u16, reason: &str) {
    let (backend, proxy) = backend_and_proxy();
    for (what, bytes) in cases {
        let (response, closed) = send_then_closed(proxy.addr("web"), bytes);
        assert_refusal(&response, status, reason, what);
        assert!(closed, "{what}: the connection stayed open after the refusal");
    }
    assert_eq!(backend.count(), 0, "the backend received a request: {:?}", backend.requests());
    assert_eq!(backend.connections(), 0, "the proxy connected to the backend");
}

/// Whether `body` holds a complete chunked body (up to and including the last chunk).
fn is_complete_chunked(mut body: &[u8]) -> bool {
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else { return false };
        let Ok(size) = std::str::from_utf8(&body[..line_end]).map(|l| l.split(';').next().unwrap_or("").trim()) else {
            return false;
        };
        let Ok(size) = usize::from_str_radix(size, 16) else { return false };
        body = &body[line_end + 2..];
        if size == 0 {
            return true;
        }
        if body.len() < size + 2 {
            return false;
        }
        body = &body[size + 2..];
    }
}

// === framing: Content-Length and Transfer-Encoding ===

#[test]
fn content_length_with_transfer_encoding_gets_400() {
    assert_all_refused(
        &[
            (
                "CL then TE",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ),
            (
                "TE then CL",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            ),
            (
                "CL 0 and TE",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ),
        ],
        400,
        "bad_request",
    );
}

#[test]
fn repeated_or_listed_content_length_gets_400_even_when_equal() {
    assert_all_refused(
        &[
            ("equal", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
            ("different", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
            ("list", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello"),
        ],
        400,
        "bad_request",
    );
}

#[test]
fn content_length_that_is_not_plain_digits_gets_400() {
    assert_all_refused(
        &[
            ("negative", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\nhello"),
            ("plus sign", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello"),
            ("hex", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello"),
            ("empty", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \r\n\r\n"),
            ("decimal point", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5.0\r\n\r\nhello"),
            ("overflow", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n"),
        ],
        400,
        "bad_request",
    );
}

#[test]
fn transfer_encoding_not_ending_in_a_single_chunked_gets_400() {
    assert_all_refused(
        &[
            ("chunked, identity", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
            ("identity", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\nhello"),
            ("xchunked", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
            ("chunked twice", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
            (
                "chunked then identity in two fields",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
            ),
            ("empty", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \r\n\r\n"),
        ],
        400,
        "bad_request",
    );
}

#[test]
fn unknown_coding_before_chunked_gets_501() {
    assert_all_refused(
        &[
            ("gzip, chunked", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
            (
                "two fields",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ),
        ],
        501,
        "unsupported_transfer_encoding",
    );
}

#[test]
fn transfer_encoding_on_http10_gets_400() {
    assert_all_refused(
        &[("HTTP/1.0 chunked", b"POST / HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")],
        400,
        "bad_request",
    );
}

// === host ===

#[test]
fn two_host_headers_or_none_on_http11_get_400() {
    assert_all_refused(
        &[
            ("two hosts", b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"),
            ("two equal hosts", b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n"),
            ("no host", b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n"),
        ],
        400,
        "bad_request",
    );
}

// === syntax ===

#[test]
fn control_characters_in_a_header_value_get_400() {
    assert_all_refused(
        &[
            ("SOH", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n"),
            ("DEL", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x7fb\r\n\r\n"),
            ("bare CR", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n"),
            ("NUL", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n"),
        ],
        400,
        "bad_request",
    );
}

#[test]
fn whitespace_before_colon_or_obs_fold_gets_400() {
    assert_all_refused(
        &[
            ("space before colon", b"GET / HTTP/1.1\r\nHost: t\r\nX-A : 1\r\n\r\n"),
            ("tab before colon", b"GET / HTTP/1.1\r\nHost: t\r\nX-A\t: 1\r\n\r\n"),
            ("obs-fold", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n folded\r\n\r\n"),
            ("obs-fold with tab", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n\tfolded\r\n\r\n"),
        ],
        400,
        "bad_request",
    );
}

#[test]
fn nul_or_junk_in_the_request_line_gets_400() {
    assert_all_refused(
        &[
            ("NUL in target", b"GET /a\x00b HTTP/1.1\r\nHost: t\r\n\r\n"),
            ("NUL in method", b"G\x00T / HTTP/1.1\r\nHost: t\r\n\r\n"),
            ("unknown version", b"GET / HTTP/1.2\r\nHost: t\r\n\r\n"),
            ("space in target", b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n"),
        ],
        400,
        "bad_request",
    );
}

// === chunked body syntax ===

#[test]
fn malformed_chunked_body_gets_400_and_the_upstream_never_gets_a_complete_request() {
    let cases: [(&str, &[u8]); 5] = [
        ("invalid chunk size", b"zz\r\nhello\r\n0\r\n\r\n"),
        ("hex prefix in chunk size", b"0x5\r\nhello\r\n0\r\n\r\n"),
        ("chunk size overflow", b"100000000000000005\r\nhello\r\n0\r\n\r\n"),
        ("bare LF after chunk size", b"5\nhello\r\n0\r\n\r\n"),
        ("no CRLF after chunk data", b"5\r\nhelloXX0\r\n\r\n"),
    ];
    let upstream = RawUpstream::silent();
    let proxy = proxy_to(upstream.addr, "");
    for (i, (what, body)) in cases.iter().enumerate() {
        let mut request = format!("POST /c{i} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
        request.extend_from_slice(body);
        let (response, closed) = send_then_closed(proxy.addr("web"), &request);
        assert_refusal(&response, 400, "bad_request", what);
        assert!(closed, "{what}: the client connection stayed open");
        // The proxy streams the head before the body is known bad; it must then give up the
        // upstream connection, never completing the request on it.
        support::wait_until("the upstream connection to be closed", || {
            upstream.connections().get(i).is_some_and(|c| c.closed)
        });
        let captured = &upstream.connections()[i];
        let text = String::from_utf8_lossy(&captured.bytes);
        let head_end = text.find("\r\n\r\n").map_or(0, |p| p + 4);
        assert!(text.starts_with(&format!("POST /c{i} HTTP/1.1\r\n")), "{what}: {text:?}");
        assert!(
            !is_complete_chunked(&captured.bytes[head_end..]),
            "{what}: the upstream got a complete body: {text:?}"
        );
    }
    assert_eq!(upstream.connections().len(), cases.len(), "one upstream connection per request, none reused");
}

// === limits ===

/// A GET whose head is exactly `len` bytes long (padded with one header).
fn head_of_len(len: usize) -> Vec<u8> {
    let fixed = "GET /h HTTP/1.1\r\nHost: t\r\nX-Pad: \r\n\r\n".len();
    format!("GET /h HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n", "p".repeat(len - fixed)).into_bytes()
}

#[test]
fn head_larger_than_max_header_bytes_gets_431() {
    let (backend, proxy) = backend_and_proxy();
    let (fits, _) = send(proxy.addr("web"), &head_of_len(4096));
    assert_eq!(fits.status, 200, "a head of exactly max_header_bytes passes: {fits:?}");
    assert_eq!(backend.count(), 1);

    let (response, closed) = send_then_closed(proxy.addr("web"), &head_of_len(4097));
    assert_refusal(&response, 431, "header_too_large", "one byte over");
    assert!(closed);
    // A head that never ends is refused once it outgrows the limit, without waiting for it.
    let endless = format!("GET /h HTTP/1.1\r\nHost: t\r\nX-Big: {}", "v".repeat(6000));
    let (response, closed) = send_then_closed(proxy.addr("web"), endless.as_bytes());
    assert_refusal(&response, 431, "header_too_large", "incomplete head over the limit");
    assert!(closed);
    assert_eq!(backend.count(), 1, "only the head within the limit reached the backend");
}

#[test]
fn more_headers_than_max_headers_gets_431() {
    let (backend, proxy) = backend_and_proxy();
    let request = |n: usize| {
        let extra: String = (1..n).map(|i| format!("X-H{i}: {i}\r\n")).collect();
        format!("GET /n{n} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").into_bytes()
    };
    let (fits, _) = send(proxy.addr("web"), &request(20));
    assert_eq!(fits.status, 200, "exactly max_headers headers pass: {fits:?}");
    let (response, closed) = send_then_closed(proxy.addr("web"), &request(21));
    assert_refusal(&response, 431, "header_too_large", "one header too many");
    assert!(closed);
    let uris: Vec<String> = backend.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, ["/n20"]);
}

#[test]
fn request_target_longer_than_max_uri_bytes_gets_414() {
    let (backend, proxy) = backend_and_proxy();
    let target = |len: usize| format!("/{}", "u".repeat(len - 1));
    let (fits, _) = send(proxy.addr("web"), format!("GET {} HTTP/1.1\r\nHost: t\r\n\r\n", target(1024)).as_bytes());
    assert_eq!(fits.status, 200, "a target of exactly max_uri_bytes passes");

    let complete = format!("GET {} HTTP/1.1\r\nHost: t\r\n\r\n", target(1025));
    let (response, closed) = send_then_closed(proxy.addr("web"), complete.as_bytes());
    assert_refusal(&response, 414, "uri_too_long", "complete request line");
    assert!(closed);

    // A request line that never ends, longer than the whole head may be: 414 at once (the
    // default client_header timeout of 10 s would give 408).
    let incomplete = format!("GET {}", target(6000));
    let (response, closed) = send_then_closed(proxy.addr("web"), incomplete.as_bytes());
    assert_refusal(&response, 414, "uri_too_long", "incomplete request line");
    assert!(closed);
    assert_eq!(backend.count(), 1, "only the target within the limit reached the backend");
}

#[test]
fn content_length_over_max_body_bytes_gets_413_before_the_body_is_read() {
    let (backend, proxy) = backend_and_proxy();
    let mut conn = RawConn::connect(proxy.addr("web"));
    // The head alone: the proxy must refuse on the announced length, not wait for the body.
    conn.send(b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n");
    let response = conn.read_response().expect("413");
    assert_refusal(&response, 413, "body_too_large", "1025 bytes announced");
    assert!(conn.closes_within(CLOSE_WAIT), "the unread body would be taken for a request: the connection closes");
    assert_eq!(backend.count(), 0);
    assert_eq!(backend.connections(), 0);
}

// === pipelining ===

/// Smuggling shapes: each request's framing is ambiguous, and the bytes after its head would
/// be a `GET /admin` request for a parser that read the framing one way.
const SMUGGLED: [(&str, &str); 6] = [
    (
        "CL.TE",
        "POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
         GET /admin HTTP/1.1\r\nHost: t\r\n\r\n",
    ),
    (
        "TE.CL",
        "POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n\
         2c\r\nGET /admin HTTP/1.1\r\nHost: t\r\nX-Pad: 123\r\n\r\n\r\n0\r\n\r\n",
    ),
    (
        "CL.CL",
        "POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 32\r\n\r\n\
         GET /admin HTTP/1.1\r\nHost: t\r\n\r\n",
    ),
    (
        "obfuscated TE",
        "POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n\
         GET /admin HTTP/1.1\r\nHost: t\r\n\r\n",
    ),
    (
        "TE with space before colon",
        "POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n\
         GET /admin HTTP/1.1\r\nHost: t\r\n\r\n",
    ),
    (
        "TE in an obs-fold",
        "POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
         GET /admin HTTP/1.1\r\nHost: t\r\n\r\n",
    ),
];

#[test]
fn smuggled_request_after_a_valid_one_never_reaches_the_backend() {
    let (backend, proxy) = backend_and_proxy();
    for (what, smuggled) in SMUGGLED {
        let mut conn = RawConn::connect(proxy.addr("web"));
        conn.send(format!("GET /first HTTP/1.1\r\nHost: t\r\n\r\n{smuggled}").as_bytes());
        let first = conn.read_response().unwrap_or_else(|| panic!("{what}: first response"));
        assert_eq!((first.status, first.text().as_str()), (200, "GET /first"), "{what}");
        let second = conn.read_response().unwrap_or_else(|| panic!("{what}: second response"));
        assert_refusal(&second, 400, "bad_request", what);
        assert!(conn.closes_within(CLOSE_WAIT), "{what}: the connection stayed open after the refusal");
    }
    let uris: Vec<String> = backend.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, vec!["/first"; SMUGGLED.len()], "only the valid requests reached the backend");
}

#[test]
fn valid_pipelined_requests_are_forwarded_separately_with_normalized_framing() {
    let backend = Backend::start(|r| Reply::text(&format!("{} {} {}", r.method, r.uri, r.body_len)));
    let proxy = proxy_to(backend.addr, "");
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(
        b"POST /one HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n\
          POST /two HTTP/1.1\r\nHost: t\r\nContent-Length: 003\r\n\r\nabc\
          GET /three HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    for want in ["POST /one 5", "POST /two 3", "GET /three 0"] {
        let response = conn.read_response().unwrap_or_else(|| panic!("response to {want}"));
        assert_eq!((response.status, response.text()), (200, want.to_owned()));
    }
    assert!(!conn.closes_within(Duration::from_millis(100)), "a valid pipeline keeps the connection open");

    let recorded = backend.requests();
    assert_eq!(recorded.len(), 3, "{recorded:?}");
    let one = &recorded[0];
    assert_eq!((one.uri.as_str(), one.body_len), ("/one", 5));
    assert_eq!(one.body_sha256, support::hex(&sha2::Sha256::digest(b"hello")));
    assert_eq!(one.headers.get("transfer-encoding").map(|v| v.as_bytes()), Some(&b"chunked"[..]));
    assert!(one.headers.get("content-length").is_none());
    let two = &recorded[1];
    assert_eq!((two.uri.as_str(), two.body_len), ("/two", 3));
    assert_eq!(two.body_sha256, support::hex(&sha2::Sha256::digest(b"abc")));
    assert_eq!(two.headers.get("content-length").map(|v| v.as_bytes()), Some(&b"3"[..]));
    assert!(two.headers.get("transfer-encoding").is_none());
    let three = &recorded[2];
    assert_eq!((three.uri.as_str(), three.body_len), ("/three", 0));
    assert!(three.headers.get("content-length").is_none() && three.headers.get("transfer-encoding").is_none());
}

#[test]
fn stalled_pipelined_head_gets_408_after_the_complete_request_is_served() {
    let backend = Backend::start(|r| Reply::text(&r.uri));
    let proxy = proxy_to(backend.addr, "  timeouts: { client_header: 300ms }\n");
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\nGET /admin HTTP/1.1\r\nHost: t\r\nX-Partial: ");
    let first = conn.read_response().expect("first response");
    assert_eq!((first.status, first.text().as_str()), (200, "/first"));
    let second = conn.read_response().expect("408");
    assert_refusal(&second, 408, "header_timeout", "stalled second head");
    assert!(conn.closes_within(CLOSE_WAIT));
    let uris: Vec<String> = backend.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, ["/first"]);
}

// === bodies of requests Strait answers itself ===

/// A backend answering `<method> <uri>`, and a proxy forwarding `/app` to it, answering
/// `/echo` itself and nothing else (404 `no_route`).
fn backend_and_partial_proxy() -> (Backend, Proxy) {
    let backend = Backend::start(|r| Reply::text(&format!("{} {}", r.method, r.uri)));
    let proxy = Proxy::start(&format!(
        "workers: 1\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n\
         \x20     - match: {{ path: {{ prefix: /app }} }}\n        forward: {{ cluster: app }}\n\
         \x20     - match: {{ path: {{ prefix: /echo }} }}\n        echo: {{ name: e }}\n\
         clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr
    ));
    (backend, proxy)
}

/// A request line and head, smuggled as the body of another request.
const INNER: &str = "GET /app/admin HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn body_of_a_request_without_route_is_not_read_as_the_next_request() {
    let (backend, proxy) = backend_and_partial_proxy();
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(
        format!("POST /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{INNER}GET /app/next HTTP/1.1\r\nHost: t\r\n\r\n", INNER.len())
            .as_bytes(),
    );
    let no_route = conn.read_response().expect("404");
    assert_eq!((no_route.status, no_route.header("x-strait-reason")), (404, Some("no_route")));
    let next = conn.read_response().expect("answer to the request after the body");
    assert_eq!((next.status, next.text().as_str()), (200, "GET /app/next"), "the body was answered as a request");
    let uris: Vec<String> = backend.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, ["/app/next"]);
}

#[test]
fn chunked_body_of_a_request_without_route_closes_the_connection_unread() {
    let (backend, proxy) = backend_and_partial_proxy();
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(
        format!(
            "POST /nowhere HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{INNER}\r\n0\r\n\r\n",
            INNER.len()
        )
        .as_bytes(),
    );
    let no_route = conn.read_response().expect("404");
    assert_refusal(&no_route, 404, "no_route", "chunked body without route");
    assert!(conn.closes_within(CLOSE_WAIT), "the unread body was left on a kept connection");
    assert_eq!(backend.count(), 0);
}

#[test]
fn request_after_a_body_answered_by_echo_is_parsed_intact() {
    let (backend, proxy) = backend_and_partial_proxy();
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
          GET /app/one HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
          GET /app/two HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    for want in ["echo", "GET /app/one", "echo", "GET /app/two"] {
        let response = conn.read_response().unwrap_or_else(|| panic!("no answer where `{want}` was due"));
        assert_eq!(response.status, 200, "{want}: {response:?}");
        if want == "echo" {
            assert!(response.text().contains("body-bytes: 5"), "{}", response.text());
        } else {
            assert_eq!(response.text(), want);
        }
    }
    let uris: Vec<String> = backend.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, ["/app/one", "/app/two"]);
}
