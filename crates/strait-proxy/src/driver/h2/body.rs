//! The request body of an HTTP/2 stream: DATA frames with flow control released as they are
//! taken, then trailers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use http_body::{Body, Frame, SizeHint};
use strait_http::Reason;
use tokio::time::{Instant, Sleep};

use crate::body::BodyError;
use crate::snapshot::ServerPlan;

/// The body of one HTTP/2 request.
pub(super) struct RequestBody<'s> {
    recv: h2::RecvStream,
    /// The `content-length` the client announced (`h2` checks the DATA against it).
    length: Option<u64>,
    received: u64,
    data_done: bool,
    done: bool,
    read_timeout: Duration,
    max_bytes: u64,
    allowed_trailers: &'s [HeaderName],
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

impl<'s> RequestBody<'s> {
    /// The body arriving on `recv`.
    pub(super) fn new(recv: h2::RecvStream, length: Option<u64>, server: &'s ServerPlan) -> RequestBody<'s> {
        let done = recv.is_end_stream();
        RequestBody {
            recv,
            length,
            received: 0,
            data_done: done,
            done,
            read_timeout: server.client_body_timeout,
            max_bytes: server.max_body_bytes,
            allowed_trailers: &server.request_trailers,
            timer: None,
            waiting: false,
        }
    }

    fn timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = Instant::now() + self.read_timeout;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.waiting {
            timer.as_mut().reset(deadline);
            self.waiting = true;
        }
        timer.as_mut().poll(cx).is_ready()
    }

    fn allowed(&self, trailers: HeaderMap) -> Option<HeaderMap> {
        let mut kept = HeaderMap::new();
        for (name, value) in &trailers {
            if self.allowed_trailers.contains(name) && !crate::h1::is_framing(name) {
                kept.append(name.clone(), value.clone());
            }
        }
        (!kept.is_empty()).then_some(kept)
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
        if !this.data_done {
            match this.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    this.waiting = false;
                    let _ = this.recv.flow_control().release_capacity(data.len());
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
                    if this.timed_out(cx) {
                        this.done = true;
                        return Poll::Ready(Some(Err(BodyError(Reason::ClientBodyTimeout))));
                    }
                    return Poll::Pending;
                }
            }
        }
        match this.recv.poll_trailers(cx) {
            Poll::Ready(Ok(trailers)) => {
                this.done = true;
                match trailers.and_then(|t| this.allowed(t)) {
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
        self.done || (self.data_done && self.recv.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) => SizeHint::with_exact(n.saturating_sub(self.received)),
            None if self.is_end_stream() => SizeHint::with_exact(0),
            None => SizeHint::default(),
        }
    }
}
