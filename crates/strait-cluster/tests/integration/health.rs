//! Active and passive health checking against real sockets.

use crate::common;

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{build, cluster, ctx, eventually};
use strait_config::units::Dur;
use strait_config::{ActiveHealth, Balancer, HealthKind, PassiveHealth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(10);

/// A tiny HTTP server answering every request with the current `status`.
struct StatusServer {
    addr: String,
    status: Arc<AtomicU16>,
    requests: Arc<AtomicUsize>,
    last_request: Arc<Mutex<String>>,
}

async fn status_server() -> StatusServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let status = Arc::new(AtomicU16::new(200));
    let requests = Arc::new(AtomicUsize::new(0));
    let last_request = Arc::new(Mutex::new(String::new()));
    let (s, r, l) = (status.clone(), requests.clone(), last_request.clone());
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let (s, r, l) = (s.clone(), r.clone(), l.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                *l.lock().unwrap() = String::from_utf8_lossy(&head).into_owned();
                r.fetch_add(1, Ordering::SeqCst);
                let status = s.load(Ordering::SeqCst);
                let response = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    StatusServer { addr, status, requests, last_request }
}

fn active(kind: HealthKind) -> ActiveHealth {
    ActiveHealth {
        kind,
        path: "/healthz".into(),
        host: None,
        expected_statuses: Vec::new(),
        interval: Dur(Duration::from_millis(20)),
        timeout: Dur(Duration::from_millis(500)),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_marks_down_and_up() {
    let server = status_server().await;
    let mut config = cluster("web", Balancer::RoundRobin, &[(&server.addr, 1, false)]);
    config.health.active = Some(active(HealthKind::Http));
    let state = build(config).await;
    let ep = state.endpoints()[0].clone();
    assert!(ep.is_healthy(), "endpoints start healthy");

    // The first probe runs at once.
    eventually(LIMIT, "first probe", || async { server.requests.load(Ordering::SeqCst) >= 1 }).await;
    let request = server.last_request.lock().unwrap().clone();
    assert_eq!(
        request,
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nUser-Agent: strait-health\r\nConnection: close\r\n\r\n",
            server.addr
        )
    );

    server.status.store(500, Ordering::SeqCst);
    eventually(LIMIT, "unhealthy", || async { !ep.is_healthy() }).await;
    assert!(state.pick(&ctx(None), &[]).is_none());

    server.status.store(204, Ordering::SeqCst);
    eventually(LIMIT, "healthy again", || async { ep.is_healthy() }).await;
    assert_eq!(state.pick(&ctx(None), &[]).unwrap().addr, ep.addr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_honours_expected_statuses_and_host() {
    let server = status_server().await;
    let mut config = cluster("web", Balancer::RoundRobin, &[(&server.addr, 1, false)]);
    let mut check = active(HealthKind::Http);
    check.expected_statuses = vec![418];
    check.host = Some("health.internal".into());
    config.health.active = Some(check);
    let state = build(config).await;
    let ep = state.endpoints()[0].clone();

    // 200 is not expected here.
    eventually(LIMIT, "unhealthy on 200", || async { !ep.is_healthy() }).await;
    assert!(server.last_request.lock().unwrap().contains("\r\nHost: health.internal\r\n"));
    server.status.store(418, Ordering::SeqCst);
    eventually(LIMIT, "healthy on 418", || async { ep.is_healthy() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_fails_on_a_closed_port() {
    let open = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (open_addr, closed_addr) = (open.local_addr().unwrap().to_string(), closed.local_addr().unwrap().to_string());
    drop(closed);
    let mut config = cluster("tcp", Balancer::RoundRobin, &[(&open_addr, 1, false), (&closed_addr, 1, false)]);
    config.health.active = Some(active(HealthKind::Tcp));
    let state = build(config).await;
    let eps = state.endpoints();

    eventually(LIMIT, "closed port unhealthy", || async { !eps[1].is_healthy() }).await;
    assert!(eps[0].is_healthy());
    for _ in 0..20 {
        assert_eq!(state.pick(&ctx(None), &[]).unwrap().addr, eps[0].addr);
    }
}

#[tokio::test]
async fn passive_ejection_and_recovery() {
    let mut config = cluster("passive", Balancer::RoundRobin, &[("127.0.0.1:1", 1, false), ("127.0.0.1:2", 1, false)]);
    config.health.passive = Some(PassiveHealth { max_fails: 2, fail_timeout: Dur(Duration::from_millis(300)) });
    let state = build(config).await;
    let eps = state.endpoints();

    eps[0].report_failure();
    assert!(eps[0].is_healthy(), "one failure of two allowed");
    eps[0].report_failure();
    assert!(!eps[0].is_healthy(), "ejected");
    for _ in 0..20 {
        assert_eq!(state.pick(&ctx(None), &[]).unwrap().addr, eps[1].addr);
    }
    eps[1].report_success();
    assert!(eps[1].is_healthy());

    eventually(LIMIT, "ejection over", || async { eps[0].is_healthy() }).await;
    eps[0].report_success();
    assert!(eps[0].is_healthy());
    let picked: Vec<_> = (0..4).map(|_| state.pick(&ctx(None), &[]).unwrap().addr).collect();
    assert!(picked.contains(&eps[0].addr));

    // Failures further apart than `fail_timeout` do not add up.
    eps[1].report_failure();
    let start = std::time::Instant::now();
    eventually(LIMIT, "window over", || async { start.elapsed() > Duration::from_millis(350) }).await;
    eps[1].report_failure();
    assert!(eps[1].is_healthy());
}

#[tokio::test]
async fn passive_health_is_off_without_configuration() {
    let state = build(cluster("none", Balancer::RoundRobin, &[("127.0.0.1:1", 1, false)])).await;
    let ep = state.endpoints()[0].clone();
    for _ in 0..10 {
        ep.report_failure();
    }
    assert!(ep.is_healthy());
}
