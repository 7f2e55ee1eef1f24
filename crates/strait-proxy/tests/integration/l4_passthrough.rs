//! TLS passthrough (layer 4): connections routed by the ClientHello's server name to TLS
//! origins that keep their own certificates, exact and wildcard names, the default cluster,
//! missing names and non-TLS clients as configured, hellos in pieces and late hellos, and one
//! port that passes some names through and terminates others with its own routes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;

use crate::support::pki::{self, Leaf, Pki};
use crate::support::*;

/// Origins with certificates of their own: a Strait with one TLS listener per origin, each
/// answering every request with `<name> origin`.
struct Origins {
    pki: Pki,
    pay: Leaf,
    db: Leaf,
    fallback: Leaf,
    proxy: Proxy,
}

impl Origins {
    fn start() -> Origins {
        let pki = Pki::new("passthrough test ca");
        let pay = pki.server("pay", &["pay.example.com"]);
        let db = pki.server("db", &["*.db.example.com"]);
        let fallback = pki.server("fallback", &["fallback.example.com"]);
        let listener = |name: &str, leaf: &Leaf| {
            format!(
                "  - name: {name}\n    bind: 127.0.0.1:0\n    tls:\n      certificates:\n        \
                 - {{ cert: \"{}\", key: \"{}\" }}\n      alpn: [http/1.1]\n    routes:\n      \
                 - direct: {{ body: \"{name} origin\" }}\n",
                leaf.cert.display(),
                leaf.key.display()
            )
        };
        let yaml =
            format!("listeners:\n{}{}{}", listener("pay", &pay), listener("db", &db), listener("fallback", &fallback));
        let proxy = Proxy::start(&yaml);
        Origins { pki, pay, db, fallback, proxy }
    }

    /// The `clusters:` block naming each origin.
    fn clusters(&self) -> String {
        let cluster =
            |name: &str| format!("  - name: {name}\n    endpoints: [{{ address: \"{}\" }}]\n", self.proxy.addr(name));
        format!("clusters:\n{}{}{}", cluster("pay"), cluster("db"), cluster("fallback"))
    }
}

/// A front Strait with a passthrough listener `edge` (pay.example.com to `pay`,
/// `*.db.example.com` to `db`, then `tcp_extra` lines), `listener_extra` lines on the listener,
/// `clusters`, and the JSON log at `log`.
fn front(log: &std::path::Path, tcp_extra: &str, listener_extra: &str, clusters: &str) -> Proxy {
    let yaml = format!(
        "access_log: {{ path: \"{}\", format: json }}\n\
         listeners:\n  - name: edge\n    bind: 127.0.0.1:0\n    tcp:\n      sni:\n        \
         - {{ server_names: [pay.example.com], cluster: pay }}\n        \
         - {{ server_names: [\"*.db.example.com\"], cluster: db }}\n{tcp_extra}{listener_extra}{clusters}",
        log.display()
    );
    Proxy::start(&yaml)
}

/// The stream log lines (protocol TCP) of the log at `path`, once there are `count` of them.
fn stream_lines(path: &std::path::Path, count: usize) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    wait_until("stream log lines", || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        lines = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|l| l["protocol"] == "TCP")
            .collect();
        lines.len() >= count
    });
    lines
}

/// A TLS handshake with `server_name` through `addr`, then one GET: the certificate the
/// server sent and the body it answered.
fn fetch(addr: SocketAddr, server_name: &str, pki: &Pki) -> (rustls::pki_types::CertificateDer<'static>, Bytes) {
    let runtime = pki::runtime();
    runtime.block_on(async {
        let connected =
            pki::connect(addr, server_name, pki.client_config(&["http/1.1"], None)).await.expect("handshake");
        let request = http::Request::get("/").header("host", server_name).body(Full::new(Bytes::new())).unwrap();
        let got = pki::http1_requests(connected.stream, vec![request]).await;
        assert_eq!(got[0].parts.status, 200);
        (connected.peer_cert, got[0].body.clone())
    })
}

/// `openssl s_client` to `addr` with `-servername name` (or `-noservername`): its output,
/// and whether it completed a handshake.
fn s_client(addr: SocketAddr, server_name: Option<&str>, pki: &Pki) -> (String, bool) {
    let mut command = Command::new("openssl");
    command.args(["s_client", "-connect", &addr.to_string(), "-CAfile"]).arg(pki.ca_file());
    match server_name {
        Some(name) => command.args(["-servername", name]),
        None => command.arg("-noservername"),
    };
    let output =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("openssl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    let handshake = text.contains("Server certificate");
    (text, handshake)
}

/// A rustls client's first flight (its ClientHello) for `server_name`.
fn client_hello(server_name: &str) -> Vec<u8> {
    let config =
        rustls::ClientConfig::builder().with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut bytes = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut bytes).unwrap();
    }
    bytes
}

/// A relay to `target` for one connection: the client's first TLS record is cut into records
/// of `record` payload bytes, written `piece` bytes at a time with `pause` between writes; the
/// rest is relayed as it comes, both ways.
fn slicer(target: SocketAddr, record: usize, piece: usize, pause: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        client.set_read_timeout(Some(WAIT)).unwrap();
        let mut upstream = TcpStream::connect(target).unwrap();
        upstream.set_nodelay(true).unwrap();
        let mut header = [0u8; 5];
        client.read_exact(&mut header).unwrap();
        let mut message = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
        client.read_exact(&mut message).unwrap();
        let mut records = Vec::new();
        for part in message.chunks(record) {
            records.extend_from_slice(&header[..3]);
            records.extend_from_slice(&(part.len() as u16).to_be_bytes());
            records.extend_from_slice(part);
        }
        for part in records.chunks(piece) {
            upstream.write_all(part).unwrap();
            std::thread::sleep(pause);
        }
        let (mut client_back, mut upstream_back) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut upstream_back, &mut client_back);
            let _ = client_back.shutdown(std::net::Shutdown::Write);
        });
        let _ = std::io::copy(&mut client, &mut upstream);
        let _ = upstream.shutdown(std::net::Shutdown::Write);
    });
    addr
}

#[test]
fn exact_and_wildcard_names_reach_their_origins_with_the_origins_certificates() {
    let origins = Origins::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let proxy = front(&log, "", "", &origins.clusters());
    let edge = proxy.addr("edge");
    let (cert, body) = fetch(edge, "pay.example.com", &origins.pki);
    assert_eq!(cert, origins.pay.der, "the origin's own certificate: passed through, not terminated");
    assert_eq!(body, "pay origin");
    let (cert, body) = fetch(edge, "Orders.DB.example.com", &origins.pki);
    assert_eq!(cert, origins.db.der);
    assert_eq!(body, "db origin");
    let resolve = format!("pay.example.com:{}:127.0.0.1", edge.port());
    let url = format!("https://pay.example.com:{}/", edge.port());
    let ca = origins.pki.ca_file();
    let response = curl(&["--resolve", &resolve, "--cacert", ca.to_str().unwrap(), &url]);
    assert_eq!((response.status, response.text().as_str()), (200, "pay origin"));
    let (output, handshake) = s_client(edge, Some("x.db.example.com"), &origins.pki);
    assert!(handshake && output.contains("CN = db") && output.contains("Verify return code: 0 (ok)"), "{output}");
    let lines = stream_lines(&log, 4);
    let summary: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| (l["server_name"].to_string(), l["cluster"].to_string(), l["status"].to_string()))
        .collect();
    for (name, cluster) in [("pay.example.com", "pay"), ("orders.db.example.com", "db"), ("x.db.example.com", "db")] {
        let expected = (format!("\"{name}\""), format!("\"{cluster}\""), "200".to_owned());
        assert!(summary.contains(&expected), "{expected:?} in {summary:?}");
    }
    let pay_line = lines.iter().find(|l| l["server_name"] == "pay.example.com").unwrap();
    assert_eq!(pay_line["upstream"], origins.proxy.addr("pay").to_string());
    assert_eq!(pay_line["reason"], serde_json::Value::Null);
    assert!(pay_line["bytes_received"].as_u64().unwrap() > 100, "the hello was relayed: {pay_line}");
}

#[test]
fn names_no_route_takes_and_hellos_without_a_name_go_to_the_default_cluster() {
    let origins = Origins::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let proxy = front(&log, "      cluster: fallback\n", "", &origins.clusters());
    let edge = proxy.addr("edge");
    let (cert, body) = fetch(edge, "fallback.example.com", &origins.pki);
    assert_eq!((cert, body), (origins.fallback.der.clone(), Bytes::from("fallback origin")));
    // `*.db.example.com` needs a label in front of db.example.com.
    let (output, handshake) = s_client(edge, Some("db.example.com"), &origins.pki);
    assert!(handshake && output.contains("CN = fallback"), "{output}");
    let (output, handshake) = s_client(edge, None, &origins.pki);
    assert!(handshake && output.contains("CN = fallback"), "{output}");
    let lines = stream_lines(&log, 3);
    assert!(lines.iter().all(|l| l["cluster"] == "fallback" && l["status"] == 200), "{lines:?}");
    let names: Vec<&serde_json::Value> = lines.iter().map(|l| &l["server_name"]).collect();
    for name in
        [serde_json::json!("fallback.example.com"), serde_json::json!("db.example.com"), serde_json::Value::Null]
    {
        assert!(names.contains(&&name), "{name} in {names:?}");
    }
}

#[test]
fn hellos_without_a_name_and_unknown_names_are_refused_as_configured() {
    let origins = Origins::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let proxy = front(&log, "      cluster: fallback\n      missing_sni: refuse\n", "", &origins.clusters());
    let (output, handshake) = s_client(proxy.addr("edge"), None, &origins.pki);
    assert!(!handshake, "refused without a name: {output}");
    let (output, handshake) = s_client(proxy.addr("edge"), Some("unknown.example.com"), &origins.pki);
    assert!(handshake && output.contains("CN = fallback"), "a name no route takes still goes to the default: {output}");
    let lines = stream_lines(&log, 2);
    let refused = lines.iter().find(|l| l["server_name"].is_null()).expect("the refused session");
    assert_eq!((refused["status"].as_u64(), refused["reason"].as_str()), (Some(403), Some("no_sni_route")));
    assert_eq!(refused["cluster"], serde_json::Value::Null);
    drop(proxy);

    // Without a default cluster and without TLS of its own, a name no route takes is refused.
    let log = dir.path().join("no-default.log");
    let proxy = front(&log, "", "", &origins.clusters());
    let (output, handshake) = s_client(proxy.addr("edge"), Some("unknown.example.com"), &origins.pki);
    assert!(!handshake, "{output}");
    let lines = stream_lines(&log, 1);
    assert_eq!(lines[0]["server_name"], "unknown.example.com");
    assert_eq!((lines[0]["status"].as_u64(), lines[0]["reason"].as_str()), (Some(403), Some("no_sni_route")));
}

#[test]
fn clients_that_do_not_speak_tls_are_refused_or_sent_to_the_default_cluster() {
    let origins = Origins::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let proxy = front(&log, "", "", &origins.clusters());
    let mut conn = RawConn::connect(proxy.addr("edge"));
    conn.send(b"GET / HTTP/1.1\r\nHost: pay.example.com\r\n\r\n");
    assert!(conn.closes_within(WAIT), "a plain HTTP client is closed by default");
    // A handshake record that is not a ClientHello (a ServerHello) is malformed.
    let mut conn = RawConn::connect(proxy.addr("edge"));
    conn.send(&[22, 3, 3, 0, 6, 2, 0, 0, 2, 3, 3]);
    assert!(conn.closes_within(WAIT));
    let lines = stream_lines(&log, 2);
    assert!(
        lines.iter().all(|l| l["status"] == 400 && l["reason"] == "tls_hello_invalid" && l["cluster"].is_null()),
        "{lines:?}"
    );
    drop(proxy);

    let echo = echo_server();
    let clusters = format!("{}  - name: plain\n    endpoints: [{{ address: \"{echo}\" }}]\n", origins.clusters());
    let log = dir.path().join("default.log");
    let proxy = front(&log, "      cluster: plain\n      not_tls: default\n", "", &clusters);
    let mut stream = TcpStream::connect(proxy.addr("edge")).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(b"hello, plain text").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, b"hello, plain text", "relayed to the default cluster from the first byte");
    let lines = stream_lines(&log, 1);
    assert_eq!((lines[0]["cluster"].as_str(), lines[0]["status"].as_u64()), (Some("plain"), Some(200)));
    assert_eq!(lines[0]["bytes_received"], 17);
}

#[test]
fn a_hello_in_small_writes_over_several_records_is_routed() {
    let origins = Origins::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let proxy = front(&log, "", "", &origins.clusters());
    // Records of 50 bytes, written 16 bytes at a time with a pause after each write.
    let sliced = slicer(proxy.addr("edge"), 50, 16, Duration::from_millis(2));
    let (cert, body) = fetch(sliced, "pay.example.com", &origins.pki);
    assert_eq!((cert, body), (origins.pay.der.clone(), Bytes::from("pay origin")));
    let lines = stream_lines(&log, 1);
    assert_eq!(
        (lines[0]["server_name"].as_str(), lines[0]["cluster"].as_str()),
        (Some("pay.example.com"), Some("pay"))
    );
    assert_eq!(lines[0]["status"], 200);
}

#[test]
fn a_hello_that_does_not_finish_in_time_is_closed() {
    let origins = Origins::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let proxy = front(&log, "      hello_timeout: 300ms\n", "", &origins.clusters());
    let hello = client_hello("pay.example.com");
    let mut conn = RawConn::connect(proxy.addr("edge"));
    let started = Instant::now();
    conn.send(&hello[..hello.len() / 2]);
    assert!(conn.closes_within(WAIT), "closed after the hello timeout");
    assert!(started.elapsed() >= Duration::from_millis(250), "not before the timeout: {:?}", started.elapsed());
    let lines = stream_lines(&log, 1);
    assert_eq!((lines[0]["status"].as_u64(), lines[0]["reason"].as_str()), (Some(408), Some("tls_hello_timeout")));
    assert_eq!(lines[0]["cluster"], serde_json::Value::Null);
}

#[test]
fn one_port_passes_pay_through_and_terminates_www_with_its_own_routes() {
    let origins = Origins::start();
    let www = origins.pki.server("www", &["www.example.com"]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stream.log");
    let listener_extra = format!(
        "    tls:\n      certificates:\n        - {{ cert: \"{}\", key: \"{}\" }}\n    routes:\n      \
         - direct: {{ body: \"terminated at the edge\" }}\n",
        www.cert.display(),
        www.key.display()
    );
    let proxy = front(&log, "", &listener_extra, &origins.clusters());
    let edge = proxy.addr("edge");
    let (cert, body) = fetch(edge, "www.example.com", &origins.pki);
    assert_eq!(cert, www.der, "the edge's own certificate for www");
    assert_eq!(body, "terminated at the edge");
    let (cert, body) = fetch(edge, "pay.example.com", &origins.pki);
    assert_eq!(cert, origins.pay.der, "pay passed through on the same port");
    assert_eq!(body, "pay origin");
    let ca = origins.pki.ca_file();
    for (name, expected) in [("www.example.com", "terminated at the edge"), ("pay.example.com", "pay origin")] {
        let resolve = format!("{name}:{}:127.0.0.1", edge.port());
        let url = format!("https://{name}:{}/", edge.port());
        let response = curl(&["--http1.1", "--resolve", &resolve, "--cacert", ca.to_str().unwrap(), &url]);
        assert_eq!((response.status, response.text().as_str()), (200, expected), "{name}");
    }
    let (output, handshake) = s_client(edge, Some("www.example.com"), &origins.pki);
    assert!(handshake && output.contains("CN = www"), "{output}");
    // A hello without a name is terminated too (missing_sni: default), with the first certificate.
    let (output, handshake) = s_client(edge, None, &origins.pki);
    assert!(handshake && output.contains("CN = www"), "{output}");
    // Plain HTTP on the TLS port is refused, not handed to the TLS handshake.
    let mut conn = RawConn::connect(edge);
    conn.send(b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n");
    assert!(conn.closes_within(WAIT));
    let lines = stream_lines(&log, 3);
    let passed: Vec<_> = lines.iter().filter(|l| l["status"] == 200).collect();
    assert_eq!(passed.len(), 2, "only pay's two sessions were passed through: {lines:?}");
    assert!(passed.iter().all(|l| l["server_name"] == "pay.example.com" && l["cluster"] == "pay"), "{lines:?}");
    let refused: Vec<_> = lines.iter().filter(|l| l["status"] != 200).collect();
    assert_eq!(refused.len(), 1, "{lines:?}");
    assert_eq!(refused[0]["reason"], "tls_hello_invalid");
}
