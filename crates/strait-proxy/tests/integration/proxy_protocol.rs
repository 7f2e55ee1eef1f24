//! The PROXY protocol, in raw bytes over loopback: v1 and v2 headers from trusted peers name
//! the client of HTTP (plain and TLS) and TCP listeners (forwarded headers, access rules, the
//! access and stream logs), malformed or untrusted ones close the connection with nothing
//! forwarded, and clusters send v1 and v2 headers to their endpoints.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::support::*;

/// The 12 bytes a version 2 header starts with.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// A version 2 `PROXY` header over TCP naming `source` and `destination` (one family).
fn v2_header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(from), IpAddr::V4(to)) => {
            header.extend_from_slice(&[0x21, 0x11, 0, 12]);
            header.extend_from_slice(&from.octets());
            header.extend_from_slice(&to.octets());
        }
        (IpAddr::V6(from), IpAddr::V6(to)) => {
            header.extend_from_slice(&[0x21, 0x21, 0, 36]);
            header.extend_from_slice(&from.octets());
            header.extend_from_slice(&to.octets());
        }
        _ => panic!("one family"),
    }
    header.extend_from_slice(&source.port().to_be_bytes());
    header.extend_from_slice(&destination.port().to_be_bytes());
    header
}

/// An HTTP listener `web` accepting headers from `trusted`, forwarding to `backend`, with
/// `filters` on its route and the JSON access log at `log`.
fn http_config(backend: &Backend, trusted: &str, filters: &str, log: &Path) -> String {
    format!(
        "access_log: {{ path: \"{}\", format: json }}\n\
         listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    proxy_protocol: {{ trusted: [{trusted}], timeout: 2s }}\n\
         \x20   routes:\n      - filters: [{filters}]\n        forward: {{ cluster: app }}\n\
         clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        log.display(),
        backend.addr
    )
}

/// A TCP listener `db` accepting headers from `trusted`, relaying to `upstream` whose cluster
/// has `cluster_extra`, with the JSON stream log at `log`.
fn tcp_config(upstream: SocketAddr, trusted: Option<&str>, cluster_extra: &str, log: &Path) -> String {
    let accept =
        trusted.map(|t| format!("    proxy_protocol: {{ trusted: [{t}], timeout: 2s }}\n")).unwrap_or_default();
    format!(
        "access_log: {{ path: \"{}\", format: json }}\n\
         listeners:\n  - name: db\n    bind: 127.0.0.1:0\n{accept}    tcp: {{ cluster: pool }}\n\
         clusters:\n  - name: pool\n{cluster_extra}    endpoints: [{{ address: \"{upstream}\" }}]\n",
        log.display()
    )
}

/// A GET of `/` on a fresh connection to `addr` that first sends `header`.
fn get_after(addr: SocketAddr, header: &[u8]) -> Option<RawResponse> {
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(b"GET / HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n");
    raw_request(addr, &bytes)
}

/// The `X-Forwarded-For` the backend received last.
fn forwarded_for(backend: &Backend) -> String {
    let requests = backend.requests();
    let last = requests.last().expect("the backend got a request");
    last.headers["x-forwarded-for"].to_str().unwrap().to_owned()
}

/// Sends `bytes` to `addr` on a fresh connection and reports whether it was closed without a
/// byte of answer.
fn closed_without_answer(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut conn = RawConn::connect(addr);
    conn.send(bytes);
    conn.closes_within(WAIT)
}

// === HTTP listeners ===

#[test]
fn v1_and_v2_headers_name_the_client_upstream_and_in_the_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = Proxy::start(&http_config(&backend, "127.0.0.1", "", &log));
    let addr = proxy.addr("web");
    let cases: [(Vec<u8>, &str); 4] = [
        (b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\n".to_vec(), "192.0.2.7"),
        (v2_header("198.51.100.9:40000".parse().unwrap(), "198.51.100.1:443".parse().unwrap()), "198.51.100.9"),
        (v2_header("[2001:db8::5]:40000".parse().unwrap(), "[2001:db8::1]:443".parse().unwrap()), "2001:db8::5"),
        // LOCAL (a health check of the load balancer itself): the peer stays the client.
        ([V2_SIGNATURE, &[0x20, 0x00, 0, 0]].concat(), "127.0.0.1"),
    ];
    for (position, (header, client)) in cases.iter().enumerate() {
        let response = get_after(addr, header).expect("an answer");
        assert_eq!(response.status, 200, "{client}");
        assert_eq!(forwarded_for(&backend), *client);
        let lines = json_log_lines(&log, position + 1);
        assert_eq!(lines[position]["client"], *client);
    }
}

#[test]
fn a_header_split_over_two_writes_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = Proxy::start(&http_config(&backend, "127.0.0.1", "", &dir.path().join("access.log")));
    for header in [
        b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\n".to_vec(),
        v2_header("192.0.2.8:1".parse().unwrap(), "198.51.100.1:443".parse().unwrap()),
    ] {
        let mut stream = TcpStream::connect(proxy.addr("web")).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (first, second) = header.split_at(header.len() / 2);
        stream.write_all(first).unwrap();
        // The second part arrives on its own, after the proxy saw the first.
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(second).unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n").unwrap();
        let mut conn = RawConn::from_stream(stream);
        assert_eq!(conn.read_response().expect("an answer").status, 200);
        let expected = if header.starts_with(b"PROXY") { "192.0.2.7" } else { "192.0.2.8" };
        assert_eq!(forwarded_for(&backend), expected);
    }
}

#[test]
fn malformed_headers_close_the_connection_with_nothing_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = Proxy::start(&http_config(&backend, "127.0.0.1", "", &dir.path().join("access.log")));
    let good_v2 = v2_header("192.0.2.7:1".parse().unwrap(), "198.51.100.1:443".parse().unwrap());
    let with = |at: usize, byte: u8| {
        let mut header = good_v2.clone();
        header[at] = byte;
        header
    };
    let mut cut_tlv = good_v2.clone();
    cut_tlv[15] = 14;
    cut_tlv.extend_from_slice(&[0x04, 0]);
    let malformed: Vec<(&str, Vec<u8>)> = vec![
        ("v1 bad address", b"PROXY TCP4 192.0.2.300 198.51.100.1 50000 443\r\n".to_vec()),
        ("v1 IPv6 in TCP4", b"PROXY TCP4 2001:db8::1 198.51.100.1 50000 443\r\n".to_vec()),
        ("v1 bad port", b"PROXY TCP4 192.0.2.7 198.51.100.1 70000 443\r\n".to_vec()),
        ("v1 line feed alone", b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\n".to_vec()),
        ("v1 unknown protocol", b"PROXY UDP4 192.0.2.7 198.51.100.1 50000 443\r\n".to_vec()),
        ("v1 over 107 bytes", [&b"PROXY UNKNOWN "[..], &[b'x'; 120], b"\r\n"].concat()),
        ("v2 version 3", with(12, 0x31)),
        ("v2 command 2", with(12, 0x22)),
        ("v2 unknown family", with(13, 0x41)),
        ("v2 IPv4 block too short", with(15, 8)),
        ("v2 IPv6 family with an IPv4 block", with(13, 0x21)),
        ("v2 TLV cut short", cut_tlv),
    ];
    for (what, header) in malformed {
        let mut bytes = header;
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\nHost: pp.test\r\n\r\n");
        assert!(closed_without_answer(proxy.addr("web"), &bytes), "{what}");
    }
    assert_eq!(backend.count(), 0, "nothing reached the backend");
}

#[test]
fn untrusted_peers_are_closed_with_a_header_and_served_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(|_| Reply::text("ok"));
    // Connections come from 127.0.0.1: not the trusted load balancer.
    let proxy = Proxy::start(&http_config(&backend, "127.0.0.2/32", "", &dir.path().join("access.log")));
    let addr = proxy.addr("web");
    for header in [
        b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\n".to_vec(),
        v2_header("192.0.2.7:1".parse().unwrap(), "198.51.100.1:443".parse().unwrap()),
        b"PROXY UNKNOWN\r\n".to_vec(),
    ] {
        let mut bytes = header;
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\nHost: pp.test\r\n\r\n");
        assert!(closed_without_answer(addr, &bytes));
    }
    assert_eq!(backend.count(), 0);
    let response = get_after(addr, b"").expect("an answer");
    assert_eq!(response.status, 200);
    assert_eq!(forwarded_for(&backend), "127.0.0.1");
}

#[test]
fn trusted_peers_without_a_header_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = Proxy::start(&http_config(&backend, "127.0.0.0/8", "", &dir.path().join("access.log")));
    assert!(closed_without_answer(proxy.addr("web"), b"GET / HTTP/1.1\r\nHost: pp.test\r\n\r\n"));
    // A header that never ends is closed at the timeout (2 s).
    let started = std::time::Instant::now();
    assert!(closed_without_answer(proxy.addr("web"), b"PROXY TCP4 192.0.2.7 "));
    assert!(started.elapsed() >= Duration::from_millis(1500), "closed at the header timeout, not before");
    assert_eq!(backend.count(), 0);
}

#[test]
fn ip_restriction_decides_on_the_header_address() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(|_| Reply::text("ok"));
    let filters = "{ name: ip_restriction, config: { allow: [192.0.2.0/24] } }";
    let proxy = Proxy::start(&http_config(&backend, "127.0.0.1", filters, &dir.path().join("access.log")));
    let allowed = get_after(proxy.addr("web"), b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\n").unwrap();
    assert_eq!(allowed.status, 200);
    let denied = get_after(proxy.addr("web"), b"PROXY TCP4 203.0.113.7 198.51.100.1 50000 443\r\n").unwrap();
    assert_eq!(denied.status, 403);
    let loopback = get_after(proxy.addr("web"), b"PROXY UNKNOWN\r\n").unwrap();
    assert_eq!(loopback.status, 403, "UNKNOWN keeps the peer (127.0.0.1), which the rule denies");
    assert_eq!(backend.count(), 1);
}

#[test]
fn a_reload_adding_proxy_protocol_applies_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let backend = Backend::start(|_| Reply::text("ok"));
    let without = format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: {{ cluster: app }}\n\
         clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr
    );
    let proxy = Proxy::start(&without);
    let addr = proxy.addr("web");
    assert_eq!(get_after(addr, b"").unwrap().status, 200);
    let header = b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\n";
    assert!(get_after(addr, header).is_none_or(|r| r.status == 400), "a header is not HTTP");
    proxy.reload(&http_config(&backend, "127.0.0.1", "", &log)).unwrap();
    assert_eq!(proxy.addr("web"), addr, "the same socket");
    assert_eq!(get_after(addr, header).unwrap().status, 200);
    assert_eq!(forwarded_for(&backend), "192.0.2.7");
    assert!(closed_without_answer(addr, b"GET / HTTP/1.1\r\nHost: pp.test\r\n\r\n"));
}

// === TLS listeners ===

#[test]
fn a_tls_listener_reads_the_header_before_the_client_hello() {
    let pki = pki::Pki::new("pp ca");
    let leaf = pki.server("api", &["api.test"]);
    let backend = Backend::start(|_| Reply::text("over tls"));
    let yaml = format!(
        "listeners:\n  - name: tls\n    bind: 127.0.0.1:0\n    proxy_protocol: {{ trusted: [127.0.0.1] }}\n\
         \x20   tls:\n      certificates:\n        - {{ cert: \"{}\", key: \"{}\" }}\n\
         \x20   routes:\n      - forward: {{ cluster: app }}\n\
         clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        leaf.cert.display(),
        leaf.key.display(),
        backend.addr
    );
    let proxy = Proxy::start(&yaml);
    let addr = proxy.addr("tls");
    let resolve = format!("api.test:{}:127.0.0.1", addr.port());
    let url = format!("https://api.test:{}/", addr.port());
    let ca = pki.ca_file();
    let ca = ca.to_str().unwrap();
    // curl's --haproxy-protocol sends a v1 header with its own address.
    let response = curl(&["--haproxy-protocol", "--cacert", ca, "--resolve", &resolve, &url]);
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "over tls");
    assert_eq!(forwarded_for(&backend), "127.0.0.1");
    let without = std::process::Command::new("curl")
        .args(["--max-time", "10", "-s", "--cacert", ca, "--resolve", &resolve, &url])
        .output()
        .unwrap();
    assert!(!without.status.success(), "a trusted peer must send a header");
    // A v2 header naming another client, then the handshake and a request.
    let runtime = pki::runtime();
    let got = runtime.block_on(async {
        use tokio::io::AsyncWriteExt;
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&v2_header("[2001:db8::9]:1".parse().unwrap(), "[2001:db8::1]:443".parse().unwrap()))
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("api.test").unwrap();
        let connector = tokio_rustls::TlsConnector::from(pki.client_config(&["http/1.1"], None));
        let tls = tokio::time::timeout(WAIT, connector.connect(name, tcp)).await.unwrap().unwrap();
        let request = http::Request::get("/").header("host", "api.test").body(Default::default()).unwrap();
        pki::http1_requests(tls, vec![request]).await
    });
    assert_eq!(got[0].parts.status, 200);
    assert_eq!(forwarded_for(&backend), "2001:db8::9");
    assert_eq!(backend.count(), 2);
}

// === TCP listeners ===

#[test]
fn tcp_sessions_take_the_client_from_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let echo = echo_server();
    let proxy = Proxy::start(&tcp_config(echo, Some("127.0.0.1"), "", &log));
    let headers = [
        (b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 5432\r\n".to_vec(), "192.0.2.7:50000"),
        (
            v2_header("[2001:db8::7]:40000".parse().unwrap(), "[2001:db8::1]:5432".parse().unwrap()),
            "[2001:db8::7]:40000",
        ),
    ];
    for (position, (header, client)) in headers.iter().enumerate() {
        let mut stream = TcpStream::connect(proxy.addr("db")).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(&[&header[..], b"ping"].concat()).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut echoed = Vec::new();
        stream.read_to_end(&mut echoed).unwrap();
        assert_eq!(echoed, b"ping", "the header is not relayed, the bytes after it are");
        let lines = json_log_lines(&log, position + 1);
        assert_eq!(lines[position]["client"], *client);
        assert_eq!(lines[position]["status"], 200);
    }
}

#[test]
fn tcp_sessions_with_bad_or_untrusted_headers_are_refused_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let upstream = RawUpstream::silent();
    let proxy = Proxy::start(&tcp_config(upstream.addr, Some("127.0.0.1"), "", &log));
    assert!(closed_without_answer(proxy.addr("db"), b"PROXY TCP4 192.0.2.7 198.51.100.1 50000\r\nping"));
    assert!(closed_without_answer(proxy.addr("db"), b"ping"));
    let lines = json_log_lines(&log, 2);
    assert_eq!((&lines[0]["reason"], &lines[0]["status"]), (&"proxy_protocol_invalid".into(), &400.into()));
    assert_eq!((&lines[1]["reason"], &lines[1]["status"]), (&"proxy_protocol_untrusted".into(), &403.into()));
    let untrusted_log = dir.path().join("untrusted.log");
    let untrusted = Proxy::start(&tcp_config(upstream.addr, Some("127.0.0.2"), "", &untrusted_log));
    assert!(closed_without_answer(untrusted.addr("db"), b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 5432\r\nping"));
    let lines = json_log_lines(&untrusted_log, 1);
    assert_eq!(lines[0]["reason"], "proxy_protocol_untrusted");
    assert!(lines[0]["client"].as_str().unwrap().starts_with("127.0.0.1:"), "the peer, not the header's source");
    assert!(upstream.connections().is_empty(), "no upstream connection was opened");
    // The same untrusted peer without a header is relayed as usual.
    let mut plain = TcpStream::connect(untrusted.addr("db")).unwrap();
    plain.write_all(b"ping").unwrap();
    wait_until("the untrusted peer's bytes reached the upstream", || {
        upstream.connections().first().is_some_and(|c| c.bytes == b"ping")
    });
}

// === sending ===

#[test]
fn clusters_send_v1_and_v2_headers_naming_the_client() {
    for (version, v2) in [("v1", false), ("v2", true)] {
        let dir = tempfile::tempdir().unwrap();
        let upstream = RawUpstream::silent();
        let cluster = format!("    proxy_protocol: {version}\n");
        let proxy = Proxy::start(&tcp_config(upstream.addr, None, &cluster, &dir.path().join("stream.log")));
        let listener = proxy.addr("db");
        let mut client = TcpStream::connect(listener).unwrap();
        let source = client.local_addr().unwrap();
        client.write_all(b"hello").unwrap();
        let mut expected = if v2 {
            v2_header(source, listener)
        } else {
            format!("PROXY TCP4 127.0.0.1 127.0.0.1 {} {}\r\n", source.port(), listener.port()).into_bytes()
        };
        expected.extend_from_slice(b"hello");
        wait_until("the upstream got the header and the bytes", || {
            upstream.connections().first().is_some_and(|c| c.bytes.len() >= expected.len())
        });
        assert_eq!(upstream.connections()[0].bytes, expected, "{version}");
    }
}

#[test]
fn a_received_header_is_passed_on_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = RawUpstream::silent();
    let cluster = "    proxy_protocol: v1\n";
    let proxy = Proxy::start(&tcp_config(upstream.addr, Some("127.0.0.1"), cluster, &dir.path().join("stream.log")));
    let mut client = TcpStream::connect(proxy.addr("db")).unwrap();
    client.write_all(&v2_header("192.0.2.7:50000".parse().unwrap(), "198.51.100.1:5432".parse().unwrap())).unwrap();
    client.write_all(b"hello").unwrap();
    let expected = b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 5432\r\nhello";
    wait_until("the upstream got the header and the bytes", || {
        upstream.connections().first().is_some_and(|c| c.bytes.len() >= expected.len())
    });
    assert_eq!(upstream.connections()[0].bytes, expected);
}
