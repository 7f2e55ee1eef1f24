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

#[test]
fn bytes_go_both_ways_with_half_close_and_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let echo = echo_server();
    let proxy = Proxy::start(&tcp_config(&[echo], "", "", log.to_str().unwrap()));
    let message = vec![b'x'; 200_000];
    assert_eq!(round_trip(proxy.addr("db"), &message), message, "the echo came back whole after the half-close");
    let lines = json_log_lines(&log, 1);
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

/// A server that greets each connection, shuts down its writing side, then reads what the
/// client sends until its end, and reports it.
fn greet_then_listen() -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (heard, hear) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let heard = heard.clone();
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(WAIT)).unwrap();
                stream.write_all(b"hello").unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
                let mut got = Vec::new();
                let _ = stream.read_to_end(&mut got);
                let _ = heard.send(got);
            });
        }
    });
    (addr, hear)
}

/// Through `proxy`'s listener to [`greet_then_listen`]: reads the greeting and the end that
/// follows it, then sends `late` and shuts down; returns what the server heard.
fn greeted_then_talk(proxy: &Proxy, hear: &std::sync::mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
    let mut stream = TcpStream::connect(proxy.addr("db")).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut greeting = Vec::new();
    stream.read_to_end(&mut greeting).unwrap();
    assert_eq!(greeting, b"hello", "the greeting, then the server's end");
    // Without half-close the session may be gone: the write can be refused.
    let _ = stream.write_all(b"late");
    let _ = stream.shutdown(Shutdown::Write);
    hear.recv_timeout(WAIT).expect("the server saw the client's end")
}

#[test]
fn the_upstreams_end_is_passed_on_and_the_client_may_still_talk_unless_half_close_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let (server, hear) = greet_then_listen();
    let log = dir.path().join("half.log");
    let proxy = Proxy::start(&tcp_config(&[server], "", "", log.to_str().unwrap()));
    assert_eq!(greeted_then_talk(&proxy, &hear), b"late", "with half-close the client's bytes still go up");
    assert_eq!(json_log_lines(&log, 1)[0]["bytes_received"], 4);
    drop(proxy);

    // As NGINX by default: the server's end closes the whole session, so the upstream sees its
    // client's end at once, without the bytes sent after.
    let log = dir.path().join("first-end.log");
    let proxy = Proxy::start(&tcp_config(&[server], "", "      half_close: false\n", log.to_str().unwrap()));
    assert_eq!(greeted_then_talk(&proxy, &hear), b"", "the session ended at the server's end");
    let line = &json_log_lines(&log, 1)[0];
    assert_eq!(line["bytes_sent"], 5);
    assert_eq!(line["bytes_received"], 0);
    assert_eq!(line["reason"], serde_json::Value::Null, "a session ended normally: {line}");
}

#[test]
fn without_half_close_the_clients_end_closes_the_session_and_bytes_read_still_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let echo = echo_server();
    let proxy = Proxy::start(&tcp_config(&[echo], "", "      half_close: false\n", log.to_str().unwrap()));
    // A client that sends and only then reads: its bytes are relayed before its end closes the
    // session, but the echo of them may or may not come back before the close.
    let mut stream = TcpStream::connect(proxy.addr("db")).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(b"ping").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(b"ping".starts_with(&answer), "at most the echo: {answer:?}");
    let line = &json_log_lines(&log, 1)[0];
    assert_eq!(line["bytes_received"], 4, "the client's bytes went up before the session ended: {line}");
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
    let lines = json_log_lines(&log, 4);
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
    let lines = json_log_lines(&log, 1);
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
    let lines = json_log_lines(&log, 1);
    assert_eq!(lines[0]["reason"], "stream_idle_timeout");
    assert_eq!(lines[0]["status"], 200);
}

/// A TCP server that answers every connection with `name` and closes.
fn named_server(name: &'static str) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(name.as_bytes());
        }
    });
    addr
}

/// What a fresh connection to `addr` reads before the close.
fn read_all(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn round_robin_spreads_sessions_and_source_hashing_keeps_a_client_on_one_endpoint() {
    let (a, b) = (named_server("a"), named_server("b"));
    let proxy = Proxy::start(&tcp_config(&[a, b], "", "", "off"));
    let answers: Vec<String> = (0..6).map(|_| read_all(proxy.addr("db"))).collect();
    assert_eq!(answers.iter().filter(|a| *a == "a").count(), 3, "{answers:?}");
    assert_eq!(answers.iter().filter(|a| *a == "b").count(), 3, "{answers:?}");

    for balancer in ["ring_hash", "maglev"] {
        let hashed = Proxy::start(&tcp_config(
            &[a, b],
            &format!("    balancer: {balancer}\n    hash_on: source_ip\n"),
            "",
            "off",
        ));
        let first = read_all(hashed.addr("db"));
        for _ in 0..8 {
            assert_eq!(read_all(hashed.addr("db")), first, "{balancer}: one client, one endpoint");
        }
    }
}

#[test]
fn least_connections_sends_new_sessions_away_from_a_busy_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let busy = echo_server();
    let idle = named_server("idle");
    let proxy = Proxy::start(&tcp_config(
        &[busy, idle],
        "    balancer: least_request
",
        "",
        log.to_str().unwrap(),
    ));
    // Sessions until one is held open on the echo endpoint; those that reach `idle` end at once
    // (and are logged once the endpoint stopped counting them).
    let mut held = None;
    let mut ended = 0;
    for _ in 0..20 {
        let mut stream = TcpStream::connect(proxy.addr("db")).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(b"?").unwrap();
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).unwrap();
        if &byte == b"?" {
            held = Some(stream);
            break;
        }
        drop(stream);
        ended += 1;
        json_log_lines(&log, ended);
    }
    assert!(held.is_some(), "a session held on the echo endpoint");
    // The busy endpoint has one session and the idle one none: every new one goes there.
    for _ in 0..4 {
        assert_eq!(read_all(proxy.addr("db")), "idle");
        ended += 1;
        json_log_lines(&log, ended);
    }
}

#[test]
fn active_tcp_checks_take_a_dead_endpoint_out_and_bring_it_back() {
    let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let revived_addr = spare.local_addr().unwrap();
    drop(spare);
    let alive = named_server("alive");
    let health = "    health:\n      active: { kind: tcp, interval: 50ms, timeout: 200ms, unhealthy_threshold: 1, healthy_threshold: 1 }\n";
    let proxy = Proxy::start(&tcp_config(&[revived_addr, alive], health, "      connect_attempts: 1\n", "off"));
    // With one connect attempt, a session sent to the dead endpoint would come back empty.
    wait_until("the dead endpoint is marked down", || (0..4).all(|_| read_all(proxy.addr("db")) == "alive"));
    let listener = std::net::TcpListener::bind(revived_addr).unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"revived");
        }
    });
    wait_until("the revived endpoint takes sessions again", || (0..4).any(|_| read_all(proxy.addr("db")) == "revived"));
}

#[test]
fn passive_health_ejects_an_endpoint_after_a_refused_connect() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let alive = named_server("alive");
    let passive = "    health:\n      passive: { max_fails: 1, fail_timeout: 30s }\n";
    let proxy = Proxy::start(&tcp_config(&[closed, alive], passive, "", log.to_str().unwrap()));
    for _ in 0..6 {
        assert_eq!(read_all(proxy.addr("db")), "alive");
    }
    let lines = json_log_lines(&log, 6);
    // The first session that picked the closed endpoint ejected it; every session was carried.
    assert!(lines.iter().all(|l| l["status"] == 200 && l["upstream"] == alive.to_string()), "{lines:?}");
}

#[test]
fn a_reload_changes_and_removes_tcp_listeners_and_a_removed_ones_sessions_end_at_the_drain_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let log_text = log.to_str().unwrap();
    let (echo, other) = (echo_server(), named_server("other"));
    let two = |first: SocketAddr, drain: &str| {
        format!(
            "server: {{ drain_timeout: {drain} }}\naccess_log: {{ path: \"{log_text}\", format: json }}\n\
             listeners:\n  - name: db\n    bind: 127.0.0.1:0\n    tcp: {{ cluster: first }}\n\
             \x20 - name: cache\n    bind: 127.0.0.1:0\n    tcp: {{ cluster: second }}\n\
             clusters:\n  - name: first\n    endpoints: [{{ address: \"{first}\" }}]\n\
             \x20 - name: second\n    endpoints: [{{ address: \"{other}\" }}]\n"
        )
    };
    let proxy = Proxy::start(&two(echo, "500ms"));
    let (db, cache) = (proxy.addr("db"), proxy.addr("cache"));
    // A session held open on `db`, which the reload removes.
    let mut held = TcpStream::connect(db).unwrap();
    held.set_read_timeout(Some(WAIT)).unwrap();
    held.write_all(b"still here").unwrap();
    let mut echoed = [0u8; 10];
    held.read_exact(&mut echoed).unwrap();

    // `db` is removed; `cache` (same bind, so the same socket) now goes to another endpoint.
    let changed = format!(
        "server: {{ drain_timeout: 500ms }}\naccess_log: {{ path: \"{log_text}\", format: json }}\n\
         listeners:\n  - name: cache\n    bind: 127.0.0.1:0\n    tcp: {{ cluster: first }}\n\
         clusters:\n  - name: first\n    endpoints: [{{ address: \"{other}\" }}]\n"
    );
    let removed_at = std::time::Instant::now();
    proxy.reload(&changed).unwrap();
    assert_eq!(read_all(cache), "other", "new sessions follow the new cluster");
    // Workers close the removed listener's sockets as they get to the command.
    wait_until("the removed listener no longer accepts", || TcpStream::connect(db).is_err());
    // The established session still works until the drain deadline, then closes.
    held.write_all(b"and again").unwrap();
    let mut again = [0u8; 9];
    held.read_exact(&mut again).unwrap();
    assert_eq!(&again, b"and again");
    let mut rest = Vec::new();
    let _ = held.read_to_end(&mut rest);
    let lasted = removed_at.elapsed();
    assert!(
        lasted >= Duration::from_millis(400) && lasted < Duration::from_secs(5),
        "closed at the deadline: {lasted:?}"
    );
    let lines = json_log_lines(&log, 2);
    let drained = lines.iter().find(|l| l["listener"] == "db").expect("the drained session's line");
    assert_eq!(drained["reason"], "shutting_down");
    assert_eq!(drained["bytes_received"], 19);
}
