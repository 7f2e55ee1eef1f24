//! Connection drivers: they read requests off a transport in one protocol, hand each to the
//! protocol-neutral [`crate::exchange`], and implement its response sink for that protocol.

pub(crate) mod drain;
mod h1;

use std::net::SocketAddr;
use std::sync::Arc;

use http::Version;
use strait_http::context::ConnInfo;
use tokio::net::TcpStream;

use crate::shared::Shared;

/// Serves one accepted plain-TCP connection (HTTP/1.x) until it closes, idles out or the
/// server drains.
pub(crate) async fn serve_tcp(stream: TcpStream, peer: SocketAddr, listener: Arc<str>, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let info = ConnInfo { peer, listener, scheme: "http", version: Version::HTTP_11 };
    h1::serve(stream, info, shared).await;
}
