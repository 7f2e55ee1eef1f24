//! Stopping the real binary: SIGTERM/SIGINT drain in-flight requests, refuse new connections, exit 0.

use crate::support;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{refused, wait_until, Backend, Conn, Reply, Strait, Workdir};

fn config(backend: std::net::SocketAddr, drain_timeout: &str) -> String {
    format!(
        "\
workers: 2
server:
  drain_timeout: {drain_timeout}
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: \"{backend}\" }}]
"
    )
}

/// Sends `GET path` on a new connection from another thread; the handle yields the result.
fn get_in_background(addr: std::net::SocketAddr, path: &str) -> thread::JoinHandle<Result<support::Response, String>> {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: test.local\r\n\r\n");
    thread::spawn(move || Conn::connect(addr).map_err(|e| e.to_string())?.request(&raw))
}

#[test]
fn sigterm_finishes_the_in_flight_request_refuses_new_connections_and_exits_zero() {
    // The slow request is held by the backend until the test opens the gate.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let backend = Backend::start({
        let gate = gate.clone();
        move |target| match target {
            "/slow" => Reply { gate: Some(gate.clone()), ..Reply::text("slow done") },
            _ => Reply::text("fast"),
        }
    });
    let work = Workdir::new(&config(backend.addr, "30s"));
    let mut strait = Strait::run(&work.config(), &["--no-watch"]);
    let addr = strait.listener("web");

    // An idle keep-alive connection, and a request in flight.
    let mut idle = Conn::connect(addr).unwrap();
    assert_eq!(idle.get("/fast").unwrap().text(), "fast");
    let slow = get_in_background(addr, "/slow");
    backend.wait_request(|t| t == "/slow");

    let from = strait.stderr_len();
    let signalled = Instant::now();
    strait.signal(libc::SIGTERM);
    strait.wait_stderr(from, "`draining`", |l| l.contains("draining"));

    // While the request is still in flight: no new connections, idle ones are closed.
    wait_until("new connections to be refused", || refused(addr));
    for _ in 0..20 {
        assert!(refused(addr), "a listening socket still accepts while draining");
    }
    assert!(idle.is_closed(), "the idle keep-alive connection was not closed by the drain");
    assert!(strait.is_running(), "exited with a request in flight");
    assert!(!slow.is_finished(), "the slow request was answered before the backend replied");

    gate.add_permits(1);
    let response = slow.join().unwrap().expect("the in-flight request failed");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "slow done");

    let status = strait.wait_exit(Duration::from_secs(25));
    assert_eq!(status.code(), Some(0), "{}", strait.stderr_text());
    assert!(signalled.elapsed() < Duration::from_secs(25), "waited for the whole drain timeout");
    assert!(strait.stderr_text().contains("stopped"));
    assert!(refused(addr));
}

#[test]
fn sigint_lets_a_500ms_request_complete_and_exits_zero() {
    let backend = Backend::start(|_| Reply { delay: Duration::from_millis(500), ..Reply::text("late") });
    let work = Workdir::new(&config(backend.addr, "10s"));
    let mut strait = Strait::run(&work.config(), &["--no-watch"]);
    let addr = strait.listener("web");

    let slow = get_in_background(addr, "/slow");
    backend.wait_request(|t| t == "/slow");
    let signalled = Instant::now();
    strait.signal(libc::SIGINT);

    let response = slow.join().unwrap().expect("the in-flight request failed");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "late");
    let status = strait.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", strait.stderr_text());
    assert!(signalled.elapsed() < Duration::from_secs(10), "exceeded the 10s drain timeout");
    assert!(refused(addr), "still accepting after exit");
}

#[test]
fn sigterm_with_an_idle_connection_only_exits_at_once() {
    let backend = Backend::named("app");
    let work = Workdir::new(&config(backend.addr, "30s"));
    let mut strait = Strait::run(&work.config(), &["--no-watch"]);
    let addr = strait.listener("web");
    let mut idle = Conn::connect(addr).unwrap();
    assert_eq!(idle.get("/").unwrap().status, 200);

    let signalled = Instant::now();
    strait.signal(libc::SIGTERM);
    let status = strait.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    // Far below the 30 s drain timeout: idle connections do not hold the drain.
    assert!(signalled.elapsed() < Duration::from_secs(15));
    assert!(idle.is_closed());
}

#[test]
fn drain_timeout_bounds_the_wait_for_a_request_that_never_finishes() {
    let never = Arc::new(tokio::sync::Semaphore::new(0));
    let backend = Backend::start({
        let never = never.clone();
        move |_| Reply { gate: Some(never.clone()), ..Reply::text("never") }
    });
    let work = Workdir::new(&config(backend.addr, "1s"));
    let mut strait = Strait::run(&work.config(), &["--no-watch"]);
    let addr = strait.listener("web");

    let stuck = get_in_background(addr, "/stuck");
    backend.wait_request(|t| t == "/stuck");
    let signalled = Instant::now();
    strait.signal(libc::SIGTERM);
    let status = strait.wait_exit(Duration::from_secs(15));
    let waited = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{}", strait.stderr_text());
    assert!(waited >= Duration::from_millis(900), "did not wait for the in-flight request: {waited:?}");
    assert!(waited < Duration::from_secs(15), "ignored the 1s drain timeout: {waited:?}");
    // The client is not left hanging: its connection ends without a 200.
    let result = stuck.join().unwrap();
    assert!(result.as_ref().map_or(true, |r| r.status != 200), "{result:?}");
    assert!(refused(addr), "still accepting after exit");
}
