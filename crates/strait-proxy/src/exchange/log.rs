//! The access-log line of an exchange.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap};
use http::{request, Version};
use strait_config::AccessLogFormat;
use strait_http::context::ViaParentProxy;
use strait_http::{Reason, RequestCtx};
use strait_observe::LogRecord;

use crate::snapshot::Snapshot;

/// Writes the access log line for a finished exchange; `target` is the request target as
/// received (before any rewrite).
pub(crate) fn log_exchange(snapshot: &Snapshot, ctx: &RequestCtx, request: &request::Parts, target: &str) {
    let fields = LoggedFields::of(&request.headers);
    let elapsed = ctx.start.elapsed();
    // Only the squid format writes the parent hop: the others skip the extension lookup.
    let via_parent = snapshot.access_log.format() == Some(AccessLogFormat::Squid)
        && ctx.extensions.get::<ViaParentProxy>().is_some();
    snapshot.access_log.log(&LogRecord {
        client_addr: SocketAddr::new(ctx.client_ip, ctx.peer().port()),
        // The request's arrival: as its filters read it, or now less the time it took.
        time: ctx.unix_time_if_read().map_or_else(|| SystemTime::now() - elapsed, |time| UNIX_EPOCH + time),
        method: request.method.as_str(),
        target,
        scheme: ctx.conn.scheme,
        version: version_text(request.version),
        status: ctx.status.as_u16(),
        bytes_sent: ctx.bytes_sent,
        referer: fields.referer,
        user_agent: fields.user_agent,
        host: fields.host,
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

/// The request header fields a log line records: the first of each name, when it is text.
struct LoggedFields<'a> {
    referer: Option<&'a str>,
    user_agent: Option<&'a str>,
    host: Option<&'a str>,
}

impl<'a> LoggedFields<'a> {
    /// Finds them in one pass over the fields: a request has a handful, and three lookups
    /// by name would hash three times.
    fn of(headers: &'a HeaderMap) -> LoggedFields<'a> {
        let (mut referer, mut user_agent, mut host) = (None, None, None);
        for (name, value) in headers {
            let slot = if name == header::REFERER {
                &mut referer
            } else if name == header::USER_AGENT {
                &mut user_agent
            } else if name == header::HOST {
                &mut host
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        let text = |value: Option<&'a header::HeaderValue>| value.and_then(|v| v.to_str().ok());
        LoggedFields { referer: text(referer), user_agent: text(user_agent), host: text(host) }
    }
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

    #[test]
    fn the_logged_fields_are_the_first_of_each_name() {
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::HOST, "a.example".parse().unwrap());
        headers.append(http::header::HOST, "b.example".parse().unwrap());
        headers.append(http::header::USER_AGENT, http::HeaderValue::from_bytes(b"not\xfftext").unwrap());
        headers.append(http::header::USER_AGENT, "curl/8".parse().unwrap());
        headers.append("x-other", "1".parse().unwrap());
        let fields = super::LoggedFields::of(&headers);
        assert_eq!(fields.host, Some("a.example"));
        assert_eq!(fields.user_agent, None, "the first is not text, as `get` would find it");
        assert_eq!(fields.referer, None);
    }
}
