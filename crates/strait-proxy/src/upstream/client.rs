//! The upstream client: `send(request) -> response` over the worker's connection pool, used by
//! forwarding and by filters' sub-requests alike.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{request, Method, Response};
use http_body::Body;
use tokio::time::Instant;

use super::connector::Connector;
use super::h1::{self, Failure, Limits};
use super::h2;
use super::pool::{self, PoolKey};
use super::response::UpstreamBody;
use super::stream::UpstreamStream;
use crate::body::BodyError;
use strait_http::Reason;

/// How one request is sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendOptions {
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// The exchange's overall deadline (the route's `timeout`), if any.
    pub deadline: Option<Instant>,
    /// Time from sending the request to the response head.
    pub response_header_timeout: Duration,
    /// Longest pause on either body.
    pub body_timeout: Duration,
    /// Idle connections kept per endpoint and worker.
    pub keepalive: usize,
    /// How long an idle connection stays reusable.
    pub idle: Duration,
}

/// Sends `request` and `body` to the endpoint at `addr` over a connection `connector` makes
/// (or a pooled one); returns the response as soon as its head arrived, its body streaming. A
/// stale pooled connection is replaced by a fresh one when the request can go again (no body
/// and an idempotent method, or nothing of it sent). `sent_at` is now (the caller read the
/// clock already); the response-head timeout counts from it.
pub(crate) async fn send<B>(
    connector: &Connector,
    addr: SocketAddr,
    request: &request::Parts,
    body: B,
    options: &SendOptions,
    sent_at: Instant,
) -> Result<Response<UpstreamBody<B>>, Failure<B>>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let key = connector.key(addr);
    let limit = sent_at + options.response_header_timeout;
    let head_deadline = options.deadline.map_or(limit, |d| d.min(limit));
    if connector.is_http2() {
        let boxed = Box::pin(send_http2(connector, key, request, body, options, head_deadline));
        return boxed.await;
    }
    let resendable = body.is_end_stream() && is_idempotent(&request.method);
    let mut body = body;
    let mut pooled = pool::take(&key, sent_at).filter(|(stream, _)| stream.is_reusable());
    loop {
        let reused = pooled.is_some();
        let (stream, kept) = match pooled.take() {
            Some(pooled) => pooled,
            // Boxed: a pooled connection is the usual case, and the connect future is large.
            None => match connect_boxed(connector, addr, options).await {
                Ok(stream) => (stream, pool::Kept::default()),
                Err(reason) => {
                    return Err(Failure { reason, stale: false, endpoint_fault: true, sent: false, body: Some(body) })
                }
            },
        };
        let limits = Limits {
            head_deadline,
            body_timeout: options.body_timeout,
            keepalive: options.keepalive,
            idle: options.idle,
        };
        match h1::exchange(stream, kept, key, request, body, limits).await {
            Ok(response) => return Ok(response.map(UpstreamBody::Http1)),
            Err(failure) if reused && failure.stale && (resendable || !failure.sent) => match failure.body {
                Some(again) => body = again,
                None => return Err(failure),
            },
            Err(failure) => return Err(failure),
        }
    }
}

/// Connects in a future of its own: a pooled connection is the usual case, and the connect
/// future (TCP, then maybe TLS) is large.
async fn connect_boxed(
    connector: &Connector,
    addr: SocketAddr,
    options: &SendOptions,
) -> Result<UpstreamStream, Reason> {
    let boxed = Box::pin(connector.connect(addr, options));
    boxed.await
}

/// [`send`] over the endpoint's shared HTTP/2 connection (opened on first use).
async fn send_http2<B>(
    connector: &Connector,
    key: PoolKey,
    request: &request::Parts,
    body: B,
    options: &SendOptions,
    head_deadline: Instant,
) -> Result<Response<UpstreamBody<B>>, Failure<B>>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let scheme = if key.tls == 0 { "http" } else { "https" };
    let mut body = body;
    let mut fresh = false;
    loop {
        let (sender, id) = match h2::lookup(&key) {
            h2::Lookup::Open(sender, id) => (sender, id),
            h2::Lookup::Wait(opened) => {
                // Another request is opening the connection; share it rather than open another.
                let waited = tokio::time::timeout_at(head_deadline, opened.notified()).await;
                if waited.is_err() {
                    return Err(Failure {
                        reason: Reason::UpstreamTimeout,
                        stale: false,
                        endpoint_fault: true,
                        sent: false,
                        body: Some(body),
                    });
                }
                continue;
            }
            h2::Lookup::Connect => {
                fresh = true;
                let mut opening = h2::OpeningGuard::new(key);
                let opened = match connector.connect(key.addr, options).await {
                    Ok(stream) => h2::open(key, stream).await,
                    Err(reason) => Err(reason),
                };
                opening.disarm();
                match opened {
                    Ok(opened) => opened,
                    Err(reason) => {
                        h2::failed(&key);
                        return Err(Failure {
                            reason,
                            stale: false,
                            endpoint_fault: true,
                            sent: false,
                            body: Some(body),
                        });
                    }
                }
            }
        };
        match h2::exchange(sender, scheme, request, body, head_deadline, options.body_timeout).await {
            Ok(response) => return Ok(response.map(UpstreamBody::Http2)),
            // A pooled connection that went away before taking the stream: once more on a new one.
            Err(failure) if failure.stale && !fresh && failure.body.is_some() => {
                h2::forget(&key, Some(id));
                fresh = true;
                body = failure.body.expect("checked above");
            }
            Err(failure) => return Err(failure),
        }
    }
}

/// Methods whose requests may be sent twice.
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
}
