//! The access-log line of an exchange.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderName};
use http::{request, Version};
use strait_http::{Reason, RequestCtx};
use strait_observe::LogRecord;

use crate::snapshot::Snapshot;

/// Writes the access log line for a finished exchange; `target` is the request target as
/// received (before any rewrite).
pub(crate) fn log_exchange(snapshot: &Snapshot, ctx: &RequestCtx, request: &request::Parts, target: &str) {
    let header = |name: HeaderName| request.headers.get(name).and_then(|v| v.to_str().ok());
    let elapsed = ctx.start.elapsed();
    snapshot.access_log.log(&LogRecord {
        client_addr: SocketAddr::new(ctx.client_ip, ctx.peer().port()),
        time: SystemTime::now() - elapsed,
        method: request.method.as_str(),
        target,
        version: version_text(request.version),
        status: ctx.status.as_u16(),
        bytes_sent: ctx.bytes_sent,
        referer: header(header::REFERER),
        user_agent: header(header::USER_AGENT),
        host: header(header::HOST),
        route: ctx.route.as_deref(),
        cluster: ctx.cluster.as_deref(),
        upstream_addr: ctx.upstream_addr,
        upstream_time: ctx.upstream_time,
        total_time: elapsed,
        reason: ctx.reason.map(Reason::code),
        request_id: ctx.request_id.as_ref().and_then(|v| v.to_str().ok()),
    });
}

/// Writes the access log line for a request whose head was refused.
pub(crate) fn log_refused(snapshot: &Snapshot, ctx: &RequestCtx) {
    snapshot.access_log.log(&LogRecord {
        client_addr: ctx.peer(),
        time: SystemTime::now(),
        method: "-",
        target: "-",
        version: "-",
        status: ctx.status.as_u16(),
        bytes_sent: ctx.bytes_sent,
        referer: None,
        user_agent: None,
        host: None,
        route: None,
        cluster: None,
        upstream_addr: None,
        upstream_time: None,
        total_time: Duration::ZERO,
        reason: ctx.reason.map(Reason::code),
        request_id: None,
    });
}

/// The protocol as the log writes it.
fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}
