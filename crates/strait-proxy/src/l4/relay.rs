//! Moving a TCP session's bytes both ways: each direction's end passed on as a half-close, the
//! session ended after the idle timeout without a byte either way, or at the drain deadline of
//! a removed listener.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::drain::ListenerDrain;

/// Size of each direction's buffer.
const RELAY_BUFFER: usize = 32 * 1024;

/// How a relay ended and what it carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Relayed {
    /// Bytes from the client to the upstream.
    pub up: u64,
    /// Bytes from the upstream to the client.
    pub down: u64,
    /// Why it ended early, if it did (`None`: both sides closed).
    pub ended_by: Option<Ended>,
}

/// Why a relay ended before both sides closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// No byte either way for the idle timeout.
    Idle,
    /// The client side failed (reset, or a write that could not complete).
    Client,
    /// The upstream side failed.
    Upstream,
    /// The listener was removed and its drain deadline passed.
    Drained,
}

/// Relays between `client` and `upstream` until both directions ended, `idle` passed without
/// traffic, or `drain` (when the listener goes away) reaches its deadline.
pub(super) async fn relay<C, U>(mut client: C, mut upstream: U, idle: Duration, drain: &ListenerDrain) -> Relayed
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let mut relayed = Relayed::default();
    // Uninitialized room (`read_buf`): a session that carries a few bytes costs no zeroing.
    let mut up = bytes::BytesMut::with_capacity(RELAY_BUFFER);
    let mut down = bytes::BytesMut::with_capacity(RELAY_BUFFER);
    let (mut client_open, mut upstream_open) = (true, true);
    let mut deadline = Instant::now() + idle;
    let drained = drain.deadline();
    tokio::pin!(drained);
    while client_open || upstream_open {
        tokio::select! {
            read = client.read_buf(&mut up), if client_open => match read {
                Ok(0) => {
                    client_open = false;
                    let _ = upstream.shutdown().await;
                }
                Err(_) => {
                    relayed.ended_by = Some(Ended::Client);
                    return relayed;
                }
                Ok(n) => {
                    // A peer that stops reading must not hold the session past its idle time.
                    let written = tokio::time::timeout_at(deadline, upstream.write_all(&up)).await;
                    up.clear();
                    if !matches!(written, Ok(Ok(()))) {
                        relayed.ended_by = Some(if written.is_err() { Ended::Idle } else { Ended::Upstream });
                        return relayed;
                    }
                    relayed.up += n as u64;
                    deadline = Instant::now() + idle;
                }
            },
            read = upstream.read_buf(&mut down), if upstream_open => match read {
                Ok(0) => {
                    upstream_open = false;
                    let _ = client.shutdown().await;
                }
                Err(_) => {
                    relayed.ended_by = Some(Ended::Upstream);
                    return relayed;
                }
                Ok(n) => {
                    let written = tokio::time::timeout_at(deadline, client.write_all(&down)).await;
                    down.clear();
                    if !matches!(written, Ok(Ok(()))) {
                        relayed.ended_by = Some(if written.is_err() { Ended::Idle } else { Ended::Client });
                        return relayed;
                    }
                    relayed.down += n as u64;
                    deadline = Instant::now() + idle;
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                relayed.ended_by = Some(Ended::Idle);
                return relayed;
            }
            _ = &mut drained => {
                relayed.ended_by = Some(Ended::Drained);
                return relayed;
            }
        }
    }
    relayed
}
