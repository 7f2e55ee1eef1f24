//! One HTTP/1.1 exchange on one upstream connection, full duplex: the request body keeps
//! streaming while the response head and body come back, so an upstream that answers before
//! the upload ends is relayed at once, and the connection returns to the pool only when both
//! directions ended cleanly.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::HeaderMap;
use http::{request, Method, Response};
use http_body::{Body, Frame, SizeHint};
use strait_http::Reason;
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::time::Instant;

use super::pool::{self, Kept, PoolKey};
use super::stream::UpstreamStream;
use crate::body::{BodyError, ReadTimer};
use crate::deadline::LazyDeadline;
use crate::h1::decode::{Decoded, Decoder};
use crate::h1::encode::{write_framing, OutFraming};
use crate::h1::{parse_response_head, BodyFraming};

/// Largest upstream response head accepted.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// How long an upstream that stopped taking the request body gets to show its early answer.
const EARLY_RESPONSE_WAIT: Duration = Duration::from_secs(1);
/// Data chunks at least this large are written as they are instead of copied into the buffer.
const WRITE_DIRECT: usize = 16 * 1024;

/// The limits of one exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The response head must have arrived by then.
    pub head_deadline: Instant,
    /// Longest wait between two reads of the response body, or two writes of the request body.
    pub body_timeout: Duration,
    /// Idle connections kept per pool key.
    pub keepalive: usize,
    /// How long a returned connection stays reusable.
    pub idle: Duration,
}

/// Why an exchange failed before a response head arrived.
pub(crate) struct Failure<B> {
    /// What went wrong.
    pub reason: Reason,
    /// Nothing at all came back and nothing of the body was consumed: on a reused connection
    /// this is a stale keep-alive connection, and the request may go again on a fresh one.
    pub stale: bool,
    /// The upstream is to blame (passive health), not the client.
    pub endpoint_fault: bool,
    /// Some of the request was written: the upstream may have acted on it.
    pub sent: bool,
    /// The request body, when it was never touched (for a retry).
    pub body: Option<B>,
}

/// Sends `request` with `body` on `stream` (with what it kept from its last exchange) and
/// waits for the final response head.
pub(crate) async fn exchange<B>(
    stream: UpstreamStream,
    kept: Kept,
    key: PoolKey,
    request: &request::Parts,
    body: B,
    limits: Limits,
) -> Result<Response<UpstreamBody<B>>, Failure<B>>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let Kept { read, write: mut out, timer } = kept;
    out.clear();
    out.reserve(512);
    let framing = write_request_head(&mut out, request, &body);
    let timer = match timer {
        Some(mut timer) => {
            timer.set(limits.head_deadline);
            timer
        }
        None => LazyDeadline::new(limits.head_deadline),
    };
    let pump = Pump {
        body: Some(body),
        body_done: framing == OutFraming::None,
        out,
        direct: Bytes::new(),
        chunked: framing == OutFraming::Chunked,
        touched: false,
        wrote: false,
        state: PumpState::Sending,
    };
    let mut exchange = Exchange { stream, key, buf: read, pump, received: false, limits, timer };
    let upgrading = request.extensions.get::<strait_http::context::UpgradeRequest>().is_some();
    let head = exchange.read_head(&request.method, upgrading).await?;
    let mut parts = Response::new(()).into_parts().0;
    parts.status = head.status;
    parts.headers = head.headers;
    let body = UpstreamBody {
        decoder: Decoder::new(head.body),
        keep_alive: head.keep_alive && head.body != BodyFraming::UntilClose,
        exchange: Some(exchange),
        timer: ReadTimer::default(),
    };
    Ok(Response::from_parts(parts, body))
}

/// The request body on its way upstream.
struct Pump<B> {
    /// The request body (kept even when empty, so a failed attempt can hand it back).
    body: Option<B>,
    /// The body ended (or there is none to send).
    body_done: bool,
    /// Encoded bytes not written yet.
    out: BytesMut,
    /// A large data chunk written after `out` without copying.
    direct: Bytes,
    chunked: bool,
    /// Some of the body was taken from the client.
    touched: bool,
    /// Some bytes were written to the upstream.
    wrote: bool,
    state: PumpState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PumpState {
    /// Writing.
    Sending,
    /// Everything written.
    Sent,
    /// The upstream stopped taking it.
    WriteFailed,
    /// The client's body failed while the response was already coming back.
    ClientFailed(Reason),
}

/// Why the request body stopped.
enum PumpError {
    /// The upstream closed or reset.
    Write,
    /// The client's body failed (too large, too slow, malformed, aborted).
    Body(Reason),
}

impl<B> Pump<B>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    /// Writes and encodes as much as the upstream takes; `Ready(Ok)` once all of it is sent.
    fn poll(&mut self, cx: &mut Context<'_>, stream: &mut UpstreamStream) -> Poll<Result<(), PumpError>> {
        loop {
            while !self.out.is_empty() {
                match Pin::new(&mut *stream).poll_write(cx, &self.out) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        self.wrote = true;
                        self.out.advance(n);
                    }
                    Poll::Ready(_) => return Poll::Ready(Err(PumpError::Write)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            while !self.direct.is_empty() {
                match Pin::new(&mut *stream).poll_write(cx, &self.direct) {
                    Poll::Ready(Ok(n)) if n > 0 => self.direct.advance(n),
                    Poll::Ready(_) => return Poll::Ready(Err(PumpError::Write)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let body = match self.body.as_mut() {
                Some(body) if !self.body_done => body,
                _ => return Poll::Ready(Ok(())),
            };
            match Pin::new(body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    if self.chunked {
                        self.out.put_slice(b"0\r\n\r\n");
                    }
                    self.body_done = true;
                }
                Poll::Ready(Some(Err(BodyError(reason)))) => {
                    self.touched = true;
                    return Poll::Ready(Err(PumpError::Body(reason)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    self.touched = true;
                    match frame.into_data() {
                        Ok(data) => self.encode_data(data),
                        Err(frame) => {
                            if let (Ok(trailers), true) = (frame.into_trailers(), self.chunked) {
                                self.out.put_slice(b"0\r\n");
                                put_fields(&mut self.out, &trailers);
                                self.out.put_slice(b"\r\n");
                                self.chunked = false;
                            }
                            self.body_done = true;
                        }
                    }
                }
            }
        }
    }

    fn encode_data(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if self.chunked {
            self.out.put_slice(format!("{:x}\r\n", data.len()).as_bytes());
            self.out.put_slice(&data);
            self.out.put_slice(b"\r\n");
        } else if data.len() >= WRITE_DIRECT && self.out.is_empty() {
            self.direct = data;
        } else {
            self.out.put_slice(&data);
        }
    }

    /// Advances the body in the background of the response (failures only stop it).
    fn poll_quietly(&mut self, cx: &mut Context<'_>, stream: &mut UpstreamStream) {
        if self.state != PumpState::Sending {
            return;
        }
        match self.poll(cx, stream) {
            Poll::Ready(Ok(())) => self.state = PumpState::Sent,
            Poll::Ready(Err(PumpError::Write)) => self.state = PumpState::WriteFailed,
            Poll::Ready(Err(PumpError::Body(reason))) => self.state = PumpState::ClientFailed(reason),
            Poll::Pending => {}
        }
    }
}

/// A connection in the middle of an exchange.
struct Exchange<B> {
    stream: UpstreamStream,
    key: PoolKey,
    /// Bytes read from the upstream and not decoded yet.
    buf: BytesMut,
    pump: Pump<B>,
    /// Anything at all came back.
    received: bool,
    limits: Limits,
    /// Runs out when the response head is late.
    timer: LazyDeadline,
}

impl<B> Exchange<B>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    /// Drives the request out and reads until the final (non-1xx) response head.
    async fn read_head(&mut self, method: &Method, upgrading: bool) -> Result<crate::h1::ResponseHead, Failure<B>> {
        let outcome = poll_fn(|cx| self.poll_head(cx, method, upgrading)).await;
        outcome.map_err(|reason| {
            let stale = !self.received && !self.pump.touched && reason == Reason::UpstreamReset;
            let endpoint_fault = !is_client_fault(reason);
            let body = if self.pump.touched { None } else { self.pump.body.take() };
            Failure { reason, stale, endpoint_fault, sent: self.pump.wrote, body }
        })
    }

    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        method: &Method,
        upgrading: bool,
    ) -> Poll<Result<crate::h1::ResponseHead, Reason>> {
        if self.pump.state == PumpState::Sending {
            match self.pump.poll(cx, &mut self.stream) {
                Poll::Ready(Ok(())) => self.pump.state = PumpState::Sent,
                Poll::Ready(Err(PumpError::Body(reason))) => return Poll::Ready(Err(reason)),
                Poll::Ready(Err(PumpError::Write)) => {
                    self.pump.state = PumpState::WriteFailed;
                    if !self.pump.touched && !self.received {
                        // Nothing was taken: a stale connection, or an upstream gone.
                        return Poll::Ready(Err(Reason::UpstreamReset));
                    }
                    // It stopped reading the body: give it a moment to show an early answer.
                    let early = Instant::now() + EARLY_RESPONSE_WAIT;
                    if early < self.timer.deadline() {
                        self.timer.set(early);
                    }
                }
                Poll::Pending => {}
            }
        }
        loop {
            if !self.buf.is_empty() {
                match parse_response_head(&mut self.buf, method, MAX_RESPONSE_HEAD) {
                    // Interim answers are skipped; `101` ends the exchange when a switch was asked.
                    Ok(Some(head)) if head.status == http::StatusCode::SWITCHING_PROTOCOLS && upgrading => {
                        return Poll::Ready(Ok(head))
                    }
                    // A switch nobody asked for: what follows is not HTTP.
                    Ok(Some(head)) if head.status == http::StatusCode::SWITCHING_PROTOCOLS => {
                        return Poll::Ready(Err(Reason::UpstreamBadResponse))
                    }
                    Ok(Some(head)) if head.status.is_informational() => continue,
                    Ok(Some(head)) => return Poll::Ready(Ok(head)),
                    Ok(None) => {}
                    Err(_) => return Poll::Ready(Err(Reason::UpstreamBadResponse)),
                }
            }
            match poll_read_buf(&mut self.stream, &mut self.buf, cx, crate::buffers::READ) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Err(Reason::UpstreamReset)),
                Poll::Ready(Ok(_)) => self.received = true,
                Poll::Pending => break,
            }
        }
        match self.timer.poll_expired(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Reason::UpstreamTimeout)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether a failure is the client's (its body), not the upstream's.
pub(crate) fn is_client_fault(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::BodyTooLarge
            | Reason::ClientBodyTimeout
            | Reason::ClientBodyTooSlow
            | Reason::BadRequest
            | Reason::ClientAborted
    )
}

/// Reads into `buf` (reserving `reserve` when it is nearly full), recording short reads.
fn poll_read_buf(
    stream: &mut UpstreamStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
    reserve: usize,
) -> Poll<std::io::Result<usize>> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(reserve);
    }
    let room = buf.capacity() - buf.len();
    let read = std::pin::pin!(stream.read_buf(buf)).poll(cx);
    if let Poll::Ready(Ok(n)) = read {
        stream.note_read(n, room);
    }
    read
}

/// A response body streaming from an upstream connection; the connection goes back to the
/// pool when the body ended, the request was sent whole and nothing is left over.
pub(crate) struct UpstreamBody<B> {
    exchange: Option<Exchange<B>>,
    decoder: Decoder,
    keep_alive: bool,
    /// Times the waits for more bytes.
    timer: ReadTimer,
}

impl<B> UpstreamBody<B>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    /// The request body back, if it was never touched (a retry on another endpoint).
    pub(crate) fn into_request_body(mut self) -> Option<B> {
        let exchange = self.exchange.as_mut()?;
        if exchange.pump.touched {
            return None;
        }
        exchange.pump.body.take()
    }

    /// The connection after a `101 Switching Protocols`, with what the upstream already sent.
    pub(crate) fn into_upgraded(mut self) -> Option<super::Upgraded> {
        let exchange = self.exchange.take()?;
        let idle = exchange.limits.body_timeout;
        Some(super::Upgraded { stream: exchange.stream, buf: exchange.buf, idle, pace: None })
    }

    /// The body ended: pool the connection if it is clean.
    fn finish(&mut self) {
        let Some(exchange) = self.exchange.take() else { return };
        let clean = self.keep_alive && exchange.pump.state == PumpState::Sent && exchange.buf.is_empty();
        if clean {
            let Exchange { stream, key, buf, pump, limits, timer, .. } = exchange;
            // A large body's buffers are not kept with an idle connection.
            let small = |buf: BytesMut| if buf.capacity() <= crate::buffers::MAX_KEPT { buf } else { BytesMut::new() };
            let kept = Kept { read: small(buf), write: small(pump.out), timer: Some(timer) };
            pool::put(key, stream, kept, limits.keepalive, limits.idle);
        }
    }
}

impl<B> Body for UpstreamBody<B>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            let Some(exchange) = this.exchange.as_mut() else { return Poll::Ready(None) };
            exchange.pump.poll_quietly(cx, &mut exchange.stream);
            if let PumpState::ClientFailed(reason @ Reason::ClientBodyTooSlow) = exchange.pump.state {
                // A client below its minimum rate loses the answer too (the connection closes).
                this.exchange = None;
                return Poll::Ready(Some(Err(BodyError(reason))));
            }
            match this.decoder.decode(&mut exchange.buf) {
                Ok(Decoded::Data(data)) => {
                    this.timer.disarm();
                    if this.decoder.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::Trailers(trailers)) => {
                    this.finish();
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Ok(Decoded::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Err(_) => {
                    this.exchange = None;
                    return Poll::Ready(Some(Err(BodyError(Reason::UpstreamBadResponse))));
                }
                Ok(Decoded::NeedMore) => {}
            }
            let timeout = exchange.limits.body_timeout;
            match poll_read_buf(&mut exchange.stream, &mut exchange.buf, cx, 64 * 1024) {
                Poll::Ready(Ok(0)) => match this.decoder.eof() {
                    Ok(_) => {
                        this.exchange = None;
                        return Poll::Ready(None);
                    }
                    Err(_) => {
                        this.exchange = None;
                        return Poll::Ready(Some(Err(BodyError(Reason::UpstreamReset))));
                    }
                },
                Poll::Ready(Ok(_)) => this.timer.disarm(),
                Poll::Ready(Err(_)) => {
                    this.exchange = None;
                    return Poll::Ready(Some(Err(BodyError(Reason::UpstreamReset))));
                }
                Poll::Pending => {
                    if this.timer.expired(cx, timeout) {
                        this.exchange = None;
                        return Poll::Ready(Some(Err(BodyError(Reason::UpstreamTimeout))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// Writes the request line and headers as the upstream gets them; returns the framing used.
///
/// The headers are end-to-end only (hop-by-hop and framing fields never enter the neutral
/// request, and a filter's additions of them are skipped here): framing comes from the body.
fn write_request_head<B: Body>(out: &mut BytesMut, request: &request::Parts, body: &B) -> OutFraming {
    out.put_slice(request.method.as_str().as_bytes());
    out.put_u8(b' ');
    let parent = request.extensions.get::<super::ParentHop>();
    if let Some(scheme) = parent.and(request.uri.scheme()) {
        // A parent proxy gets the absolute-form target (RFC 9112 §3.2.2).
        out.put_slice(scheme.as_str().as_bytes());
        out.put_slice(b"://");
        if let Some(authority) = request.uri.authority() {
            out.put_slice(authority.as_str().as_bytes());
        }
    }
    match request.uri.path_and_query() {
        Some(target) if target.as_str().starts_with('/') => out.put_slice(target.as_str().as_bytes()),
        Some(target) => {
            // `GET http://host?x=1` has an empty path: origin-form needs the `/`.
            out.put_u8(b'/');
            out.put_slice(target.as_str().as_bytes());
        }
        None => out.put_u8(b'/'),
    }
    out.put_slice(b" HTTP/1.1\r\n");
    put_fields(out, &request.headers);
    if let Some(credentials) = parent.and_then(|p| p.authorization.as_ref()) {
        out.put_slice(b"proxy-authorization: ");
        out.put_slice(credentials.as_bytes());
        out.put_slice(b"\r\n");
    }
    if let Some(offer) = request.extensions.get::<strait_http::context::UpgradeRequest>() {
        out.put_slice(b"connection: upgrade\r\nupgrade: ");
        out.put_slice(offer.0.as_bytes());
        out.put_slice(b"\r\n");
    }
    let framing = if body.is_end_stream() {
        // A method that defines a body gets its (zero) length, as it was sent.
        match request.method {
            Method::POST | Method::PUT | Method::PATCH => OutFraming::Length(0),
            _ => OutFraming::None,
        }
    } else {
        match body.size_hint().exact() {
            Some(n) => OutFraming::Length(n),
            None => OutFraming::Chunked,
        }
    };
    write_framing(out, framing);
    out.put_slice(b"\r\n");
    match framing {
        OutFraming::Length(0) => OutFraming::None,
        other => other,
    }
}

/// Writes `name: value` lines, skipping the fields only a connection may write.
fn put_fields(out: &mut BytesMut, headers: &HeaderMap) {
    for (name, value) in headers {
        if crate::h1::is_framing(name) {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
}
