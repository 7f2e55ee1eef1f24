//! WebSocket over HTTP/2 (RFC 8441): an extended CONNECT for `websocket` becomes an upgrade
//! request on the neutral exchange (a `GET` with a key Strait generates), and once the upstream
//! switched, DATA frames of the stream and bytes of the upstream connection are relayed both
//! ways: within the client's flow-control window, END_STREAM and FIN passed on as half-closes,
//! and an end after the cluster's body timeout without traffic (as the HTTP/1 relay).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{request, Method};
use strait_http::context::UpgradeRequest;
use strait_http::Reason;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::{Instant, Sleep};

use super::body::RequestBody;
use super::sink::H2Sink;
use crate::exchange::{self, Inbound};
use crate::upstream::Upgraded;
use crate::websocket::{OwnKey, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION};

/// Bytes read from the upstream at a time.
const RELAY_BUFFER: usize = 16 * 1024;

/// Serves one extended CONNECT: refused unless its `:protocol` is `websocket`, otherwise
/// forwarded as an upgrade and, after the switch, relayed.
///
/// `h2` already refused the malformed ones (`:protocol` while the setting is off, no `:scheme`
/// or `:path`) with `PROTOCOL_ERROR`.
pub(super) async fn serve(
    inbound: &Inbound<'_>,
    mut parts: request::Parts,
    recv: h2::RecvStream,
    respond: h2::server::SendResponse<Bytes>,
) {
    let server = &inbound.snapshot.server;
    let mut sink = H2Sink::new(respond, false, server);
    let protocol = parts.extensions.remove::<h2::ext::Protocol>();
    let websocket = protocol.is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    let prepared = if websocket { into_upgrade(&mut parts) } else { Err(Reason::UnsupportedProtocol) };
    if let Err(reason) = prepared {
        exchange::refuse(inbound, reason, &mut sink).await;
        return;
    }
    exchange::handle(inbound, parts, RequestBody::empty(server), &mut sink).await;
    if let Some((send, upgraded)) = sink.into_tunnel() {
        relay(send, recv, upgraded).await;
    }
}

/// Turns an extended CONNECT into the request an HTTP/1.1 WebSocket client sends (RFC 8441 §5,
/// RFC 6455 §4.1): `GET`, the upgrade offer, a fresh `Sec-WebSocket-Key` (the client sent none)
/// and `Sec-WebSocket-Version` (the client's, `13` if it sent none); every other field of the
/// client's (`Sec-WebSocket-Protocol`, `-Extensions`, `Origin`...) stays.
fn into_upgrade(parts: &mut request::Parts) -> Result<(), Reason> {
    super::authority_to_host(parts)?;
    parts.method = Method::GET;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(SEC_WEBSOCKET_KEY, crate::websocket::generate_key());
    if !parts.headers.contains_key(SEC_WEBSOCKET_VERSION) {
        parts.headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    }
    parts.extensions.insert(UpgradeRequest(HeaderValue::from_static("websocket")));
    parts.extensions.insert(OwnKey);
    Ok(())
}

/// One direction's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    /// Bytes flow.
    Open,
    /// The client ended its stream: the upstream connection is being half-closed.
    Closing,
    /// Ended.
    Closed,
}

/// Both directions of one relay, to the upstream connection `U`.
struct Relay<U> {
    /// The upstream connection.
    upstream: U,
    /// The stream's sending half (to the client).
    send: h2::SendStream<Bytes>,
    /// The stream's receiving half (from the client).
    recv: h2::RecvStream,
    /// Client bytes not yet written upstream (their window is released as they are written).
    up: Bytes,
    /// Written upstream but maybe not flushed (TLS buffers).
    unflushed: bool,
    /// Client to upstream.
    up_state: Half,
    /// Upstream bytes not yet handed to the stream (they wait for window).
    down: Bytes,
    /// Where upstream bytes are read into.
    down_buf: BytesMut,
    /// Upstream to client.
    down_state: Half,
}

/// Relays between the client's stream and the upstream connection until both directions
/// ended, either side failed, or `idle` passed without a byte moving.
async fn relay(send: h2::SendStream<Bytes>, recv: h2::RecvStream, upgraded: Upgraded) {
    let Upgraded { stream, buf, idle, .. } = upgraded;
    let mut relay = Relay {
        upstream: stream,
        send,
        recv,
        up: Bytes::new(),
        unflushed: false,
        up_state: Half::Open,
        // What the upstream sent right after its `101` goes first.
        down: buf.freeze(),
        down_buf: BytesMut::new(),
        down_state: Half::Open,
    };
    let timer = tokio::time::sleep(idle);
    let mut timer = std::pin::pin!(timer);
    let clean = poll_fn(|cx| relay.poll(cx, timer.as_mut(), idle)).await;
    if !clean {
        // An error or silence: the client learns the stream is gone (the upstream connection
        // closes as it is dropped).
        relay.send.send_reset(h2::Reason::CANCEL);
    }
}

impl<U: AsyncRead + AsyncWrite + Unpin> Relay<U> {
    /// Moves bytes both ways until nothing more can move now; `Ready(true)` once both
    /// directions ended, `Ready(false)` on an error or after `idle` without traffic.
    fn poll(&mut self, cx: &mut Context<'_>, mut timer: Pin<&mut Sleep>, idle: std::time::Duration) -> Poll<bool> {
        let moved = match (self.poll_up(cx), self.poll_down(cx)) {
            (Ok(up), Ok(down)) => up || down,
            _ => return Poll::Ready(false),
        };
        if self.up_state == Half::Closed && self.down_state == Half::Closed {
            return Poll::Ready(true);
        }
        if self.up_state == Half::Closed && self.send.poll_reset(cx).is_ready() {
            // The client reset a stream it had ended its side of.
            return Poll::Ready(false);
        }
        if moved {
            timer.as_mut().reset(Instant::now() + idle);
        }
        match timer.poll(cx) {
            Poll::Ready(()) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Client to upstream: DATA written as it comes, its window released once written, the
    /// stream's end passed on as a half-close. `Ok(true)` when bytes moved.
    fn poll_up(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        let mut moved = false;
        loop {
            match self.up_state {
                Half::Closed => return Ok(moved),
                Half::Closing => {
                    return match Pin::new(&mut self.upstream).poll_shutdown(cx) {
                        Poll::Ready(_) => {
                            self.up_state = Half::Closed;
                            Ok(true)
                        }
                        Poll::Pending => Ok(moved),
                    };
                }
                Half::Open => {}
            }
            if !self.up.is_empty() {
                match Pin::new(&mut self.upstream).poll_write(cx, &self.up) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        self.up.advance(n);
                        let _ = self.recv.flow_control().release_capacity(n);
                        self.unflushed = true;
                        moved = true;
                        continue;
                    }
                    Poll::Ready(_) => return Err(()),
                    Poll::Pending => return Ok(moved),
                }
            }
            if self.unflushed {
                match Pin::new(&mut self.upstream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.unflushed = false,
                    Poll::Ready(Err(_)) => return Err(()),
                    Poll::Pending => return Ok(moved),
                }
            }
            match self.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    self.up = data;
                    moved = true;
                }
                Poll::Ready(Some(Err(_))) => return Err(()),
                Poll::Ready(None) => {
                    self.up_state = Half::Closing;
                    moved = true;
                }
                Poll::Pending => return Ok(moved),
            }
        }
    }

    /// Upstream to client: bytes sent as DATA as the client's window allows, the upstream's FIN
    /// passed on as END_STREAM. `Ok(true)` when bytes moved.
    fn poll_down(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        let mut moved = false;
        while self.down_state == Half::Open {
            if !self.down.is_empty() {
                // The reservation is what is left to send; `capacity` is what the window allows.
                self.send.reserve_capacity(self.down.len());
                let capacity = self.send.capacity();
                if capacity == 0 {
                    match self.send.poll_capacity(cx) {
                        Poll::Ready(Some(Ok(_))) => continue,
                        Poll::Ready(_) => return Err(()),
                        Poll::Pending => return Ok(moved),
                    }
                }
                let chunk = self.down.split_to(capacity.min(self.down.len()));
                self.send.send_data(chunk, false).map_err(drop)?;
                moved = true;
                continue;
            }
            if self.down_buf.capacity() - self.down_buf.len() < RELAY_BUFFER / 4 {
                self.down_buf.reserve(RELAY_BUFFER);
            }
            let read = std::pin::pin!(self.upstream.read_buf(&mut self.down_buf));
            match read.poll(cx) {
                Poll::Ready(Ok(0)) => {
                    self.send.send_data(Bytes::new(), true).map_err(drop)?;
                    self.down_state = Half::Closed;
                    moved = true;
                }
                Poll::Ready(Ok(_)) => {
                    self.down = self.down_buf.split().freeze();
                    moved = true;
                }
                Poll::Ready(Err(_)) => return Err(()),
                Poll::Pending => return Ok(moved),
            }
        }
        Ok(moved)
    }
}
