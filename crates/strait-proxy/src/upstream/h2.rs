//! Requests over a shared HTTP/2 connection to an endpoint (h2c, or h2 over TLS): one
//! connection per endpoint and worker carries every request, each on a stream of its own. The
//! request body streams within the endpoint's flow-control windows while the response comes
//! back, as over HTTP/1.1.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{request, Response};
use http_body::{Body, Frame, SizeHint};
use strait_http::Reason;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::h1::Failure;
use super::pool::PoolKey;
use super::stream::UpstreamStream;
use crate::body::{BodyError, ReadTimer};

/// An endpoint's HTTP/2 connection: being opened (requests wait for it), or open.
enum Slot {
    /// A handshake is under way; these wait for it.
    Opening(Rc<Notify>),
    /// Open: its request handle, a number telling it from later ones, and its last use.
    Open { sender: h2::client::SendRequest<Bytes>, id: u64, last_used: Instant },
}

thread_local! {
    static CONNECTIONS: RefCell<HashMap<PoolKey, Slot>> = RefCell::new(HashMap::new());
    static NEXT_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

/// What to do for a request to `key`.
pub(crate) enum Lookup {
    /// Use this connection (its id, to forget exactly this one if it fails).
    Open(h2::client::SendRequest<Bytes>, u64),
    /// Another request is opening it: wait, then look again.
    Wait(Rc<Notify>),
    /// Open it (this request now owns the opening).
    Connect,
}

/// The open HTTP/2 connection for `key`, a handshake to wait for, or the turn to open one.
pub(crate) fn lookup(key: &PoolKey) -> Lookup {
    CONNECTIONS.with(|connections| {
        let mut connections = connections.borrow_mut();
        match connections.get_mut(key) {
            Some(Slot::Open { sender, last_used, id }) => {
                *last_used = Instant::now();
                Lookup::Open(sender.clone(), *id)
            }
            Some(Slot::Opening(notify)) => Lookup::Wait(notify.clone()),
            None => {
                connections.insert(*key, Slot::Opening(Rc::new(Notify::new())));
                Lookup::Connect
            }
        }
    })
}

/// Ends the opening of `key`'s connection if it is dropped before it opened (the request
/// that was opening it timed out or went away), so later requests do not wait for it.
pub(crate) struct OpeningGuard {
    key: PoolKey,
    armed: bool,
}

impl OpeningGuard {
    /// A guard for the opening this request owns.
    pub(crate) fn new(key: PoolKey) -> OpeningGuard {
        OpeningGuard { key, armed: true }
    }

    /// The connection opened (or its failure was recorded): nothing to undo.
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for OpeningGuard {
    fn drop(&mut self) {
        if self.armed {
            failed(&self.key);
        }
    }
}

/// Ends an opening that failed: the next request tries again.
pub(crate) fn failed(key: &PoolKey) {
    let slot = CONNECTIONS.with(|connections| {
        let mut connections = connections.borrow_mut();
        match connections.get(key) {
            Some(Slot::Opening(_)) => connections.remove(key),
            _ => None,
        }
    });
    if let Some(Slot::Opening(notify)) = slot {
        notify.notify_waiters();
    }
}

/// Forgets the connection for `key` (it failed, or went away), unless a newer one replaced it.
pub(crate) fn forget(key: &PoolKey, id: Option<u64>) {
    CONNECTIONS.with(|connections| {
        let mut connections = connections.borrow_mut();
        let matches =
            matches!(connections.get(key), Some(Slot::Open { id: open, .. }) if id.is_none_or(|id| id == *open));
        if matches {
            connections.remove(key);
        }
    });
}

/// Drops connections unused for longer than `idle`; their tasks then end.
pub(crate) fn sweep(idle: Duration) {
    CONNECTIONS.with(|connections| {
        let now = Instant::now();
        connections.borrow_mut().retain(|_, slot| match slot {
            Slot::Open { last_used, .. } => now < *last_used + idle,
            Slot::Opening(_) => true,
        });
    });
}

/// Completes the HTTP/2 handshake on `stream` and keeps the connection for `key` (waking the
/// requests that waited for it); its I/O runs on a task of this worker.
pub(crate) async fn open(
    key: PoolKey,
    stream: UpstreamStream,
) -> Result<(h2::client::SendRequest<Bytes>, u64), Reason> {
    let handshake = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(2 << 20)
        .handshake::<_, Bytes>(stream)
        .await;
    let (sender, connection) = match handshake {
        Ok(opened) => opened,
        Err(_) => {
            failed(&key);
            return Err(Reason::UpstreamReset);
        }
    };
    let id = NEXT_ID.with(|next| {
        let id = next.get();
        next.set(id + 1);
        id
    });
    tokio::task::spawn_local(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "upstream HTTP/2 connection ended");
        }
        forget(&key, Some(id));
    });
    let previous = CONNECTIONS.with(|connections| {
        connections.borrow_mut().insert(key, Slot::Open { sender: sender.clone(), id, last_used: Instant::now() })
    });
    if let Some(Slot::Opening(notify)) = previous {
        notify.notify_waiters();
    }
    Ok((sender, id))
}

/// Sends `request` on a stream of `sender`'s connection and waits for the response head.
pub(crate) async fn exchange<B>(
    sender: h2::client::SendRequest<Bytes>,
    scheme: &'static str,
    request: &request::Parts,
    body: B,
    head_deadline: Instant,
    body_timeout: Duration,
) -> Result<Response<UpstreamBody<B>>, Failure<B>>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let fail = |reason, stale, body| Failure { reason, stale, endpoint_fault: true, sent: false, body };
    let mut sender = match tokio::time::timeout_at(head_deadline, sender.ready()).await {
        Ok(Ok(sender)) => sender,
        Ok(Err(_)) => return Err(fail(Reason::UpstreamReset, true, Some(body))),
        Err(_) => return Err(fail(Reason::UpstreamTimeout, false, Some(body))),
    };
    let outgoing = match outgoing_request(scheme, request) {
        Some(outgoing) => outgoing,
        None => {
            return Err(Failure {
                reason: Reason::BadRequest,
                stale: false,
                endpoint_fault: false,
                sent: false,
                body: None,
            })
        }
    };
    let end = body.is_end_stream();
    let (response, stream) = match sender.send_request(outgoing, end) {
        Ok(sent) => sent,
        Err(_) => return Err(fail(Reason::UpstreamReset, true, Some(body))),
    };
    let mut pump = Pump { body: Some(body), stream, pending: None, done: end, touched: false, failed: false };
    let mut response = std::pin::pin!(response);
    let deadline = tokio::time::sleep_until(head_deadline);
    let mut deadline = std::pin::pin!(deadline);
    let head = poll_fn(|cx| {
        if !pump.done && !pump.failed {
            match pump.poll(cx) {
                Poll::Ready(Err(PumpError::Body(reason))) => return Poll::Ready(Err(reason)),
                Poll::Ready(Err(PumpError::Stream)) => pump.failed = true,
                Poll::Ready(Ok(())) | Poll::Pending => {}
            }
        }
        match response.as_mut().poll(cx) {
            Poll::Ready(Ok(head)) => return Poll::Ready(Ok(head)),
            Poll::Ready(Err(error)) => {
                // REFUSED_STREAM, or GOAWAY before the stream: not processed (RFC 9113 §8.7).
                let refused = error.reason() == Some(h2::Reason::REFUSED_STREAM) || error.is_go_away();
                return Poll::Ready(Err(if refused { Reason::UpstreamReset } else { Reason::UpstreamBadResponse }));
            }
            Poll::Pending => {}
        }
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Reason::UpstreamTimeout)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    match head {
        Ok(head) => {
            let (mut parts, recv) = head.into_parts();
            // The length of the response is the stream's business on this side too.
            // (A HEAD answer keeps it: it is the length of the resource, not of this body.)
            let length = if request.method == http::Method::HEAD {
                Some(0)
            } else {
                parts.headers.remove(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok())
            };
            let body = UpstreamBody {
                recv,
                pump,
                length,
                received: 0,
                timer: ReadTimer::default(),
                body_timeout,
                data_done: false,
            };
            Ok(Response::from_parts(parts, body))
        }
        Err(reason) => {
            let client_side = super::h1::is_client_fault(reason);
            let untouched = !pump.touched;
            let body = if untouched { pump.body.take() } else { None };
            Err(Failure { reason, stale: false, endpoint_fault: !client_side, sent: true, body })
        }
    }
}

/// The request as HTTP/2 sends it: an absolute URI (for `:scheme` and `:authority`) and no
/// `Host` or connection-specific fields.
fn outgoing_request(scheme: &'static str, request: &request::Parts) -> Option<http::Request<()>> {
    let authority = request.headers.get(header::HOST)?.to_str().ok()?;
    let path = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = http::Uri::builder().scheme(scheme).authority(authority).path_and_query(path).build().ok()?;
    let mut outgoing = http::Request::new(());
    *outgoing.method_mut() = request.method.clone();
    *outgoing.uri_mut() = uri;
    *outgoing.version_mut() = http::Version::HTTP_2;
    let headers = outgoing.headers_mut();
    headers.reserve(request.headers.len());
    for (name, value) in &request.headers {
        if name != header::HOST && !crate::h1::is_framing(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if request.headers.contains_key(header::TE) {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    Some(outgoing)
}

/// The request body on its way up one stream.
struct Pump<B> {
    body: Option<B>,
    stream: h2::SendStream<Bytes>,
    /// Data taken from the body and not yet within the window.
    pending: Option<Bytes>,
    done: bool,
    touched: bool,
    failed: bool,
}

enum PumpError {
    /// The stream was reset or the connection went away.
    Stream,
    /// The client's body failed.
    Body(Reason),
}

impl<B> Pump<B>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), PumpError>> {
        loop {
            if let Some(data) = self.pending.as_mut() {
                self.stream.reserve_capacity(data.len());
                match self.stream.poll_capacity(cx) {
                    Poll::Ready(Some(Ok(0))) => continue,
                    Poll::Ready(Some(Ok(granted))) => {
                        let chunk = data.split_to(granted.min(data.len()));
                        if data.is_empty() {
                            self.pending = None;
                        }
                        self.stream.send_data(chunk, false).map_err(|_| PumpError::Stream)?;
                        continue;
                    }
                    Poll::Ready(_) => return Poll::Ready(Err(PumpError::Stream)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            let Some(body) = self.body.as_mut() else { return Poll::Ready(Ok(())) };
            match Pin::new(body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.stream.send_data(Bytes::new(), true).map_err(|_| PumpError::Stream)?;
                    self.done = true;
                }
                Poll::Ready(Some(Err(BodyError(reason)))) => {
                    self.touched = true;
                    self.stream.send_reset(h2::Reason::CANCEL);
                    return Poll::Ready(Err(PumpError::Body(reason)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    self.touched = true;
                    match frame.into_data() {
                        Ok(data) if data.is_empty() => {}
                        Ok(data) => self.pending = Some(data),
                        Err(frame) => {
                            if let Ok(trailers) = frame.into_trailers() {
                                self.stream.send_trailers(trailers).map_err(|_| PumpError::Stream)?;
                                self.done = true;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A response body streaming from an HTTP/2 stream.
pub(crate) struct UpstreamBody<B> {
    recv: h2::RecvStream,
    pump: Pump<B>,
    length: Option<u64>,
    received: u64,
    data_done: bool,
    /// Times the waits for more bytes.
    timer: ReadTimer,
    body_timeout: Duration,
}

impl<B> UpstreamBody<B>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    /// The request body back, if it was never touched (a retry on another endpoint).
    pub(crate) fn into_request_body(mut self) -> Option<B> {
        if self.pump.touched {
            return None;
        }
        self.pump.body.take()
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
        if !this.pump.done && !this.pump.failed {
            match this.pump.poll(cx) {
                // A client below its minimum rate loses the answer too (the stream is reset).
                Poll::Ready(Err(PumpError::Body(reason @ Reason::ClientBodyTooSlow))) => {
                    this.pump.failed = true;
                    return Poll::Ready(Some(Err(BodyError(reason))));
                }
                Poll::Ready(Err(_)) => this.pump.failed = true,
                Poll::Ready(Ok(())) | Poll::Pending => {}
            }
        }
        if !this.data_done {
            match this.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    this.timer.disarm();
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    this.received += data.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Some(Err(BodyError(Reason::UpstreamReset)))),
                Poll::Ready(None) => this.data_done = true,
                Poll::Pending => {
                    if this.timer.expired(cx, this.body_timeout) {
                        return Poll::Ready(Some(Err(BodyError(Reason::UpstreamTimeout))));
                    }
                    return Poll::Pending;
                }
            }
        }
        match this.recv.poll_trailers(cx) {
            Poll::Ready(Ok(Some(trailers))) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(_)) => Poll::Ready(Some(Err(BodyError(Reason::UpstreamReset)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data_done && self.recv.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) => SizeHint::with_exact(n.saturating_sub(self.received)),
            None => SizeHint::default(),
        }
    }
}
