//! Where an exchange writes its answer: the response sink each connection driver implements.

use bytes::Bytes;
use http::{response, HeaderMap};
use strait_http::{AddedFields, Reason};

/// How much body follows a response head, as far as is known when the head is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodySize {
    /// No body (204, 304, or an empty body).
    Empty,
    /// Exactly this many bytes.
    Exact(u64),
    /// Streamed; the end is told by [`ResponseSink::finish`].
    Unknown,
}

/// The client went away or stopped reading, and why (the reason the access log shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SinkClosed(pub Reason);

impl SinkClosed {
    /// The client closed the connection or stream, or stopped reading for too long.
    pub(crate) const GONE: SinkClosed = SinkClosed(Reason::ClientAborted);
}

/// One response on its way to the client: a head, data chunks, trailers, the end.
///
/// Implementations own the framing: an HTTP/1 sink writes status line, `content-length` or
/// chunked coding and `connection`; an HTTP/2 sink sends HEADERS and DATA frames. The
/// exchange never writes protocol bytes itself. A sink may hold small writes back until
/// [`ResponseSink::flush`] or [`ResponseSink::finish`], so that a head and a small body go out
/// in one write.
pub(crate) trait ResponseSink {
    /// Sends the head; its headers are end-to-end only (framing is the sink's business), and
    /// `added` holds fields that replace the map's of the same names (moved in, or written in
    /// their place). The sink may take the header map and the fields: neither is used after.
    async fn head(
        &mut self,
        head: &mut response::Parts,
        added: &mut AddedFields,
        size: BodySize,
    ) -> Result<(), SinkClosed>;

    /// Sends a piece of the body.
    async fn data(&mut self, data: Bytes) -> Result<(), SinkClosed>;

    /// Sends trailers (ignored where the protocol cannot carry them); the body ends after them.
    async fn trailers(&mut self, trailers: HeaderMap) -> Result<(), SinkClosed>;

    /// Writes out what is held back (before waiting for more body data).
    async fn flush(&mut self) -> Result<(), SinkClosed>;

    /// Ends the response and writes out everything.
    async fn finish(&mut self) -> Result<(), SinkClosed>;

    /// Whether the body of this response is sent at all (not for HEAD requests).
    fn sends_body(&self) -> bool;

    /// The exchange ran out of time: whether another answer can still be sent in place of
    /// this one (nothing of it reached the client). Either way the HTTP/1 connection closes
    /// after the exchange; an HTTP/2 stream whose response had started is reset.
    fn interrupt(&mut self) -> bool;

    /// Whether the exchange keeps the response's `Content-Type` for the access log (the squid
    /// format records it); the driver knows the request's configuration.
    fn keeps_content_type(&self) -> bool {
        false
    }

    /// After a `101 Switching Protocols` head: relay the connection's bytes to `upgraded`
    /// from now on. `false` where the protocol has no such switch (the upstream connection is
    /// then dropped).
    fn upgrade(&mut self, upgraded: crate::upstream::Upgraded) -> bool {
        drop(upgraded);
        false
    }

    /// After the `200` to a CONNECT whose TLS is inspected: the connection driver terminates
    /// the client's TLS with `bump` and serves the requests inside. `false` where the
    /// protocol cannot (the tunnel is then closed).
    fn bump(&mut self, bump: crate::actions::forward_proxy::Bump) -> bool {
        drop(bump);
        false
    }

    /// Whether this answer opened a CONNECT tunnel that waits for [`ResponseSink::relay_tunnel`].
    fn has_tunnel(&self) -> bool {
        false
    }

    /// Relays the CONNECT tunnel this answer opened until it ends (before the exchange is
    /// logged, so the log has its bytes and duration); the bytes carried.
    async fn relay_tunnel(&mut self) -> Option<crate::driver::Relayed> {
        None
    }
}
