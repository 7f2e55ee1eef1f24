//! HTTP/2: cleartext with prior knowledge (h2c) beside HTTP/1.1, concurrent streams, bodies
//! both ways, Strait's own answers, and frame-level probes of malformed requests and floods.

use crate::support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use support::pki;
use support::{Backend, Proxy, Reply, ReplyBody};

/// A proxy with a plain listener `web` that also accepts h2c, forwarding `/app` to `backend`.
fn h2c_proxy(backend: &Backend, extra: &str) -> Proxy {
    Proxy::start(&format!(
        r#"
{extra}
listeners:
  - name: web
    bind: 127.0.0.1:0
    http2: true
    routes:
      - match: {{ path: {{ exact: /local }} }}
        direct: {{ status: 202, body: "local answer" }}
      - match: {{ path: {{ prefix: /app }} }}
        forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    ))
}

fn request(method: &str, path: &str, body: Bytes) -> http::Request<Full<Bytes>> {
    http::Request::builder().method(method).uri(format!("http://h2.test{path}")).body(Full::new(body)).unwrap()
}

#[test]
fn h2c_streams_are_served_concurrently_on_one_connection() {
    let backend =
        Backend::start(|r| Reply::text(&format!("{} {}", r.method, r.uri)).delayed(Duration::from_millis(100)));
    let proxy = h2c_proxy(&backend, "");
    let addr = proxy.addr("web");
    let rt = pki::runtime();
    let started = std::time::Instant::now();
    let got = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let requests = (0..10).map(|i| request("GET", &format!("/app/{i}"), Bytes::new())).collect();
        pki::http2_requests(tcp, requests).await
    });
    // Ten streams of 100 ms each, served side by side rather than one after the other.
    assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
    for (i, got) in got.iter().enumerate() {
        assert_eq!(got.parts.status, 200);
        assert_eq!(got.parts.version, http::Version::HTTP_2);
        assert_eq!(got.body, format!("GET /app/{i}"));
    }
    // The same listener still speaks HTTP/1.1.
    assert_eq!(support::get(addr, "/app/h1").status, 200);
    assert_eq!(backend.count(), 11);
    let streams = backend.requests().into_iter().filter(|r| r.uri != "/app/h1").collect::<Vec<_>>();
    assert_eq!(streams.len(), 10);
    assert!(streams.iter().all(|r| r.headers["host"] == "h2.test"), ":authority becomes Host upstream");
}

#[test]
fn h2c_bodies_stream_both_ways_byte_exact() {
    let len = 3 * 1024 * 1024 + 7;
    let backend = Backend::start(move |r| match r.method.as_str() {
        "POST" => Reply::text(&format!("{} {}", r.body_len, r.body_sha256)),
        _ => Reply { body: ReplyBody::Generated(len), ..Reply::status(200) },
    });
    let proxy = h2c_proxy(&backend, "");
    let addr = proxy.addr("web");
    let upload: Bytes = (0..2_000_003u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
    let expected = format!("{} {}", upload.len(), support::hex(&sha2_of(&upload)));
    let rt = pki::runtime();
    let got = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let requests = vec![request("POST", "/app/upload", upload), request("GET", "/app/download", Bytes::new())];
        pki::http2_requests(tcp, requests).await
    });
    assert_eq!(got[0].parts.status, 200);
    assert_eq!(got[0].body, expected);
    assert_eq!(got[1].parts.status, 200);
    assert_eq!(got[1].body.len() as u64, len);
    assert_eq!(support::hex(&sha2_of(&got[1].body)), support::pattern_sha256(len));
    let recorded = backend.requests();
    let post = recorded.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.headers["content-length"], "2000003", "the length the client announced goes upstream");
}

#[test]
fn strait_answers_over_h2_carry_reason_and_request_id() {
    let backend = Backend::start(|_| Reply::text("unused"));
    let proxy = h2c_proxy(&backend, "");
    let addr = proxy.addr("web");
    let rt = pki::runtime();
    let got = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let requests = vec![request("GET", "/local", Bytes::new()), request("GET", "/nowhere", Bytes::new())];
        pki::http2_requests(tcp, requests).await
    });
    assert_eq!(got[0].parts.status, 202);
    assert_eq!(got[0].body, "local answer");
    assert_eq!(got[1].parts.status, 404);
    assert_eq!(got[1].parts.headers["x-strait-reason"], "no_route");
    assert!(got[1].parts.headers.contains_key("x-request-id"));
    assert!(got[1].parts.headers.get("connection").is_none());
    assert_eq!(backend.count(), 0);
}

#[test]
fn curl_speaks_h2c_with_prior_knowledge() {
    let backend = Backend::start(|_| Reply::text("from backend"));
    let proxy = h2c_proxy(&backend, "");
    let url = format!("http://{}/app/curl", proxy.addr("web"));
    let response = support::curl(&["--http2-prior-knowledge", &url]);
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "from backend");
}

#[test]
fn a_listener_without_http2_refuses_the_preface_as_a_bad_request() {
    let backend = Backend::start(|_| Reply::text("unused"));
    let proxy = Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: {{ cluster: app }}\nclusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr
    ));
    let response = support::raw_request(proxy.addr("web"), b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").expect("an answer");
    assert_eq!(response.status, 400);
    assert_eq!(backend.count(), 0);
}

/// Runs the frame-level probes against `port`; returns case name → what the server did.
fn probe(port: u16, cases: &[&str]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/frames/h2_frames.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .args(cases)
        .output()
        .expect("python3 runs (scripts/test.sh installs the h2 module)");
    assert!(output.status.success(), "probe failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the probe prints JSON")
}

/// PROTOCOL_ERROR, as RST_STREAM or GOAWAY.
const PROTOCOL_ERROR: u64 = 1;
/// ENHANCE_YOUR_CALM.
const ENHANCE_YOUR_CALM: u64 = 11;

#[test]
fn malformed_requests_are_refused_and_never_reach_the_backend() {
    let backend = Backend::start(|_| Reply::text("must not be reached"));
    let proxy = h2c_proxy(&backend, "");
    let port = proxy.addr("web").port();
    let cases = [
        "connection_header",
        "keep_alive_header",
        "te_gzip",
        "transfer_encoding",
        "upgrade_header",
        "uppercase_name",
        "crlf_value",
        "nul_value",
        "pseudo_after_regular",
        "unknown_pseudo",
        // Extended CONNECT (RFC 8441 §4) needs `:scheme` and `:path`, and `:protocol` needs CONNECT.
        "extended_connect_no_path",
        "extended_connect_no_scheme",
        "protocol_without_connect",
    ];
    let results = probe(port, &cases);
    for case in cases {
        let result = &results[case];
        let code = result["reset"].as_u64().or(result["goaway"].as_u64());
        assert_eq!(code, Some(PROTOCOL_ERROR), "{case}: {result}");
        assert!(result["status"].is_null(), "{case}: {result}");
    }
    let results = probe(port, &["no_authority", "ok"]);
    assert_eq!(results["no_authority"]["status"], 400, "{results}");
    assert_eq!(results["ok"]["status"], 404, "{results}");
    assert_eq!(backend.count(), 0);
}

#[test]
fn a_body_shorter_than_its_content_length_never_completes_upstream() {
    let backend = Backend::start(|_| Reply::text("must not be reached"));
    let proxy = Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    http2: true\n    routes:\n      - forward: {{ cluster: app }}\nclusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr
    ));
    let results = probe(proxy.addr("web").port(), &["content_length_mismatch"]);
    let result = &results["content_length_mismatch"];
    let refused = result["reset"].as_u64() == Some(PROTOCOL_ERROR) || result["status"] == 400;
    assert!(refused, "{result}");
    // The body streamed as it came, so the backend may have seen its start; never all of it.
    assert!(backend.requests().iter().all(|r| r.body_len < 10), "{:?}", backend.requests());
}

#[test]
fn floods_end_in_goaway_or_bounded_work() {
    let backend = Backend::start(|_| Reply::text("flooded"));
    let proxy = Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    http2: true\n    routes:\n      - forward: {{ cluster: app }}\nclusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr
    ));
    let port = proxy.addr("web").port();
    let results = probe(port, &["rapid_reset", "continuation_flood", "hpack_bomb", "empty_data_flood"]);
    let rapid = &results["rapid_reset"];
    assert!(rapid["goaway"] == ENHANCE_YOUR_CALM || rapid["closed"] == true, "{rapid}");
    // Of 500 streams opened and reset at once, only a handful may have reached the backend.
    assert!(backend.count() < 100, "{} requests reached the backend", backend.count());
    for case in ["continuation_flood", "hpack_bomb", "empty_data_flood"] {
        let result = &results[case];
        let ended = !result["goaway"].is_null() || result["closed"] == true || !result["reset"].is_null();
        assert!(ended && result["status"].is_null(), "{case}: {result}");
    }
    // PINGs and SETTINGS by the ten thousand: answered within bounds, and the connection
    // still serves.
    let results = probe(port, &["ping_flood", "settings_flood"]);
    for case in ["ping_flood", "settings_flood"] {
        let result = &results[case];
        assert!(result["status"] == 200 || !result["goaway"].is_null(), "{case}: {result}");
    }
    // The proxy is still fine for everyone else.
    assert_eq!(probe(port, &["ok"])["ok"]["status"], 200);
}

fn sha2_of(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

#[test]
fn an_http2_connection_that_served_streams_closes_after_the_idle_timeout() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = h2c_proxy(&backend, "server: { timeouts: { idle: 300ms } }");
    let addr = proxy.addr("web");
    let rt = pki::runtime();
    let idle_for = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = h2::client::handshake(tcp).await.unwrap();
        let mut conn = tokio::spawn(conn);
        let request = http::Request::builder().uri("http://h2.test/app/one").body(()).unwrap();
        let (response, _) = sender.send_request(request, true).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(5), response).await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            chunk.unwrap();
        }
        let idle_since = std::time::Instant::now();
        // The connection ends (GOAWAY, then close) once it has been idle for the timeout.
        let ended = tokio::time::timeout(Duration::from_secs(5), &mut conn).await;
        assert!(ended.is_ok(), "the idle HTTP/2 connection was not closed");
        idle_since.elapsed()
    });
    assert!(idle_for >= Duration::from_millis(250), "closed too early: {idle_for:?}");
}

#[test]
fn freeing_an_idle_connections_stream_slots_does_not_close_it_before_the_idle_timeout() {
    // The stream slots are freed after one second without streams; the connection stays open
    // until the idle timeout, and serves the streams that come after.
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = h2c_proxy(&backend, "server: { timeouts: { idle: 1700ms } }");
    let addr = proxy.addr("web");
    let rt = pki::runtime();
    let idle_for = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = h2::client::handshake(tcp).await.unwrap();
        let mut conn = tokio::spawn(conn);
        let fetch = async |sender: &mut h2::client::SendRequest<Bytes>| {
            let request = http::Request::builder().uri("http://h2.test/app/one").body(()).unwrap();
            let (response, _) = sender.send_request(request, true).unwrap();
            let response = tokio::time::timeout(Duration::from_secs(5), response).await.unwrap().unwrap();
            assert_eq!(response.status(), 200);
            let mut body = response.into_body();
            while let Some(chunk) = body.data().await {
                chunk.unwrap();
            }
        };
        fetch(&mut sender).await;
        // Past the slots' second, within the idle timeout: still served.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(!conn.is_finished(), "closed when the stream slots were freed");
        sender = sender.ready().await.expect("connection still open");
        fetch(&mut sender).await;
        let idle_since = std::time::Instant::now();
        let ended = tokio::time::timeout(Duration::from_secs(6), &mut conn).await;
        assert!(ended.is_ok(), "the idle HTTP/2 connection was not closed");
        idle_since.elapsed()
    });
    assert!(idle_for >= Duration::from_millis(1500), "closed before the idle timeout: {idle_for:?}");
}
