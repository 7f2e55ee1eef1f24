//! Parsing an upstream's response head.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Version};

use super::decode::BodyFraming;
use super::request::{value_from_parser, HeaderRange, HEADER_RANGES};
use super::{is_hop_by_hop, tokens, trim_ows};

/// Most header fields accepted from an upstream.
const MAX_RESPONSE_HEADERS: usize = 200;

/// A parsed upstream response head. `headers` holds end-to-end headers only.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status code.
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// End-to-end headers.
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub body: BodyFraming,
    /// The upstream connection may be reused after this response.
    pub keep_alive: bool,
}

/// Why an upstream response head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidResponse;

/// Parses a response head at the start of `buf`, removing it from `buf` when complete.
///
/// `request_method` decides whether a body can follow (HEAD, and 1xx/204/304 never have one).
pub fn parse_response_head(
    buf: &mut BytesMut,
    request_method: &Method,
    max_bytes: usize,
) -> Result<Option<ResponseHead>, InvalidResponse> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let head_len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_bytes => return Err(InvalidResponse),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(InvalidResponse),
    };
    let status = StatusCode::from_u16(res.code.unwrap_or(0)).map_err(|_| InvalidResponse)?;
    let version = if res.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let base = buf.as_ptr() as usize;
    HEADER_RANGES.with(|ranges| {
        let mut ranges = ranges.borrow_mut();
        ranges.clear();
        ranges.extend(res.headers.iter().map(|h| HeaderRange::of(base, h)));
    });
    let head = buf.split_to(head_len).freeze();
    HEADER_RANGES.with(|ranges| build_head(status, version, &head, &ranges.borrow(), request_method))
}

/// Builds the typed response head from the parsed header positions.
fn build_head(
    status: StatusCode,
    version: Version,
    head: &Bytes,
    ranges: &[HeaderRange],
    request_method: &Method,
) -> Result<Option<ResponseHead>, InvalidResponse> {
    let mut headers = crate::buffers::headers(ranges.len());
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut close = version == Version::HTTP_10;
    let mut connection_names: Vec<HeaderName> = Vec::new();
    for range in ranges {
        let name = HeaderName::from_bytes(range.name(head)).map_err(|_| InvalidResponse)?;
        let value = range.value(head);
        if name == header::CONTENT_LENGTH {
            let n = parse_length(&value).ok_or(InvalidResponse)?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(InvalidResponse);
            }
            content_length = Some(n);
        } else if name == header::TRANSFER_ENCODING {
            chunked = tokens(&value).last().is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
            if !chunked {
                close = true;
            }
        } else if name == header::CONNECTION {
            for token in tokens(&value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    // An HTTP/1.0 upstream's keep-alive is not trusted: its connection is
                    // never pooled, whatever it says.
                } else if let Ok(named) = HeaderName::from_bytes(token) {
                    connection_names.push(named);
                }
            }
        } else if !is_hop_by_hop(&name) {
            headers.append(name, value_from_parser(value));
        }
    }
    for named in &connection_names {
        headers.remove(named);
    }
    let no_body = request_method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if chunked && content_length.is_some() {
        // Both framings at once (RFC 9112 §6.3): follow chunked, but never reuse the connection.
        close = true;
    }
    let body = if no_body {
        BodyFraming::Empty
    } else if chunked {
        BodyFraming::Chunked
    } else if let Some(n) = content_length {
        if n == 0 {
            BodyFraming::Empty
        } else {
            BodyFraming::Length(n)
        }
    } else {
        close = true;
        BodyFraming::UntilClose
    };
    if no_body {
        if let Some(n) = content_length {
            // Keep the advertised length of a HEAD response for the client.
            if request_method == Method::HEAD {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
        }
    }
    Ok(Some(ResponseHead { status, version, headers, body, keep_alive: !close }))
}

/// Parses a response Content-Length (identical duplicates in a list are tolerated).
fn parse_length(value: &[u8]) -> Option<u64> {
    let mut result: Option<u64> = None;
    for part in value.split(|b| *b == b',') {
        let part = trim_ows(part);
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) || part.len() > 19 {
            return None;
        }
        let n: u64 = std::str::from_utf8(part).ok()?.parse().ok()?;
        if result.is_some_and(|r| r != n) {
            return None;
        }
        result = Some(n);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, method: Method) -> ResponseHead {
        let mut buf = BytesMut::from(raw.as_bytes());
        parse_response_head(&mut buf, &method, 64 * 1024).unwrap().unwrap()
    }

    #[test]
    fn framing_follows_status_and_method() {
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::GET).body, BodyFraming::Length(5));
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::HEAD).body, BodyFraming::Empty);
        assert_eq!(parse("HTTP/1.1 204 No Content\r\n\r\n", Method::GET).body, BodyFraming::Empty);
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Method::GET).body,
            BodyFraming::Chunked
        );
        let close = parse("HTTP/1.1 200 OK\r\n\r\n", Method::GET);
        assert_eq!(close.body, BodyFraming::UntilClose);
        assert!(!close.keep_alive);
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let head = parse(
            "HTTP/1.1 200 OK\r\nConnection: x-a\r\nX-A: 1\r\nKeep-Alive: 1\r\nX-B: 2\r\nContent-Length: 0\r\n\r\n",
            Method::GET,
        );
        let names: Vec<&str> = head.headers.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["x-b"]);
        assert!(head.keep_alive);
    }

    /// The response parser keeps exactly the field-value bytes `HeaderValue` allows.
    #[test]
    fn field_values_hold_exactly_the_bytes_a_header_value_may() {
        super::super::test_support::field_values_match_header_value(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
            |raw| {
                parse_response_head(&mut BytesMut::from(raw), &Method::GET, 1024)
                    .ok()
                    .flatten()
                    .map(|head| head.headers)
            },
        );
    }

    #[test]
    fn conflicting_lengths_are_invalid() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..]);
        assert!(parse_response_head(&mut buf, &Method::GET, 1024).is_err());
    }
}
