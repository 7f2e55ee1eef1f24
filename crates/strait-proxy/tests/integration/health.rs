//! Health checking end to end: active HTTP and TCP probes, passive ejection, no healthy upstream.

use crate::support;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{wait_until, Backend, Proxy, RawConn, RawResponse, Reply};

// === helpers ===

/// A proxy config with listener `web` forwarding everything to cluster `app` over `endpoints`.
///
/// `route` and `cluster` are extra lines for the route (indented 8) and the cluster (indented 4).
fn config(route: &str, cluster: &str, endpoints: &[SocketAddr]) -> String {
    let endpoints: String = endpoints.iter().map(|a| format!("      - address: \"{a}\"\n")).collect();
    format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: {{ cluster: app }}\n{route}\
         clusters:\n  - name: app\n{cluster}    endpoints:\n{endpoints}"
    )
}

/// The address of a port nothing listens on (bound, then released).
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Sends a GET on a keep-alive connection and reads the answer.
fn send_get(conn: &mut RawConn) -> RawResponse {
    conn.send(b"GET /x HTTP/1.1\r\nHost: test.local\r\n\r\n");
    conn.read_response().expect("response")
}

/// Sends `n` GETs on one connection; returns the `x-backend` of each (or `<status>` without it).
fn serve_n(addr: SocketAddr, n: usize) -> Vec<String> {
    let mut conn = RawConn::connect(addr);
    (0..n)
        .map(|_| {
            let r = send_get(&mut conn);
            match (r.status, r.header("x-backend")) {
                (200, Some(name)) => name.to_owned(),
                (status, _) => format!("<{status}>"),
            }
        })
        .collect()
}

/// Requests that were not health probes.
fn traffic(backend: &Backend) -> usize {
    backend.requests().iter().filter(|r| r.uri != "/health").count()
}

/// Health probes received.
fn probes(backend: &Backend) -> usize {
    backend.requests().iter().filter(|r| r.uri == "/health").count()
}

/// A backend named `name` whose `/health` answers 500 while `failing` is set.
fn checked_backend(name: &'static str, failing: Arc<AtomicBool>) -> Backend {
    Backend::start(move |req| {
        if req.uri == "/health" {
            Reply::status(if failing.load(Ordering::SeqCst) { 500 } else { 200 })
        } else {
            Reply::text(name).header("x-backend", name)
        }
    })
}

// === active checks ===

#[test]
fn active_http_check_ejects_failing_endpoint_and_restores_it_after_recovery() {
    let failing = Arc::new(AtomicBool::new(false));
    let a = Backend::named("a");
    let b = checked_backend("b", failing.clone());
    let proxy = Proxy::start(&config(
        "",
        "    health:\n      active: { kind: http, path: /health, interval: 100ms, timeout: 500ms, \
         healthy_threshold: 2, unhealthy_threshold: 2 }\n",
        &[a.addr, b.addr],
    ));
    let addr = proxy.addr("web");
    wait_until("b to be probed", || probes(&b) >= 2);
    let probe = b.requests().into_iter().find(|r| r.uri == "/health").unwrap();
    assert_eq!(probe.method, "GET");
    assert_eq!(probe.headers.get("user-agent").map(|v| v.to_str().unwrap()), Some("strait-health"));
    let served = serve_n(addr, 10);
    assert_eq!(served.iter().filter(|s| *s == "b").count(), 5, "healthy b takes its share: {served:?}");

    failing.store(true, Ordering::SeqCst);
    let probes_at_failure = probes(&b);
    wait_until("b to be ejected", || serve_n(addr, 6).iter().all(|s| s == "a"));
    assert!(probes(&b) >= probes_at_failure + 2, "ejected before two failed probes");
    let before = traffic(&b);
    let served = serve_n(addr, 40);
    assert!(served.iter().all(|s| s == "a"), "{served:?}");
    assert_eq!(traffic(&b), before, "an unhealthy endpoint got traffic");

    failing.store(false, Ordering::SeqCst);
    let probes_at_recovery = probes(&b);
    wait_until("b to serve again", || serve_n(addr, 4).iter().any(|s| s == "b"));
    assert!(probes(&b) >= probes_at_recovery + 2, "restored before two passing probes");
    let served = serve_n(addr, 10);
    let share = served.iter().filter(|s| *s == "b").count();
    assert!((4..=6).contains(&share), "recovered b takes its share: {served:?}");
}

#[test]
fn one_failed_probe_below_unhealthy_threshold_does_not_eject() {
    // Fails exactly the probes counted in `fail_next`.
    let fail_next = Arc::new(AtomicUsize::new(0));
    let a = Backend::named("a");
    let flag = fail_next.clone();
    let b = Backend::start(move |req| {
        if req.uri != "/health" {
            return Reply::text("b").header("x-backend", "b");
        }
        let failed = flag.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        Reply::status(if failed { 503 } else { 200 })
    });
    // A wrong ejection would last at least 10 passing probes (1 s): long enough to see.
    let proxy = Proxy::start(&config(
        "",
        "    health:\n      active: { interval: 100ms, timeout: 500ms, healthy_threshold: 10, unhealthy_threshold: 2 }\n",
        &[a.addr, b.addr],
    ));
    let addr = proxy.addr("web");
    wait_until("b to be probed", || probes(&b) >= 1);
    fail_next.store(1, Ordering::SeqCst);
    wait_until("the failing probe", || fail_next.load(Ordering::SeqCst) == 0);
    let after_failure = probes(&b);
    wait_until("two passing probes", || probes(&b) >= after_failure + 2);
    let served = serve_n(addr, 10);
    assert_eq!(served.iter().filter(|s| *s == "b").count(), 5, "b was ejected after one failed probe: {served:?}");
}

#[test]
fn active_http_check_counts_only_expected_statuses_as_healthy() {
    let a = Backend::start(|req| match req.uri.as_str() {
        "/health" => Reply::status(204),
        _ => Reply::text("a").header("x-backend", "a"),
    });
    // Answers 200 everywhere, but the check expects 204.
    let b = Backend::named("b");
    let proxy = Proxy::start(&config(
        "",
        "    health:\n      active: { interval: 100ms, timeout: 500ms, unhealthy_threshold: 1, expected_statuses: [204] }\n",
        &[a.addr, b.addr],
    ));
    let addr = proxy.addr("web");
    wait_until("b to be ejected", || serve_n(addr, 4).iter().all(|s| s == "a"));
    let before = traffic(&b);
    assert!(serve_n(addr, 20).iter().all(|s| s == "a"));
    assert_eq!(traffic(&b), before);
}

#[test]
fn active_tcp_check_ejects_a_stopped_backend() {
    let a = Backend::named("a");
    let b = Backend::named("b");
    let proxy = Proxy::start(&config(
        // One attempt: a request sent to a stopped endpoint shows up as a 502.
        "        retries: { attempts: 1 }\n",
        "    health:\n      active: { kind: tcp, interval: 100ms, timeout: 500ms, unhealthy_threshold: 2 }\n",
        &[a.addr, b.addr],
    ));
    let addr = proxy.addr("web");
    // TCP probes connect without sending a request.
    wait_until("tcp probes to connect", || b.connections() >= 3);
    assert_eq!(b.count(), 0, "a tcp probe sent an HTTP request");
    let served = serve_n(addr, 10);
    assert_eq!(served.iter().filter(|s| *s == "b").count(), 5, "{served:?}");

    b.stop();
    wait_until("b to be ejected", || serve_n(addr, 6).iter().all(|s| s == "a"));
    let served = serve_n(addr, 40);
    assert!(served.iter().all(|s| s == "a"), "a stopped endpoint was still chosen: {served:?}");
}

// === passive checks ===

#[test]
fn passive_health_ejects_refused_endpoint_and_tries_it_again_after_fail_timeout() {
    let a = Backend::named("a");
    let closed = closed_port();
    let fail_timeout = Duration::from_millis(1500);
    let proxy = Proxy::start(&config(
        "        retries: { attempts: 1 }\n",
        "    health:\n      passive: { max_fails: 1, fail_timeout: 1500ms }\n",
        &[a.addr, closed],
    ));
    let mut conn = RawConn::connect(proxy.addr("web"));

    // Round robin reaches the closed endpoint within two requests.
    let mut failed_at = None;
    for _ in 0..2 {
        let sent = Instant::now();
        let r = send_get(&mut conn);
        if r.status == 502 {
            assert_eq!(r.header("x-strait-reason"), Some("upstream_connect_failed"));
            failed_at = Some(sent);
            break;
        }
        assert_eq!(r.header("x-backend"), Some("a"));
    }
    let failed_at = failed_at.expect("the closed endpoint was never chosen");

    // Ejected: every request goes to `a` for the whole fail_timeout.
    let mut during = 0;
    while failed_at.elapsed() < fail_timeout - Duration::from_millis(500) {
        let r = send_get(&mut conn);
        assert_eq!((r.status, r.header("x-backend")), (200, Some("a")), "ejected endpoint was chosen");
        during += 1;
    }
    assert!(during >= 1);

    // After fail_timeout it is tried again (and fails again).
    wait_until("the closed endpoint to be tried again", || send_get(&mut conn).status == 502);
    assert!(failed_at.elapsed() >= fail_timeout, "tried again after {:?}", failed_at.elapsed());
    assert_eq!(send_get(&mut conn).header("x-backend"), Some("a"), "ejected again after the new failure");
}

// === nothing healthy ===

#[test]
fn all_endpoints_down_by_active_checks_answers_503_no_healthy_upstream() {
    let proxy = Proxy::start(&config(
        "",
        "    health:\n      active: { kind: tcp, interval: 100ms, timeout: 500ms, unhealthy_threshold: 1 }\n",
        &[closed_port(), closed_port()],
    ));
    let addr = proxy.addr("web");
    wait_until("no healthy upstream", || send_get(&mut RawConn::connect(addr)).status == 503);
    let r = send_get(&mut RawConn::connect(addr));
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-strait-reason"), Some("no_healthy_upstream"));
}

#[test]
fn all_endpoints_ejected_by_passive_checks_answers_503_no_healthy_upstream() {
    let proxy = Proxy::start(&config(
        "",
        "    health:\n      passive: { max_fails: 1, fail_timeout: 10s }\n",
        &[closed_port(), closed_port()],
    ));
    let mut conn = RawConn::connect(proxy.addr("web"));
    // The first request fails on both endpoints, which ejects them.
    let first = send_get(&mut conn);
    assert_eq!((first.status, first.header("x-strait-reason")), (502, Some("upstream_connect_failed")));
    let second = send_get(&mut conn);
    assert_eq!((second.status, second.header("x-strait-reason")), (503, Some("no_healthy_upstream")));
}
