//! The `circuit_breaker` filter end to end: it opens after consecutive upstream failures,
//! answers with its fallback (fixed, or the last good response) without calling the upstream,
//! and closes again after a successful trial once the cool-down is over.

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Backend, Proxy, RawResponse, Reply};

/// A backend that answers 200 `good` or, while `failing` is set, 503.
fn flaky(failing: Arc<AtomicBool>) -> Backend {
    Backend::start(move |_| if failing.load(Ordering::SeqCst) { Reply::status(503) } else { Reply::text("good") })
}

fn proxy(backend_addr: &str, breaker: &str) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: {{ cluster: app }}\nclusters:\n  - name: app\n    filters:\n      - name: circuit_breaker\n        config: {breaker}\n    endpoints: [{{ address: \"{backend_addr}\" }}]\n"
    ))
}

fn get(proxy: &Proxy) -> RawResponse {
    support::raw_request(proxy.addr("web"), b"GET / HTTP/1.1\r\nHost: cb.test\r\nConnection: close\r\n\r\n")
        .expect("response")
}

#[test]
fn opens_after_consecutive_failures_and_closes_after_a_good_trial() {
    let failing = Arc::new(AtomicBool::new(true));
    let backend = flaky(failing.clone());
    let proxy = proxy(&backend.addr.to_string(), "{ consecutive_failures: 3, cool_down: 400ms }");
    for _ in 0..3 {
        assert_eq!(get(&proxy).status, 503);
    }
    assert_eq!(backend.requests().len(), 3);
    let opened = Instant::now();
    let refused = get(&proxy);
    assert_eq!((refused.status, refused.header("x-strait-reason")), (503, Some("circuit_open")));
    assert_eq!(backend.requests().len(), 3, "an open breaker does not call the upstream");
    failing.store(false, Ordering::SeqCst);
    // Refused until the cool-down is over, then a trial passes and closes the breaker.
    let deadline = Instant::now() + Duration::from_secs(10);
    let passed = loop {
        let response = get(&proxy);
        if response.status == 200 {
            break Instant::now();
        }
        assert_eq!(response.header("x-strait-reason"), Some("circuit_open"));
        assert!(Instant::now() < deadline, "the breaker never half-opened");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(passed.duration_since(opened) >= Duration::from_millis(350), "half-open before the cool-down");
    for _ in 0..3 {
        assert_eq!(get(&proxy).status, 200, "closed again");
    }
}

#[test]
fn an_open_breaker_answers_with_the_last_good_response() {
    let failing = Arc::new(AtomicBool::new(false));
    let backend = flaky(failing.clone());
    let breaker =
        "{ consecutive_failures: 2, cool_down: 1m, fallback: { last_response: true, status: 503, body: fixed } }";
    let proxy = proxy(&backend.addr.to_string(), breaker);
    assert_eq!(get(&proxy).text(), "good");
    failing.store(true, Ordering::SeqCst);
    assert_eq!(get(&proxy).status, 503);
    assert_eq!(get(&proxy).status, 503);
    let fallback = get(&proxy);
    assert_eq!(fallback.status, 200);
    assert_eq!(fallback.text(), "good");
    assert_eq!(fallback.header("x-strait-fallback"), Some("last_response"));
    assert_eq!(backend.requests().len(), 3);
}

#[test]
fn connection_failures_open_it_and_the_fixed_fallback_answers() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let breaker = "{ consecutive_failures: 2, cool_down: 1m, fallback: { status: 200, body: '{\"items\": []}', content_type: application/json } }";
    let proxy = proxy(&addr, breaker);
    assert_eq!(get(&proxy).header("x-strait-reason"), Some("upstream_connect_failed"));
    assert_eq!(get(&proxy).header("x-strait-reason"), Some("upstream_connect_failed"));
    let fallback = get(&proxy);
    assert_eq!(fallback.status, 200);
    assert_eq!(fallback.text(), "{\"items\": []}");
    assert_eq!(fallback.header("content-type"), Some("application/json"));
    assert_eq!(fallback.header("x-strait-fallback"), Some("fixed"));
}

#[test]
fn settings_that_could_never_work_are_config_errors() {
    let text = "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: { cluster: app }\n        filters:\n          - name: circuit_breaker\n            config: { consecutive_failures: 0 }\nclusters:\n  - name: app\n    endpoints: [{ address: \"127.0.0.1:9\" }]\n";
    let config = strait_config::load_str(text, "cb.yaml").unwrap();
    let errors = strait_proxy::check(&config).unwrap_err().to_string();
    assert!(errors.contains("routes[0].filters[0].config.consecutive_failures: 0 and no `failure_rate`"), "{errors}");
}
