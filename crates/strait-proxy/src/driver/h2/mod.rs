//! The HTTP/2 connection driver (the `h2` crate): one task drives the connection and runs its
//! streams (see [`streams`]), each an exchange with [`RequestBody`] and [`H2Sink`] as its body
//! and sink.
//!
//! Limits come from `server.http2`: concurrent streams, windows, frame and header-list sizes,
//! and the reset budgets that end Rapid Reset and malformed-stream floods with GOAWAY. Requests
//! RFC 9113 §8.2.2 calls malformed never reach the exchange: `h2` refuses connection-specific
//! fields, `te` other than `trailers`, invalid names and values, misplaced pseudo-headers and
//! lengths that do not match the DATA, and this driver refuses requests without an authority.
//!
//! With `server.http2.websocket` the server advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL`, and
//! an extended CONNECT for `websocket` (RFC 8441) is served by [`websocket`], in a boxed future
//! of its own: other streams carry none of its state.

mod body;
mod sink;
mod streams;
mod websocket;

use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Version};
use strait_http::context::ConnInfo;
use strait_http::Reason;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::drain::DrainWatch;
use crate::deadline::LazyDeadline;
use crate::exchange::{self, Inbound};
use crate::shared::Shared;
use body::RequestBody;
use sink::H2Sink;
use streams::Streams;

/// How long a draining connection waits for its streams after GOAWAY.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long a connection without streams keeps its stream slots for the next ones.
const SPARES_LINGER: Duration = Duration::from_secs(1);

/// Serves one HTTP/2 connection until the client closes it, it idles out or the server drains.
pub(crate) async fn serve<T>(io: T, mut info: ConnInfo, shared: Arc<Shared>)
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (settings, handshake_timeout, idle) = {
        let snapshot = shared.snapshot.load();
        let server = &snapshot.server;
        (server.http2.clone(), server.client_header_timeout, server.idle_timeout)
    };
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(settings.max_concurrent_streams)
        .initial_window_size(settings.initial_stream_window.0 as u32)
        .initial_connection_window_size(settings.initial_connection_window.0 as u32)
        .max_frame_size(settings.max_frame_size.0 as u32)
        .max_header_list_size(settings.max_header_list_size.0 as u32)
        .max_pending_accept_reset_streams(settings.max_pending_reset_streams)
        .max_local_error_reset_streams(Some(settings.max_error_resets))
        .max_concurrent_reset_streams(settings.max_concurrent_streams as usize * 2);
    if settings.websocket {
        builder.enable_connect_protocol();
    }
    let mut conn = match tokio::time::timeout(handshake_timeout, builder.handshake::<_, Bytes>(io)).await {
        Ok(Ok(conn)) => conn,
        _ => return,
    };
    info.version = Version::HTTP_2;
    let info = Rc::new(info);
    let mut drain = DrainWatch::default();
    let mut streams = Streams::new();
    // Closes the connection after `idle` without a stream: armed (one clock read) when the
    // last stream ends, and kept across idle periods (see `LazyDeadline`). It first fires after
    // `SPARES_LINGER`, to free the stream slots: a client that pauses between bursts of
    // streams finds them still there, an idle connection does not keep them.
    let mut idle_timer: Option<LazyDeadline> = None;
    let mut idle_deadline = Instant::now();
    let mut idle_armed = false;
    // After GOAWAY: how long the streams left get.
    let mut shutdown: Option<LazyDeadline> = None;
    loop {
        let event = poll_fn(|cx| {
            // New streams start here and are polled at once, in the same turn of the task.
            loop {
                streams.poll(cx);
                match conn.poll_accept(cx) {
                    Poll::Ready(Some(Ok((request, respond)))) => {
                        idle_armed = false;
                        streams.start(|| serve_stream(request, respond, info.clone(), shared.clone()));
                    }
                    Poll::Ready(Some(Err(error))) => return Poll::Ready(Event::Failed(error)),
                    Poll::Ready(None) => return Poll::Ready(Event::Closed),
                    Poll::Pending => break,
                }
            }
            if let Some(grace) = &mut shutdown {
                return grace.poll_expired(cx).map(|()| Event::GraceOver);
            }
            if drain.poll_wait(cx).is_ready() {
                return Poll::Ready(Event::Drain);
            }
            if conn.has_streams() {
                idle_armed = false;
                return Poll::Pending;
            }
            if !idle_armed {
                let now = Instant::now();
                idle_deadline = now + idle;
                let first = if streams.has_spares() { idle_deadline.min(now + SPARES_LINGER) } else { idle_deadline };
                match &mut idle_timer {
                    Some(timer) => timer.set(first),
                    None => idle_timer = Some(LazyDeadline::new(first)),
                }
                idle_armed = true;
            }
            let timer = idle_timer.as_mut().expect("armed above");
            loop {
                if timer.poll_expired(cx).is_pending() {
                    return Poll::Pending;
                }
                if timer.deadline() >= idle_deadline {
                    return Poll::Ready(Event::Idle);
                }
                streams.release_spares();
                timer.set(idle_deadline);
            }
        })
        .await;
        match event {
            Event::Failed(error) => {
                tracing::debug!(peer = %info.peer, %error, "HTTP/2 connection error");
                break;
            }
            Event::Closed | Event::GraceOver => break,
            Event::Idle | Event::Drain => {
                conn.graceful_shutdown();
                shutdown = Some(LazyDeadline::new(Instant::now() + SHUTDOWN_GRACE));
            }
        }
    }
    drop(conn);
    // Streams still running end on their own: their client is gone.
    poll_fn(|cx| {
        streams.poll(cx);
        if streams.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// What the connection's task woke for.
enum Event {
    /// A connection error.
    Failed(h2::Error),
    /// Closed by the client, or every stream done after GOAWAY.
    Closed,
    /// The connection has been without streams for the idle timeout.
    Idle,
    /// The worker drains.
    Drain,
    /// The streams left after GOAWAY had their time.
    GraceOver,
}

/// Serves one stream: checks what `h2` leaves to the application, then runs the exchange.
async fn serve_stream(
    request: Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    info: Rc<ConnInfo>,
    shared: Arc<Shared>,
) {
    let snapshot = shared.snapshot.load_full();
    let Some(listener) = snapshot.listener(&info.listener) else {
        respond.send_reset(h2::Reason::REFUSED_STREAM);
        return;
    };
    let inbound = Inbound { snapshot: &snapshot, listener, conn: &info };
    let (mut parts, recv) = request.into_parts();
    if parts.method == http::Method::CONNECT && parts.extensions.get::<h2::ext::Protocol>().is_some() {
        let boxed = Box::pin(websocket::serve(&inbound, parts, recv, respond));
        boxed.await;
        return;
    }
    let head_request = parts.method == http::Method::HEAD;
    let mut sink = H2Sink::new(respond, head_request, &snapshot.server)
        .keeping_content_type(snapshot.access_log.records_content_type());
    if let Err(reason) = normalize(&mut parts) {
        let boxed = Box::pin(exchange::refuse(&inbound, reason, &mut sink));
        boxed.await;
        return;
    }
    let length = parts.headers.remove(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let body = RequestBody::new(recv, length, &snapshot.server);
    exchange::handle(&inbound, parts, body, &mut sink).await;
}

/// Makes an HTTP/2 request look like any other to the exchange: `:authority` becomes `Host`
/// (RFC 9113 §8.3.1), and a request with neither is refused.
fn normalize(parts: &mut http::request::Parts) -> Result<(), Reason> {
    if parts.method == http::Method::CONNECT {
        // Plain CONNECT (a tunnel to `:authority`) is not served on HTTP/2 listeners; extended
        // CONNECT went to `websocket::serve`.
        return Err(Reason::MethodNotAllowed);
    }
    authority_to_host(parts)
}

/// Replaces `Host` with `:authority` (normalized), or keeps a valid `Host`; neither is 400.
fn authority_to_host(parts: &mut http::request::Parts) -> Result<(), Reason> {
    match parts.uri.authority() {
        Some(authority) => {
            let value = HeaderValue::from_str(authority.as_str()).map_err(|_| Reason::BadRequest)?;
            let value = crate::h1::request::normalize_host(&value)?.unwrap_or(value);
            // Replaces every `Host` the client sent: one is left.
            parts.headers.insert(header::HOST, value);
            return Ok(());
        }
        None if parts.headers.contains_key(header::HOST) => {
            let host = parts.headers.get(header::HOST).cloned().expect("checked");
            if let Some(normalized) = crate::h1::request::normalize_host(&host)? {
                parts.headers.insert(header::HOST, normalized);
            }
        }
        None => return Err(Reason::BadRequest),
    }
    if parts.headers.get_all(header::HOST).iter().count() > 1 {
        return Err(Reason::BadRequest);
    }
    Ok(())
}
