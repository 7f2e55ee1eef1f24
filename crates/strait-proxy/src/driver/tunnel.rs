//! Relaying raw bytes both ways after a protocol switch (WebSocket over HTTP/1.1) or a CONNECT
//! tunnel: what each side already sent goes first, each direction's end is passed on as a
//! half-close, and the relay ends after `idle` without a byte in either direction.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::upstream::Upgraded;

/// Size of each direction's relay buffer.
const RELAY_BUFFER: usize = 16 * 1024;

/// Bytes a relay carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Relayed {
    /// From the client to the upstream.
    pub up: u64,
    /// From the upstream to the client.
    pub down: u64,
}

/// Relays between the client connection `client` (with `client_buf` already read from it) and
/// the upstream connection until both directions ended, or `idle` passed without traffic;
/// returns the bytes carried each way.
pub(crate) async fn relay<C>(mut client: C, client_buf: BytesMut, upgraded: Upgraded) -> Relayed
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let Upgraded { stream: mut upstream, buf: upstream_buf, idle, pace } = upgraded;
    let sent_early = async {
        if !client_buf.is_empty() {
            upstream.write_all(&client_buf).await?;
        }
        if !upstream_buf.is_empty() {
            client.write_all(&upstream_buf).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let mut relayed = Relayed { up: client_buf.len() as u64, down: upstream_buf.len() as u64 };
    if tokio::time::timeout(idle, sent_early).await.map_or(true, |r| r.is_err()) {
        return relayed;
    }
    // Uninitialized room (`read_buf`): a tunnel that carries a few bytes costs no zeroing.
    let mut up = BytesMut::with_capacity(RELAY_BUFFER);
    let mut down = BytesMut::with_capacity(RELAY_BUFFER);
    let (mut client_open, mut upstream_open) = (true, true);
    let mut deadline = Instant::now() + idle;
    while client_open || upstream_open {
        tokio::select! {
            read = client.read_buf(&mut up), if client_open => match read {
                Ok(0) | Err(_) => {
                    client_open = false;
                    let _ = upstream.shutdown().await;
                }
                Ok(n) => {
                    let written = upstream.write_all(&up).await;
                    up.clear();
                    if written.is_err() {
                        return relayed;
                    }
                    relayed.up += n as u64;
                    pause(pace.as_ref(), n).await;
                    deadline = Instant::now() + idle;
                }
            },
            read = upstream.read_buf(&mut down), if upstream_open => match read {
                Ok(0) | Err(_) => {
                    upstream_open = false;
                    let _ = client.shutdown().await;
                }
                Ok(n) => {
                    let written = client.write_all(&down).await;
                    down.clear();
                    if written.is_err() {
                        return relayed;
                    }
                    relayed.down += n as u64;
                    pause(pace.as_ref(), n).await;
                    deadline = Instant::now() + idle;
                }
            },
            _ = tokio::time::sleep_until(deadline) => return relayed,
        }
    }
    relayed
}

/// Waits as long as the client's bandwidth limit asks after `bytes` went through (both
/// directions count, as Squid's delay pools count a tunnel's bytes).
async fn pause(pace: Option<&crate::actions::forward_proxy::Pace>, bytes: usize) {
    if let Some(pace) = pace {
        let wait = pace.limit.take(pace.client, bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}
