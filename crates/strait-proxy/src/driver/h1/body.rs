//! The request body of an HTTP/1 exchange, decoded from the client connection as it is read.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use strait_http::Reason;

use super::{poll_read_into, Conn, CONTINUE};
use crate::body::{BodyError, Expired, RateMeter, ReadTimer};
use crate::h1::decode::{DecodeError, Decoded};
use crate::snapshot::ServerPlan;
use crate::transport::Transport;

/// The body of the request being served on a connection.
///
/// Sends `100 Continue` before its first read when the client asked for it, enforces
/// `limits.max_body_bytes`, `timeouts.client_body` and `limits.min_request_body_rate`, and keeps
/// request trailers only when `server.request_trailers` allows them.
pub(super) struct RequestBody<'c, T> {
    conn: &'c RefCell<Conn<T>>,
    read_timeout: Duration,
    max_bytes: u64,
    allowed_trailers: &'c [http::HeaderName],
    /// Bytes of `100 Continue` still to write.
    continue_left: usize,
    /// Times the waits for more bytes.
    timer: ReadTimer,
    /// Measures the body's rate, when it has a minimum.
    meter: Option<Box<RateMeter>>,
}

impl<'c, T: Transport> RequestBody<'c, T> {
    /// The body of the request the connection is serving now.
    pub(super) fn new(conn: &'c RefCell<Conn<T>>, server: &'c ServerPlan) -> RequestBody<'c, T> {
        RequestBody {
            conn,
            read_timeout: server.client_body_timeout,
            max_bytes: server.max_body_bytes,
            allowed_trailers: &server.request_trailers,
            continue_left: CONTINUE.len(),
            timer: ReadTimer::default(),
            meter: RateMeter::for_rate(server.min_request_body_rate.as_ref()),
        }
    }
}

impl<T: Transport> Body for RequestBody<'_, T> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let cell = this.conn;
        loop {
            let decoded = {
                let mut conn = cell.borrow_mut();
                let Conn { decoder, buf, .. } = &mut *conn;
                decoder.decode(buf).map(|d| (d, decoder.total()))
            };
            match decoded {
                Ok((Decoded::Data(data), total)) => {
                    this.timer.disarm_metered(this.meter.as_deref_mut());
                    if let Some(meter) = this.meter.as_deref_mut() {
                        meter.count(data.len());
                    }
                    if this.max_bytes != 0 && total > this.max_bytes {
                        return Poll::Ready(Some(Err(BodyError(Reason::BodyTooLarge))));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok((Decoded::Trailers(trailers), _)) => {
                    match crate::body::allowed_trailers(trailers, this.allowed_trailers) {
                        Some(kept) => return Poll::Ready(Some(Ok(Frame::trailers(kept)))),
                        None => return Poll::Ready(None),
                    }
                }
                Ok((Decoded::End, _)) => return Poll::Ready(None),
                Err(DecodeError::Malformed) => return Poll::Ready(Some(Err(BodyError(Reason::BadRequest)))),
                Err(DecodeError::Truncated) => return Poll::Ready(Some(Err(BodyError(Reason::ClientAborted)))),
                Ok((Decoded::NeedMore, _)) => {}
            }
            let mut guard = cell.borrow_mut();
            let conn = &mut *guard;
            if conn.expect_continue {
                if !conn.buf.is_empty() {
                    // The client did not wait for the interim answer.
                    conn.expect_continue = false;
                } else {
                    let sent = CONTINUE.len() - this.continue_left;
                    match Pin::new(&mut conn.io).poll_write(cx, &CONTINUE[sent..]) {
                        Poll::Ready(Ok(n)) if n > 0 => {
                            this.continue_left -= n;
                            if this.continue_left == 0 {
                                conn.expect_continue = false;
                            }
                            this.timer.disarm();
                            continue;
                        }
                        Poll::Ready(_) => return Poll::Ready(Some(Err(BodyError(Reason::ClientAborted)))),
                        Poll::Pending => {
                            drop(guard);
                            if this.timer.expired(cx, this.read_timeout) {
                                return Poll::Ready(Some(Err(BodyError(Reason::ClientAborted))));
                            }
                            return Poll::Pending;
                        }
                    }
                }
            }
            match poll_read_into(&mut conn.io, &mut conn.buf, cx) {
                Poll::Ready(Ok(0)) => {
                    let end = conn.decoder.eof();
                    return match end {
                        Ok(_) => Poll::Ready(None),
                        Err(_) => Poll::Ready(Some(Err(BodyError(Reason::ClientAborted)))),
                    };
                }
                Poll::Ready(Ok(_)) => this.timer.disarm_metered(this.meter.as_deref_mut()),
                Poll::Ready(Err(_)) => return Poll::Ready(Some(Err(BodyError(Reason::ClientAborted)))),
                Poll::Pending => {
                    let reason = match this.timer.poll_wait(cx, this.read_timeout, this.meter.as_deref_mut()) {
                        Some(Expired::Silent) => Reason::ClientBodyTimeout,
                        Some(Expired::TooSlow) => Reason::ClientBodyTooSlow,
                        None => return Poll::Pending,
                    };
                    // A client this slow is not waited for again to drain the rest: the
                    // answer says `connection: close`.
                    conn.drain_limit = 0;
                    return Poll::Ready(Some(Err(BodyError(reason))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.borrow().decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.conn.borrow().decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
