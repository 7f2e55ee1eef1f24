//! UDP listeners (layer 4): DNS through Strait to a real resolver, replies from the listener's
//! address, one session per client, stickiness by client address, idle timeout, session limit,
//! `responses`, an endpoint that refuses, reload, and the stream log lines.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::support::udp::*;
use crate::support::*;

/// One worker (so per-worker limits are exact), the JSON log at `log`, a UDP listener `dns`
/// forwarding to cluster `pool` of `endpoints`.
fn udp_config(endpoints: &[SocketAddr], extra_cluster: &str, extra_udp: &str, log: &Path) -> String {
    let endpoints: String = endpoints.iter().map(|e| format!("      - address: \"{e}\"\n")).collect();
    format!(
        "workers: 1\n\
         access_log: {{ path: \"{}\", format: json }}\n\
         listeners:\n  - name: dns\n    bind: 127.0.0.1:0\n    udp:\n      cluster: pool\n{extra_udp}\
         clusters:\n  - name: pool\n    endpoints:\n{endpoints}{extra_cluster}",
        log.display()
    )
}

/// The line of the session of `client`, among `lines` (exactly one).
fn line_of<'a>(lines: &'a [serde_json::Value], client: &std::net::UdpSocket) -> &'a serde_json::Value {
    let client = client.local_addr().unwrap().to_string();
    let mine: Vec<_> = lines.iter().filter(|l| l["client"] == client.as_str()).collect();
    assert_eq!(mine.len(), 1, "one line for {client}: {lines:?}");
    mine[0]
}

#[test]
fn dns_through_strait_reaches_a_real_resolver_on_udp_and_tcp_of_one_port() {
    let resolver = Dnsmasq::start();
    // The UDP port the kernel picks may be in use over TCP (another test's connection has it):
    // then the test starts over on another, a few times at most.
    let (proxy, port, log, _dir) = (0..5)
        .find_map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("stream.log");
            let yaml = udp_config(&[resolver.addr()], "", "      responses: 1\n", &log);
            let proxy = Proxy::start(&yaml);
            let port = proxy.addr("dns");
            assert_eq!(dig(port, &[]).trim(), "192.0.2.1", "the query over UDP was answered");
            // The same address over TCP: a second listener, added by a reload.
            let tcp_too = yaml.replace(
                "clusters:\n",
                &format!("  - name: dns_tcp\n    bind: \"{port}\"\n    tcp:\n      cluster: pool\nclusters:\n"),
            );
            match proxy.reload(&tcp_too) {
                Ok(()) => Some((proxy, port, log, dir)),
                Err(error) if error.contains("Address already in use") => None,
                Err(error) => panic!("the reload was refused: {error}"),
            }
        })
        .expect("a port free over both UDP and TCP within five tries");
    assert_eq!(proxy.addr("dns_tcp"), port);
    assert_eq!(proxy.addr("dns"), port, "the UDP listener kept its socket");
    assert_eq!(dig(port, &["+tcp"]).trim(), "192.0.2.1", "the query over TCP was answered");
    assert_eq!(dig(port, &[]).trim(), "192.0.2.1", "UDP still answered beside TCP");
    let lines = json_log_lines(&log, 3);
    let udp: Vec<_> = lines.iter().filter(|l| l["protocol"] == "UDP").collect();
    let tcp: Vec<_> = lines.iter().filter(|l| l["protocol"] == "TCP").collect();
    assert_eq!((udp.len(), tcp.len()), (2, 1), "{lines:?}");
    for line in udp {
        assert_eq!(line["status"], 200);
        assert_eq!(line["listener"], "dns");
        assert_eq!(line["cluster"], "pool");
        assert_eq!(line["upstream"], resolver.addr().to_string());
        assert_eq!(line["reason"], serde_json::Value::Null, "ended by its answer: {line}");
        assert!(line["bytes_received"].as_u64().unwrap() > 12, "a query: {line}");
        assert!(line["bytes_sent"].as_u64().unwrap() > line["bytes_received"].as_u64().unwrap(), "an answer: {line}");
    }
    assert_eq!(tcp[0]["listener"], "dns_tcp");
}

#[test]
fn replies_come_from_the_listener_address_and_each_client_gets_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let echo = UdpEcho::start();
    let proxy = Proxy::start(&udp_config(&[echo.addr()], "", "      idle_timeout: 3s\n", &log));
    let addr = proxy.addr("dns");
    let (a, b) = (udp_client("127.0.0.1"), udp_client("127.0.0.1"));
    for round in 0..3 {
        for (client, name) in [(&a, "a"), (&b, "b")] {
            let message = format!("{name}{round}");
            let (reply, from) = udp_exchange(client, addr, message.as_bytes());
            assert_eq!(reply, message.as_bytes(), "{name} got its own reply");
            assert_eq!(from, addr, "the reply came from the listener's address");
        }
    }
    assert_eq!(echo.received(), 6);
    assert_eq!(echo.peers(), 2, "one upstream socket per client session");
    let lines = json_log_lines(&log, 2);
    for client in [&a, &b] {
        let line = line_of(&lines, client);
        assert_eq!(line["protocol"], "UDP");
        assert_eq!(line["status"], 200);
        assert_eq!(line["listener"], "dns");
        assert_eq!(line["cluster"], "pool");
        assert_eq!(line["upstream"], echo.addr().to_string());
        assert_eq!(line["bytes_received"], 6);
        assert_eq!(line["bytes_sent"], 6);
        assert_eq!(line["reason"], "stream_idle_timeout");
        assert!(line["session_time_ms"].as_f64().unwrap() >= 1000.0, "{line}");
    }
}

#[test]
fn a_hashing_balancer_keeps_each_client_address_on_one_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let (one, two) = (UdpEcho::start(), UdpEcho::start());
    let yaml = udp_config(&[one.addr(), two.addr()], "    balancer: ring_hash\n", "      responses: 1\n", &log);
    let proxy = Proxy::start(&yaml);
    let addr = proxy.addr("dns");
    let clients: Vec<_> = (2..18).map(|i| udp_client(&format!("127.0.0.{i}"))).collect();
    for round in 0..3 {
        for client in &clients {
            assert_eq!(udp_exchange(client, addr, &[round]).0, [round]);
        }
    }
    let lines = json_log_lines(&log, 3 * clients.len());
    assert_eq!(lines.len(), 3 * clients.len(), "`responses: 1` makes each query a session");
    let mut by_ip: HashMap<String, HashSet<String>> = HashMap::new();
    for line in &lines {
        let client: SocketAddr = line["client"].as_str().unwrap().parse().unwrap();
        by_ip.entry(client.ip().to_string()).or_default().insert(line["upstream"].as_str().unwrap().to_owned());
    }
    assert_eq!(by_ip.len(), clients.len());
    assert!(by_ip.values().all(|upstreams| upstreams.len() == 1), "each address stays on one endpoint: {by_ip:?}");
    let used: HashSet<_> = by_ip.values().flatten().collect();
    assert_eq!(used.len(), 2, "the addresses spread over both endpoints: {by_ip:?}");
    assert_eq!(one.received() + two.received(), 3 * clients.len());
}

#[test]
fn an_idle_session_ends_and_the_next_one_may_pick_another_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let (one, two) = (UdpEcho::start(), UdpEcho::start());
    let proxy = Proxy::start(&udp_config(&[one.addr(), two.addr()], "", "      idle_timeout: 3s\n", &log));
    let addr = proxy.addr("dns");
    let client = udp_client("127.0.0.1");
    assert_eq!(udp_exchange(&client, addr, b"first").0, b"first");
    assert_eq!(udp_exchange(&client, addr, b"again").0, b"again");
    let first = json_log_lines(&log, 1).remove(0);
    assert_eq!(first["reason"], "stream_idle_timeout");
    assert_eq!(first["bytes_received"], 10, "both datagrams in one session");
    assert_eq!(udp_exchange(&client, addr, b"later").0, b"later");
    let lines = json_log_lines(&log, 2);
    assert_eq!(lines[1]["bytes_received"], 5);
    assert_ne!(lines[0]["upstream"], lines[1]["upstream"], "round robin picked the other endpoint");
    let mut counts = [one.received(), two.received()];
    counts.sort();
    assert_eq!(counts, [1, 2]);
}

#[test]
fn max_sessions_drops_the_datagrams_of_new_clients() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let echo = UdpEcho::start();
    let proxy = Proxy::start(&udp_config(&[echo.addr()], "", "      max_sessions: 2\n", &log));
    let addr = proxy.addr("dns");
    let (a, b, c) = (udp_client("127.0.0.1"), udp_client("127.0.0.1"), udp_client("127.0.0.1"));
    assert_eq!(udp_exchange(&a, addr, b"a").0, b"a");
    assert_eq!(udp_exchange(&b, addr, b"b").0, b"b");
    c.send_to(b"refused", addr).unwrap();
    let lines = json_log_lines(&log, 1);
    let line = line_of(&lines, &c);
    assert_eq!(line["protocol"], "UDP");
    assert_eq!(line["reason"], "udp_session_limit");
    assert_eq!(line["status"], 503);
    assert_eq!(line["bytes_received"], 7);
    assert_eq!(line["upstream"], serde_json::Value::Null);
    assert_eq!(udp_reply_within(&c, Duration::from_millis(300)), None, "no reply to the dropped datagram");
    assert_eq!(echo.received(), 2, "the dropped datagram never reached the endpoint");
    assert_eq!(udp_exchange(&a, addr, b"a2").0, b"a2", "open sessions go on");
    // A burst of new clients over the limit: their drops are counted, not one line each.
    let flood: Vec<_> = (0..20).map(|_| udp_client("127.0.0.1")).collect();
    for client in &flood {
        client.send_to(b"flood", addr).unwrap();
    }
    assert_eq!(udp_exchange(&b, addr, b"b2").0, b"b2", "the flood was read");
    let text = std::fs::read_to_string(&log).unwrap();
    let drops = text.lines().filter(|line| line.contains("udp_session_limit")).count();
    assert!(drops < 5, "at most one line a second for dropped datagrams, got {drops}");
}

#[test]
fn responses_one_ends_the_session_at_the_first_reply() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    // The endpoint answers each datagram twice; the second answer finds the session gone.
    let echo = UdpEcho::answering_times(2);
    let proxy = Proxy::start(&udp_config(&[echo.addr()], "", "      responses: 1\n      idle_timeout: 60s\n", &log));
    let addr = proxy.addr("dns");
    let client = udp_client("127.0.0.1");
    assert_eq!(udp_exchange(&client, addr, b"q1").0, b"q1");
    // Well before the idle timeout: the session ended with its answer.
    let first = json_log_lines(&log, 1).remove(0);
    assert_eq!(first["reason"], serde_json::Value::Null, "{first}");
    assert_eq!(first["status"], 200);
    assert_eq!((first["bytes_received"].as_u64(), first["bytes_sent"].as_u64()), (Some(2), Some(2)));
    assert_eq!(udp_reply_within(&client, Duration::from_millis(300)), None, "the second copy was not relayed");
    assert_eq!(udp_exchange(&client, addr, b"q2").0, b"q2", "the next query opens a new session");
    json_log_lines(&log, 2);
    assert_eq!(echo.peers(), 2, "each session had its own upstream socket");
}

#[test]
fn an_endpoint_that_refuses_ends_the_session_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let closed = closed_udp_port();
    let proxy = Proxy::start(&udp_config(&[closed], "", "", &log));
    let client = udp_client("127.0.0.1");
    client.send_to(b"anyone?", proxy.addr("dns")).unwrap();
    let line = json_log_lines(&log, 1).remove(0);
    assert_eq!(line["reason"], "upstream_connect_failed", "{line}");
    assert_eq!(line["status"], 502);
    assert_eq!(line["upstream"], closed.to_string());
    assert_eq!(line["bytes_received"], 7);
    assert_eq!(line["bytes_sent"], 0);
}

#[test]
fn reload_adds_and_removes_udp_listeners_without_touching_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let echo = UdpEcho::start();
    let base = udp_config(&[echo.addr()], "", "      idle_timeout: 60s\n", &log);
    let drain = "server: { drain_timeout: 300ms }\n";
    let proxy = Proxy::start(&format!("{drain}{base}"));
    let dns = proxy.addr("dns");
    let (a, b) = (udp_client("127.0.0.1"), udp_client("127.0.0.1"));
    assert_eq!(udp_exchange(&a, dns, b"a1").0, b"a1");

    let more = "  - name: more\n    bind: 127.0.0.1:0\n    udp:\n      cluster: pool\n";
    let added = format!("{drain}{}", base.replace("clusters:\n", &format!("{more}clusters:\n")));
    proxy.reload(&added).unwrap();
    assert_eq!(proxy.addr("dns"), dns, "the unchanged listener kept its socket");
    assert_eq!(udp_exchange(&a, dns, b"a2").0, b"a2");
    assert_eq!(echo.peers(), 1, "the session of `a` went on across the reload");
    let more_addr = proxy.addr("more");
    let (reply, from) = udp_exchange(&b, more_addr, b"b1");
    assert_eq!((reply.as_slice(), from), (&b"b1"[..], more_addr));

    // `dns` removed: its session ends at once (its socket closes); `more` goes on.
    let only_more = added
        .replace("  - name: dns\n    bind: 127.0.0.1:0\n    udp:\n      cluster: pool\n      idle_timeout: 60s\n", "");
    assert!(!only_more.contains("name: dns"), "{only_more}");
    proxy.reload(&only_more).unwrap();
    assert_eq!(proxy.server().listener_addr("dns"), None);
    let line = json_log_lines(&log, 1).remove(0);
    assert_eq!(line["listener"], "dns");
    assert_eq!(line["reason"], "shutting_down");
    assert_eq!(line["bytes_received"], 4, "both datagrams of `a` in one session");
    assert_eq!(udp_exchange(&b, more_addr, b"b2").0, b"b2");
    assert_eq!(echo.peers(), 2, "the session of `b` went on");
    a.send_to(b"a3", dns).unwrap();
    assert_eq!(udp_reply_within(&a, Duration::from_millis(300)), None, "nothing answers on the removed listener");
}

#[test]
fn with_two_workers_each_client_keeps_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let echo = UdpEcho::start();
    let yaml = udp_config(&[echo.addr()], "", "      idle_timeout: 60s\n", &log).replace("workers: 1", "workers: 2");
    let proxy = Proxy::start(&yaml);
    let addr = proxy.addr("dns");
    let clients: Vec<_> = (0..8).map(|_| udp_client("127.0.0.1")).collect();
    for round in 0..3u8 {
        for (index, client) in clients.iter().enumerate() {
            let message = [index as u8, round];
            let (reply, from) = udp_exchange(client, addr, &message);
            assert_eq!((reply.as_slice(), from), (&message[..], addr));
        }
    }
    assert_eq!(echo.peers(), clients.len(), "a client's datagrams stayed on one worker's session");
}

#[test]
fn open_sessions_are_logged_when_the_server_stops() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let echo = UdpEcho::start();
    let proxy = Proxy::start(&udp_config(&[echo.addr()], "", "      idle_timeout: 60s\n", &log));
    let client = udp_client("127.0.0.1");
    assert_eq!(udp_exchange(&client, proxy.addr("dns"), b"open").0, b"open");
    proxy.stop();
    let line = json_log_lines(&log, 1).remove(0);
    assert_eq!(line["reason"], "shutting_down", "{line}");
    assert_eq!((line["bytes_received"].as_u64(), line["bytes_sent"].as_u64()), (Some(4), Some(4)));
}
