//! Parsing and checking a client's request head (request smuggling defence lives here).

use std::cell::RefCell;
use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Version};

use super::decode::BodyFraming;
use super::{is_hop_by_hop, tokens, trim_ows};
use strait_http::Reason;

/// Most header slots the parser offers; `limits.max_headers` is capped by it.
const MAX_HEADER_SLOTS: usize = 256;

/// Size limits applied while reading a request head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Largest request head in bytes (431 beyond).
    pub max_header_bytes: usize,
    /// Longest request target in bytes (414 beyond).
    pub max_uri_bytes: usize,
    /// Most header fields (431 beyond).
    pub max_headers: usize,
}

/// A parsed, normalized request head. `headers` holds end-to-end headers only.
#[derive(Debug)]
pub struct RequestHead {
    /// Request method.
    pub method: Method,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The request target as received (origin-form, or absolute-form for proxies).
    pub target: Bytes,
    /// Offset in `target` where the path starts (after `scheme://authority` in absolute-form).
    pub path_start: usize,
    /// Host from the absolute-form target or else the `Host` header, without port checks.
    pub host: Option<HeaderValue>,
    /// End-to-end headers (hop-by-hop and framing headers removed).
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub body: BodyFraming,
    /// The client sent `Expect: 100-continue`.
    pub expect_continue: bool,
    /// The client wants the connection kept open after this exchange.
    pub keep_alive: bool,
    /// The `Upgrade` header the client sent, if any (protocol switches are handled later).
    pub upgrade: Option<HeaderValue>,
}

impl RequestHead {
    /// The path and query of the target (`/a/b?x=1`).
    pub fn path_and_query(&self) -> &[u8] {
        &self.target[self.path_start..]
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        let pq = self.path_and_query();
        let end = pq.iter().position(|b| *b == b'?').unwrap_or(pq.len());
        if end == 0 {
            return "/";
        }
        // The target was checked to be ASCII when parsed.
        std::str::from_utf8(&pq[..end]).unwrap_or("/")
    }

    /// The query without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        let pq = self.path_and_query();
        let q = pq.iter().position(|b| *b == b'?')?;
        std::str::from_utf8(&pq[q + 1..]).ok()
    }

    /// The host name without port, for routing.
    pub fn host_name(&self) -> &str {
        let Some(host) = &self.host else { return "" };
        let host = host.to_str().unwrap_or("");
        strip_port(host)
    }

    /// The request target as text (for logs).
    pub fn target_str(&self) -> &str {
        std::str::from_utf8(&self.target).unwrap_or("-")
    }
}

/// Removes a `:port` suffix from a host, keeping IPv6 brackets intact.
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rfind(':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

/// Parses a request head at the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some(head))` after removing the head's
/// bytes from `buf` (the body, or a pipelined request, stays), or the reason to reject it.
pub fn parse_request_head(buf: &mut BytesMut, limits: &HeadLimits) -> Result<Option<RequestHead>, Reason> {
    let max_headers = limits.max_headers.min(MAX_HEADER_SLOTS);
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADER_SLOTS];
    let mut req = httparse::Request::new(&mut []);
    let status = match req.parse_with_uninit_headers(buf, &mut slots[..max_headers]) {
        Ok(status) => status,
        Err(httparse::Error::TooManyHeaders) => return Err(Reason::HeaderTooLarge),
        Err(httparse::Error::Token) if req.path.is_some_and(|p| p.len() > limits.max_uri_bytes) => {
            return Err(Reason::UriTooLong)
        }
        Err(_) => return Err(Reason::BadRequest),
    };
    let head_len = match status {
        httparse::Status::Partial => {
            if buf.len() > limits.max_header_bytes {
                return Err(oversized_partial_head(buf, limits));
            }
            return Ok(None);
        }
        httparse::Status::Complete(len) => len,
    };
    let target = req.path.unwrap_or("/");
    if target.len() > limits.max_uri_bytes {
        return Err(Reason::UriTooLong);
    }
    if head_len > limits.max_header_bytes {
        return Err(Reason::HeaderTooLarge);
    }
    let method = Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| Reason::BadRequest)?;
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(Reason::BadRequest),
    };
    let base = buf.as_ptr() as usize;
    let target_start = target.as_ptr() as usize - base;
    let target_range = target_start..target_start + target.len();
    HEADER_RANGES.with(|ranges| {
        let mut ranges = ranges.borrow_mut();
        ranges.clear();
        ranges.extend(req.headers.iter().map(|h| HeaderRange::of(base, h)));
    });
    let head = buf.split_to(head_len).freeze();
    HEADER_RANGES.with(|ranges| build_head(method, version, head.slice(target_range), &head, &ranges.borrow()))
}

/// Where one header's name and value lie in the head's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderRange {
    name: (u32, u32),
    value: (u32, u32),
}

impl HeaderRange {
    /// The ranges of a parsed header relative to the buffer starting at `base`.
    pub(crate) fn of(base: usize, header: &httparse::Header<'_>) -> HeaderRange {
        let name = header.name.as_ptr() as usize - base;
        let value = header.value.as_ptr() as usize - base;
        HeaderRange {
            name: (name as u32, (name + header.name.len()) as u32),
            value: (value as u32, (value + header.value.len()) as u32),
        }
    }

    /// The header's name bytes within `head`.
    pub(crate) fn name<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        &head[self.name.0 as usize..self.name.1 as usize]
    }

    /// The header's value as a shared slice of `head` (no copy).
    pub(crate) fn value(&self, head: &Bytes) -> Bytes {
        head.slice(self.value.0 as usize..self.value.1 as usize)
    }
}

thread_local! {
    /// Header positions of the head being parsed, reused across requests on a thread.
    pub(crate) static HEADER_RANGES: RefCell<Vec<HeaderRange>> = const { RefCell::new(Vec::new()) };
}

/// Chooses between 414 and 431 for a head that outgrew the buffer limit.
fn oversized_partial_head(buf: &[u8], limits: &HeadLimits) -> Reason {
    let line_end = buf.iter().position(|b| *b == b'\n').unwrap_or(buf.len());
    if line_end > limits.max_uri_bytes {
        Reason::UriTooLong
    } else {
        Reason::HeaderTooLarge
    }
}

/// What the framing headers said, gathered while building the header map.
#[derive(Default)]
struct Framing {
    content_length: Option<u64>,
    transfer_encoding: Option<Vec<u8>>,
    hosts: usize,
    host: Option<HeaderValue>,
    connection_close: bool,
    connection_keep_alive: bool,
    connection_names: Vec<HeaderName>,
    expect: Option<HeaderValue>,
    upgrade: Option<HeaderValue>,
}

/// Builds the typed head, applying the smuggling checks.
fn build_head(
    method: Method,
    version: Version,
    target: Bytes,
    head: &Bytes,
    ranges: &[HeaderRange],
) -> Result<Option<RequestHead>, Reason> {
    let mut headers = HeaderMap::with_capacity(ranges.len());
    let mut framing = Framing::default();
    for range in ranges {
        let name = HeaderName::from_bytes(range.name(head)).map_err(|_| Reason::BadRequest)?;
        let value = HeaderValue::from_maybe_shared(range.value(head)).map_err(|_| Reason::BadRequest)?;
        if value.as_bytes().iter().any(|b| *b < 0x20 && *b != b'\t' || *b == 0x7f) {
            return Err(Reason::BadRequest);
        }
        if name == header::CONTENT_LENGTH {
            if framing.content_length.is_some() {
                return Err(Reason::BadRequest);
            }
            framing.content_length = Some(parse_content_length(value.as_bytes())?);
        } else if name == header::TRANSFER_ENCODING {
            let te = framing.transfer_encoding.get_or_insert_with(Vec::new);
            if !te.is_empty() {
                te.push(b',');
            }
            te.extend_from_slice(value.as_bytes());
        } else if name == header::HOST {
            framing.hosts += 1;
            framing.host = Some(value.clone());
            headers.append(name, value);
        } else if name == header::CONNECTION {
            for token in tokens(value.as_bytes()) {
                if token.eq_ignore_ascii_case(b"close") {
                    framing.connection_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    framing.connection_keep_alive = true;
                } else if let Ok(named) = HeaderName::from_bytes(token) {
                    framing.connection_names.push(named);
                }
            }
        } else if name == header::EXPECT {
            framing.expect = Some(value);
        } else if name == header::UPGRADE {
            framing.upgrade = Some(value);
        } else if !is_hop_by_hop(&name) {
            headers.append(name, value);
        }
    }
    for named in &framing.connection_names {
        if named != header::HOST {
            headers.remove(named);
        }
    }
    if framing.hosts > 1 {
        return Err(Reason::BadRequest);
    }
    let body = body_framing(version, &framing)?;
    let (path_start, host) = split_target(&target, framing.host)?;
    if version == Version::HTTP_11 && host.is_none() {
        return Err(Reason::BadRequest);
    }
    let expect_continue = match &framing.expect {
        None => false,
        Some(v) if v.as_bytes().eq_ignore_ascii_case(b"100-continue") => version == Version::HTTP_11,
        Some(_) => return Err(Reason::BadRequest),
    };
    let keep_alive = match version {
        Version::HTTP_11 => !framing.connection_close,
        _ => framing.connection_keep_alive && !framing.connection_close,
    };
    Ok(Some(RequestHead {
        method,
        version,
        target,
        path_start,
        host,
        headers,
        body,
        expect_continue,
        keep_alive,
        upgrade: framing.upgrade,
    }))
}

/// Parses a Content-Length value: digits only, no lists, no sign.
fn parse_content_length(value: &[u8]) -> Result<u64, Reason> {
    let value = trim_ows(value);
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Reason::BadRequest);
    }
    value.iter().try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0'))).ok_or(Reason::BadRequest)
}

/// Decides the body framing (RFC 9112 §6.3), rejecting every ambiguous combination.
fn body_framing(version: Version, framing: &Framing) -> Result<BodyFraming, Reason> {
    match (&framing.transfer_encoding, framing.content_length) {
        (Some(_), Some(_)) => Err(Reason::BadRequest),
        (Some(_), None) if version == Version::HTTP_10 => Err(Reason::BadRequest),
        (Some(te), None) => {
            let codings: Vec<&[u8]> = tokens(te).collect();
            match codings.as_slice() {
                [only] if only.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
                [.., last] if last.eq_ignore_ascii_case(b"chunked") => {
                    if codings[..codings.len() - 1].iter().any(|c| c.eq_ignore_ascii_case(b"chunked")) {
                        Err(Reason::BadRequest)
                    } else {
                        Err(Reason::UnsupportedTransferEncoding)
                    }
                }
                _ => Err(Reason::BadRequest),
            }
        }
        (None, Some(0)) | (None, None) => Ok(BodyFraming::Empty),
        (None, Some(n)) => Ok(BodyFraming::Length(n)),
    }
}

/// Finds where the path starts in the target and which host applies.
fn split_target(target: &Bytes, host_header: Option<HeaderValue>) -> Result<(usize, Option<HeaderValue>), Reason> {
    if target.starts_with(b"/") {
        return Ok((0, host_header));
    }
    if target.as_ref() == b"*" {
        return Ok((0, host_header));
    }
    let scheme_end = if target.len() > 7 && target[..7].eq_ignore_ascii_case(b"http://") {
        7
    } else if target.len() > 8 && target[..8].eq_ignore_ascii_case(b"https://") {
        8
    } else {
        return Err(Reason::BadRequest);
    };
    let rest = &target[scheme_end..];
    let authority_len = rest.iter().position(|b| matches!(b, b'/' | b'?')).unwrap_or(rest.len());
    if authority_len == 0 || rest[..authority_len].contains(&b'@') {
        return Err(Reason::BadRequest);
    }
    let authority = HeaderValue::from_maybe_shared(target.slice(scheme_end..scheme_end + authority_len))
        .map_err(|_| Reason::BadRequest)?;
    // `http://host` has an empty path; `RequestHead::path` reads it as "/".
    Ok((scheme_end + authority_len, Some(authority)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HeadLimits {
        HeadLimits { max_header_bytes: 16 * 1024, max_uri_bytes: 8 * 1024, max_headers: 100 }
    }

    fn parse(raw: &str) -> Result<Option<RequestHead>, Reason> {
        let mut buf = BytesMut::from(raw.as_bytes());
        parse_request_head(&mut buf, &limits())
    }

    #[test]
    fn simple_get_parses_and_keeps_pipelined_bytes() {
        let mut buf = BytesMut::from(&b"GET /a?b=1 HTTP/1.1\r\nHost: x.test:8080\r\nX-A: 1\r\n\r\nGET /next"[..]);
        let head = parse_request_head(&mut buf, &limits()).unwrap().unwrap();
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.path(), "/a");
        assert_eq!(head.query(), Some("b=1"));
        assert_eq!(head.host_name(), "x.test");
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"GET /next");
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert!(parse("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
    }

    #[test]
    fn smuggling_shapes_are_rejected() {
        let cases = [
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n",
        ];
        for raw in cases {
            assert!(parse(raw).is_err(), "accepted {raw:?}");
        }
    }

    #[test]
    fn unknown_coding_before_chunked_is_not_implemented() {
        let raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(parse(raw).unwrap_err(), Reason::UnsupportedTransferEncoding);
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let raw = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nProxy-Connection: x\r\nX-Keep: 1\r\n\r\n";
        let head = parse(raw).unwrap().unwrap();
        let names: Vec<&str> = head.headers.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["host", "x-keep"]);
    }

    #[test]
    fn limits_give_414_and_431() {
        let long_uri = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
        assert_eq!(parse(&long_uri).unwrap_err(), Reason::UriTooLong);
        let big_header = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "a".repeat(17000));
        assert_eq!(parse(&big_header).unwrap_err(), Reason::HeaderTooLarge);
        let many: String = (0..120).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert_eq!(parse(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")).unwrap_err(), Reason::HeaderTooLarge);
    }

    #[test]
    fn absolute_form_takes_host_from_target() {
        let head = parse("GET http://example.test:81/x?y HTTP/1.1\r\nHost: other\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.host_name(), "example.test");
        assert_eq!(head.path_and_query(), b"/x?y");
    }

    #[test]
    fn framing_is_recorded() {
        let head =
            parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.body, BodyFraming::Length(12));
        assert!(head.expect_continue);
        assert!(head.headers.get("content-length").is_none());
        let head = parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.body, BodyFraming::Chunked);
        let head = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive);
    }
}
