//! HTTP/1.x wire format: request and response heads, body framing and decoding, encoding.
//!
//! Heads are parsed with `httparse` into `http` types so that HTTP/2 shares one request model.
//! Hop-by-hop headers never enter that model: the parser removes them and records what they
//! meant (framing, keep-alive, `Expect`, `Upgrade`) in typed fields.

pub mod decode;
pub mod encode;
pub mod request;
pub mod response;

pub use decode::BodyFraming;
pub use request::{parse_request_head, HeadLimits, RequestHead};
pub use response::{parse_response_head, ResponseHead};

/// Header names that are hop-by-hop by themselves (`Proxy-*` among them); the ones a
/// `Connection` field names are found from its value.
pub(crate) fn is_hop_by_hop(name: &http::HeaderName) -> bool {
    // One look at the text: the length picks the few candidates, where a comparison with each
    // name in turn would take every field of every message through all of them.
    matches!(
        name.as_str().as_bytes(),
        b"connection"
            | b"te"
            | b"trailer"
            | b"transfer-encoding"
            | b"upgrade"
            | b"keep-alive"
            | [b'p', b'r', b'o', b'x', b'y', b'-', ..]
    )
}

/// Fields that describe a connection or a message's framing rather than its content: never
/// copied from the neutral model onto the wire, whoever put them there.
pub(crate) fn is_framing(name: &http::HeaderName) -> bool {
    name == http::header::CONTENT_LENGTH || is_hop_by_hop(name)
}

/// Splits a comma-separated header value into trimmed, non-empty tokens.
pub(crate) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(trim_ows).filter(|t| !t.is_empty())
}

/// Removes optional whitespace (spaces and tabs) around a value.
pub(crate) fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// What the head parsers' tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use http::{HeaderMap, HeaderValue};

    /// Every byte value at several places in a 70-byte field value (httparse checks values by
    /// one byte, by words and by SIMD blocks of 16 and 32): `parse`, given `head_start`, the
    /// field value of `x-v` and the head's end, parses exactly when `HeaderValue` would take
    /// the value (what `request::value_from_parser` relies on), and keeps the value as sent.
    pub(crate) fn field_values_match_header_value(head_start: &[u8], parse: impl Fn(&[u8]) -> Option<HeaderMap>) {
        for byte in 0..=255u8 {
            if byte == b'\r' || byte == b'\n' {
                continue;
            }
            for at in [0, 1, 7, 8, 15, 16, 31, 32, 40, 68] {
                let mut value = vec![b'a'; 70];
                value[at] = byte;
                let raw = [head_start, b"X-V: ", &value, b"\r\n\r\n"].concat();
                let allowed = HeaderValue::from_bytes(&value).is_ok();
                match parse(&raw) {
                    Some(headers) => {
                        assert!(allowed, "byte {byte:#04x} at {at} accepted");
                        // Leading whitespace is the field's, not the value's.
                        let leading_space = at == 0 && (byte == b' ' || byte == b'\t');
                        let kept = if leading_space { &value[1..] } else { &value[..] };
                        assert_eq!(headers["x-v"].as_bytes(), kept);
                    }
                    None => assert!(!allowed, "byte {byte:#04x} at {at} refused"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    #[test]
    fn hop_by_hop_names_are_told_from_the_rest() {
        for name in [
            "connection",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "keep-alive",
            "proxy-authorization",
            "proxy-authenticate",
            "proxy-connection",
            "proxy-x",
        ] {
            assert!(super::is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
        for name in
            ["content-length", "content-type", "host", "proxy", "tea", "x-connection", "upgrade-insecure-requests"]
        {
            assert!(!super::is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
        assert!(super::is_framing(&http::header::CONTENT_LENGTH));
    }
}
