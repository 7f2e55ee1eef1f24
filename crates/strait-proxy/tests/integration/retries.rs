//! Retries end to end: connect failures, resets and retryable statuses, method and body rules, bounds.

use crate::support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use support::{Backend, Proxy, RawConn, RawResponse, Reply};

// === helpers ===

/// A proxy config with listener `web` forwarding everything to cluster `app` (round robin,
/// in the given endpoint order); `route` holds extra route lines indented by 8.
fn config(route: &str, endpoints: &[SocketAddr]) -> String {
    let endpoints: String = endpoints.iter().map(|a| format!("      - address: \"{a}\"\n")).collect();
    format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: {{ cluster: app }}\n{route}\
         clusters:\n  - name: app\n    endpoints:\n{endpoints}"
    )
}

/// The address of a port nothing listens on (bound, then released).
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Sends a request on a keep-alive connection and reads the answer.
fn send(conn: &mut RawConn, method: &str, path: &str, body: Option<&str>) -> RawResponse {
    let framing = match body {
        Some(b) => format!("Content-Length: {}\r\n", b.len()),
        None => String::new(),
    };
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test.local\r\n{framing}\r\n{}", body.unwrap_or(""));
    conn.send(request.as_bytes());
    conn.read_response().expect("response")
}

/// A backend that always answers 503 with a body and an `x-backend` header.
fn unavailable(name: &'static str) -> Backend {
    Backend::start(move |_| Reply { status: 503, ..Reply::text("busy") }.header("x-backend", name))
}

/// A listener that accepts connections, reads the request head and closes without answering.
struct Hangup {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hangup {
    fn start() -> Hangup {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (accepted, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, stopped) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        stream.set_nonblocking(false).unwrap();
                        stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf) {
                                Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                                _ => break,
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return,
                }
            }
        });
        Hangup { addr, accepted, stop, thread: Some(thread) }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Hangup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// === connection failures ===

#[test]
fn connect_failure_is_retried_on_another_endpoint_by_default() {
    let live = Backend::named("live");
    let proxy = Proxy::start(&config("", &[closed_port(), live.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    for i in 0..20 {
        let r = send(&mut conn, "GET", "/", None);
        assert_eq!((r.status, r.header("x-backend")), (200, Some("live")), "request {i}: {r:?}");
    }
    assert_eq!(live.count(), 20);
}

#[test]
fn connect_failure_reaches_the_client_with_a_single_attempt() {
    let live = Backend::named("live");
    let proxy = Proxy::start(&config("        retries: { attempts: 1 }\n", &[closed_port(), live.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    let mut failed = 0;
    for _ in 0..20 {
        let r = send(&mut conn, "GET", "/", None);
        if r.status == 502 {
            assert_eq!(r.header("x-strait-reason"), Some("upstream_connect_failed"));
            failed += 1;
        } else {
            assert_eq!(r.header("x-backend"), Some("live"));
        }
    }
    // Round robin alternates between the two endpoints.
    assert_eq!(failed, 10);
    assert_eq!(live.count(), 10);
}

#[test]
fn reset_before_response_is_retried_for_get_but_not_for_post_with_body() {
    let hangup = Hangup::start();
    let live = Backend::named("live");
    let proxy = Proxy::start(&config("        retries: { attempts: 2 }\n", &[hangup.addr, live.addr]));
    let addr = proxy.addr("web");
    for _ in 0..6 {
        let r = send(&mut RawConn::connect(addr), "GET", "/", None);
        assert_eq!((r.status, r.header("x-backend")), (200, Some("live")), "{r:?}");
    }
    assert!(hangup.accepted() >= 3, "the hanging-up endpoint was not tried");
    assert_eq!(live.count(), 6);

    let mut resets = 0;
    for _ in 0..6 {
        let r = send(&mut RawConn::connect(addr), "POST", "/", Some("payload"));
        if r.status == 502 {
            assert_eq!(r.header("x-strait-reason"), Some("upstream_reset"));
            resets += 1;
        } else {
            assert_eq!(r.header("x-backend"), Some("live"));
        }
    }
    assert!(resets >= 1, "no POST reached the hanging-up endpoint");
    assert_eq!(live.count(), 6 + 6 - resets, "a POST with a body was sent twice");
}

// === statuses ===

#[test]
fn status_503_is_retried_for_get() {
    let (down, up) = (unavailable("down"), Backend::named("up"));
    let proxy = Proxy::start(&config("        retries: { attempts: 2, on_status: [503] }\n", &[down.addr, up.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    for _ in 0..20 {
        let r = send(&mut conn, "GET", "/", None);
        assert_eq!((r.status, r.header("x-backend")), (200, Some("up")), "{r:?}");
    }
    assert_eq!(up.count(), 20);
    assert!(down.count() >= 5, "the 503 endpoint got only {} requests", down.count());
}

#[test]
fn status_503_is_not_retried_for_post_with_body() {
    let (down, up) = (unavailable("down"), Backend::named("up"));
    let proxy = Proxy::start(&config("        retries: { attempts: 2, on_status: [503] }\n", &[down.addr, up.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    let mut passed_through = 0;
    for _ in 0..20 {
        let r = send(&mut conn, "POST", "/orders", Some("{\"qty\":1}"));
        if r.status == 503 {
            assert_eq!((r.header("x-backend"), r.text().as_str()), (Some("down"), "busy"));
            passed_through += 1;
        } else {
            assert_eq!((r.status, r.header("x-backend")), (200, Some("up")));
        }
    }
    assert_eq!(down.count() + up.count(), 20, "a POST was sent twice");
    assert_eq!(passed_through, down.count());
    assert!(passed_through >= 5, "only {passed_through} POSTs reached the 503 endpoint");
    assert!(down.requests().iter().all(|r| r.body_len == 9), "the body did not arrive intact");
}

#[test]
fn status_503_is_not_retried_for_post_without_body_or_put_with_body() {
    let (down, up) = (unavailable("down"), Backend::named("up"));
    let proxy = Proxy::start(&config("        retries: { attempts: 2, on_status: [503] }\n", &[down.addr, up.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    // POST is not idempotent; PUT is, but its body cannot be replayed.
    for (method, body) in [("POST", None), ("PUT", Some("v=1"))] {
        let (down_before, up_before) = (down.count(), up.count());
        let statuses: Vec<u16> = (0..10).map(|_| send(&mut conn, method, "/item", body).status).collect();
        let (to_down, to_up) = (down.count() - down_before, up.count() - up_before);
        assert_eq!(to_down + to_up, 10, "{method}: a request was sent twice");
        assert_eq!(statuses.iter().filter(|s| **s == 503).count(), to_down, "{method}: {statuses:?}");
        assert!(to_down >= 3, "{method}: only {to_down} requests reached the 503 endpoint");
    }
}

#[test]
fn retry_attempts_bound_is_respected() {
    let backends: Vec<Backend> = ["a", "b", "c", "d"].into_iter().map(unavailable).collect();
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let proxy = Proxy::start(&config("        retries: { attempts: 3, on_status: [503] }\n", &addrs));
    let mut conn = RawConn::connect(proxy.addr("web"));
    for i in 0..5 {
        let r = send(&mut conn, "GET", &format!("/req/{i}"), None);
        // The last attempt's answer goes to the client as it is.
        assert_eq!((r.status, r.text().as_str()), (503, "busy"));
        assert_eq!(r.header("x-strait-reason"), None);
    }
    let total: usize = backends.iter().map(Backend::count).sum();
    assert_eq!(total, 15, "5 requests × 3 attempts");
    for i in 0..5 {
        let uri = format!("/req/{i}");
        let hit: Vec<usize> = backends.iter().map(|b| b.requests().iter().filter(|r| r.uri == uri).count()).collect();
        assert_eq!(hit.iter().sum::<usize>(), 3, "{uri}: attempts per backend {hit:?}");
        assert!(hit.iter().all(|n| *n <= 1), "{uri}: an endpoint was tried twice while others were left: {hit:?}");
    }
}

#[test]
fn without_retries_a_503_is_passed_through_unchanged() {
    let down = Backend::start(|_| {
        Reply { status: 503, ..Reply::text("come back later") }.header("x-backend", "down").header("retry-after", "7")
    });
    let up = Backend::named("up");
    let proxy = Proxy::start(&config("", &[down.addr, up.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    let mut passed_through = 0;
    for _ in 0..10 {
        let r = send(&mut conn, "GET", "/", None);
        if r.status == 503 {
            assert_eq!(r.text(), "come back later");
            assert_eq!(r.header("retry-after"), Some("7"));
            assert_eq!(r.header("x-backend"), Some("down"));
            assert_eq!(r.header("x-strait-reason"), None, "the upstream's 503 was replaced");
            passed_through += 1;
        }
    }
    assert_eq!(down.count() + up.count(), 10, "a request was retried");
    assert_eq!(passed_through, 5);
}

#[test]
fn default_retry_policy_retries_502_503_504_but_not_500() {
    // `flaky` answers the status named in the path; `up` always answers 200.
    let flaky = Backend::start(|req| {
        let status = req.uri.trim_start_matches("/status/").parse().unwrap_or(200);
        Reply::status(status).header("x-backend", "flaky")
    });
    let up = Backend::named("up");
    let proxy = Proxy::start(&config("        retries: {}\n", &[flaky.addr, up.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    for status in [502, 503, 504] {
        for _ in 0..4 {
            let r = send(&mut conn, "GET", &format!("/status/{status}"), None);
            assert_eq!((r.status, r.header("x-backend")), (200, Some("up")), "{status} not retried");
        }
    }
    let statuses: Vec<u16> = (0..4).map(|_| send(&mut conn, "GET", "/status/500", None).status).collect();
    assert!(statuses.contains(&500), "500 is not in the default list: {statuses:?}");
    assert!(flaky.count() >= 6);
}

#[test]
fn without_retries_an_empty_error_keeps_its_zero_length_and_the_connection() {
    let down = Backend::start(|_| Reply::status(500).header("x-backend", "down"));
    let proxy = Proxy::start(&config("", &[down.addr]));
    let mut conn = RawConn::connect(proxy.addr("web"));
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let r = send(&mut conn, "GET", "/", None);
        assert_eq!((r.status, r.header("content-length")), (500, Some("0")), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "the client had to wait for the connection to close");
    }
    assert_eq!(down.count(), 3, "the keep-alive connection was not reused for every request");
}
