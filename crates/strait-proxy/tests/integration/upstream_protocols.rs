//! Upstream protocols: TLS to endpoints (verification, server name, client certificates, the
//! loud skip switch), HTTP/2 to endpoints (h2c, multiplexed), gRPC end to end with tonic
//! (unary, server streaming, trailers, gRPC-shaped answers, `grpc-timeout`), and WebSocket
//! relayed both ways with source-IP stickiness.

use crate::support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use support::pki::{self, Pki};
use support::Proxy;

// === backends ===

/// A hyper HTTP/1.1 backend over TLS on 127.0.0.1; answers with the SNI it saw and whether
/// the client presented a certificate. Returns its address; runs until the runtime stops.
fn tls_backend(rt: &tokio::runtime::Runtime, pki: &Pki, leaf: &pki::Leaf, client_ca: bool) -> SocketAddr {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(std::fs::read(pki.ca_file()).map(|pem| pem_to_der(&pem)).unwrap()))
        .unwrap();
    let builder = rustls::ServerConfig::builder();
    let builder = if client_ca {
        builder
            .with_client_cert_verifier(rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap())
    } else {
        builder.with_no_client_auth()
    };
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf.key_der.clone().into());
    let config = Arc::new(builder.with_single_cert(vec![leaf.der.clone()], key).unwrap());
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let (_, session) = tls.get_ref();
                let sni = session.server_name().unwrap_or("-").to_owned();
                let client_cert = session.peer_certificates().is_some();
                let service = hyper::service::service_fn(move |_req| {
                    let text = format!("tls backend sni={sni} client_cert={client_cert}");
                    async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(text)))) }
                });
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    addr
}

/// The DER of the first certificate of a PEM file.
fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem).unwrap().to_vec()
}

/// A hyper HTTP/2 cleartext backend that counts its connections and answers the path.
fn h2c_backend(rt: &tokio::runtime::Runtime) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let text = format!("h2 backend {} {:?}", req.uri().path(), req.version());
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(text))))
                });
                let io = hyper_util::rt::TokioIo::new(tcp);
                let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (addr, connections)
}

fn proxy_to(cluster: &str, listener_extra: &str) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n{listener_extra}    routes:\n      - forward: {{ cluster: app }}\nclusters:\n{cluster}"
    ))
}

// === TLS to endpoints ===

#[test]
fn endpoints_are_reached_over_verified_tls_with_a_client_certificate() {
    let rt = pki::runtime();
    let pki = Pki::new("upstream ca");
    let leaf = pki.server("backend", &["backend.internal"]);
    let client = pki.client("strait");
    let addr = tls_backend(&rt, &pki, &leaf, true);
    let cluster = format!(
        "  - name: app\n    endpoints: [{{ address: \"{addr}\" }}]\n    tls: {{ server_name: backend.internal, ca: \"{}\", client_cert: \"{}\", client_key: \"{}\" }}\n",
        pki.ca_file().display(),
        client.cert.display(),
        client.key.display()
    );
    let proxy = proxy_to(&cluster, "");
    for _ in 0..3 {
        let response = support::get(proxy.addr("web"), "/");
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "tls backend sni=backend.internal client_cert=true");
    }
}

#[test]
fn an_untrusted_endpoint_is_refused_unless_verification_is_skipped_explicitly() {
    let rt = pki::runtime();
    let pki = Pki::new("upstream ca");
    let other = Pki::new("someone else");
    let leaf = pki.server("backend", &["backend.internal"]);
    let addr = tls_backend(&rt, &pki, &leaf, false);
    let wrong_ca = format!(
        "  - name: app\n    endpoints: [{{ address: \"{addr}\" }}]\n    tls: {{ server_name: backend.internal, ca: \"{}\" }}\n",
        other.ca_file().display()
    );
    let proxy = proxy_to(&wrong_ca, "");
    let refused = support::get(proxy.addr("web"), "/");
    assert_eq!(refused.status, 502);
    assert_eq!(refused.header("x-strait-reason"), Some("upstream_tls_failed"));
    let wrong_name = format!(
        "  - name: app\n    endpoints: [{{ address: \"{addr}\" }}]\n    tls: {{ server_name: elsewhere.internal, ca: \"{}\" }}\n",
        pki.ca_file().display()
    );
    proxy.reload(&proxy_config(&wrong_name)).unwrap();
    assert_eq!(support::get(proxy.addr("web"), "/").header("x-strait-reason"), Some("upstream_tls_failed"));
    let skipped = format!(
        "  - name: app\n    endpoints: [{{ address: \"{addr}\" }}]\n    tls: {{ insecure_skip_verify: true }}\n"
    );
    proxy.reload(&proxy_config(&skipped)).unwrap();
    let response = support::get(proxy.addr("web"), "/");
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.text().starts_with("tls backend"));
}

fn proxy_config(cluster: &str) -> String {
    format!("listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: {{ cluster: app }}\nclusters:\n{cluster}")
}

// === HTTP/2 to endpoints ===

#[test]
fn requests_to_an_http2_cluster_share_one_connection() {
    let rt = pki::runtime();
    let (addr, connections) = h2c_backend(&rt);
    let cluster = format!("  - name: app\n    protocol: http2\n    endpoints: [{{ address: \"{addr}\" }}]\n");
    // One worker: pools are per worker, and this counts one pool's connections.
    let proxy = Proxy::start(&format!(
        "workers: 1\n{}",
        proxy_config(&cluster).replace("    routes:", "    http2: true\n    routes:")
    ));
    let proxy_addr = proxy.addr("web");
    let got = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(proxy_addr).await.unwrap();
        let requests = (0..20)
            .map(|i| http::Request::get(format!("http://h2up.test/r{i}")).body(Full::new(Bytes::new())).unwrap())
            .collect();
        pki::http2_requests(tcp, requests).await
    });
    for (i, got) in got.iter().enumerate() {
        assert_eq!(got.parts.status, 200);
        assert_eq!(got.body, format!("h2 backend /r{i} HTTP/2.0"));
    }
    // HTTP/1.1 clients go over the same multiplexed upstream connection too.
    assert_eq!(support::get(proxy_addr, "/from-h1").text(), "h2 backend /from-h1 HTTP/2.0");
    assert_eq!(connections.load(Ordering::SeqCst), 1, "one connection per endpoint and worker");
}

// === gRPC ===

/// A tonic health service (h2c) on 127.0.0.1 with `strait.test` serving.
fn grpc_backend(rt: &tokio::runtime::Runtime) -> (SocketAddr, tonic_health::server::HealthReporter) {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let (reporter, service) = tonic_health::server::health_reporter();
    rt.block_on(reporter.set_service_status("strait.test", tonic_health::ServingStatus::Serving));
    rt.spawn(async move {
        let incoming = tokio_stream_of(listener);
        let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
    });
    (addr, reporter)
}

fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = Result<tokio::net::TcpStream, std::io::Error>> {
    futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(tcp, _)| tcp);
        Some((accepted, listener))
    })
}

fn grpc_proxy(backend: SocketAddr) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    http2: true\n    routes:\n      - match: {{ path: {{ prefix: /grpc.health.v1.Health }} }}\n        forward: {{ cluster: grpc }}\n      - match: {{ path: {{ prefix: /dead.Service }} }}\n        forward: {{ cluster: dead }}\nclusters:\n  - name: grpc\n    protocol: http2\n    endpoints: [{{ address: \"{backend}\" }}]\n  - name: dead\n    protocol: http2\n    timeouts: {{ connect: 1s }}\n    endpoints: [{{ address: \"127.0.0.1:1\" }}]\n"
    ))
}

#[test]
fn grpc_unary_and_streaming_calls_pass_through_with_trailers() {
    let rt = pki::runtime();
    let (backend, reporter) = grpc_backend(&rt);
    let proxy = grpc_proxy(backend);
    let url = format!("http://{}", proxy.addr("web"));
    rt.block_on(async move {
        let channel = tonic::transport::Endpoint::from_shared(url).unwrap().connect().await.unwrap();
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let request = tonic_health::pb::HealthCheckRequest { service: "strait.test".into() };
        let answer = client.check(request.clone()).await.expect("unary call through the proxy");
        assert_eq!(answer.get_ref().status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
        // A status from the service itself, in its trailers.
        let unknown = tonic_health::pb::HealthCheckRequest { service: "nobody".into() };
        let status = client.check(unknown).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
        // Server streaming: the current status, then each change, as it happens.
        let mut watch = client.watch(request).await.unwrap().into_inner();
        let first = tokio::time::timeout(support::WAIT, watch.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(first.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
        reporter.set_service_status("strait.test", tonic_health::ServingStatus::NotServing).await;
        let second = tokio::time::timeout(support::WAIT, watch.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(second.status, tonic_health::pb::health_check_response::ServingStatus::NotServing as i32);
    });
}

#[test]
fn strait_answers_grpc_requests_in_grpc_terms() {
    let rt = pki::runtime();
    let (backend, _reporter) = grpc_backend(&rt);
    let proxy = grpc_proxy(backend);
    let addr = proxy.addr("web");
    let grpc = |path: &str, timeout: Option<&str>| {
        let mut request = http::Request::post(format!("http://grpc.test{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(timeout) = timeout {
            request = request.header("grpc-timeout", timeout);
        }
        request.body(Full::new(Bytes::from_static(b"\0\0\0\0\0"))).unwrap()
    };
    let got = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        pki::http2_requests(tcp, vec![grpc("/unknown.Service/Call", None), grpc("/dead.Service/Call", None)]).await
    });
    let status = |got: &pki::Got| {
        got.parts.headers.get("grpc-status").or(got.trailers.as_ref().and_then(|t| t.get("grpc-status"))).cloned()
    };
    assert_eq!(got[0].parts.status, 200);
    assert_eq!(status(&got[0]).unwrap(), "12", "no route: UNIMPLEMENTED");
    assert_eq!(got[0].parts.headers["grpc-message"], "no_route");
    assert_eq!(got[1].parts.status, 200);
    assert_eq!(status(&got[1]).unwrap(), "14", "connection refused: UNAVAILABLE");
    assert_eq!(got[1].parts.headers["content-type"], "application/grpc");
}

#[test]
fn grpc_timeout_bounds_the_upstream_exchange() {
    // A backend that never answers in time.
    let slow = support::Backend::start(|_| support::Reply::text("late").delayed(Duration::from_secs(5)));
    let proxy = Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    http2: true\n    routes:\n      - forward: {{ cluster: slow }}\nclusters:\n  - name: slow\n    endpoints: [{{ address: \"{}\" }}]\n",
        slow.addr
    ));
    let addr = proxy.addr("web");
    let rt = pki::runtime();
    let started = std::time::Instant::now();
    let got = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = http::Request::post("http://grpc.test/slow.Service/Call")
            .header("content-type", "application/grpc")
            .header("grpc-timeout", "200m")
            .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
            .unwrap();
        pki::http2_requests(tcp, vec![request]).await.remove(0)
    });
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(got.parts.status, 200);
    assert_eq!(got.parts.headers["grpc-status"], "4", "DEADLINE_EXCEEDED");
}

// === WebSocket ===

/// A WebSocket echo server naming itself in every answer; counts its connections.
fn ws_echo(rt: &tokio::runtime::Runtime, name: &'static str, seen: Arc<Mutex<Vec<&'static str>>>) -> SocketAddr {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            seen.lock().unwrap().push(name);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                while let Some(Ok(message)) = ws.next().await {
                    let reply = match message {
                        tokio_tungstenite::tungstenite::Message::Text(text) => {
                            tokio_tungstenite::tungstenite::Message::text(format!("{name}: {text}"))
                        }
                        tokio_tungstenite::tungstenite::Message::Binary(data) => {
                            tokio_tungstenite::tungstenite::Message::Binary(data)
                        }
                        tokio_tungstenite::tungstenite::Message::Close(_) => return,
                        _ => continue,
                    };
                    if ws.send(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn websocket_sessions_are_relayed_both_ways_and_stick_to_one_backend() {
    let rt = pki::runtime();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let a = ws_echo(&rt, "a", seen.clone());
    let b = ws_echo(&rt, "b", seen.clone());
    // HAProxy's `ws_servers` backend of the seed: `balance source`.
    let cluster = format!(
        "  - name: app\n    balancer: ring_hash\n    hash_on: source_ip\n    endpoints: [{{ address: \"{a}\" }}, {{ address: \"{b}\" }}]\n"
    );
    let proxy = proxy_to(&cluster, "");
    let url = format!("ws://{}/chat", proxy.addr("web"));
    let answers = rt.block_on(async move {
        let mut names = Vec::new();
        for session in 0..4 {
            let (mut ws, response) =
                tokio_tungstenite::connect_async(url.as_str()).await.expect("upgrade through the proxy");
            assert_eq!(response.status(), 101);
            for i in 0..3 {
                ws.send(tokio_tungstenite::tungstenite::Message::text(format!("hello {session}.{i}"))).await.unwrap();
                let reply = tokio::time::timeout(support::WAIT, ws.next()).await.unwrap().unwrap().unwrap();
                names.push(reply.into_text().unwrap().to_string());
            }
            let big = vec![7u8; 300_000];
            ws.send(tokio_tungstenite::tungstenite::Message::binary(big.clone())).await.unwrap();
            let echoed = tokio::time::timeout(support::WAIT, ws.next()).await.unwrap().unwrap().unwrap();
            assert_eq!(echoed.into_data().as_ref(), &big[..]);
            ws.close(None).await.unwrap();
        }
        names
    });
    assert_eq!(answers.len(), 12);
    let first = &answers[0][..1];
    assert!(answers.iter().all(|a| a.starts_with(first)), "one client address, one backend: {answers:?}");
    assert!(answers[4].ends_with("hello 1.1"));
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[test]
fn an_upgrade_without_connection_upgrade_is_a_plain_request() {
    let backend =
        support::Backend::start(|r| support::Reply::text(&format!("upgrade header: {:?}", r.headers.get("upgrade"))));
    let proxy = proxy_to(&format!("  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n", backend.addr), "");
    let response = support::raw_request(
        proxy.addr("web"),
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "upgrade header: None");
}
