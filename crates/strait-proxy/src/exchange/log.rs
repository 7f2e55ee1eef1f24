//! The access-log line of an exchange.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderName};
use http::{request, Version};
use strait_config::AccessLogFormat;
use strait_http::context::ViaParentProxy;
use strait_http::{Reason, RequestCtx};
use strait_observe::LogRecord;

use crate::snapshot::Snapshot;

/// Writes the access log line for a finished exchange; `target` is the request target as
/// received (before any rewrite).
pub(crate) fn log_exchange(snapshot: &Snapshot, ctx: &RequestCtx, request: &request::Parts, target: &str) {
    let header = |name: HeaderName| request.headers.get(name).and_then(|v| v.to_str().ok());
    let elapsed = ctx.start.elapsed();
    // Only the squid format writes the parent hop: the others skip the extension lookup.
    let via_parent = snapshot.access_log.format() == Some(AccessLogFormat::Squid)
        && ctx.extensions.get::<ViaParentProxy>().is_some();
    snapshot.access_log.log(&LogRecord {
        client_addr: SocketAddr::new(ctx.client_ip, ctx.peer().port()),
        time: SystemTime::now() - elapsed,
        method: request.method.as_str(),
        target,
        scheme: ctx.conn.scheme,
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
        user: ctx.consumer.as_ref().map(|c| &*c.username),
        cache_status: ctx.cache_status,
        via_parent,
        content_type: ctx.response_content_type.as_ref().and_then(|v| v.to_str().ok()),
    });
}

/// Writes the access log line for a request whose head was refused.
pub(crate) fn log_refused(snapshot: &Snapshot, ctx: &RequestCtx) {
    snapshot.access_log.log(&LogRecord {
        client_addr: ctx.peer(),
        time: SystemTime::now(),
        method: "-",
        target: "-",
        scheme: ctx.conn.scheme,
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
        user: None,
        cache_status: None,
        via_parent: false,
        content_type: ctx.response_content_type.as_ref().and_then(|v| v.to_str().ok()),
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

#[cfg(test)]
mod tests {
    use strait_http::Reason;

    #[test]
    fn every_reason_the_squid_format_calls_a_denial_exists() {
        for code in strait_observe::format::DENIAL_REASONS {
            let reason = Reason::ALL.iter().find(|r| r.code() == *code);
            let reason = reason.unwrap_or_else(|| panic!("`{code}` is not a reason code"));
            assert!(reason.status().is_client_error(), "`{code}` answers {}", reason.status());
        }
    }
}
