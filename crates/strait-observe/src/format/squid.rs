//! Squid's native access log line, `%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt`:
//!
//! ```text
//! 1733050000.123     42 127.0.0.1 TCP_MISS/200 1234 GET http://example.test/ alice HIER_DIRECT/127.0.0.1 text/html
//! ```
//!
//! time the request arrived (seconds and milliseconds), elapsed milliseconds, client address,
//! result code and status, response body bytes (headers not counted), method, URL, user,
//! hierarchy code and the address of the server contacted, response content type.

use std::time::UNIX_EPOCH;

use super::{push_escaped, push_ip, push_number};
use crate::record::LogRecord;
use crate::time;

/// Reason codes Squid would log as `TCP_DENIED`: the request was refused by an access rule,
/// an authentication or address check, the SSRF guard, or a limit.
pub const DENIAL_REASONS: &[&str] = &[
    "proxy_access_denied",
    "proxy_auth_required",
    "destination_forbidden",
    "ip_forbidden",
    "consumer_forbidden",
    "unauthorized",
    "auth_denied",
    "forbidden",
    "cors_rejected",
    "rate_limited",
];

/// The Squid result code (`%Ss`) of a request.
///
/// A request whose head was refused (malformed, too large, too slow) is `NONE_NONE`, as Squid
/// logs requests that fail before being classified; a denial is `TCP_DENIED`, then a CONNECT is
/// `TCP_TUNNEL`; the rest follows the response cache (`HIT` → `TCP_HIT`, or `TCP_IMS_HIT` for a
/// 304 from the cache, `REVALIDATED` → `TCP_REFRESH_UNMODIFIED`, `EXPIRED` →
/// `TCP_REFRESH_MODIFIED`, `STALE` → `TCP_REFRESH_FAIL_OLD`). Anything else, Strait's own
/// error answers included (404 `no_route`, 502, 504), is `TCP_MISS`, as Squid logs its error
/// pages.
pub fn result_code(r: &LogRecord<'_>) -> &'static str {
    if r.method == "-" {
        return "NONE_NONE";
    }
    if r.reason.is_some_and(|code| DENIAL_REASONS.contains(&code)) {
        return "TCP_DENIED";
    }
    if r.method == "CONNECT" {
        return "TCP_TUNNEL";
    }
    match r.cache_status {
        Some("HIT") if r.status == 304 => "TCP_IMS_HIT",
        Some("HIT") => "TCP_HIT",
        Some("REVALIDATED") => "TCP_REFRESH_UNMODIFIED",
        Some("EXPIRED") => "TCP_REFRESH_MODIFIED",
        Some("STALE") => "TCP_REFRESH_FAIL_OLD",
        _ => "TCP_MISS",
    }
}

/// Appends one Squid native line with a trailing newline; missing values are `-`.
pub fn write_squid(r: &LogRecord<'_>, out: &mut Vec<u8>) {
    let since_epoch = r.time.duration_since(UNIX_EPOCH).unwrap_or_default();
    push_number(out, since_epoch.as_secs());
    out.push(b'.');
    time::push_padded3(out, since_epoch.subsec_millis());
    out.push(b' ');
    let mut digits = itoa::Buffer::new();
    let elapsed = digits.format(u64::try_from(r.total_time.as_millis()).unwrap_or(u64::MAX));
    out.resize(out.len() + 6usize.saturating_sub(elapsed.len()), b' ');
    out.extend_from_slice(elapsed.as_bytes());
    out.push(b' ');
    push_ip(out, r.client_addr.ip());
    out.push(b' ');
    out.extend_from_slice(result_code(r).as_bytes());
    out.push(b'/');
    time::push_padded3(out, u32::from(r.status.min(999)));
    out.push(b' ');
    push_number(out, r.bytes_sent);
    out.push(b' ');
    push_request(out, r);
    out.push(b' ');
    push_token(out, r.user);
    out.push(b' ');
    match r.upstream_addr {
        Some(addr) => {
            out.extend_from_slice(if r.via_parent { b"FIRSTUP_PARENT/" } else { b"HIER_DIRECT/" });
            push_ip(out, addr.ip());
        }
        None => out.extend_from_slice(b"HIER_NONE/-"),
    }
    out.push(b' ');
    // The media type alone, as Squid logs it: parameters end at `;` or white space.
    push_token(out, r.content_type.map(|ct| ct.trim_start().split([';', ' ', '\t']).next().unwrap_or_default()));
    out.push(b'\n');
}

/// Appends method and URL: an origin-form target as the absolute URL it stands for
/// (`http://host/path`), an absolute-form or CONNECT (`host:port`) target as received, and
/// `NONE error:...` for a request whose head was refused.
fn push_request(out: &mut Vec<u8>, r: &LogRecord<'_>) {
    if r.method == "-" {
        let what = match r.reason {
            Some("header_timeout") => "error:transaction-end-before-headers",
            _ => "error:invalid-request",
        };
        out.extend_from_slice(b"NONE ");
        out.extend_from_slice(what.as_bytes());
        return;
    }
    push_escaped(out, r.method, true);
    out.push(b' ');
    match r.host {
        Some(host) if r.target.starts_with('/') && !host.is_empty() => {
            push_escaped(out, r.scheme, true);
            out.extend_from_slice(b"://");
            push_escaped(out, host, true);
        }
        _ => {}
    }
    push_escaped(out, r.target, true);
}

/// Appends `value` with spaces escaped (one field each), or `-` when missing or empty.
fn push_token(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(v) if !v.is_empty() => push_escaped(out, v, true),
        _ => out.push(b'-'),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn record() -> LogRecord<'static> {
        LogRecord {
            client_addr: "127.0.0.1:51234".parse().unwrap(),
            time: UNIX_EPOCH + Duration::from_millis(1_733_050_000_123),
            method: "GET",
            target: "http://example.test/",
            scheme: "http",
            version: "HTTP/1.1",
            status: 200,
            bytes_sent: 1234,
            referer: None,
            user_agent: Some("curl/8.5.0"),
            host: Some("example.test"),
            route: Some("proxy"),
            cluster: None,
            upstream_addr: Some("127.0.0.1:18080".parse().unwrap()),
            upstream_time: Some(Duration::from_millis(40)),
            total_time: Duration::from_micros(42_900),
            reason: None,
            request_id: None,
            user: Some("alice"),
            cache_status: None,
            via_parent: false,
            content_type: Some("text/html"),
        }
    }

    fn line(r: &LogRecord<'_>) -> String {
        let mut out = Vec::new();
        write_squid(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_native_line_exactly() {
        assert_eq!(
            line(&record()),
            "1733050000.123     42 127.0.0.1 TCP_MISS/200 1234 GET http://example.test/ alice \
             HIER_DIRECT/127.0.0.1 text/html\n"
        );
    }

    #[test]
    fn elapsed_is_right_aligned_in_six_and_grows_past_it() {
        let at = |ms: u64| line(&LogRecord { total_time: Duration::from_millis(ms), ..record() });
        assert!(at(0).starts_with("1733050000.123      0 127.0.0.1 "), "{}", at(0));
        assert!(at(123_456).starts_with("1733050000.123 123456 127.0.0.1 "), "{}", at(123_456));
        assert!(at(12_345_678).starts_with("1733050000.123 12345678 127.0.0.1 "), "{}", at(12_345_678));
        let early = line(&LogRecord { time: UNIX_EPOCH + Duration::from_millis(5_007), ..record() });
        assert!(early.starts_with("5.007 "), "{early}");
    }

    #[test]
    fn connect_is_a_tunnel_to_host_and_port() {
        let r = LogRecord {
            method: "CONNECT",
            target: "example.test:443",
            host: Some("example.test:443"),
            user: None,
            content_type: None,
            bytes_sent: 5120,
            ..record()
        };
        assert_eq!(
            line(&r),
            "1733050000.123     42 127.0.0.1 TCP_TUNNEL/200 5120 CONNECT example.test:443 - \
             HIER_DIRECT/127.0.0.1 -\n"
        );
    }

    #[test]
    fn denials_are_tcp_denied_with_nothing_contacted() {
        for reason in DENIAL_REASONS {
            for method in ["GET", "CONNECT"] {
                let r = LogRecord {
                    method,
                    status: 403,
                    reason: Some(reason),
                    upstream_addr: None,
                    user: None,
                    content_type: Some("text/plain; charset=utf-8"),
                    ..record()
                };
                let line = line(&r);
                assert!(line.contains(" TCP_DENIED/403 1234 "), "{reason} {method}: {line}");
                assert!(line.ends_with(" - HIER_NONE/- text/plain\n"), "{line}");
            }
        }
    }

    #[test]
    fn cache_statuses_map_to_squid_result_codes() {
        let cases = [
            (Some("HIT"), 200, "TCP_HIT"),
            (Some("HIT"), 304, "TCP_IMS_HIT"),
            (Some("MISS"), 200, "TCP_MISS"),
            (Some("REVALIDATED"), 200, "TCP_REFRESH_UNMODIFIED"),
            (Some("EXPIRED"), 200, "TCP_REFRESH_MODIFIED"),
            (Some("STALE"), 200, "TCP_REFRESH_FAIL_OLD"),
            (Some("BYPASS"), 200, "TCP_MISS"),
            (None, 200, "TCP_MISS"),
        ];
        for (cache_status, status, want) in cases {
            let r = LogRecord { cache_status, status, ..record() };
            assert_eq!(result_code(&r), want, "{cache_status:?} {status}");
            assert!(line(&r).contains(&format!(" {want}/{status} ")), "{}", line(&r));
        }
    }

    #[test]
    fn strait_errors_are_misses_and_refused_heads_none() {
        let no_route = LogRecord {
            target: "/nowhere?x=1",
            host: Some("shop.test:8080"),
            status: 404,
            reason: Some("no_route"),
            upstream_addr: None,
            user: None,
            content_type: None,
            ..record()
        };
        assert_eq!(
            line(&no_route),
            "1733050000.123     42 127.0.0.1 TCP_MISS/404 1234 GET http://shop.test:8080/nowhere?x=1 - HIER_NONE/- -\n"
        );
        let failed = LogRecord { status: 502, reason: Some("upstream_connect_failed"), ..record() };
        assert!(line(&failed).contains(" TCP_MISS/502 "), "{}", line(&failed));
        let refused = LogRecord {
            method: "-",
            target: "-",
            host: None,
            status: 400,
            bytes_sent: 0,
            reason: Some("bad_request"),
            upstream_addr: None,
            user: None,
            content_type: None,
            ..record()
        };
        assert_eq!(
            line(&refused),
            "1733050000.123     42 127.0.0.1 NONE_NONE/400 0 NONE error:invalid-request - HIER_NONE/- -\n"
        );
        let slow = LogRecord { status: 408, reason: Some("header_timeout"), ..refused };
        assert!(line(&slow).contains(" NONE_NONE/408 0 NONE error:transaction-end-before-headers "), "{}", line(&slow));
    }

    #[test]
    fn parent_proxy_hops_and_ipv6() {
        let r = LogRecord {
            client_addr: "[2001:db8::7]:40000".parse().unwrap(),
            upstream_addr: Some("[::1]:3128".parse().unwrap()),
            via_parent: true,
            ..record()
        };
        let line = line(&r);
        assert!(line.contains(" 2001:db8::7 TCP_MISS/200 "), "{line}");
        assert!(line.ends_with(" alice FIRSTUP_PARENT/::1 text/html\n"), "{line}");
    }

    #[test]
    fn fields_never_split_and_https_origin_form() {
        let r = LogRecord {
            method: "GET",
            target: "/a b\"c",
            scheme: "https",
            host: Some("api.test"),
            user: Some("bob smith"),
            content_type: Some("application/json;charset=utf-8"),
            status: 1000,
            ..record()
        };
        let line = line(&r);
        assert!(line.contains(" GET https://api.test/a\\x20b\\x22c bob\\x20smith "), "{line}");
        assert!(line.contains(" TCP_MISS/999 "), "{line}");
        assert!(line.ends_with(" application/json\n"), "{line}");
        assert_eq!(line.split(' ').filter(|f| !f.is_empty()).count(), 10, "{line}");
        let star = LogRecord { method: "OPTIONS", target: "*", ..record() };
        assert!(self::line(&star).contains(" OPTIONS * "), "{}", self::line(&star));
    }
}
