//! Log lines of layer 4 sessions: NGINX `stream`'s usual fields (`$remote_addr [$time_local]
//! $protocol $status $bytes_sent $bytes_received $session_time "$upstream_addr"`) with
//! Strait's `key=value` fields after them, or one JSON object.

use strait_config::AccessLogFormat;

use super::{push_addr, push_field, push_ip, push_json_opt, push_json_str, push_millis, push_number, push_seconds};
use crate::record::StreamRecord;
use crate::time;

/// Appends one line for `record` in `format` (the JSON format as JSON, the others as the
/// stream line), with the trailing newline.
pub fn write_stream_line(format: AccessLogFormat, record: &StreamRecord<'_>, out: &mut Vec<u8>) {
    match format {
        AccessLogFormat::Json => write_stream_json(record, out),
        AccessLogFormat::Combined | AccessLogFormat::Squid => write_stream_text(record, out),
    }
}

/// Appends the text line.
fn write_stream_text(r: &StreamRecord<'_>, out: &mut Vec<u8>) {
    push_ip(out, r.client_addr.ip());
    out.extend_from_slice(b" [");
    time::push_clf(out, r.time);
    out.extend_from_slice(b"] ");
    out.extend_from_slice(r.protocol.as_bytes());
    out.push(b' ');
    push_number(out, u64::from(r.status));
    out.push(b' ');
    push_number(out, r.bytes_sent);
    out.push(b' ');
    push_number(out, r.bytes_received);
    out.push(b' ');
    push_seconds(out, r.session_time);
    out.extend_from_slice(b" \"");
    match r.upstream_addr {
        Some(addr) => push_addr(out, addr),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b"\" connect_time=");
    match r.connect_time {
        Some(d) => push_seconds(out, d),
        None => out.push(b'-'),
    }
    push_field(out, b" listener=", Some(r.listener));
    push_field(out, b" cluster=", r.cluster);
    push_field(out, b" sni=", r.server_name);
    push_field(out, b" reason=", r.reason);
    out.push(b'\n');
}

/// Appends the JSON object; missing values are `null`.
fn write_stream_json(r: &StreamRecord<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"time\":\"");
    time::push_rfc3339(out, r.time);
    out.extend_from_slice(b"\",\"client\":\"");
    push_addr(out, r.client_addr);
    out.extend_from_slice(b"\",\"protocol\":");
    push_json_str(out, r.protocol);
    out.extend_from_slice(b",\"listener\":");
    push_json_str(out, r.listener);
    out.extend_from_slice(b",\"status\":");
    push_number(out, u64::from(r.status));
    out.extend_from_slice(b",\"bytes_sent\":");
    push_number(out, r.bytes_sent);
    out.extend_from_slice(b",\"bytes_received\":");
    push_number(out, r.bytes_received);
    out.extend_from_slice(b",\"session_time_ms\":");
    push_millis(out, r.session_time);
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
    out.extend_from_slice(b",\"connect_time_ms\":");
    match r.connect_time {
        Some(d) => push_millis(out, d),
        None => out.extend_from_slice(b"null"),
    }
    push_json_opt(out, b",\"server_name\":", r.server_name);
    push_json_opt(out, b",\"reason\":", r.reason);
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn record() -> StreamRecord<'static> {
        StreamRecord {
            client_addr: "192.0.2.7:51234".parse().unwrap(),
            time: UNIX_EPOCH + Duration::from_millis(971_186_136_042),
            protocol: "TCP",
            listener: "db",
            status: 200,
            bytes_sent: 4096,
            bytes_received: 512,
            session_time: Duration::from_millis(1_250),
            cluster: Some("pg"),
            upstream_addr: Some("10.0.0.5:5432".parse().unwrap()),
            connect_time: Some(Duration::from_micros(800)),
            server_name: None,
            reason: None,
        }
    }

    #[test]
    fn text_line_has_the_nginx_stream_fields_first() {
        let mut out = Vec::new();
        write_stream_line(AccessLogFormat::Combined, &record(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "192.0.2.7 [10/Oct/2000:13:55:36 +0000] TCP 200 4096 512 1.250 \"10.0.0.5:5432\" connect_time=0.000 \
             listener=db cluster=pg sni=- reason=-\n"
        );
    }

    #[test]
    fn json_line_is_one_object() {
        let mut failed = record();
        failed.status = 502;
        failed.upstream_addr = None;
        failed.connect_time = None;
        failed.server_name = Some("db.example.com");
        failed.reason = Some("upstream_connect_failed");
        let mut out = Vec::new();
        write_stream_line(AccessLogFormat::Json, &failed, &mut out);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["status"], 502);
        assert_eq!(value["client"], "192.0.2.7:51234");
        assert_eq!(value["upstream"], serde_json::Value::Null);
        assert_eq!(value["server_name"], "db.example.com");
        assert_eq!(value["reason"], "upstream_connect_failed");
        assert_eq!(value["bytes_received"], 512);
    }
}
