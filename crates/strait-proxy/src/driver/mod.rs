//! Connection drivers: they read requests off a transport in one protocol, hand each to the
//! protocol-neutral [`crate::exchange`], and implement its response sink for that protocol.
//!
//! A plain listener serves HTTP/1.x over TCP; a TLS listener completes the handshake first and
//! serves the protocol ALPN agreed on over the TLS stream.

pub(crate) mod drain;
mod h1;
mod h2;
mod tunnel;

pub(crate) use tunnel::{relay, Relayed};

use std::net::SocketAddr;
use std::sync::Arc;

use http::Version;
use strait_http::context::{ClientCert, ConnInfo, TlsInfo};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::shared::Shared;

/// Serves one accepted plain-TCP connection (HTTP/1.x) until it closes, idles out or the
/// server drains.
pub(crate) async fn serve_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    shared: Arc<Shared>,
    http2: bool,
) {
    let _ = stream.set_nodelay(true);
    let info = ConnInfo { peer, listener, scheme: "http", version: Version::HTTP_11, tls: None };
    if http2 && starts_with_h2_preface(&stream, &shared).await {
        // Boxed: an HTTP/1 connection's task is not sized for an HTTP/2 connection.
        let boxed = Box::pin(h2::serve(stream, info, shared));
        boxed.await;
    } else {
        h1::serve(stream, info, shared).await;
    }
}

/// The first bytes of an HTTP/2 connection (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the client opens with the HTTP/2 preface (prior knowledge), looking without
/// consuming; an HTTP/1 request differs at its first bytes.
async fn starts_with_h2_preface(stream: &TcpStream, shared: &Shared) -> bool {
    let deadline = tokio::time::Instant::now() + shared.snapshot.load().server.client_header_timeout;
    let mut seen = [0u8; 24];
    loop {
        let peeked = match tokio::time::timeout_at(deadline, stream.peek(&mut seen)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return false,
        };
        if seen[..peeked] != H2_PREFACE[..peeked] {
            return false;
        }
        if peeked == H2_PREFACE.len() {
            return true;
        }
        // A preface split across packets: wait a moment for the rest.
        if tokio::time::timeout_at(deadline, tokio::time::sleep(std::time::Duration::from_millis(5))).await.is_err() {
            return false;
        }
    }
}

/// Serves one accepted TLS connection: the handshake (bounded by the client header timeout),
/// then the protocol agreed by ALPN.
pub(crate) async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
) {
    let _ = stream.set_nodelay(true);
    let handshake_timeout = shared.snapshot.load().server.client_header_timeout;
    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let (_, session) = tls.get_ref();
    let info = TlsInfo {
        server_name: session.server_name().map(str::to_owned),
        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
        client_cert: strait_tls::peer_identity(session).map(|id| ClientCert {
            subject: id.subject,
            dns_names: id.dns_names,
            uris: id.uris,
            fingerprint_sha256: id.fingerprint_sha256,
        }),
        inspected: None,
    };
    let h2 = info.alpn.as_deref() == Some(b"h2");
    let info = ConnInfo { peer, listener, scheme: "https", version: Version::HTTP_11, tls: Some(Box::new(info)) };
    if h2 {
        h2::serve(tls, info, shared).await;
    } else {
        h1::serve(tls, info, shared).await;
    }
}

/// Serves the requests inside a CONNECT tunnel whose TLS is inspected: the handshake with a
/// minted certificate (bounded by the client header timeout), then HTTP/1.1 on the decrypted
/// stream, on the same listener (its filters, routes and log) as the CONNECT.
pub(crate) async fn inspect(
    tcp: TcpStream,
    outer: &ConnInfo,
    shared: Arc<Shared>,
    bump: crate::actions::forward_proxy::Bump,
) {
    let handshake_timeout = shared.snapshot.load().server.client_header_timeout;
    let tls = match tokio::time::timeout(handshake_timeout, bump.acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(peer = %outer.peer, %error, "TLS inspection: the client's handshake failed");
            return;
        }
        Err(_) => return,
    };
    let (_, session) = tls.get_ref();
    let info = TlsInfo {
        server_name: session.server_name().map(str::to_owned),
        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
        client_cert: None,
        inspected: Some(bump.tunnel),
    };
    let info = ConnInfo {
        peer: outer.peer,
        listener: outer.listener.clone(),
        scheme: "https",
        version: Version::HTTP_11,
        tls: Some(Box::new(info)),
    };
    h1::serve(tls, info, shared).await;
}
