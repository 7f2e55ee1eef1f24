//! The HTTP/1 response sink: status line, headers, framing, `connection`, chunked coding.

use std::cell::RefCell;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{response, Version};
use strait_http::AddedFields;

use super::{write_all, Conn};
use crate::actions::forward_proxy::{Bump, TunnelOpen};
use crate::body::RateMeter;
use crate::driver::Relayed;
use crate::exchange::respond::is_bodiless;
use crate::exchange::{BodySize, ResponseSink, SinkClosed};
use crate::h1::encode::{write_framing, OutFraming};
use crate::snapshot::ServerPlan;
use crate::transport::Transport;
use crate::upstream::Upgraded;

/// Output is written once this much is pending; larger data chunks are written directly.
const FLUSH_AT: usize = 32 * 1024;

/// Writes one response on an HTTP/1 connection. Small heads and bodies are held back and go
/// out in one write at [`ResponseSink::finish`] or [`ResponseSink::flush`].
pub(super) struct H1Sink<'c, T> {
    conn: &'c RefCell<Conn<T>>,
    version: Version,
    /// The connection may serve another request after this one (decided with the head).
    keep_alive: bool,
    head_request: bool,
    out: BytesMut,
    chunked: bool,
    /// The chunked body's last chunk (and trailers) are written.
    terminated: bool,
    write_timeout: Duration,
    /// Measures how fast the client takes the response, when it has a minimum.
    meter: Option<Box<RateMeter>>,
    /// Some bytes of this response were handed to the socket.
    wrote: bool,
    /// The upstream connection to relay to after a `101 Switching Protocols` or a CONNECT's `200`.
    upgraded: Option<Upgraded>,
    /// The head opened a CONNECT tunnel, relayed by [`ResponseSink::relay_tunnel`].
    tunnel: bool,
    /// The access log records the response's `Content-Type`.
    keep_content_type: bool,
    /// The CONNECT tunnel's TLS to terminate after the answer (TLS inspection).
    bump: Option<Box<Bump>>,
}

impl<'c, T: Transport> H1Sink<'c, T> {
    /// A sink answering a request of `version`; `keep_alive` is what client and server allow.
    pub(super) fn new(
        conn: &'c RefCell<Conn<T>>,
        version: Version,
        keep_alive: bool,
        head_request: bool,
        server: &ServerPlan,
    ) -> H1Sink<'c, T> {
        H1Sink {
            conn,
            version,
            keep_alive,
            head_request,
            out: BytesMut::new(),
            chunked: false,
            terminated: false,
            write_timeout: server.client_body_timeout,
            meter: RateMeter::for_rate(server.min_response_body_rate.as_ref()),
            wrote: false,
            upgraded: None,
            tunnel: false,
            keep_content_type: false,
            bump: None,
        }
    }

    /// Has the exchange keep the response's `Content-Type` for the access log.
    pub(super) fn keeping_content_type(mut self, keep: bool) -> H1Sink<'c, T> {
        self.keep_content_type = keep;
        self
    }

    /// The upstream connection to relay to, after the exchange answered `101`.
    pub(super) fn take_upgraded(&mut self) -> Option<Upgraded> {
        self.upgraded.take()
    }

    /// Whether this answer opened a CONNECT tunnel (relayed by now: the connection is done).
    pub(super) fn tunneled(&self) -> bool {
        self.tunnel
    }

    /// The tunnel to inspect, after the exchange answered a CONNECT with `200`.
    pub(super) fn take_bump(&mut self) -> Option<Box<Bump>> {
        self.bump.take()
    }

    /// Whether the connection may serve another request after this response.
    pub(super) fn keeps_alive(&self) -> bool {
        self.keep_alive
    }

    async fn write_out(&mut self) -> Result<(), SinkClosed> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.wrote = true;
        let written = write_all(self.conn, &self.out, self.write_timeout, self.meter.as_deref_mut()).await;
        self.out.clear();
        written.map_err(|reason| {
            self.keep_alive = false;
            SinkClosed(reason)
        })
    }

    async fn write_direct(&mut self, data: &[u8]) -> Result<(), SinkClosed> {
        self.write_out().await?;
        self.wrote = true;
        write_all(self.conn, data, self.write_timeout, self.meter.as_deref_mut()).await.map_err(|reason| {
            self.keep_alive = false;
            SinkClosed(reason)
        })
    }
}

impl<T: Transport> H1Sink<'_, T> {
    /// Writes the `200` that opens a CONNECT tunnel: no framing fields, no `connection`
    /// (RFC 9110 §9.3.6); the connection carries the tunnel's bytes after it.
    fn open_tunnel(&mut self, head: &response::Parts) {
        self.tunnel = true;
        self.keep_alive = false;
        self.conn.borrow_mut().expect_continue = false;
        if self.out.capacity() == 0 {
            self.out = crate::buffers::write();
        }
        let out = &mut self.out;
        out.put_slice(if self.version == Version::HTTP_10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
        out.put_slice(head.status.as_str().as_bytes());
        out.put_slice(b" Connection established\r\n");
        for (name, value) in &head.headers {
            if !crate::h1::is_framing(name) {
                put_field(out, name, value);
            }
        }
        out.put_slice(b"\r\n");
    }
}

/// Writes one `name: value` line.
fn put_field(out: &mut BytesMut, name: &header::HeaderName, value: &header::HeaderValue) {
    out.put_slice(name.as_str().as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

impl<T> Drop for H1Sink<'_, T> {
    fn drop(&mut self) {
        crate::buffers::recycle_write(std::mem::take(&mut self.out));
    }
}

impl<T: Transport> ResponseSink for H1Sink<'_, T> {
    async fn head(
        &mut self,
        head: &mut response::Parts,
        added: &mut AddedFields,
        size: BodySize,
    ) -> Result<(), SinkClosed> {
        if head.status.is_success() && head.extensions.get::<TunnelOpen>().is_some() {
            added.move_into(&mut head.headers);
            self.open_tunnel(head);
            return Ok(());
        }
        let framing = match size {
            _ if is_bodiless(head.status) => OutFraming::None,
            // A HEAD answer keeps the length the upstream announced (in the headers).
            BodySize::Empty if self.head_request => OutFraming::None,
            BodySize::Empty => OutFraming::Length(0),
            BodySize::Exact(n) => OutFraming::Length(n),
            BodySize::Unknown if self.version == Version::HTTP_11 => OutFraming::Chunked,
            BodySize::Unknown => OutFraming::Close,
        };
        if framing == OutFraming::Close || !self.conn.borrow().body_settles() {
            // The body ends with the connection, or the request body stays unread: say so.
            self.keep_alive = false;
        }
        // The final answer is going out: a `100 Continue` after it would corrupt it.
        self.conn.borrow_mut().expect_continue = false;
        self.chunked = framing == OutFraming::Chunked && !self.head_request;
        let keep_length = self.head_request && framing == OutFraming::None;
        if self.out.capacity() == 0 {
            self.out = crate::buffers::write();
        }
        let out = &mut self.out;
        out.put_slice(if self.version == Version::HTTP_10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
        out.put_slice(head.status.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(head.status.canonical_reason().unwrap_or("Unknown").as_bytes());
        out.put_slice(b"\r\n");
        // A forward proxy's own challenge: the `Proxy-Authenticate` of a 407 is for this hop
        // (an upstream's never enters the headers: the response parser drops it).
        let own_challenge = head.status == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED;
        // An added framing field is never written, so it replaces nothing either.
        let replaced =
            |name: &header::HeaderName| !added.is_empty() && added.contains(name) && !crate::h1::is_framing(name);
        for (name, value) in &head.headers {
            let framing_field = if name == header::CONTENT_LENGTH {
                !keep_length
            } else {
                crate::h1::is_hop_by_hop(name) && !(own_challenge && name == header::PROXY_AUTHENTICATE)
            };
            if framing_field || replaced(name) {
                continue;
            }
            put_field(out, name, value);
        }
        for (name, value) in added.iter() {
            if !crate::h1::is_framing(name) {
                put_field(out, name, value);
            }
        }
        write_framing(out, framing);
        if head.status == http::StatusCode::SWITCHING_PROTOCOLS {
            if let Some(protocol) = head.extensions.get::<strait_http::context::UpgradeRequest>() {
                out.put_slice(b"connection: upgrade\r\nupgrade: ");
                out.put_slice(protocol.0.as_bytes());
                out.put_slice(b"\r\n\r\n");
                return Ok(());
            }
        }
        match (self.version, self.keep_alive) {
            (Version::HTTP_10, true) => out.put_slice(b"connection: keep-alive\r\n"),
            (Version::HTTP_10, false) => {}
            (_, false) => out.put_slice(b"connection: close\r\n"),
            (_, true) => {}
        }
        out.put_slice(b"\r\n");
        Ok(())
    }

    async fn data(&mut self, data: Bytes) -> Result<(), SinkClosed> {
        if self.head_request || data.is_empty() {
            return Ok(());
        }
        if self.chunked {
            self.out.put_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        if data.len() >= FLUSH_AT {
            self.write_direct(&data).await?;
        } else {
            self.out.put_slice(&data);
        }
        if self.chunked {
            self.out.put_slice(b"\r\n");
        }
        if self.out.len() >= FLUSH_AT {
            self.write_out().await?;
        }
        Ok(())
    }

    async fn trailers(&mut self, trailers: HeaderMap) -> Result<(), SinkClosed> {
        if !self.chunked || self.terminated {
            return Ok(());
        }
        self.out.put_slice(b"0\r\n");
        for (name, value) in &trailers {
            if crate::h1::is_framing(name) {
                continue;
            }
            put_field(&mut self.out, name, value);
        }
        self.out.put_slice(b"\r\n");
        self.terminated = true;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkClosed> {
        self.write_out().await
    }

    async fn finish(&mut self) -> Result<(), SinkClosed> {
        if self.chunked && !self.terminated {
            self.out.put_slice(b"0\r\n\r\n");
            self.terminated = true;
        }
        self.write_out().await
    }

    fn sends_body(&self) -> bool {
        !self.head_request
    }

    fn keeps_content_type(&self) -> bool {
        self.keep_content_type
    }

    fn interrupt(&mut self) -> bool {
        self.keep_alive = false;
        if self.wrote {
            return false;
        }
        // Only held back so far: drop it, and the connection can still carry another answer.
        self.out.clear();
        self.chunked = false;
        self.terminated = false;
        true
    }

    fn upgrade(&mut self, upgraded: Upgraded) -> bool {
        self.upgraded = Some(upgraded);
        self.keep_alive = false;
        true
    }

    fn bump(&mut self, bump: Bump) -> bool {
        self.bump = Some(Box::new(bump));
        self.keep_alive = false;
        true
    }

    fn has_tunnel(&self) -> bool {
        self.tunnel && self.upgraded.is_some()
    }

    // The exchange is over but for the relay: nothing else borrows the connection meanwhile.
    #[allow(clippy::await_holding_refcell_ref)]
    async fn relay_tunnel(&mut self) -> Option<Relayed> {
        let upgraded = self.upgraded.take().filter(|_| self.tunnel)?;
        if self.write_out().await.is_err() {
            return None;
        }
        let mut conn = self.conn.borrow_mut();
        let early = std::mem::take(&mut conn.buf);
        Some(crate::driver::relay(&mut conn.io, early, upgraded).await)
    }
}
