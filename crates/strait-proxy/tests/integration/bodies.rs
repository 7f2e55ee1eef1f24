//! Request and response bodies through the proxy: streamed byte-exact, framed right, limited.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use support::{
    curl, hex, hyper_request, pattern_byte, pattern_sha256, pattern_sha256_fast, Backend, Proxy, RawConn, Reply,
    ReplyBody,
};

/// A proxy with listener `web`: `/local` answers `local` itself, everything else goes to `backend`.
fn forwarding_proxy(backend: &Backend, server: &str) -> Proxy {
    Proxy::start(&format!(
        r#"
{server}
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: {{ path: {{ exact: /local }} }}
        direct: {{ body: local }}
      - forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    ))
}

/// `len` bytes of the generated pattern starting at offset `from`.
fn pattern(from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64).map(pattern_byte).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Waits up to `limit` for `check`, without failing: for "this must not happen" checks that
/// want to give a wrong outcome the chance to show up.
fn settle(limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !check() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

// === uploads ===

#[test]
fn content_length_upload_arrives_byte_exact() {
    let backend = Backend::start(|r| Reply::text(&format!("{} {}", r.body_len, r.body_sha256)));
    let proxy = forwarding_proxy(&backend, "");
    let body = pattern(7, 300_001);
    let request = hyper::Request::post(format!("http://{}/upload?x=1", proxy.addr("web")))
        .header("host", "upload.test")
        .body(http_body_util::Full::new(Bytes::from(body.clone())))
        .unwrap();
    let (parts, answer) = hyper_request(proxy.addr("web"), request);
    assert_eq!(parts.status, 200);
    assert_eq!(answer, format!("300001 {}", sha256(&body)));
    let recorded = &backend.requests()[0];
    assert_eq!(recorded.method, "POST");
    assert_eq!(recorded.uri, "/upload?x=1");
    assert_eq!(recorded.headers["content-length"], "300001");
    assert!(recorded.headers.get("transfer-encoding").is_none());
    assert_eq!(recorded.body_sha256, sha256(&body));
}

#[test]
fn chunked_upload_arrives_byte_exact_with_allowed_trailers_passed_on() {
    let backend = Backend::start(|_| Reply::text("stored"));
    let proxy = forwarding_proxy(&backend, "server: { request_trailers: [x-checksum, x-trace] }");
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n");
    let sizes = [1usize, 15, 4096, 65_536, 100_000, 7];
    let mut all = Vec::new();
    for (i, size) in sizes.into_iter().enumerate() {
        let data = pattern(all.len() as u64, size);
        // A chunk extension on one chunk, and every chunk's data split over two writes.
        let ext = if i == 2 { ";name=value" } else { "" };
        conn.send(format!("{size:x}{ext}\r\n").as_bytes());
        conn.send(&data[..size / 2]);
        conn.send(&data[size / 2..]);
        conn.send(b"\r\n");
        all.extend_from_slice(&data);
    }
    let checksum = sha256(&all);
    // Framing fields are never taken from trailers.
    conn.send(format!("0\r\nx-checksum: {checksum}\r\nx-trace: t1\r\nContent-Length: 999\r\n\r\n").as_bytes());
    let response = conn.read_response().expect("response");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "stored");

    let recorded = &backend.requests()[0];
    assert_eq!(recorded.body_len, all.len() as u64);
    assert_eq!(recorded.body_sha256, checksum);
    assert_eq!(recorded.headers["transfer-encoding"], "chunked");
    let trailers = recorded.trailers.as_ref().expect("trailers reached the backend");
    assert_eq!(trailers["x-checksum"], checksum.as_str());
    assert_eq!(trailers["x-trace"], "t1");
    assert!(trailers.get("content-length").is_none(), "{trailers:?}");
}

#[test]
fn expect_100_continue_gets_interim_response_then_final_one() {
    let backend = Backend::start(|r| Reply::text(&r.body_sha256));
    let proxy = forwarding_proxy(&backend, "");
    let body = pattern(0, 1000);
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n");
    let (status, _) = conn.read_head().expect("interim response");
    assert_eq!(status, 100, "the proxy asks for the body before it is sent");
    conn.send(&body);
    let response = conn.read_response().expect("final response");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), sha256(&body));

    // The same on the kept connection, with a chunked body.
    conn.send(b"PUT /e2 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
    let (status, _) = conn.read_head().expect("interim response");
    assert_eq!(status, 100);
    conn.send(b"5\r\nhello\r\n0\r\n\r\n");
    let response = conn.read_response().expect("final response");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), sha256(b"hello"));

    // A local answer does not need the body: the final response comes at once, no 100.
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"POST /local HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n");
    let (status, _) = conn.read_head().expect("final response");
    assert_eq!(status, 200);

    let recorded = backend.requests();
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|r| r.headers.get("expect").is_none()), "Expect is hop-by-hop");
    assert_eq!(recorded[0].body_len, 1000);
    assert_eq!(recorded[1].body_len, 5);
}

// === downloads ===

#[test]
fn chunked_download_arrives_intact_via_raw_client_and_curl() {
    const LEN: u64 = 1_000_003;
    let backend = Backend::start(|_| Reply { body: ReplyBody::Generated(LEN), ..Reply::status(200) });
    let proxy = forwarding_proxy(&backend, "");
    let addr = proxy.addr("web");

    let raw = support::get(addr, "/download");
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("transfer-encoding"), Some("chunked"));
    assert_eq!(raw.header("content-length"), None);
    assert_eq!(raw.body.len() as u64, LEN);
    assert_eq!(sha256(&raw.body), pattern_sha256(LEN));

    let url = format!("http://{addr}/download");
    let curled = curl(&[&url]);
    assert_eq!(curled.status, 200);
    assert_eq!(curled.header("transfer-encoding"), Some("chunked"));
    assert_eq!(curled.body.len() as u64, LEN);
    assert_eq!(sha256(&curled.body), pattern_sha256(LEN));
}

/// A one-shot raw upstream: accepts connections, reads each request head, writes `response`
/// as given and closes. Lets a test send framings a hyper backend would not.
fn raw_upstream(response: &'static [u8]) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            stream.set_read_timeout(Some(support::WAIT)).unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = stream.write_all(response);
        }
    });
    addr
}

/// A proxy forwarding everything to `upstream`.
fn proxy_to(upstream: std::net::SocketAddr) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: {{ cluster: app }}\n\
         clusters:\n  - name: app\n    endpoints: [{{ address: \"{upstream}\" }}]\n"
    ))
}

#[test]
fn response_trailers_are_passed_on_to_the_client() {
    let upstream = raw_upstream(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 5eb63bbb\r\n\r\n",
    );
    let proxy = proxy_to(upstream);
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"GET /t HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: close\r\n\r\n");
    let raw = conn.read_to_close();
    let (head, body) = split_message(&raw);
    assert!(head.contains(&"transfer-encoding: chunked".to_owned()), "{head:?}");
    let body = String::from_utf8(body).unwrap();
    let (data, trailer) = body.split_once("0\r\n").expect("last chunk");
    assert_eq!(dechunk(data.as_bytes()), b"hello world");
    assert_eq!(trailer, "x-sum: 5eb63bbb\r\n\r\n");
}

#[test]
fn close_delimited_upstream_body_is_rechunked_for_http11_clients() {
    let upstream = raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the upstream closes");
    let proxy = proxy_to(upstream);
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = conn.read_response().expect("response");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.text(), "until the upstream closes");
    // The client connection outlives the upstream one.
    conn.send(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response().expect("second response").text(), "until the upstream closes");
}

/// Decodes a complete chunked body (without the last chunk).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let line_end = data.windows(2).position(|w| w == b"\r\n").expect("size line");
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap(), 16).unwrap();
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
    out
}

// === large streamed transfers ===
//
// 2 GiB each way. Measured in a debug build on the 2-core test machine, the two running at
// the same time: about 12.5 s each (15 s for the pair; up to 44 s for this whole file while
// three other test files ran in a loop beside it). The download comes from
// `Backend::generating`: `ReplyBody::Generated` makes its bytes one at a time, which alone
// took 42 s for 2 GiB in a debug build. The client never holds a body: the upload is
// generated 1 MiB at a time and the download is hashed as it arrives.

/// Size of the large transfers.
const LARGE: u64 = 2 << 30;

#[test]
fn large_upload_streams_through_byte_exact() {
    let backend = Backend::start(|r| Reply::text(&r.body_sha256));
    let proxy = forwarding_proxy(&backend, "");
    let stream = TcpStream::connect(proxy.addr("web")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    write!(writer, "PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {LARGE}\r\n\r\n").unwrap();
    // A 1 MiB block of xorshift bytes, made different for every block by its index.
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for word in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        word.copy_from_slice(&x.to_le_bytes());
    }
    let mut hasher = Sha256::new();
    let (mut sent, mut index) = (0u64, 0u64);
    while sent < LARGE {
        block[..8].copy_from_slice(&index.to_le_bytes());
        let n = (LARGE - sent).min(block.len() as u64) as usize;
        hasher.update(&block[..n]);
        writer.write_all(&block[..n]).unwrap();
        sent += n as u64;
        index += 1;
    }
    let expected = hex(&hasher.finalize());
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    assert_eq!(status, 200);
    let len: usize = header(&headers, "content-length").unwrap().parse().unwrap();
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    assert_eq!(String::from_utf8(body).unwrap(), expected, "the backend's hash of what it received");
    let recorded = backend.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].body_len, LARGE);
    assert_eq!(recorded[0].body_sha256, expected);
}

#[test]
fn large_chunked_download_streams_through_byte_exact() {
    let backend = Backend::generating(LARGE);
    let proxy = forwarding_proxy(&backend, "");
    assert_eq!(pattern_sha256_fast(5_000_000), pattern_sha256(5_000_000), "the fast hash is the same hash");
    let stream = TcpStream::connect(proxy.addr("web")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    reader.get_mut().write_all(b"GET /download HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let (status, headers) = read_head(&mut reader);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "transfer-encoding"), Some("chunked"));
    let mut hasher = Sha256::new();
    let received = read_chunked_streaming(&mut reader, |data| hasher.update(data));
    assert_eq!(received, LARGE);
    assert_eq!(hex(&hasher.finalize()), pattern_sha256_fast(LARGE));
}

#[test]
fn request_trailers_are_dropped_unless_allowed() {
    let backend = Backend::start(|_| Reply::text("stored"));
    // `authorization` is allowed here, and still never travels as a trailer.
    let proxy = forwarding_proxy(&backend, "server: { request_trailers: [x-checksum, authorization] }");
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    conn.send(b"0\r\nx-checksum: abc\r\nx-forwarded-for: 6.6.6.6\r\nauthorization: Bearer x\r\nhost: evil\r\n\r\n");
    assert_eq!(conn.read_response().expect("response").status, 200);
    let trailers = backend.requests()[0].trailers.clone().expect("the allowed trailer arrived");
    let names: Vec<&str> = trailers.keys().map(|n| n.as_str()).collect();
    assert_eq!(names, ["x-checksum"]);

    // Without an allow list, no trailer reaches the backend at all.
    let proxy = forwarding_proxy(&backend, "");
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    conn.send(b"0\r\nx-checksum: abc\r\nx-forwarded-for: 6.6.6.6\r\n\r\n");
    assert_eq!(conn.read_response().expect("response").status, 200);
    let recorded = &backend.requests()[1];
    assert_eq!(recorded.body_len, 5);
    assert!(recorded.trailers.as_ref().is_none_or(|t| t.is_empty()), "{:?}", recorded.trailers);
}

// === bodiless responses ===

#[test]
fn head_response_has_no_body_but_keeps_content_length() {
    let backend = Backend::start(|r| match r.uri.as_str() {
        "/stream" => Reply { body: ReplyBody::Generated(5000), ..Reply::status(200) },
        _ => Reply::text("hello world"),
    });
    let proxy = forwarding_proxy(&backend, "");
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"HEAD /fixed HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = conn.read_response_to(true).expect("HEAD response");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("11"), "HEAD keeps the length of the GET answer");
    assert_eq!(head.header("transfer-encoding"), None);

    // A HEAD of a chunked resource, then GETs: had any body byte followed a HEAD answer,
    // the next response on the connection would not parse.
    conn.send(b"HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = conn.read_response_to(true).expect("HEAD response");
    assert_eq!(head.status, 200);
    conn.send(b"HEAD /local HTTP/1.1\r\nHost: t\r\n\r\n");
    let local = conn.read_response_to(true).expect("local HEAD response");
    assert_eq!(local.status, 200);
    assert_eq!(local.header("content-length"), Some("5"));
    conn.send(b"GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n");
    let get = conn.read_response().expect("GET response");
    assert_eq!(get.status, 200);
    assert_eq!(get.text(), "hello world");
    assert_eq!(backend.requests().iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["HEAD", "HEAD", "GET"]);
}

#[test]
fn no_content_and_not_modified_answers_carry_no_body() {
    let backend = Backend::start(|r| match r.uri.as_str() {
        "/204" => Reply::status(204).header("x-kind", "none"),
        "/304" => Reply::status(304).header("etag", "\"v1\""),
        _ => Reply::text("after"),
    });
    let proxy = forwarding_proxy(&backend, "");
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"DELETE /204 HTTP/1.1\r\nHost: t\r\n\r\n");
    let no_content = conn.read_response().expect("204");
    assert_eq!(no_content.status, 204);
    assert_eq!(no_content.header("x-kind"), Some("none"));
    assert_eq!(no_content.header("content-length"), None);
    assert_eq!(no_content.header("transfer-encoding"), None);

    conn.send(b"GET /304 HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"v1\"\r\n\r\n");
    let not_modified = conn.read_response().expect("304");
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("etag"), Some("\"v1\""));
    assert_eq!(not_modified.header("transfer-encoding"), None);

    conn.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    let after = conn.read_response().expect("response after the bodiless ones");
    assert_eq!(after.status, 200);
    assert_eq!(after.text(), "after");
}

// === connection handling ===

#[test]
fn pipelined_requests_are_answered_in_order() {
    let backend = Backend::start(|r| {
        let reply = Reply::text(&format!("{} {} {}", r.method, r.uri, r.body_len));
        // The first answer is the slowest: order must not follow completion.
        if r.uri == "/p/0" {
            reply.delayed(Duration::from_millis(200))
        } else {
            reply
        }
    });
    let proxy = forwarding_proxy(&backend, "");
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(
        b"GET /p/0 HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /p/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
          GET /local HTTP/1.1\r\nHost: t\r\n\r\n\
          PUT /p/3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
          HEAD /p/4 HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /p/5?last=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let expected = ["GET /p/0 0", "POST /p/1 5", "local", "PUT /p/3 3", "", "GET /p/5?last=1 0"];
    for (i, want) in expected.iter().enumerate() {
        let response = conn.read_response_to(i == 4).unwrap_or_else(|| panic!("response {i}"));
        assert_eq!(response.status, 200, "response {i}");
        assert_eq!(response.text(), *want, "response {i}");
    }
    assert_eq!(conn.read_response().map(|r| r.status), None, "nothing after the last answer");
    assert!(conn.is_closed(), "Connection: close on the last request closes the connection");
}

/// Splits a raw HTTP/1.x message into its head lines and body.
fn split_message(raw: &[u8]) -> (Vec<String>, Vec<u8>) {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("complete head");
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    (head.split("\r\n").map(|l| l.to_ascii_lowercase()).collect(), raw[end + 4..].to_vec())
}

#[test]
fn http10_client_gets_length_or_close_delimited_answer_then_close() {
    let backend = Backend::start(|r| match r.uri.as_str() {
        "/stream" => Reply { body: ReplyBody::Generated(100_000), ..Reply::status(200) },
        _ => Reply::text("fixed body"),
    });
    let proxy = forwarding_proxy(&backend, "");
    let addr = proxy.addr("web");

    // A length-delimited answer: Content-Length kept, no keep-alive, then the close.
    let mut conn = RawConn::connect(addr);
    conn.send(b"GET /fixed HTTP/1.0\r\n\r\n");
    let (head, body) = split_message(&conn.read_to_close());
    assert_eq!(head[0], "http/1.0 200 ok");
    assert!(head.contains(&"content-length: 10".to_owned()), "{head:?}");
    assert!(!head.iter().any(|l| l.starts_with("connection: keep-alive")), "{head:?}");
    assert_eq!(body, b"fixed body");

    // A chunked upstream answer cannot be chunked to an HTTP/1.0 client: it is delimited by
    // the close instead.
    let mut conn = RawConn::connect(addr);
    conn.send(b"GET /stream HTTP/1.0\r\nHost: t\r\n\r\n");
    let (head, body) = split_message(&conn.read_to_close());
    assert_eq!(head[0], "http/1.0 200 ok");
    assert!(!head.iter().any(|l| l.starts_with("transfer-encoding")), "{head:?}");
    assert!(!head.iter().any(|l| l.starts_with("content-length")), "{head:?}");
    assert_eq!(body.len(), 100_000);
    assert_eq!(sha256(&body), pattern_sha256(100_000));

    // With Connection: keep-alive the HTTP/1.0 client keeps its connection.
    let mut conn = RawConn::connect(addr);
    conn.send(b"GET /fixed HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let first = conn.read_response().expect("first response");
    assert_eq!(first.header("connection"), Some("keep-alive"));
    assert_eq!(first.text(), "fixed body");
    conn.send(b"GET /local HTTP/1.0\r\n\r\n");
    let second = conn.read_response().expect("second response on the same connection");
    assert_eq!(second.text(), "local");
    assert!(conn.is_closed());
}

// === body limits ===

const LIMITED: &str = "server: { limits: { max_body_bytes: 1KiB } }";

#[test]
fn content_length_over_max_body_bytes_gets_413_and_backend_sees_nothing() {
    let backend = Backend::start(|r| Reply::text(&r.body_len.to_string()));
    let proxy = forwarding_proxy(&backend, LIMITED);
    let addr = proxy.addr("web");

    let mut conn = RawConn::connect(addr);
    conn.send(b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 2048\r\n\r\n");
    conn.send(&pattern(0, 2048));
    let response = conn.read_response().expect("413");
    assert_eq!(response.status, 413);
    assert_eq!(response.header("x-strait-reason"), Some("body_too_large"));
    assert!(conn.is_closed(), "the unread body is not read: the connection closes");

    // With Expect: 100-continue the client is refused before it sends the body.
    let mut conn = RawConn::connect(addr);
    conn.send(b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n");
    let (status, _) = conn.read_head().expect("final response without 100");
    assert_eq!(status, 413);

    // Exactly the limit passes.
    let mut conn = RawConn::connect(addr);
    conn.send(b"POST /fits HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n");
    conn.send(&pattern(0, 1024));
    let response = conn.read_response().expect("200");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "1024");

    let recorded = backend.requests();
    assert_eq!(recorded.len(), 1, "only the request within the limit reached the backend");
    assert_eq!(recorded[0].uri, "/fits");
}

#[test]
fn chunked_body_growing_past_max_body_bytes_gets_413_and_never_completes_upstream() {
    let backend = Backend::start(|r| Reply::text(&r.body_len.to_string()));
    let proxy = forwarding_proxy(&backend, LIMITED);
    let addr = proxy.addr("web");

    let mut conn = RawConn::connect(addr);
    conn.send(b"POST /fits HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    conn.send(format!("200\r\n{}\r\n200\r\n{}\r\n0\r\n\r\n", "a".repeat(512), "b".repeat(512)).as_bytes());
    let response = conn.read_response().expect("200");
    assert_eq!(response.status, 200, "1024 chunked bytes are within the limit");
    assert_eq!(response.text(), "1024");

    let mut conn = RawConn::connect(addr);
    conn.send(b"POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    conn.send(format!("258\r\n{}\r\n258\r\n{}\r\n0\r\n\r\n", "a".repeat(600), "b".repeat(600)).as_bytes());
    let response = conn.read_response().expect("413");
    assert_eq!(response.status, 413);
    assert_eq!(response.header("x-strait-reason"), Some("body_too_large"));
    assert!(conn.is_closed());

    // The upstream may have seen the head and a part of the body, never a complete request:
    // give a wrongly completed request time to show up, then check.
    settle(Duration::from_secs(1), || backend.requests().iter().any(|r| r.uri == "/big"));
    let big: Vec<_> = backend.requests().into_iter().filter(|r| r.uri == "/big").collect();
    assert!(big.iter().all(|r| r.body_len < 1200), "the backend got the whole body: {big:?}");
}

#[test]
fn chunked_body_past_max_body_bytes_to_a_local_action_gets_413() {
    let proxy = Proxy::start(&format!(
        "{LIMITED}\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - echo: {{ name: e }}\n"
    ));
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    conn.send(format!("800\r\n{}\r\n0\r\n\r\n", "a".repeat(2048)).as_bytes());
    let response = conn.read_response().expect("response");
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.header("x-strait-reason"), Some("body_too_large"));
}

// === helpers ===

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line.split_whitespace().nth(1).expect("status").parse().expect("numeric status");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            return (status, headers);
        }
        let (k, v) = line.split_once(':').expect("header colon");
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Decodes a chunked body without keeping it, handing each piece to `sink`.
fn read_chunked_streaming(reader: &mut impl BufRead, mut sink: impl FnMut(&[u8])) -> u64 {
    let mut total = 0u64;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("chunk size line");
        let size = u64::from_str_radix(line.trim().split(';').next().unwrap(), 16).expect("chunk size");
        if size == 0 {
            loop {
                let mut trailer = String::new();
                reader.read_line(&mut trailer).expect("trailer line");
                if trailer.trim_end().is_empty() {
                    return total;
                }
            }
        }
        let mut left = size;
        while left > 0 {
            let available = reader.fill_buf().expect("chunk data");
            assert!(!available.is_empty(), "connection closed inside a chunk");
            let n = (available.len() as u64).min(left) as usize;
            sink(&available[..n]);
            reader.consume(n);
            left -= n as u64;
        }
        total += size;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).expect("chunk end");
        assert_eq!(&crlf, b"\r\n");
    }
}

#[test]
fn a_large_refused_upload_still_gets_its_413_instead_of_a_reset() {
    let backend = Backend::named("never");
    let proxy = Proxy::start(&format!(
        r#"
server:
  limits: {{ max_body_bytes: 1KiB }}
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    ));
    // The client sends the whole 4 MiB body it announced before reading, as a simple client
    // does without `Expect`: its writes must not be reset, and the answer must be readable.
    let body_len = 4 << 20;
    let mut stream = TcpStream::connect(proxy.addr("web")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: {body_len}\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..(body_len / chunk.len()) {
        stream.write_all(&chunk).expect("the refused body is discarded, not reset");
    }
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("the 413 is readable");
    assert!(status_line.starts_with("HTTP/1.1 413"), "got {status_line:?}");
    assert_eq!(backend.count(), 0);
}

#[test]
fn an_upstream_refusing_an_upload_early_is_answered_with_its_own_status_not_502() {
    // An upstream that reads the head, answers 413 at once and closes without reading the body
    // (as many application servers do for an upload they refuse).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
            head.push(byte[0]);
        }
        let _ = stream.write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 7\r\n\r\ntoo big");
    });
    let proxy = Proxy::start(&format!(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{upstream_addr}" }}]
    health:
      passive: {{ max_fails: 1, fail_timeout: 30s }}
"#
    ));
    let body_len = 8 << 20;
    let stream = TcpStream::connect(proxy.addr("web")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let head = format!("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {body_len}\r\n\r\n");
        let _ = writer.write_all(head.as_bytes());
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..(body_len / chunk.len()) {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut conn = RawConn::from_stream(stream);
    let response = conn.read_response().expect("an answer");
    assert_eq!(response.status, 413, "the upstream's refusal reaches the client");
    assert_eq!(response.text(), "too big");
    assert_eq!(response.header("x-strait-reason"), None);
    let _ = sender.join();
}
