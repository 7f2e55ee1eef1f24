//! Whole-exchange deadlines and minimum data rates end to end: a trickling upload gets 408
//! and never reaches the upstream whole (HTTP/1.1 and HTTP/2), an exchange past its deadline
//! gets 408 or loses its connection, a client that stops reading loses its connection, and
//! with the defaults (all off) a slow but steady upload still goes through.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::{Backend, Proxy, RawConn, RawResponse, RawUpstream, Reply};

// === helpers ===

/// A proxy config: `top` lines (`server:`...), listener `web` (cleartext HTTP/2 too) whose
/// routes are `routes` (indented 6) followed by a catch-all forward to cluster `app` at `upstream`.
fn config(top: &str, routes: &str, upstream: SocketAddr) -> String {
    format!(
        "workers: 1\n{top}listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    http2: true\n    routes:\n{routes}\
         \x20     - forward: {{ cluster: app }}\n\
         clusters:\n  - name: app\n    endpoints: [{{ address: \"{upstream}\" }}]\n"
    )
}

#[track_caller]
fn assert_reason(response: &RawResponse, status: u16, reason: &str) {
    assert_eq!((response.status, response.header("x-strait-reason")), (status, Some(reason)), "{response:?}");
}

/// Writes `head`, then one byte of body every `every` until `stop` is set, the connection
/// fails or `bytes` bytes went out. Returns how many body bytes were written.
fn trickle(mut stream: TcpStream, head: &[u8], bytes: usize, every: Duration, stop: Arc<AtomicBool>) -> usize {
    stream.write_all(head).unwrap();
    let mut written = 0;
    while written < bytes && !stop.load(Ordering::SeqCst) {
        if stream.write_all(b"x").is_err() {
            break;
        }
        written += 1;
        std::thread::sleep(every);
    }
    written
}

/// The body bytes an upstream connection received after the request head.
fn body_bytes(conn: &support::CapturedConn) -> usize {
    let end = conn.bytes.windows(4).position(|w| w == b"\r\n\r\n").map_or(conn.bytes.len(), |p| p + 4);
    conn.bytes.len() - end
}

/// A raw upstream that answers each connection's first request head with `head`, then sends
/// `body_byte` bytes from `write` until a write fails; it records when a write failed, that
/// is, when the proxy closed the connection.
struct StreamingUpstream {
    addr: SocketAddr,
    /// Body bytes written so far, over all connections.
    written: Arc<AtomicU64>,
    /// Set once a write failed.
    failed: Arc<Mutex<Option<Instant>>>,
}

impl StreamingUpstream {
    /// Streams `chunk` every `every` (zero: as fast as the proxy takes it) after `head`.
    fn start(head: &'static [u8], chunk: Vec<u8>, every: Duration) -> StreamingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(Mutex::new(None));
        let (count, failure) = (written.clone(), failed.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (count, failure, chunk) = (count.clone(), failure.clone(), chunk.clone());
                std::thread::spawn(move || {
                    stream.set_read_timeout(Some(support::WAIT)).unwrap();
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let started = Instant::now();
                    let mut sent = stream.write_all(head).is_ok();
                    while sent && started.elapsed() < Duration::from_secs(20) {
                        sent = stream.write_all(&chunk).is_ok();
                        if sent {
                            count.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                        }
                        if !every.is_zero() {
                            std::thread::sleep(every);
                        }
                    }
                    if !sent {
                        failure.lock().unwrap().get_or_insert(Instant::now());
                    }
                });
            }
        });
        StreamingUpstream { addr, written, failed }
    }

    /// When the proxy closed the connection (a write failed), if it did.
    fn failed_at(&self) -> Option<Instant> {
        *self.failed.lock().unwrap()
    }
}

/// The lines of an access log file, once `done` holds for them (polled).
fn log_lines_when(
    path: &std::path::Path,
    what: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    support::wait_until(what, || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        lines = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        done(&lines)
    });
    lines
}

// === minimum request body rate ===

#[test]
fn trickling_request_body_gets_408_and_never_reaches_the_upstream_whole() {
    let upstream = RawUpstream::silent();
    let proxy = Proxy::start(&config(
        "server: { limits: { min_request_body_rate: { bytes_per_second: 100, grace: 300ms } } }\n",
        "",
        upstream.addr,
    ));
    let stream = TcpStream::connect(proxy.addr("web")).unwrap();
    let mut conn = RawConn::from_stream(stream.try_clone().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let trickler = {
        let stop = stop.clone();
        let head = b"POST /upload HTTP/1.1\r\nHost: test.local\r\nContent-Length: 100\r\n\r\n";
        std::thread::spawn(move || trickle(stream, head, 100, Duration::from_millis(100), stop))
    };
    let response = conn.read_response().expect("an answer");
    let took = started.elapsed();
    assert_reason(&response, 408, "client_body_too_slow");
    assert_eq!(response.header("connection"), Some("close"), "{response:?}");
    // 10 bytes a second against 100: refused once the grace period has been waited out.
    assert!(took >= Duration::from_millis(290), "refused after {took:?}, within the grace period");
    assert!(took < Duration::from_secs(3), "refused after {took:?}");
    assert!(conn.closes_within(Duration::from_secs(3)), "the connection stayed open after the 408");
    stop.store(true, Ordering::SeqCst);
    let sent = trickler.join().unwrap();
    assert!(sent < 100, "the whole body went out");
    support::wait_until("the upstream connection to close", || upstream.connections().iter().all(|c| c.closed));
    for conn in upstream.connections() {
        assert!(body_bytes(&conn) < 100, "the upstream got the whole body: {conn:?}");
    }
}

#[test]
fn trickling_request_body_over_http2_gets_408() {
    let upstream = RawUpstream::silent();
    let proxy = Proxy::start(&config(
        "server: { limits: { min_request_body_rate: { bytes_per_second: 100, grace: 300ms } } }\n",
        "",
        upstream.addr,
    ));
    let addr = proxy.addr("web");
    let rt = support::pki::runtime();
    let started = Instant::now();
    let (status, reason, took) = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await.unwrap();
        let request = http::Request::post("http://test.local/upload").header("content-length", "100").body(()).unwrap();
        let (response, mut body) = client.send_request(request, false).unwrap();
        // One byte every 100 ms, for as long as the stream takes them.
        let trickler = tokio::spawn(async move {
            for _ in 0..100 {
                if body.send_data(Bytes::from_static(b"x"), false).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let response = tokio::time::timeout(support::WAIT, response).await.expect("an answer in time").unwrap();
        let took = started.elapsed();
        trickler.abort();
        let reason = response.headers().get("x-strait-reason").map(|v| v.to_str().unwrap().to_owned());
        (response.status().as_u16(), reason, took)
    });
    assert_eq!((status, reason.as_deref()), (408, Some("client_body_too_slow")));
    assert!(took >= Duration::from_millis(290), "refused after {took:?}, within the grace period");
    assert!(took < Duration::from_secs(3), "refused after {took:?}");
    support::wait_until("the upstream connection to close", || upstream.connections().iter().all(|c| c.closed));
    for conn in upstream.connections() {
        assert!(body_bytes(&conn) < 100, "the upstream got the whole body: {conn:?}");
    }
}

#[test]
fn a_steady_upload_above_the_minimum_rate_goes_through() {
    let backend = Backend::start(|r| Reply::text(&format!("{} bytes", r.body_len)));
    let proxy = Proxy::start(&config(
        "server: { limits: { min_request_body_rate: { bytes_per_second: 4, grace: 300ms } } }\n",
        "",
        backend.addr,
    ));
    let stream = TcpStream::connect(proxy.addr("web")).unwrap();
    let mut conn = RawConn::from_stream(stream.try_clone().unwrap());
    // Ten bytes a second for 1.5 s: slow, but above the minimum.
    let head = b"POST /upload HTTP/1.1\r\nHost: test.local\r\nContent-Length: 15\r\n\r\n";
    let sent = trickle(stream, head, 15, Duration::from_millis(100), Arc::default());
    assert_eq!(sent, 15);
    let response = conn.read_response().expect("an answer");
    assert_eq!((response.status, response.text().as_str()), (200, "15 bytes"), "{response:?}");
}

#[test]
fn with_the_defaults_a_slow_upload_is_not_cut_short() {
    let backend = Backend::start(|r| Reply::text(&format!("{} bytes", r.body_len)));
    // No rate, no exchange limit: only `client_body` (60 s between two reads) applies.
    let proxy = Proxy::start(&config("", "", backend.addr));
    let stream = TcpStream::connect(proxy.addr("web")).unwrap();
    let mut conn = RawConn::from_stream(stream.try_clone().unwrap());
    // Five bytes a second for 2 s: far below Kestrel's 240 B/s, longer than a short deadline.
    let head = b"POST /upload HTTP/1.1\r\nHost: test.local\r\nContent-Length: 10\r\n\r\n";
    let sent = trickle(stream, head, 10, Duration::from_millis(200), Arc::default());
    assert_eq!(sent, 10);
    let response = conn.read_response().expect("an answer");
    assert_eq!((response.status, response.text().as_str()), (200, "10 bytes"), "{response:?}");
    assert_eq!(backend.requests()[0].body_len, 10);
}

#[test]
fn time_the_upstream_takes_is_not_held_against_the_client() {
    // The backend answers after 600 ms; the client sent its small body at once. The rate
    // counts only the time spent waiting on the client, so the wait for the answer is fine.
    let backend = Backend::start(|r| Reply::text(&format!("{} bytes", r.body_len)).delayed(Duration::from_millis(600)));
    let proxy = Proxy::start(&config(
        "server: { limits: { min_request_body_rate: { bytes_per_second: 1MiB, grace: 100ms }, min_response_body_rate: { bytes_per_second: 1MiB, grace: 100ms } } }\n",
        "",
        backend.addr,
    ));
    let response = support::raw_request(
        proxy.addr("web"),
        b"POST /upload HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .expect("an answer");
    assert_eq!((response.status, response.text().as_str()), (200, "5 bytes"), "{response:?}");
}

// === whole-exchange deadline ===

#[test]
fn exchange_deadline_while_the_upstream_delays_its_answer_gets_408_and_closes_the_upstream() {
    let upstream = RawUpstream::silent();
    let proxy = Proxy::start(&config("server: { timeouts: { exchange: 300ms } }\n", "", upstream.addr));
    let mut conn = RawConn::connect(proxy.addr("web"));
    let started = Instant::now();
    conn.send(b"GET /slow HTTP/1.1\r\nHost: test.local\r\n\r\n");
    let response = conn.read_response().expect("an answer");
    let took = started.elapsed();
    assert_reason(&response, 408, "exchange_timeout");
    assert_eq!(response.header("connection"), Some("close"), "{response:?}");
    assert!(took >= Duration::from_millis(290), "answered after {took:?}");
    assert!(took < Duration::from_millis(1500), "answered after {took:?}: the deadline was not applied");
    assert!(conn.closes_within(Duration::from_secs(3)), "the client connection stayed open");
    // The upstream connection is closed, not pooled.
    support::wait_until("the upstream connection to close", || upstream.connections().iter().all(|c| c.closed));
}

#[test]
fn exchange_deadline_counts_the_request_body_too() {
    let backend = Backend::start(|_| Reply::text("unused"));
    let proxy = Proxy::start(&config("server: { timeouts: { exchange: 400ms } }\n", "", backend.addr));
    let stream = TcpStream::connect(proxy.addr("web")).unwrap();
    let mut conn = RawConn::from_stream(stream.try_clone().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    // Quick enough for `client_body`, too slow to finish within 400 ms.
    let trickler = {
        let stop = stop.clone();
        let head = b"POST /upload HTTP/1.1\r\nHost: test.local\r\nContent-Length: 50\r\n\r\n";
        std::thread::spawn(move || trickle(stream, head, 50, Duration::from_millis(50), stop))
    };
    let response = conn.read_response().expect("an answer");
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    trickler.join().unwrap();
    assert_reason(&response, 408, "exchange_timeout");
    assert!(took >= Duration::from_millis(390) && took < Duration::from_secs(2), "answered after {took:?}");
    // The body streamed up as it came; the backend never saw all of it.
    assert!(backend.requests().iter().all(|r| r.body_len < 50), "{:?}", backend.requests());
}

#[test]
fn exchange_deadline_while_the_response_streams_closes_the_connection() {
    // The head comes at once, then one byte every 50 ms of a 1000-byte body (50 s in all).
    let upstream = StreamingUpstream::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
        b"x".to_vec(),
        Duration::from_millis(50),
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let top = format!(
        "server: {{ timeouts: {{ exchange: 400ms }} }}\naccess_log: {{ path: \"{}\", format: json }}\n",
        log.path().display()
    );
    let proxy = Proxy::start(&config(&top, "", upstream.addr));
    let mut conn = RawConn::connect(proxy.addr("web"));
    let started = Instant::now();
    conn.send(b"GET /stream HTTP/1.1\r\nHost: test.local\r\n\r\n");
    let (status, headers) = conn.read_head().expect("the response head");
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(name, value)| name == "content-length" && value == "1000"), "{headers:?}");
    let body = conn.read_to_close();
    let took = started.elapsed();
    assert!(body.len() < 1000, "the whole body came through");
    assert!(took >= Duration::from_millis(390), "closed after {took:?}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}: the deadline was not applied");
    support::wait_until("the upstream connection to close", || upstream.failed_at().is_some());
    let lines = log_lines_when(log.path(), "the access log line", |lines| !lines.is_empty());
    assert_eq!(lines[0]["status"], 200, "{lines:?}");
    assert_eq!(lines[0]["reason"], "exchange_timeout", "{lines:?}");
}

#[test]
fn exchange_deadline_over_http2_resets_a_streaming_response() {
    let upstream = StreamingUpstream::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
        b"x".to_vec(),
        Duration::from_millis(50),
    );
    let proxy = Proxy::start(&config("server: { timeouts: { exchange: 400ms } }\n", "", upstream.addr));
    let addr = proxy.addr("web");
    let rt = support::pki::runtime();
    let (status, outcome, took) = rt.block_on(async move {
        let started = Instant::now();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await.unwrap();
        let request = http::Request::get("http://test.local/stream").body(()).unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = tokio::time::timeout(support::WAIT, response).await.unwrap().unwrap();
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut received = 0;
        let outcome = loop {
            match tokio::time::timeout(support::WAIT, body.data()).await.expect("the stream ends in time") {
                Some(Ok(data)) => {
                    received += data.len();
                    let _ = body.flow_control().release_capacity(data.len());
                }
                Some(Err(error)) => break Err((received, error.reason())),
                None => break Ok(received),
            }
        };
        (status, outcome, started.elapsed())
    });
    assert_eq!(status, 200);
    match outcome {
        Err((received, reason)) => {
            assert!(received < 1000, "{received} bytes");
            assert_eq!(reason, Some(h2::Reason::CANCEL));
        }
        Ok(received) => panic!("the stream ended normally after {received} bytes"),
    }
    assert!(took >= Duration::from_millis(390) && took < Duration::from_secs(3), "reset after {took:?}");
}

#[test]
fn a_route_replaces_the_server_exchange_limit() {
    let backend = Backend::start(|_| Reply::text("late").delayed(Duration::from_millis(600)));
    let routes = concat!(
        "      - match: { path: { prefix: /unlimited } }\n",
        "        exchange_timeout: 0\n",
        "        forward: { cluster: app }\n",
        "      - match: { path: { prefix: /short } }\n",
        "        exchange_timeout: 200ms\n",
        "        forward: { cluster: app }\n",
    );
    // The server allows 2 s: /unlimited has no limit, /short only 200 ms.
    let proxy = Proxy::start(&config("server: { timeouts: { exchange: 2s } }\n", routes, backend.addr));
    let started = Instant::now();
    assert_reason(&support::get(proxy.addr("web"), "/short"), 408, "exchange_timeout");
    assert!(started.elapsed() < Duration::from_millis(550), "the route's limit was not applied");
    let proxy = Proxy::start(&config("server: { timeouts: { exchange: 300ms } }\n", routes, backend.addr));
    let response = support::get(proxy.addr("web"), "/unlimited");
    assert_eq!((response.status, response.text().as_str()), (200, "late"));
    assert_reason(&support::get(proxy.addr("web"), "/other"), 408, "exchange_timeout");
}

// === minimum response rate ===

#[test]
fn a_client_that_stops_reading_loses_its_connection() {
    // A body far larger than every socket buffer on the way, sent as fast as it is taken.
    let upstream = StreamingUpstream::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n",
        vec![b'x'; 64 * 1024],
        Duration::ZERO,
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let top = format!(
        "server: {{ limits: {{ min_response_body_rate: {{ bytes_per_second: 64KiB, grace: 300ms }} }} }}\n\
         access_log: {{ path: \"{}\", format: json }}\n",
        log.path().display()
    );
    let proxy = Proxy::start(&config(&top, "", upstream.addr));
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect_timeout(&proxy.addr("web").into(), support::WAIT).unwrap();
    let mut conn = RawConn::from_stream(socket.into());
    conn.send(b"GET /large HTTP/1.1\r\nHost: test.local\r\n\r\n");
    let (status, _) = conn.read_head().expect("the response head");
    assert_eq!(status, 200);
    let stopped = Instant::now();
    // The client reads nothing more: once the buffers are full, the proxy waits on it, and
    // after 300 ms of waiting without progress it gives up.
    support::wait_until("the proxy to drop the exchange", || upstream.failed_at().is_some());
    let took = upstream.failed_at().unwrap() - stopped;
    assert!(took >= Duration::from_millis(250), "gave up after {took:?}, within the grace period");
    assert!(took < Duration::from_secs(5), "gave up after {took:?}");
    let lines = log_lines_when(log.path(), "the access log line", |lines| !lines.is_empty());
    assert_eq!(lines[0]["status"], 200, "{lines:?}");
    assert_eq!(lines[0]["reason"], "client_read_too_slow", "{lines:?}");
    // What was buffered still arrives, then the connection ends short of the body.
    let rest = conn.read_to_close();
    assert!((rest.len() as u64) < 1 << 30, "the whole body arrived");
    assert!(upstream.written.load(Ordering::SeqCst) < 1 << 30);
}

#[test]
fn a_client_that_stops_reading_an_http2_response_gets_its_stream_reset() {
    let upstream = StreamingUpstream::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n",
        vec![b'x'; 64 * 1024],
        Duration::ZERO,
    );
    let proxy = Proxy::start(&config(
        "server: { limits: { min_response_body_rate: { bytes_per_second: 64KiB, grace: 300ms } } }\n",
        "",
        upstream.addr,
    ));
    let addr = proxy.addr("web");
    let rt = support::pki::runtime();
    let (status, outcome, took) = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await.unwrap();
        let request = http::Request::get("http://test.local/large").body(()).unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = tokio::time::timeout(support::WAIT, response).await.unwrap().unwrap();
        let stopped = Instant::now();
        let status = response.status().as_u16();
        let mut body = response.into_body();
        // Read what the first window holds, never give it back: the window stays shut.
        let mut received = 0;
        let outcome = loop {
            match tokio::time::timeout(support::WAIT, body.data()).await.expect("the stream ends in time") {
                Some(Ok(data)) => received += data.len(),
                Some(Err(error)) => break Err((received, error.reason())),
                None => break Ok(received),
            }
        };
        (status, outcome, stopped.elapsed())
    });
    assert_eq!(status, 200);
    match outcome {
        Err((received, reason)) => {
            assert!(received <= 65_535, "{received} bytes went past the client's window");
            assert_eq!(reason, Some(h2::Reason::CANCEL));
        }
        Ok(received) => panic!("the stream ended normally after {received} bytes"),
    }
    assert!(took >= Duration::from_millis(250), "reset after {took:?}, within the grace period");
    assert!(took < Duration::from_secs(5), "reset after {took:?}");
    support::wait_until("the proxy to drop the upstream exchange", || upstream.failed_at().is_some());
}
