//! One request/response exchange: route, run filters, perform the action, log.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode, Version};
use strait_observe::LogRecord;
use strait_router::RequestView;
use tokio::io::AsyncWriteExt;

use super::conn::ClientConn;
use crate::actions;
use crate::filter::{HttpFilter, LocalResponse, RequestCtx, Verdict};
use crate::h1::encode::{write_response_head, OutFraming};
use crate::h1::{relay_body, BodyFraming, RelayLimits, RequestHead};
use crate::reason::Reason;
use crate::snapshot::{Action, ListenerPlan, RoutePlan, Snapshot};
use crate::upstream;

/// Longest unread request body drained (instead of closing) after a local answer.
const DRAIN_BODY_MAX: u64 = 64 * 1024;
/// Time allowed to write a local answer.
const LOCAL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handles one parsed request; returns whether the connection may serve another.
pub(crate) async fn handle(
    conn: &mut ClientConn,
    mut head: RequestHead,
    snapshot: &Snapshot,
    listener: &ListenerPlan,
    listener_name: &Arc<str>,
) -> bool {
    if super::drain::is_draining() {
        // The connection closes after this exchange: tell the client in the response.
        head.keep_alive = false;
    }
    let mut ctx = new_ctx(conn, &head, snapshot, listener_name);
    if snapshot.server.request_id {
        ctx.request_id = Some(ensure_request_id(&mut head.headers));
    }
    let view = RequestView {
        host: head.host_name(),
        path: head.path(),
        query: head.query(),
        method: &head.method,
        headers: &head.headers,
    };
    let Some(found) = listener.routes.find(&view) else {
        // The body must not be left in the buffer, where it would be read as the next request.
        close_if_body_stays_unread(&mut head);
        let keep = send_local(conn, &head, &mut ctx, snapshot, &[], LocalResponse::for_reason(Reason::NoRoute)).await;
        let keep = drain_unread_body(conn, &head, snapshot, keep).await;
        return finish(&head, &ctx, snapshot, &[], keep);
    };
    let route: &RoutePlan = found.route;
    ctx.route = Some(route.name.clone());
    let rewritten = route.rewrite.as_ref().map(|r| r.apply(head.path(), found.matched_prefix).into_owned());

    if let BodyFraming::Length(n) = head.body {
        if snapshot.server.max_body_bytes != 0 && n > snapshot.server.max_body_bytes {
            // The body stays unread, so the connection closes after the answer: say so.
            head.keep_alive = false;
            let response = LocalResponse::for_reason(Reason::BodyTooLarge);
            send_local(conn, &head, &mut ctx, snapshot, &route.filters, response).await;
            return finish(&head, &ctx, snapshot, &route.filters, false);
        }
    }

    let mut verdict = None;
    for filter in &route.filters {
        if let Verdict::Respond(response) = filter.on_request(&mut ctx, &mut head) {
            verdict = Some(response);
            break;
        }
    }
    let keep = match verdict {
        Some(response) => {
            close_if_body_stays_unread(&mut head);
            let keep = send_local(conn, &head, &mut ctx, snapshot, &route.filters, response).await;
            drain_unread_body(conn, &head, snapshot, keep).await
        }
        None => run_action(conn, &mut head, &mut ctx, snapshot, route, rewritten.as_deref()).await,
    };
    finish(&head, &ctx, snapshot, &route.filters, keep)
}

/// Performs the route's action; returns whether the connection may be kept.
async fn run_action(
    conn: &mut ClientConn,
    head: &mut RequestHead,
    ctx: &mut RequestCtx,
    snapshot: &Snapshot,
    route: &RoutePlan,
    rewritten: Option<&str>,
) -> bool {
    let local = match &route.action {
        Action::Forward(cluster) => {
            return upstream::forward(conn, head, ctx, snapshot, route, cluster, rewritten).await;
        }
        Action::Split(split) => {
            let cluster = split.pick();
            return upstream::forward(conn, head, ctx, snapshot, route, cluster, rewritten).await;
        }
        Action::Direct(response) => response.clone(),
        Action::Redirect(plan) => actions::redirect::answer(plan, head),
        Action::Echo(plan) => {
            let body = match read_small_body(conn, head, snapshot).await {
                Ok(body) => body,
                Err(reason) => {
                    head.keep_alive = false;
                    send_local(conn, head, ctx, snapshot, &route.filters, LocalResponse::for_reason(reason)).await;
                    return false;
                }
            };
            let response = actions::echo::answer(plan, head, ctx, &body);
            // The body has been read whole: nothing is left to drain.
            return send_local(conn, head, ctx, snapshot, &route.filters, response).await;
        }
        Action::Static(plan) => {
            let path = rewritten.unwrap_or_else(|| head.path());
            match actions::static_files::answer(plan, head, path).await {
                actions::static_files::Answer::Local(response) => response,
                actions::static_files::Answer::File(file) => {
                    close_if_body_stays_unread(head);
                    let keep = actions::static_files::send(conn, head, ctx, &route.filters, file).await;
                    return drain_unread_body(conn, head, snapshot, keep).await;
                }
            }
        }
    };
    close_if_body_stays_unread(head);
    let keep = send_local(conn, head, ctx, snapshot, &route.filters, local).await;
    drain_unread_body(conn, head, snapshot, keep).await
}

/// Builds the request context from the connection and head.
fn new_ctx(conn: &ClientConn, head: &RequestHead, snapshot: &Snapshot, listener: &Arc<str>) -> RequestCtx {
    let peer_ip = conn.peer.ip();
    let client_ip = if snapshot.server.is_trusted(peer_ip) {
        client_ip_from_forwarded(&head.headers, &snapshot.server, peer_ip)
    } else {
        peer_ip
    };
    RequestCtx {
        start: std::time::Instant::now(),
        peer: conn.peer,
        client_ip,
        listener: listener.clone(),
        route: None,
        cluster: None,
        upstream_addr: None,
        upstream_time: None,
        status: StatusCode::OK,
        bytes_sent: 0,
        reason: None,
        request_id: None,
        attempts: 0,
    }
}

/// The rightmost `X-Forwarded-For` address that is not a trusted proxy.
fn client_ip_from_forwarded(headers: &HeaderMap, server: &crate::snapshot::ServerPlan, peer: IpAddr) -> IpAddr {
    let mut client = peer;
    let values: Vec<&HeaderValue> = headers.get_all("x-forwarded-for").iter().collect();
    for value in values.iter().rev() {
        let Ok(text) = value.to_str() else { break };
        for part in text.rsplit(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !server.is_trusted(ip) {
                        return ip;
                    }
                }
                Err(_) => return client,
            }
        }
    }
    client
}

/// Returns the request's `x-request-id`, generating and inserting one when missing.
fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get("x-request-id") {
        return id.clone();
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let random = fastrand::u128(..);
    let mut text = [0u8; 32];
    for (i, byte) in text.iter_mut().enumerate() {
        *byte = HEX[((random >> (i * 4)) & 0xf) as usize];
    }
    let id = HeaderValue::from_maybe_shared(Bytes::copy_from_slice(&text)).expect("hex is a valid header value");
    headers.insert(http::header::HeaderName::from_static("x-request-id"), id.clone());
    id
}

/// Answers a request whose head could not be accepted, then the connection closes.
pub(crate) async fn reject_head(conn: &mut ClientConn, snapshot: &Snapshot, reason: Reason) {
    let response = LocalResponse::for_reason(reason);
    let mut out = BytesMut::new();
    let mut headers = response.headers.clone();
    if snapshot.server.reason_header {
        headers.insert("x-strait-reason", HeaderValue::from_static(reason.code()));
    }
    headers.insert(header::DATE, crate::date::now());
    write_response_head(
        &mut out,
        Version::HTTP_11,
        response.status,
        &headers,
        OutFraming::Length(response.body.len() as u64),
        false,
    );
    out.extend_from_slice(&response.body);
    let _ = tokio::time::timeout(LOCAL_WRITE_TIMEOUT, conn.stream.write_all(&out)).await;

    if snapshot.access_log.is_enabled() {
        snapshot.access_log.log(&LogRecord {
            client_addr: conn.peer,
            time: SystemTime::now(),
            method: "-",
            target: "-",
            version: "-",
            status: response.status.as_u16(),
            bytes_sent: response.body.len() as u64,
            referer: None,
            user_agent: None,
            host: None,
            route: None,
            cluster: None,
            upstream_addr: None,
            upstream_time: None,
            total_time: Duration::ZERO,
            reason: Some(reason.code()),
            request_id: None,
        });
    }
}

/// Sends a response Strait generated; returns whether the connection may be kept.
pub(crate) async fn send_local(
    conn: &mut ClientConn,
    head: &RequestHead,
    ctx: &mut RequestCtx,
    snapshot: &Snapshot,
    filters: &[Arc<dyn HttpFilter>],
    response: LocalResponse,
) -> bool {
    let LocalResponse { status, mut headers, body, reason } = response;
    ctx.status = status;
    ctx.reason = reason;
    if let (Some(reason), true) = (reason, snapshot.server.reason_header) {
        headers.insert("x-strait-reason", HeaderValue::from_static(reason.code()));
    }
    if let Some(id) = &ctx.request_id {
        headers.insert("x-request-id", id.clone());
    }
    headers.insert(header::DATE, crate::date::now());
    run_response_filters(ctx, filters, status, &mut headers);
    let keep = head.keep_alive;
    let mut out = BytesMut::with_capacity(256 + body.len());
    // 1xx, 204 and 304 answers carry no body and no Content-Length (RFC 9110 §8.6): a
    // `Content-Length: 0` on a 304 would contradict the length of the representation.
    let bodiless = status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless { OutFraming::None } else { OutFraming::Length(body.len() as u64) };
    let with_body = !bodiless && head.method != http::Method::HEAD;
    write_response_head(&mut out, head.version, status, &headers, framing, keep);
    if with_body {
        out.extend_from_slice(&body);
        ctx.bytes_sent = body.len() as u64;
    }
    match tokio::time::timeout(LOCAL_WRITE_TIMEOUT, conn.stream.write_all(&out)).await {
        Ok(Ok(())) => keep,
        _ => false,
    }
}

/// Runs the response phase of the filters, last filter first.
pub(crate) fn run_response_filters(
    ctx: &RequestCtx,
    filters: &[Arc<dyn HttpFilter>],
    status: StatusCode,
    headers: &mut HeaderMap,
) {
    for filter in filters.iter().rev() {
        filter.on_response(ctx, status, headers);
    }
}

/// Whether [`drain_unread_body`] reads the body of a request answered locally (or the body is
/// empty); otherwise the connection closes after the answer.
fn body_is_drainable(head: &RequestHead) -> bool {
    match head.body {
        BodyFraming::Empty => true,
        BodyFraming::Length(n) => n <= DRAIN_BODY_MAX && !head.expect_continue,
        BodyFraming::Chunked | BodyFraming::UntilClose => false,
    }
}

/// Before a local answer to a request whose body will not be drained: the connection closes
/// after the answer, and the answer says so.
fn close_if_body_stays_unread(head: &mut RequestHead) {
    if !body_is_drainable(head) {
        head.keep_alive = false;
    }
}

/// After a local answer: drains a small unread request body so the connection can be
/// reused, or gives up the connection.
async fn drain_unread_body(conn: &mut ClientConn, head: &RequestHead, snapshot: &Snapshot, keep: bool) -> bool {
    if !keep || !body_is_drainable(head) {
        return false;
    }
    if !head.body.has_body() {
        return true;
    }
    let limits = body_limits(snapshot, DRAIN_BODY_MAX);
    let mut sink = tokio::io::sink();
    relay_body(&mut conn.stream, &mut conn.buf, head.body, &mut sink, false, &limits).await.is_ok()
}

/// Reads a request body of at most 1 MiB into memory (for the echo action).
async fn read_small_body(conn: &mut ClientConn, head: &RequestHead, snapshot: &Snapshot) -> Result<Vec<u8>, Reason> {
    if !head.body.has_body() {
        return Ok(Vec::new());
    }
    if head.expect_continue {
        let _ = conn.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
    }
    let mut body = Vec::new();
    // `server.limits.max_body_bytes` applies here too: a chunked body is only measured as it is read.
    let max_bytes = match snapshot.server.max_body_bytes {
        0 => 1 << 20,
        limit => limit.min(1 << 20),
    };
    let limits = body_limits(snapshot, max_bytes);
    match relay_body(&mut conn.stream, &mut conn.buf, head.body, &mut body, false, &limits).await {
        Ok(_) => Ok(body),
        Err(crate::h1::RelayError::TooLarge) => Err(Reason::BodyTooLarge),
        Err(crate::h1::RelayError::ReadTimeout) => Err(Reason::ClientBodyTimeout),
        Err(_) => Err(Reason::BadRequest),
    }
}

/// Body relay limits for reading from the client.
pub(crate) fn body_limits(snapshot: &Snapshot, max_bytes: u64) -> RelayLimits {
    RelayLimits {
        read_timeout: snapshot.server.client_body_timeout,
        write_timeout: snapshot.server.client_body_timeout,
        max_bytes,
    }
}

/// Log phase: filters, then the access log.
fn finish(
    head: &RequestHead,
    ctx: &RequestCtx,
    snapshot: &Snapshot,
    filters: &[Arc<dyn HttpFilter>],
    keep: bool,
) -> bool {
    for filter in filters {
        filter.on_log(ctx);
    }
    if snapshot.access_log.is_enabled() {
        log_access(head, ctx, snapshot);
    }
    keep
}

/// Writes the access log line for a finished exchange.
fn log_access(head: &RequestHead, ctx: &RequestCtx, snapshot: &Snapshot) {
    let header = |name: header::HeaderName| head.headers.get(name).and_then(|v| v.to_str().ok());
    let elapsed = ctx.start.elapsed();
    snapshot.access_log.log(&LogRecord {
        client_addr: std::net::SocketAddr::new(ctx.client_ip, ctx.peer.port()),
        time: SystemTime::now() - elapsed,
        method: head.method.as_str(),
        target: head.target_str(),
        version: if head.version == Version::HTTP_10 { "HTTP/1.0" } else { "HTTP/1.1" },
        status: ctx.status.as_u16(),
        bytes_sent: ctx.bytes_sent,
        referer: header(header::REFERER),
        user_agent: header(header::USER_AGENT),
        host: head.host.as_ref().and_then(|h| h.to_str().ok()),
        route: ctx.route.as_deref(),
        cluster: ctx.cluster.as_ref().map(|c| c.name.as_str()),
        upstream_addr: ctx.upstream_addr,
        upstream_time: ctx.upstream_time,
        total_time: elapsed,
        reason: ctx.reason.map(Reason::code),
        request_id: ctx.request_id.as_ref().and_then(|v| v.to_str().ok()),
    });
}
