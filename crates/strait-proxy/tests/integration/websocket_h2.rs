//! WebSocket over HTTP/2 (RFC 8441): an `h2` client's extended CONNECT, over h2c and over TLS,
//! relayed to HTTP/1.1 WebSocket backends (tokio-tungstenite and raw ones); the SETTINGS that
//! advertise it, what the backend receives, answers that do not switch, a wrong
//! `Sec-WebSocket-Accept`, refused protocols, half-closes and the idle timeout.

use crate::support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method};
use support::pki::{self, Pki};
use support::{Proxy, WAIT};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{Request as WsRequest, Response as WsResponse};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;

// === the proxy and backends ===

/// A proxy whose listener `web` speaks HTTP/1.1 and h2c (or TLS when `tls` has the lines of a
/// `tls:` block), answering `/local` itself and forwarding everything else to `upstream`.
fn proxy(upstream: SocketAddr, server: &str, tls: &str, cluster_extra: &str) -> Proxy {
    Proxy::start(&format!(
        r#"
{server}
listeners:
  - name: web
    bind: 127.0.0.1:0
    http2: {}
{tls}
    routes:
      - match: {{ path: {{ exact: /local }} }}
        direct: {{ status: 200, body: "local" }}
      - forward: {{ cluster: ws }}
clusters:
  - name: ws
    endpoints: [{{ address: "{upstream}" }}]
{cluster_extra}
"#,
        tls.is_empty()
    ))
}

/// What a WebSocket backend saw of one handshake: method, target, headers.
type Handshake = (String, String, HeaderMap);

/// A tokio-tungstenite echo server that records each handshake and picks the `chat`
/// subprotocol when it is offered.
fn ws_echo(rt: &tokio::runtime::Runtime) -> (SocketAddr, Arc<Mutex<Vec<Handshake>>>) {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Handshake>>> = Arc::default();
    let recorded = seen.clone();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let recorded = recorded.clone();
            tokio::spawn(async move {
                // The callback's signature is tungstenite's, error type included.
                #[allow(clippy::result_large_err)]
                let callback = move |request: &WsRequest, mut response: WsResponse| {
                    let headers = request.headers().clone();
                    recorded.lock().unwrap().push((request.method().to_string(), request.uri().to_string(), headers));
                    let offered = request.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
                    if offered.unwrap_or("").split(',').any(|p| p.trim() == "chat") {
                        response.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("chat"));
                    }
                    Ok(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else { return };
                // After a Close, the next read sends the reply and ends the stream.
                while let Some(Ok(message)) = ws.next().await {
                    let reply = match message {
                        Message::Text(text) => Message::text(format!("echo: {text}")),
                        Message::Binary(data) => Message::Binary(data),
                        _ => continue,
                    };
                    if ws.send(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A raw upstream for one connection: answers the handshake with `101` and the right
/// `Sec-WebSocket-Accept`, sends `early` in the same write, reads until the proxy half-closes,
/// then (if `answer_after_fin`) sends `after fin: ` and what it read, and closes. Sets the flag
/// once it saw the end of what the proxy sends.
fn switching_upstream(early: &'static [u8], answer_after_fin: bool) -> (SocketAddr, Arc<AtomicBool>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ended = Arc::new(AtomicBool::new(false));
    let flag = ended.clone();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|line| line.strip_prefix("sec-websocket-key: "))
            .expect("the proxy sends a Sec-WebSocket-Key");
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        answer.extend_from_slice(early);
        stream.write_all(&answer).unwrap();
        let mut received = Vec::new();
        if stream.read_to_end(&mut received).is_ok() {
            flag.store(true, Ordering::SeqCst);
        }
        if answer_after_fin {
            let mut reply = b"after fin: ".to_vec();
            reply.extend_from_slice(&received);
            let _ = stream.write_all(&reply);
        }
    });
    (addr, ended)
}

// === the HTTP/2 client ===

/// One HTTP/2 stream as a byte stream: DATA frames in (their window released as they are
/// read), DATA frames out within the window, END_STREAM on shutdown.
struct H2Io {
    send: h2::SendStream<Bytes>,
    recv: h2::RecvStream,
    pending: Bytes,
    ended: bool,
}

impl AsyncRead for H2Io {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    this.pending = data;
                }
                Some(Err(error)) => return Poll::Ready(Err(std::io::Error::other(error))),
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        this.send.reserve_capacity(buf.len());
        loop {
            let capacity = this.send.capacity();
            if capacity > 0 {
                let n = capacity.min(buf.len());
                this.send.send_data(Bytes::copy_from_slice(&buf[..n]), false).map_err(std::io::Error::other)?;
                return Poll::Ready(Ok(n));
            }
            match ready!(this.send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Poll::Ready(Err(std::io::Error::other(error))),
                None => return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.ended {
            self.ended = true;
            self.send.send_data(Bytes::new(), true).map_err(std::io::Error::other)?;
        }
        Poll::Ready(Ok(()))
    }
}

/// An HTTP/2 client (the `h2` crate, prior knowledge on `io`) whose server SETTINGS have
/// arrived: a first request to `/local` was answered.
async fn h2_client<T>(io: T, scheme: &str) -> h2::client::SendRequest<Bytes>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) = h2::client::handshake(io).await.expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut ready = client.clone().ready().await.unwrap();
    let request = http::Request::get(format!("{scheme}://ws.test/local")).body(()).unwrap();
    let (response, _) = ready.send_request(request, true).unwrap();
    let response = tokio::time::timeout(WAIT, response).await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    client
}

/// Sends an extended CONNECT for `protocol` (or a plain CONNECT without one) to `path`, as a
/// browser opens a WebSocket over HTTP/2; returns the answer's head and its stream.
async fn open(
    client: &h2::client::SendRequest<Bytes>,
    uri: &str,
    protocol: Option<&'static str>,
) -> Result<(http::response::Parts, H2Io), h2::Error> {
    let mut request = http::Request::builder()
        .method(Method::CONNECT)
        .uri(uri)
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat, superchat")
        .header("origin", "http://ws.test")
        .body(())
        .unwrap();
    if let Some(protocol) = protocol {
        request.extensions_mut().insert(h2::ext::Protocol::from_static(protocol));
    }
    let mut ready = client.clone().ready().await?;
    let (response, send) = ready.send_request(request, false)?;
    let response = tokio::time::timeout(WAIT, response).await.expect("an answer in time")?;
    let (parts, recv) = response.into_parts();
    Ok((parts, H2Io { send, recv, pending: Bytes::new(), ended: false }))
}

/// Runs a WebSocket session on an opened stream: text, binary (larger than every window), a
/// clean close; returns the text echo.
async fn echo_session(io: H2Io) -> String {
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Client, None).await;
    ws.send(Message::text("hello over h2")).await.unwrap();
    let text = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap().into_text().unwrap();
    let small = vec![1u8, 2, 3, 0, 255];
    ws.send(Message::binary(small.clone())).await.unwrap();
    let echoed = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(echoed, Message::binary(small));
    // Larger than the proxy's 1 MiB stream window and the client's 64 KiB one: both
    // directions wait for window updates.
    let big: Vec<u8> = (0..3_000_017u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    let echoed = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(echoed.is_binary() && echoed.into_data().as_ref() == &big[..], "the large message comes back intact");
    ws.close(None).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    assert!(matches!(reply, Some(Ok(Message::Close(_)))), "the backend answers the Close: {reply:?}");
    // The backend closed its connection: the stream ends with END_STREAM, not a reset; ours
    // ends too.
    let mut io = ws.into_inner();
    io.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, io.read_to_end(&mut rest)).await.unwrap().expect("END_STREAM, not RST_STREAM");
    assert!(rest.is_empty(), "{rest:?}");
    text.to_string()
}

// === tests ===

#[test]
fn websocket_over_h2c_is_relayed_to_an_http1_backend_both_ways() {
    let rt = pki::runtime();
    let (backend, handshakes) = ws_echo(&rt);
    let proxy = proxy(backend, "", "", "");
    let addr = proxy.addr("web");
    let text = rt.block_on(async move {
        let client = h2_client(tokio::net::TcpStream::connect(addr).await.unwrap(), "http").await;
        assert!(client.is_extended_connect_protocol_enabled(), "SETTINGS_ENABLE_CONNECT_PROTOCOL = 1");
        let (head, io) = open(&client, "http://ws.test/chat?room=1", Some("websocket")).await.unwrap();
        assert_eq!(head.status, 200, "{head:?}");
        assert_eq!(head.headers["sec-websocket-protocol"], "chat");
        for name in ["sec-websocket-accept", "upgrade", "connection", "content-length"] {
            assert!(!head.headers.contains_key(name), "{name} in {head:?}");
        }
        echo_session(io).await
    });
    assert_eq!(text, "echo: hello over h2");
    let handshakes = handshakes.lock().unwrap().clone();
    assert_eq!(handshakes.len(), 1);
    let (method, target, headers) = &handshakes[0];
    assert_eq!((method.as_str(), target.as_str()), ("GET", "/chat?room=1"));
    assert_eq!(headers["host"], "ws.test", ":authority becomes Host");
    assert_eq!(headers["upgrade"], "websocket");
    assert_eq!(headers["connection"].to_str().unwrap().to_ascii_lowercase(), "upgrade");
    assert_eq!(headers["sec-websocket-version"], "13");
    let key = headers["sec-websocket-key"].to_str().unwrap();
    assert!(key.len() == 24 && key.ends_with("=="), "16 random bytes in base64: {key}");
    assert_eq!(headers["sec-websocket-protocol"], "chat, superchat");
    assert_eq!(headers["origin"], "http://ws.test");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert!(!headers.contains_key("content-length") && !headers.contains_key("transfer-encoding"));
}

#[test]
fn http1_websocket_upgrades_still_work_on_an_http2_listener() {
    let rt = pki::runtime();
    let (backend, handshakes) = ws_echo(&rt);
    let proxy = proxy(backend, "", "", "");
    let url = format!("ws://{}/chat", proxy.addr("web"));
    rt.block_on(async move {
        let (mut ws, response) = tokio_tungstenite::connect_async(url.as_str()).await.expect("upgrade");
        assert_eq!(response.status(), 101);
        ws.send(Message::text("hello over h1")).await.unwrap();
        let reply = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), "echo: hello over h1");
        ws.close(None).await.unwrap();
    });
    // The client's own key went upstream.
    assert_eq!(handshakes.lock().unwrap().len(), 1);
}

#[test]
fn the_settings_advertise_extended_connect_unless_turned_off() {
    let rt = pki::runtime();
    let (backend, handshakes) = ws_echo(&rt);
    let proxy = proxy(backend, "server:\n  http2: { websocket: false }", "", "");
    let addr = proxy.addr("web");
    rt.block_on(async move {
        let client = h2_client(tokio::net::TcpStream::connect(addr).await.unwrap(), "http").await;
        assert!(!client.is_extended_connect_protocol_enabled());
        // `:protocol` without the setting is malformed (RFC 8441 §3): the stream is reset.
        let error = open(&client, "http://ws.test/chat", Some("websocket")).await.err().expect("refused");
        assert_eq!(error.reason(), Some(h2::Reason::PROTOCOL_ERROR), "{error:?}");
    });
    assert!(handshakes.lock().unwrap().is_empty(), "never forwarded");
}

#[test]
fn an_upstream_that_does_not_switch_is_relayed_or_refused() {
    let backend = support::Backend::start(|r| match r.uri.as_str() {
        "/refuse" => {
            support::Reply { status: 403, ..support::Reply::text("no websockets here") }.header("x-from", "backend")
        }
        _ => support::Reply::text("a plain page"),
    });
    let proxy = proxy(backend.addr, "", "", "");
    let addr = proxy.addr("web");
    let rt = pki::runtime();
    rt.block_on(async move {
        let client = h2_client(tokio::net::TcpStream::connect(addr).await.unwrap(), "http").await;
        // Any answer but a switch is relayed as it is, body and all.
        let (head, mut io) = open(&client, "http://ws.test/refuse", Some("websocket")).await.unwrap();
        assert_eq!(head.status, 403);
        assert_eq!(head.headers["x-from"], "backend");
        let mut body = Vec::new();
        tokio::time::timeout(WAIT, io.read_to_end(&mut body)).await.unwrap().unwrap();
        assert_eq!(body, b"no websockets here");
        // A success that is not a switch would tell the client its tunnel is open.
        let (head, _) = open(&client, "http://ws.test/page", Some("websocket")).await.unwrap();
        assert_eq!(head.status, 502);
        assert_eq!(head.headers["x-strait-reason"], "upstream_bad_response");
    });
    let recorded = backend.requests();
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|r| r.method == "GET" && r.headers["upgrade"] == "websocket"), "{recorded:?}");
}

#[test]
fn a_wrong_sec_websocket_accept_is_a_bad_gateway() {
    let upstream = support::RawUpstream::answering(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    let proxy = proxy(upstream.addr, "", "", "");
    let addr = proxy.addr("web");
    let rt = pki::runtime();
    rt.block_on(async move {
        let client = h2_client(tokio::net::TcpStream::connect(addr).await.unwrap(), "http").await;
        let (head, _) = open(&client, "http://ws.test/chat", Some("websocket")).await.unwrap();
        assert_eq!(head.status, 502);
        assert_eq!(head.headers["x-strait-reason"], "upstream_bad_response");
    });
    let sent = String::from_utf8(upstream.connections()[0].bytes.clone()).unwrap();
    assert!(sent.starts_with("GET /chat HTTP/1.1\r\n"), "{sent}");
    for line in ["\r\nconnection: upgrade\r\n", "\r\nupgrade: websocket\r\n", "\r\nsec-websocket-key: "] {
        assert!(sent.contains(line), "{line:?} in {sent}");
    }
}

#[test]
fn other_protocols_and_plain_connect_are_refused() {
    let rt = pki::runtime();
    let (backend, handshakes) = ws_echo(&rt);
    let proxy = proxy(backend, "", "", "");
    let addr = proxy.addr("web");
    rt.block_on(async move {
        let client = h2_client(tokio::net::TcpStream::connect(addr).await.unwrap(), "http").await;
        // RFC 9220 §3: an unsupported `:protocol` gets 501.
        let (head, _) = open(&client, "http://ws.test/chat", Some("connect-udp")).await.unwrap();
        assert_eq!(head.status, 501);
        assert_eq!(head.headers["x-strait-reason"], "unsupported_protocol");
        // A plain CONNECT (a tunnel to `:authority`) is not served here.
        let (head, _) = open(&client, "ws.test:443", None).await.unwrap();
        assert_eq!(head.status, 405);
        assert_eq!(head.headers["x-strait-reason"], "method_not_allowed");
    });
    assert!(handshakes.lock().unwrap().is_empty(), "never forwarded");
}

#[test]
fn half_closes_pass_both_ways_and_early_bytes_come_first() {
    let (upstream, ended) = switching_upstream(b"early", true);
    let proxy = proxy(upstream, "", "", "");
    let addr = proxy.addr("web");
    let rt = pki::runtime();
    rt.block_on(async move {
        let client = h2_client(tokio::net::TcpStream::connect(addr).await.unwrap(), "http").await;
        let (head, mut io) = open(&client, "http://ws.test/raw", Some("websocket")).await.unwrap();
        assert_eq!(head.status, 200);
        // Bytes the upstream sent in the same packet as its `101`.
        let mut early = [0u8; 5];
        tokio::time::timeout(WAIT, io.read_exact(&mut early)).await.unwrap().unwrap();
        assert_eq!(&early, b"early");
        io.write_all(b"hello").await.unwrap();
        io.write_all(b" world").await.unwrap();
        // END_STREAM: the upstream sees FIN, and can still answer.
        io.shutdown().await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, io.read_to_end(&mut rest)).await.unwrap().expect("END_STREAM after the answer");
        assert_eq!(rest, b"after fin: hello world");
    });
    assert!(ended.load(Ordering::SeqCst));
}

#[test]
fn a_silent_tunnel_ends_after_the_cluster_body_timeout() {
    let (upstream, ended) = switching_upstream(b"", false);
    let proxy = proxy(upstream, "", "", "    timeouts: { body: 300ms }");
    let addr = proxy.addr("web");
    let rt = pki::runtime();
    let started = Instant::now();
    rt.block_on(async move {
        let client = h2_client(tokio::net::TcpStream::connect(addr).await.unwrap(), "http").await;
        let (head, mut io) = open(&client, "http://ws.test/raw", Some("websocket")).await.unwrap();
        assert_eq!(head.status, 200);
        let mut rest = Vec::new();
        let result = tokio::time::timeout(WAIT, io.read_to_end(&mut rest)).await.unwrap();
        let error = result.expect_err("the stream is reset, not ended");
        let reason = error.get_ref().and_then(|e| e.downcast_ref::<h2::Error>()).and_then(h2::Error::reason);
        assert_eq!(reason, Some(h2::Reason::CANCEL), "{error:?}");
    });
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    support::wait_until("the upstream connection closes", || ended.load(Ordering::SeqCst));
}

#[test]
fn websocket_over_h2_on_a_tls_listener() {
    let pki = Pki::new("test ca");
    let leaf = pki.server("ws", &["ws.test"]);
    let rt = pki::runtime();
    let (backend, handshakes) = ws_echo(&rt);
    let tls = format!(
        "    tls:\n      certificates:\n        - {{ cert: \"{}\", key: \"{}\", server_names: [] }}",
        leaf.cert.display(),
        leaf.key.display()
    );
    let proxy = proxy(backend, "", &tls, "");
    let addr = proxy.addr("web");
    let text = rt.block_on(async {
        let connected = pki::connect(addr, "ws.test", pki.client_config(&["h2"], None)).await.expect("handshake");
        assert_eq!(connected.alpn.as_deref(), Some(&b"h2"[..]));
        let client = h2_client(connected.stream, "https").await;
        assert!(client.is_extended_connect_protocol_enabled());
        let (head, io) = open(&client, "https://ws.test/chat", Some("websocket")).await.unwrap();
        assert_eq!(head.status, 200);
        echo_session(io).await
    });
    assert_eq!(text, "echo: hello over h2");
    assert_eq!(handshakes.lock().unwrap()[0].2["x-forwarded-proto"], "https");
}
