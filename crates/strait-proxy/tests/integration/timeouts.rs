//! Timeouts end to end: upstream connect, response head, route total, keep-alive pools, client idle and header.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use support::{get, Backend, Proxy, RawConn, RawResponse, Reply};

// === helpers ===

/// A proxy config with listener `web` forwarding everything to cluster `app` over `endpoints`.
///
/// `top` holds top-level lines (`workers`, `server`), `route` extra route lines (indented 8)
/// and `cluster` extra cluster lines (indented 4).
fn config(top: &str, route: &str, cluster: &str, endpoints: &[SocketAddr]) -> String {
    let endpoints: String = endpoints.iter().map(|a| format!("      - address: \"{a}\"\n")).collect();
    format!(
        "{top}listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: {{ cluster: app }}\n\
         {route}clusters:\n  - name: app\n{cluster}    endpoints:\n{endpoints}"
    )
}

/// Sends a GET on a keep-alive connection and reads the answer.
fn send_get(conn: &mut RawConn) -> RawResponse {
    conn.send(b"GET /x HTTP/1.1\r\nHost: test.local\r\n\r\n");
    conn.read_response().expect("response")
}

/// A GET on a new connection, with the time it took.
fn timed_get(addr: SocketAddr) -> (RawResponse, Duration) {
    let started = Instant::now();
    let response = get(addr, "/x");
    (response, started.elapsed())
}

fn assert_reason(response: &RawResponse, status: u16, reason: &str) {
    assert_eq!((response.status, response.header("x-strait-reason")), (status, Some(reason)), "{response:?}");
}

/// A listening address whose accept queue is full, so that new SYNs go unanswered.
///
/// Returns the listener and the connection filling its queue; both must stay alive.
fn unanswering_endpoint() -> (socket2::Socket, Vec<TcpStream>, SocketAddr) {
    let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(stream) => fillers.push(stream),
            // This SYN was dropped: the queue is full.
            Err(_) => return (listener, fillers, addr),
        }
    }
    panic!("the accept queue of a listener with backlog 0 never filled");
}

// === upstream connect ===

#[test]
fn connect_refused_answers_502_upstream_connect_failed() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let proxy = Proxy::start(&config("", "", "", &[closed]));
    let (response, _) = timed_get(proxy.addr("web"));
    assert_reason(&response, 502, "upstream_connect_failed");
}

#[test]
fn connect_timeout_answers_504_upstream_connect_timeout() {
    let (_listener, _fillers, addr) = unanswering_endpoint();
    let proxy =
        Proxy::start(&config("", "        retries: { attempts: 1 }\n", "    timeouts: { connect: 200ms }\n", &[addr]));
    let (response, took) = timed_get(proxy.addr("web"));
    assert_reason(&response, 504, "upstream_connect_timeout");
    assert!(took >= Duration::from_millis(190), "gave up after {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

// === upstream response ===

#[test]
fn slow_response_head_answers_504_upstream_timeout() {
    let slow = Backend::start(|_| Reply::text("late").delayed(Duration::from_secs(2)));
    let proxy = Proxy::start(&config(
        "",
        "        retries: { attempts: 1 }\n",
        "    timeouts: { response_header: 200ms }\n",
        &[slow.addr],
    ));
    let (response, took) = timed_get(proxy.addr("web"));
    assert_reason(&response, 504, "upstream_timeout");
    assert!(took >= Duration::from_millis(190), "gave up after {took:?}");
    assert!(took < Duration::from_millis(1500), "took {took:?}: the timeout was not applied");
    assert_eq!(slow.count(), 1);
}

#[test]
fn response_head_within_the_timeout_is_relayed() {
    let backend = Backend::start(|_| Reply::text("in time").delayed(Duration::from_millis(50)));
    let proxy = Proxy::start(&config("", "", "    timeouts: { response_header: 1s }\n", &[backend.addr]));
    let (response, _) = timed_get(proxy.addr("web"));
    assert_eq!((response.status, response.text().as_str()), (200, "in time"));
}

#[test]
fn route_timeout_answers_504_upstream_timeout() {
    let slow = Backend::start(|_| Reply::text("late").delayed(Duration::from_secs(2)));
    let proxy = Proxy::start(&config("", "        timeout: 300ms\n", "", &[slow.addr]));
    let (response, took) = timed_get(proxy.addr("web"));
    assert_reason(&response, 504, "upstream_timeout");
    assert!(took >= Duration::from_millis(290), "gave up after {took:?}");
    assert!(took < Duration::from_millis(1500), "took {took:?}: the route timeout was not applied");
}

#[test]
fn route_timeout_bounds_retries_too() {
    let delayed = |_: &support::Recorded| Reply::text("late").delayed(Duration::from_secs(3));
    let (a, b) = (Backend::start(delayed), Backend::start(delayed));
    // Three attempts of 400 ms would take 1.2 s; the route allows 600 ms in all.
    let proxy = Proxy::start(&config(
        "",
        "        timeout: 600ms\n        retries: { attempts: 3 }\n",
        "    timeouts: { response_header: 400ms }\n",
        &[a.addr, b.addr],
    ));
    let (response, took) = timed_get(proxy.addr("web"));
    assert_reason(&response, 504, "upstream_timeout");
    assert!(took >= Duration::from_millis(590), "gave up after {took:?}");
    assert!(took < Duration::from_millis(1100), "took {took:?}: retries went past the route timeout");
    assert_eq!(a.count() + b.count(), 2, "a third attempt started after the route timeout");
}

// === upstream keep-alive ===

#[test]
fn upstream_connections_are_reused_across_requests() {
    let backend = Backend::named("b");
    let proxy = Proxy::start(&config("workers: 2\n", "", "", &[backend.addr]));
    for _ in 0..50 {
        // Each on a new client connection, with `Connection: close`.
        assert_eq!(get(proxy.addr("web"), "/x").status, 200);
    }
    assert_eq!(backend.count(), 50);
    // At most one pooled connection per worker.
    assert!(backend.connections() <= 2, "{} upstream connections for 50 requests", backend.connections());
}

#[test]
fn keepalive_0_opens_a_connection_per_request() {
    let backend = Backend::named("b");
    let proxy = Proxy::start(&config("workers: 2\n", "", "    keepalive: 0\n", &[backend.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    for _ in 0..10 {
        assert_eq!(send_get(&mut conn).status, 200);
    }
    assert_eq!(backend.connections(), 10);
}

#[test]
fn pooled_connection_idle_past_cluster_idle_timeout_is_not_reused() {
    let backend = Backend::named("b");
    let proxy = Proxy::start(&config("workers: 1\n", "", "    timeouts: { idle: 200ms }\n", &[backend.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    assert_eq!(send_get(&mut conn).status, 200);
    assert_eq!(send_get(&mut conn).status, 200);
    assert_eq!(backend.connections(), 1, "reused within the idle timeout");
    // Waiting out a timeout, not for readiness.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(send_get(&mut conn).status, 200);
    assert_eq!(backend.connections(), 2, "a connection idle past timeouts.idle was reused");
}

// === client side ===

#[test]
fn idle_client_keep_alive_connection_is_closed_after_idle_timeout() {
    let backend = Backend::named("b");
    let proxy = Proxy::start(&config("server: { timeouts: { idle: 500ms } }\n", "", "", &[backend.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    // Requests 100 ms apart keep it open well past 500 ms in all.
    for _ in 0..7 {
        assert_eq!(send_get(&mut conn).status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    let idle_since = Instant::now();
    assert!(conn.is_closed(), "the idle connection was not closed");
    let idle = idle_since.elapsed();
    assert!(idle >= Duration::from_millis(350), "closed after only {idle:?} idle");
    assert!(idle < Duration::from_secs(3), "closed after {idle:?} idle");
}

#[test]
fn slow_client_header_answers_408_header_timeout() {
    let backend = Backend::named("b");
    let proxy = Proxy::start(&config("server: { timeouts: { client_header: 300ms } }\n", "", "", &[backend.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    let started = Instant::now();
    conn.send(b"GET /x HTTP/1.1\r\nHost: test.local\r\nX-Partial: ");
    let response = conn.read_response().expect("408 response");
    let took = started.elapsed();
    assert_reason(&response, 408, "header_timeout");
    assert!(took >= Duration::from_millis(290), "answered after {took:?}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert!(conn.is_closed());
    assert_eq!(backend.count(), 0);
}

#[test]
fn trickling_client_header_still_times_out() {
    let proxy = Proxy::start(&config(
        "server: { timeouts: { client_header: 300ms } }\n",
        "",
        "",
        &[TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()],
    ));
    let mut stream = TcpStream::connect(proxy.addr("web")).unwrap();
    stream.set_read_timeout(Some(support::WAIT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let started = Instant::now();
    // One header byte every 50 ms: each read is quick, the head never completes.
    let trickle = std::thread::spawn(move || {
        writer.write_all(b"GET /x HTTP/1.1\r\nHost: test.local\r\nX-Slow: ").unwrap();
        while started.elapsed() < Duration::from_secs(4) {
            if writer.write_all(b"a").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(text.contains("x-strait-reason: header_timeout"), "{text}");
    assert!(took < Duration::from_secs(2), "a trickling client kept the head open for {took:?}");
    trickle.join().unwrap();
}

#[test]
fn silent_connection_is_closed_after_idle_timeout_without_a_408() {
    let proxy = Proxy::start(&config(
        "server: { timeouts: { client_header: 200ms, idle: 800ms } }\n",
        "",
        "",
        &[TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()],
    ));
    let mut stream = TcpStream::connect(proxy.addr("web")).unwrap();
    stream.set_read_timeout(Some(support::WAIT)).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let took = started.elapsed();
    // A client that never sent a byte has no request to answer, and client_header has not started.
    assert_eq!(String::from_utf8_lossy(&answer), "", "a silent connection got an answer");
    assert!(took >= Duration::from_millis(700), "closed after {took:?}, before the idle timeout");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
}

#[test]
fn client_header_timer_starts_with_the_first_byte() {
    let backend = Backend::named("b");
    let proxy =
        Proxy::start(&config("server: { timeouts: { client_header: 200ms, idle: 10s } }\n", "", "", &[backend.addr]));
    let mut stream = TcpStream::connect(proxy.addr("web")).unwrap();
    // Silent for three times client_header: nothing comes back (no 408) and the request that
    // follows is served.
    stream.set_read_timeout(Some(Duration::from_millis(600))).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
        other => panic!("a silent connection got {other:?} before its idle timeout"),
    }
    let mut conn = RawConn::from_stream(stream);
    assert_eq!(send_get(&mut conn).status, 200);
}

#[test]
fn idle_upstream_connections_are_closed_after_their_idle_timeout_without_new_requests() {
    let upstream = support::RawUpstream::answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let proxy = Proxy::start(&format!(
        r#"
workers: 1
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - forward: {{ cluster: app }}
clusters:
  - name: app
    timeouts: {{ idle: 300ms }}
    endpoints: [{{ address: "{}" }}]
"#,
        upstream.addr
    ));
    let response = support::get(proxy.addr("web"), "/");
    assert_eq!(response.status, 200);
    let started = std::time::Instant::now();
    // No further request comes: the worker's sweep must close the pooled connection itself.
    support::wait_until("the idle upstream connection to close", || {
        upstream.connections().first().is_some_and(|c| c.closed)
    });
    assert!(started.elapsed() >= std::time::Duration::from_millis(250), "closed before its idle timeout");
}
