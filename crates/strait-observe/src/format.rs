//! Access log line formats: nginx `combined` with Strait's extra fields, JSON lines, and
//! Squid's native format; layer 4 sessions' lines in `stream`.

mod squid;
mod stream;

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use strait_config::AccessLogFormat;

use crate::record::LogRecord;
use crate::time;

pub use squid::{result_code, write_squid, DENIAL_REASONS};
pub use stream::write_stream_line;

/// Appends one log line for `record` in `format`, including the trailing newline.
pub fn write_line(format: AccessLogFormat, record: &LogRecord<'_>, out: &mut Vec<u8>) {
    match format {
        AccessLogFormat::Combined => write_combined(record, out),
        AccessLogFormat::Json => write_json(record, out),
        AccessLogFormat::Squid => write_squid(record, out),
    }
}

/// Appends an nginx `combined` line plus Strait's `key=value` fields and a trailing newline.
pub fn write_combined(r: &LogRecord<'_>, out: &mut Vec<u8>) {
    push_ip(out, r.client_addr.ip());
    out.extend_from_slice(b" - - [");
    time::push_clf(out, r.time);
    out.extend_from_slice(b"] \"");
    push_escaped(out, r.method, false);
    out.push(b' ');
    push_escaped(out, r.target, false);
    out.push(b' ');
    push_escaped(out, r.version, false);
    out.extend_from_slice(b"\" ");
    push_number(out, u64::from(r.status));
    out.push(b' ');
    push_number(out, r.bytes_sent);
    out.extend_from_slice(b" \"");
    push_quoted_or_dash(out, r.referer);
    out.extend_from_slice(b"\" \"");
    push_quoted_or_dash(out, r.user_agent);
    out.extend_from_slice(b"\" upstream=");
    match r.upstream_addr {
        Some(addr) => push_addr(out, addr),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" upstream_time=");
    match r.upstream_time {
        Some(d) => push_seconds(out, d),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" total_time=");
    push_seconds(out, r.total_time);
    push_field(out, b" reason=", r.reason);
    push_field(out, b" request_id=", r.request_id);
    push_field(out, b" route=", r.route);
    push_field(out, b" host=", r.host);
    out.push(b'\n');
}

/// Appends one JSON object with a trailing newline; missing values are `null`.
pub fn write_json(r: &LogRecord<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"time\":\"");
    time::push_rfc3339(out, r.time);
    out.extend_from_slice(b"\",\"client\":\"");
    push_ip(out, r.client_addr.ip());
    out.extend_from_slice(b"\",\"method\":");
    push_json_str(out, r.method);
    out.extend_from_slice(b",\"target\":");
    push_json_str(out, r.target);
    out.extend_from_slice(b",\"version\":");
    push_json_str(out, r.version);
    out.extend_from_slice(b",\"status\":");
    push_number(out, u64::from(r.status));
    out.extend_from_slice(b",\"bytes_sent\":");
    push_number(out, r.bytes_sent);
    push_json_opt(out, b",\"referer\":", r.referer);
    push_json_opt(out, b",\"user_agent\":", r.user_agent);
    push_json_opt(out, b",\"host\":", r.host);
    push_json_opt(out, b",\"route\":", r.route);
    push_json_opt(out, b",\"cluster\":", r.cluster);
    out.extend_from_slice(b",\"upstream\":");
    match r.upstream_addr {
        Some(addr) => {
            out.push(b'"');
            push_addr(out, addr);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"upstream_time_ms\":");
    match r.upstream_time {
        Some(d) => push_millis(out, d),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"total_time_ms\":");
    push_millis(out, r.total_time);
    push_json_opt(out, b",\"reason\":", r.reason);
    push_json_opt(out, b",\"request_id\":", r.request_id);
    out.extend_from_slice(b"}\n");
}

/// Appends `addr` as `ip:port` (`[v6]:port` for IPv6).
fn push_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            push_ip(out, IpAddr::V4(*v4.ip()));
            out.push(b':');
            push_number(out, u64::from(v4.port()));
        }
        // With its scope id, if any (`[fe80::1%2]:80`).
        SocketAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// The decimal text of each octet: its length, then its digits padded with dots.
const OCTETS: [[u8; 4]; 256] = {
    let mut table = [[0u8; 4]; 256];
    let mut n = 0;
    while n < 256 {
        let (hundreds, tens, ones) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        table[n] = if n >= 100 {
            [3, b'0' + hundreds, b'0' + tens, b'0' + ones]
        } else if n >= 10 {
            [2, b'0' + tens, b'0' + ones, b'.']
        } else {
            [1, b'0' + ones, b'.', b'.']
        };
        n += 1;
    }
    table
};

/// Appends `ip` as text; IPv4 without the formatting machinery (it is on every line).
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Into a stack buffer from a table of the 256 octets' texts, then one copy: every
            // log line has one or two of these.
            let mut text = [0u8; 16];
            let mut len = 0;
            for octet in v4.octets() {
                let [digits, ref chars @ ..] = OCTETS[usize::from(octet)];
                text[len..len + 4].copy_from_slice(&[chars[0], chars[1], chars[2], b'.']);
                // The table pads with dots: the one after the digits separates the octets.
                len += usize::from(digits) + 1;
            }
            out.extend_from_slice(&text[..len - 1]);
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends `n` in decimal.
fn push_number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a duration as seconds with millisecond precision (`0.012`), truncated like nginx.
fn push_seconds(out: &mut Vec<u8>, d: Duration) {
    push_number(out, d.as_secs());
    out.push(b'.');
    time::push_padded3(out, d.subsec_millis());
}

/// Appends a duration as milliseconds with microsecond precision (`12.345`).
fn push_millis(out: &mut Vec<u8>, d: Duration) {
    let micros = d.as_micros();
    push_number(out, u64::try_from(micros / 1000).unwrap_or(u64::MAX));
    out.push(b'.');
    time::push_padded3(out, (micros % 1000) as u32);
}

/// Appends the escaped value, or `-` when missing or empty (as nginx logs unset variables).
fn push_quoted_or_dash(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(v) if !v.is_empty() => push_escaped(out, v, false),
        _ => out.push(b'-'),
    }
}

/// Appends ` key=value` for an unquoted field; spaces are escaped to keep fields separable.
fn push_field(out: &mut Vec<u8>, key: &[u8], value: Option<&str>) {
    out.extend_from_slice(key);
    match value {
        Some(v) if !v.is_empty() => push_escaped(out, v, true),
        _ => out.push(b'-'),
    }
}

/// Appends `s` escaped as nginx escapes logged variables: `"`, `\`, control and non-ASCII
/// bytes become `\xHH`; with `space` set, spaces too.
fn push_escaped(out: &mut Vec<u8>, s: &str, space: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = s.as_bytes();
    let mask = ESCAPE_ALWAYS | if space { ESCAPE_SPACE } else { 0 };
    let escape = |b: u8| ESCAPES[usize::from(b)] & mask != 0;
    // Most values need no escape: a short one is looked up a byte at a time, a long one in a
    // pass without early exit (which vectorizes); then one copy.
    let plain = if bytes.len() < 32 {
        !bytes.iter().any(|&b| escape(b))
    } else {
        bytes.iter().fold(true, |plain, &b| plain & !escape(b))
    };
    if plain {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if escape(b) {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(&[b'\\', b'x', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// [`ESCAPES`]: the byte is always escaped (`"`, `\`, control and non-ASCII bytes).
const ESCAPE_ALWAYS: u8 = 1;
/// [`ESCAPES`]: the byte is a space, escaped in unquoted fields.
const ESCAPE_SPACE: u8 = 2;

/// How a log line treats each byte.
const ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let always = b < 0x20 || b >= 0x7f || b == b'"' as usize || b == b'\\' as usize;
        table[b] = if always {
            ESCAPE_ALWAYS
        } else if b == b' ' as usize {
            ESCAPE_SPACE
        } else {
            0
        };
        b += 1;
    }
    table
};

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends `key` then `s` as a JSON string, or `null` when missing.
fn push_json_opt(out: &mut Vec<u8>, key: &[u8], value: Option<&str>) {
    out.extend_from_slice(key);
    match value {
        Some(v) => push_json_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn record() -> LogRecord<'static> {
        LogRecord {
            client_addr: "192.0.2.7:51234".parse().unwrap(),
            time: UNIX_EPOCH + Duration::from_millis(971_186_136_042),
            method: "GET",
            target: "/api/items?id=3",
            version: "HTTP/1.1",
            status: 200,
            bytes_sent: 1234,
            referer: Some("https://example.com/"),
            user_agent: Some("curl/8.5.0"),
            host: Some("api.example.com"),
            route: Some("api"),
            cluster: Some("backend"),
            upstream_addr: Some("10.0.0.5:8080".parse().unwrap()),
            upstream_time: Some(Duration::from_micros(12_345)),
            total_time: Duration::from_micros(15_678),
            reason: None,
            request_id: Some("abc123"),
            scheme: "http",
            user: None,
            cache_status: None,
            via_parent: false,
            content_type: None,
        }
    }

    fn combined(r: &LogRecord<'_>) -> String {
        let mut out = Vec::new();
        write_combined(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn json(r: &LogRecord<'_>) -> serde_json::Value {
        let mut out = Vec::new();
        write_json(r, &mut out);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(out.ends_with(b"\n"));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn combined_exact() {
        assert_eq!(
            combined(&record()),
            "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"GET /api/items?id=3 HTTP/1.1\" 200 1234 \
             \"https://example.com/\" \"curl/8.5.0\" upstream=10.0.0.5:8080 upstream_time=0.012 \
             total_time=0.015 reason=- request_id=abc123 route=api host=api.example.com\n"
        );
    }

    #[test]
    fn combined_missing_fields() {
        let r = LogRecord {
            client_addr: "[2001:db8::1]:443".parse().unwrap(),
            method: "POST",
            target: "/x",
            status: 404,
            bytes_sent: 0,
            referer: None,
            user_agent: Some(""),
            host: None,
            route: None,
            cluster: None,
            upstream_addr: None,
            upstream_time: None,
            total_time: Duration::from_millis(2_500),
            reason: Some("no_route"),
            request_id: None,
            ..record()
        };
        assert_eq!(
            combined(&r),
            "2001:db8::1 - - [10/Oct/2000:13:55:36 +0000] \"POST /x HTTP/1.1\" 404 0 \"-\" \"-\" \
             upstream=- upstream_time=- total_time=2.500 reason=no_route request_id=- route=- \
             host=-\n"
        );
    }

    #[test]
    fn combined_escaping() {
        let r = LogRecord {
            target: "/a\"b\\c",
            referer: Some("x\"y\nz"),
            user_agent: Some("tab\there \u{e9}\u{7f}"),
            host: Some("evil host\r\n"),
            ..record()
        };
        let line = combined(&r);
        assert!(line.contains(r#""GET /a\x22b\x5Cc HTTP/1.1""#), "{line}");
        assert!(line.contains(r#""x\x22y\x0Az""#), "{line}");
        assert!(line.contains(r#""tab\x09here \xC3\xA9\x7F""#), "{line}");
        assert!(line.ends_with("host=evil\\x20host\\x0D\\x0A\n"), "{line}");
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn json_fields() {
        let v = json(&record());
        assert_eq!(v["time"], "2000-10-10T13:55:36.042Z");
        assert_eq!(v["client"], "192.0.2.7");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["target"], "/api/items?id=3");
        assert_eq!(v["version"], "HTTP/1.1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes_sent"], 1234);
        assert_eq!(v["referer"], "https://example.com/");
        assert_eq!(v["user_agent"], "curl/8.5.0");
        assert_eq!(v["host"], "api.example.com");
        assert_eq!(v["route"], "api");
        assert_eq!(v["cluster"], "backend");
        assert_eq!(v["upstream"], "10.0.0.5:8080");
        assert_eq!(v["upstream_time_ms"], 12.345);
        assert_eq!(v["total_time_ms"], 15.678);
        assert!(v["reason"].is_null());
        assert_eq!(v["request_id"], "abc123");
        assert_eq!(v.as_object().unwrap().len(), 17);
    }

    #[test]
    fn json_nulls_and_escaping() {
        let r = LogRecord {
            target: "/q?\"x\"\n\u{1}",
            user_agent: Some("a\\b \u{e9}"),
            referer: None,
            host: None,
            route: None,
            cluster: None,
            upstream_addr: None,
            upstream_time: None,
            request_id: None,
            reason: Some("no_route"),
            ..record()
        };
        let v = json(&r);
        assert_eq!(v["target"], "/q?\"x\"\n\u{1}");
        assert_eq!(v["user_agent"], "a\\b \u{e9}");
        for key in ["referer", "host", "route", "cluster", "upstream", "upstream_time_ms"] {
            assert!(v[key].is_null(), "{key}");
        }
        assert_eq!(v["reason"], "no_route");
    }

    #[test]
    fn write_line_dispatches() {
        let mut out = Vec::new();
        write_line(AccessLogFormat::Json, &record(), &mut out);
        assert!(out.starts_with(b"{"));
        out.clear();
        write_line(AccessLogFormat::Combined, &record(), &mut out);
        assert!(out.starts_with(b"192.0.2.7 - - ["));
        out.clear();
        write_line(AccessLogFormat::Squid, &record(), &mut out);
        assert!(out.starts_with(b"971186136.042     15 192.0.2.7 TCP_MISS/200 1234 GET http://api.example.com/api"));
    }

    #[test]
    fn addresses_are_written_as_std_displays_them() {
        for text in
            ["0.0.0.0:0", "255.255.255.255:65535", "10.0.100.9:8080", "1.20.199.240:1", "[::1]:443", "[fe80::1%2]:80"]
        {
            let addr: SocketAddr = text.parse().unwrap();
            let mut out = Vec::new();
            push_addr(&mut out, addr);
            assert_eq!(String::from_utf8(out).unwrap(), addr.to_string());
            let mut out = Vec::new();
            push_ip(&mut out, addr.ip());
            assert_eq!(String::from_utf8(out).unwrap(), addr.ip().to_string());
        }
    }

    #[test]
    fn every_octet_is_written_as_std_writes_it() {
        for n in 0..=255u8 {
            let ip = IpAddr::from([n, 255 - n, n / 3, 9]);
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }

    #[test]
    fn short_and_long_values_are_escaped_alike() {
        for len in [0, 1, 31, 32, 33, 200] {
            let mut value = "a".repeat(len);
            let mut out = Vec::new();
            push_escaped(&mut out, &value, true);
            assert_eq!(out, value.as_bytes(), "{len} plain bytes");
            for (bad, escaped) in [(" ", "\\x20"), ("\"", "\\x22"), ("\u{1}", "\\x01"), ("\u{e9}", "\\xC3\\xA9")] {
                value = format!("{}{bad}", "a".repeat(len));
                let mut out = Vec::new();
                push_escaped(&mut out, &value, true);
                assert_eq!(String::from_utf8(out).unwrap(), format!("{}{escaped}", "a".repeat(len)), "{len} {bad:?}");
            }
            let mut out = Vec::new();
            push_escaped(&mut out, &format!("{} ", "a".repeat(len)), false);
            assert_eq!(out.last(), Some(&b' '), "a quoted field keeps its spaces");
        }
    }
}
