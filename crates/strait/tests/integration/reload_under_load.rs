//! Repeated SIGHUP reloads of the real binary while clients send requests: not one request may fail.

use crate::support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{get, wait_until, Backend, Conn, Strait, Workdir};

/// Reloads performed (each waited for until applied).
const RELOADS: u64 = 20;
/// Upper bound on how long the clients run, whatever happens.
const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// A configuration routing `/api` to cluster `pool-NAME` and tagging responses `x-config: NAME`.
fn config(name: &str, backend: SocketAddr) -> String {
    format!(
        "\
workers: 2
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - name: api-{name}
        match: {{ path: {{ prefix: /api }} }}
        forward: {{ cluster: pool-{name} }}
        response_headers: {{ set: {{ x-config: {name} }} }}
clusters:
  - name: pool-{name}
    endpoints: [{{ address: \"{backend}\" }}]
"
    )
}

/// What one client saw.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failures: Mutex<Vec<String>>,
    configs: Mutex<Vec<String>>,
}

impl Tally {
    fn check(&self, n: usize, result: Result<support::Response, String>) -> bool {
        match result {
            Ok(r) if r.status == 200 => {
                let config = r.header("x-config").unwrap_or("none").to_owned();
                let body = r.text();
                if body != config.to_uppercase() {
                    self.failures.lock().unwrap().push(format!("request {n}: x-config {config} but body {body:?}"));
                    return false;
                }
                let mut configs = self.configs.lock().unwrap();
                if configs.last() != Some(&config) {
                    configs.push(config);
                }
                self.ok.fetch_add(1, Ordering::SeqCst);
                true
            }
            Ok(r) => {
                let reason = r.header("x-strait-reason").unwrap_or("-").to_owned();
                self.failures.lock().unwrap().push(format!("request {n}: status {} reason {reason}", r.status));
                false
            }
            Err(e) => {
                self.failures.lock().unwrap().push(format!("request {n}: {e}"));
                false
            }
        }
    }
}

/// Sends requests on one keep-alive connection until `stop`; the first failure ends it.
fn keep_alive_client(addr: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let deadline = Instant::now() + CLIENT_LIMIT;
    let mut conn = match Conn::connect(addr) {
        Ok(conn) => conn,
        Err(e) => return tally.failures.lock().unwrap().push(format!("connect: {e}")),
    };
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        n += 1;
        if !tally.check(n, conn.get(&format!("/api/keepalive/{n}"))) {
            return;
        }
    }
}

/// Sends requests each on a new connection until `stop`.
fn new_connection_client(addr: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let deadline = Instant::now() + CLIENT_LIMIT;
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        n += 1;
        let result = Conn::connect(addr).map_err(|e| format!("connect: {e}")).and_then(|mut c| {
            c.request(&format!("GET /api/fresh/{n} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n"))
        });
        if !tally.check(n, result) {
            return;
        }
    }
}

#[test]
fn twenty_sighup_reloads_under_continuous_traffic_fail_no_request() {
    let a = Backend::named("A");
    let b = Backend::named("B");
    let work = Workdir::new(&config("a", a.addr));
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    let addr = strait.listener("web");
    assert_eq!(get(addr, "/api/warmup").text(), "A");

    let stop = Arc::new(AtomicBool::new(false));
    let keep_alive = Arc::new(Tally::default());
    let fresh = Arc::new(Tally::default());
    let clients = [
        thread::spawn({
            let (stop, tally) = (stop.clone(), keep_alive.clone());
            move || keep_alive_client(addr, stop, tally)
        }),
        thread::spawn({
            let (stop, tally) = (stop.clone(), fresh.clone());
            move || new_connection_client(addr, stop, tally)
        }),
    ];

    let failed = || !keep_alive.failures.lock().unwrap().is_empty() || !fresh.failures.lock().unwrap().is_empty();
    wait_until("traffic before the first reload", || {
        failed() || (keep_alive.ok.load(Ordering::SeqCst) >= 20 && fresh.ok.load(Ordering::SeqCst) >= 5)
    });
    for generation in 2..=RELOADS + 1 {
        let (name, backend) = if generation % 2 == 0 { ("b", &b) } else { ("a", &a) };
        work.rewrite(&config(name, backend.addr));
        strait.reload_to(generation);
        // Let both clients get some requests through on this configuration.
        let (k0, f0) = (keep_alive.ok.load(Ordering::SeqCst), fresh.ok.load(Ordering::SeqCst));
        wait_until("traffic after a reload", || {
            failed() || (keep_alive.ok.load(Ordering::SeqCst) >= k0 + 20 && fresh.ok.load(Ordering::SeqCst) >= f0 + 5)
        });
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }

    for (kind, tally) in [("keep-alive", &keep_alive), ("new-connection", &fresh)] {
        let failures = tally.failures.lock().unwrap();
        assert!(
            failures.is_empty(),
            "{kind} client failed after {} good requests: {failures:?}",
            tally.ok.load(Ordering::SeqCst)
        );
        // The configurations alternated under the client: it saw the first one and every switch.
        let configs = tally.configs.lock().unwrap();
        assert_eq!(configs.len(), RELOADS as usize + 1, "{kind} client saw only {configs:?}");
    }
    let total = keep_alive.ok.load(Ordering::SeqCst) + fresh.ok.load(Ordering::SeqCst);
    assert!(total >= (RELOADS as usize) * 25, "only {total} requests");
    assert_eq!(a.targets().len() + b.targets().len(), total + 1);
}
