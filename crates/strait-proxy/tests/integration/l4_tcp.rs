//! TCP listeners (layer 4): sessions relayed to a cluster with its balancer, retries on connect
//! failure, passive health, half-close, idle timeout, stream log lines and reload.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::*;

/// A cluster of `endpoints` and a TCP listener forwarding to it, with the JSON log at `log`.
fn tcp_config(endpoints: &[SocketAddr], extra_cluster: &str, extra_tcp: &str, log: &str) -> String {
    let endpoints: String = endpoints.iter().map(|e| format!("      - address: \"{e}\"\n")).collect();
    format!(
        "access_log: {{ path: \"{log}\", format: json }}\n\
         listeners:\n  - name: db\n    bind: 127.0.0.1:0\n    tcp:\n      cluster: pool\n{extra_tcp}\
         clusters:\n  - name: pool\n    endpoints:\n{endpoints}{extra_cluster}"
    )
}

/// Sends `message` through a fresh connection to `addr`, half-closes, and reads to the end.
fn round_trip(addr: SocketAddr, message: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(message).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    answer
}

/// The JSON lines of the log at `path`, once it has `count` of them.
fn log_lines(path: &std::path::Path, count: usize) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    wait_until("stream log lines", || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        lines = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        lines.len() >= count
    });
    lines
}

#[test]
fn bytes_go_both_ways_with_half_close_and_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let echo = echo_server();
    let proxy = Proxy::start(&tcp_config(&[echo], "", "", log.to_str().unwrap()));
    let message = vec![b'x'; 200_000];
    assert_eq!(round_trip(proxy.addr("db"), &message), message, "the echo came back whole after the half-close");
    let lines = log_lines(&log, 1);
    let line = &lines[0];
    assert_eq!(line["protocol"], "TCP");
    assert_eq!(line["status"], 200);
    assert_eq!(line["listener"], "db");
    assert_eq!(line["cluster"], "pool");
    assert_eq!(line["bytes_received"], 200_000);
    assert_eq!(line["bytes_sent"], 200_000);
    assert_eq!(line["upstream"], echo.to_string());
    assert_eq!(line["reason"], serde_json::Value::Null);
}

#[test]
fn a_refused_endpoint_is_skipped_for_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let echo = echo_server();
    let proxy = Proxy::start(&tcp_config(&[closed, echo], "", "", log.to_str().unwrap()));
    for _ in 0..4 {
        assert_eq!(round_trip(proxy.addr("db"), b"ping"), b"ping");
    }
    let lines = log_lines(&log, 4);
    assert!(lines.iter().all(|l| l["upstream"] == echo.to_string() && l["status"] == 200), "{lines:?}");
}

#[test]
fn no_endpoint_to_connect_to_closes_the_client_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let proxy = Proxy::start(&tcp_config(&[closed], "", "", log.to_str().unwrap()));
    let mut stream = TcpStream::connect(proxy.addr("db")).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = Vec::new();
    assert_eq!(stream.read_to_end(&mut answer).unwrap(), 0, "closed without a byte");
    let lines = log_lines(&log, 1);
    assert_eq!(lines[0]["status"], 502);
    assert_eq!(lines[0]["reason"], "upstream_connect_failed");
    assert_eq!(lines[0]["upstream"], closed.to_string());
}

#[test]
fn an_idle_session_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let echo = echo_server();
    let proxy = Proxy::start(&tcp_config(&[echo], "", "      idle_timeout: 300ms\n", log.to_str().unwrap()));
    let mut stream = TcpStream::connect(proxy.addr("db")).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(b"hello").unwrap();
    let mut answer = [0u8; 5];
    stream.read_exact(&mut answer).unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250), "closed after the idle time, not before");
    let lines = log_lines(&log, 1);
    assert_eq!(lines[0]["reason"], "stream_idle_timeout");
    assert_eq!(lines[0]["status"], 200);
}
