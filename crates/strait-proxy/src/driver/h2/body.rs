//! The request body of an HTTP/2 stream: DATA frames with flow control released as they are
//! taken, then trailers.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderName;
use http_body::{Body, Frame, SizeHint};
use strait_http::Reason;

use crate::body::{BodyError, Expired, RateMeter, ReadTimer};
use crate::snapshot::ServerPlan;

/// The body of one HTTP/2 request.
pub(super) struct RequestBody<'s> {
    /// The stream's receiving half; none for a request whose DATA is not a body (a WebSocket).
    recv: Option<h2::RecvStream>,
    /// The `content-length` the client announced (`h2` checks the DATA against it).
    length: Option<u64>,
    received: u64,
    data_done: bool,
    done: bool,
    read_timeout: Duration,
    max_bytes: u64,
    allowed_trailers: &'s [HeaderName],
    /// Times the waits for more bytes.
    timer: ReadTimer,
    /// Measures the body's rate, when it has a minimum.
    meter: Option<Box<RateMeter>>,
}

impl<'s> RequestBody<'s> {
    /// The body arriving on `recv`.
    pub(super) fn new(recv: h2::RecvStream, length: Option<u64>, server: &'s ServerPlan) -> RequestBody<'s> {
        let done = recv.is_end_stream();
        RequestBody {
            recv: Some(recv),
            length,
            received: 0,
            data_done: done,
            done,
            read_timeout: server.client_body_timeout,
            max_bytes: server.max_body_bytes,
            allowed_trailers: &server.request_trailers,
            timer: ReadTimer::default(),
            meter: if done { None } else { RateMeter::for_rate(server.min_request_body_rate.as_ref()) },
        }
    }

    /// No body: the stream's DATA frames are relayed as they are after a protocol switch.
    pub(super) fn empty(server: &'s ServerPlan) -> RequestBody<'s> {
        RequestBody {
            recv: None,
            length: Some(0),
            received: 0,
            data_done: true,
            done: true,
            read_timeout: server.client_body_timeout,
            max_bytes: server.max_body_bytes,
            allowed_trailers: &server.request_trailers,
            timer: ReadTimer::default(),
            meter: None,
        }
    }
}

/// What a stream error from the client means for the exchange.
fn reason_of(error: &h2::Error) -> Reason {
    match error.reason() {
        Some(h2::Reason::PROTOCOL_ERROR) => Reason::BadRequest,
        _ => Reason::ClientAborted,
    }
}

impl Body for RequestBody<'_> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let Some(recv) = this.recv.as_mut() else { return Poll::Ready(None) };
        if !this.data_done {
            match recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    this.timer.disarm_metered(this.meter.as_deref_mut());
                    if let Some(meter) = this.meter.as_deref_mut() {
                        meter.count(data.len());
                    }
                    let _ = recv.flow_control().release_capacity(data.len());
                    this.received += data.len() as u64;
                    if this.max_bytes != 0 && this.received > this.max_bytes {
                        this.done = true;
                        return Poll::Ready(Some(Err(BodyError(Reason::BodyTooLarge))));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(error))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(BodyError(reason_of(&error)))));
                }
                Poll::Ready(None) => this.data_done = true,
                Poll::Pending => {
                    let reason = match this.timer.poll_wait(cx, this.read_timeout, this.meter.as_deref_mut()) {
                        Some(Expired::Silent) => Reason::ClientBodyTimeout,
                        Some(Expired::TooSlow) => Reason::ClientBodyTooSlow,
                        None => return Poll::Pending,
                    };
                    this.done = true;
                    return Poll::Ready(Some(Err(BodyError(reason))));
                }
            }
        }
        match recv.poll_trailers(cx) {
            Poll::Ready(Ok(trailers)) => {
                this.done = true;
                match trailers.and_then(|t| crate::body::allowed_trailers(t, this.allowed_trailers)) {
                    Some(kept) => Poll::Ready(Some(Ok(Frame::trailers(kept)))),
                    None => Poll::Ready(None),
                }
            }
            Poll::Ready(Err(error)) => {
                this.done = true;
                Poll::Ready(Some(Err(BodyError(reason_of(&error)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.data_done && self.recv.as_ref().is_none_or(h2::RecvStream::is_end_stream))
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) => SizeHint::with_exact(n.saturating_sub(self.received)),
            None if self.is_end_stream() => SizeHint::with_exact(0),
            None => SizeHint::default(),
        }
    }
}
