//! The upstream client: `send(request) -> response` over the worker's connection pool, used by
//! forwarding and by filters' sub-requests alike.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{request, Method, Response};
use http_body::Body;
use strait_http::Reason;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::h1::{self, Failure, Limits, UpstreamBody};
use super::pool::{self, PoolKey};
use super::stream::UpstreamStream;
use crate::body::BodyError;

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

/// Sends `request` and `body` to the endpoint `key` names; returns the response as soon as its
/// head arrived, its body streaming. A stale pooled connection is replaced by a fresh one when
/// the request can go again (no body and an idempotent method).
pub(crate) async fn send<B>(
    key: PoolKey,
    request: &request::Parts,
    mut body: B,
    options: &SendOptions,
) -> Result<Response<UpstreamBody<B>>, Failure<B>>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let resendable = body.is_end_stream() && is_idempotent(&request.method);
    let mut pooled = pool::take(&key).filter(UpstreamStream::is_reusable);
    loop {
        let reused = pooled.is_some();
        let stream = match pooled.take() {
            Some(stream) => stream,
            // Boxed: a pooled connection is the usual case, and the connect future is large.
            None => match Box::pin(connect(key.addr, options)).await {
                Ok(stream) => stream,
                Err(reason) => {
                    return Err(Failure { reason, stale: false, endpoint_fault: true, sent: false, body: Some(body) })
                }
            },
        };
        let sent_at = Instant::now();
        let limit = sent_at + options.response_header_timeout;
        let limits = Limits {
            head_deadline: options.deadline.map_or(limit, |d| d.min(limit)),
            body_timeout: options.body_timeout,
            keepalive: options.keepalive,
            idle: options.idle,
        };
        match h1::exchange(stream, key, request, body, limits).await {
            Ok(response) => return Ok(response),
            Err(failure) if reused && failure.stale && (resendable || !failure.sent) => match failure.body {
                Some(again) => body = again,
                None => return Err(failure),
            },
            Err(failure) => return Err(failure),
        }
    }
}

/// Connects to `addr` within the connect timeout (and the deadline).
async fn connect(addr: SocketAddr, options: &SendOptions) -> Result<UpstreamStream, Reason> {
    let limit = match options.deadline {
        Some(d) => options.connect_timeout.min(d.saturating_duration_since(Instant::now())),
        None => options.connect_timeout,
    };
    match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(UpstreamStream::Tcp(stream))
        }
        Ok(Err(_)) => Err(Reason::UpstreamConnectFailed),
        Err(_) if limit < options.connect_timeout => Err(Reason::UpstreamTimeout),
        Err(_) => Err(Reason::UpstreamConnectTimeout),
    }
}

/// Methods whose requests may be sent twice.
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
}
