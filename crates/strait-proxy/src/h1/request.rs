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
    /// Host from the absolute-form target or else the `Host` header, checked and normalized
    /// (see [`normalize_host`]); a normalized `Host` header replaces the received one.
    pub host: Option<HeaderValue>,
    /// End-to-end headers (hop-by-hop and framing headers removed).
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub body: BodyFraming,
    /// The client sent `Expect: 100-continue`.
    pub expect_continue: bool,
    /// The client wants the connection kept open after this exchange.
    pub keep_alive: bool,
    /// The `Upgrade` header the client sent with `Connection: upgrade`, if any (WebSocket).
    pub upgrade: Option<HeaderValue>,
    /// The `Proxy-Authorization` field, for a forward proxy's authentication (never forwarded).
    pub proxy_authorization: Option<HeaderValue>,
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

    /// The header's value as a [`HeaderValue`] sharing `head`'s bytes (see
    /// [`value_from_parser`]): for ranges httparse found.
    pub(super) fn header_value(&self, head: &Bytes) -> HeaderValue {
        value_from_parser(self.value(head))
    }
}

/// A field value httparse accepted, as a [`HeaderValue`]: an ASCII value (nearly all of them)
/// without checking its bytes a second time, any other through the checked constructor.
///
/// Only for values from the two head parsers, whose httparse (in its default, strict
/// configuration) has already refused every byte a `HeaderValue` may not hold (control
/// characters but HTAB, DEL; the value ends before CR or LF): other bytes would make a value
/// `HeaderValue` would have refused.
#[allow(unsafe_code)]
pub(super) fn value_from_parser(value: Bytes) -> HeaderValue {
    if !value.is_ascii() {
        // obs-text (0x80..=0xFF) is allowed but not UTF-8, which the unchecked constructor's
        // contract asks for.
        return HeaderValue::from_maybe_shared(value).expect("httparse refused what HeaderValue refuses");
    }
    // SAFETY: `from_maybe_shared_unchecked` requires valid UTF-8, and ASCII is. (That the
    // bytes are also ones a `HeaderValue` may hold is this function's precondition, met by
    // httparse; debug builds, the tests among them, check it again and panic otherwise.) The
    // checked constructor scans every byte again, one at a time: 900 of a plain request's
    // 22,200 instructions under callgrind (4%), 690 of a gateway request's with a 600-byte
    // bearer token; `is_ascii` looks at a word at a time.
    unsafe { HeaderValue::from_maybe_shared_unchecked(value) }
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
    proxy_authorization: Option<HeaderValue>,
}

/// Builds the typed head, applying the smuggling checks.
fn build_head(
    method: Method,
    version: Version,
    target: Bytes,
    head: &Bytes,
    ranges: &[HeaderRange],
) -> Result<Option<RequestHead>, Reason> {
    let mut headers = crate::buffers::headers(ranges.len());
    let mut framing = Framing::default();
    for range in ranges {
        let name = HeaderName::from_bytes(range.name(head)).map_err(|_| Reason::BadRequest)?;
        let value = range.header_value(head);
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
        } else if name == header::PROXY_AUTHORIZATION {
            // Two sets of credentials: which one a proxy checks, and which one a later proxy
            // would, is ambiguous.
            if framing.proxy_authorization.replace(value).is_some() {
                return Err(Reason::BadRequest);
            }
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
    // HTTP/1.1 needs `Host` even with an absolute-form target (RFC 9112 §3.2), and a `Host`
    // that is there must be valid even when the target's authority replaces it.
    if version == Version::HTTP_11 && framing.host.is_none() {
        return Err(Reason::BadRequest);
    }
    let host_field = match framing.host.take() {
        Some(value) => match normalize_host(&value)? {
            Some(normalized) => {
                headers.insert(header::HOST, normalized.clone());
                Some(normalized)
            }
            None => Some(value),
        },
        None => None,
    };
    let body = body_framing(version, &framing)?;
    // A CONNECT request has no content (RFC 9110 §9.3.6): what follows its head is the
    // tunnel's, so a framing field on it could only smuggle a second reading.
    // (`Content-Length: 0`, which some clients send, says there is none and is let through.)
    if method == Method::CONNECT
        && (framing.content_length.is_some_and(|n| n != 0) || framing.transfer_encoding.is_some())
    {
        return Err(Reason::BadRequest);
    }
    let (path_start, host) = split_target(&method, &target, host_field)?;
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
        // `Upgrade` means something only when `Connection` names it (RFC 9110 §7.8).
        upgrade: framing.upgrade.filter(|_| framing.connection_names.contains(&header::UPGRADE)),
        proxy_authorization: framing.proxy_authorization,
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

/// Finds where the path starts in the target and which host applies: the absolute-form
/// target's authority (checked and normalized) wins over the `Host` header (RFC 9112 §3.2.2).
///
/// A fragment (`#`) or a byte that is not ASCII anywhere in the target, and `*` with any
/// method but `OPTIONS`, are refused. CONNECT takes the authority-form (`host:port`, the port
/// required) and nothing else; no other method may use it.
fn split_target(
    method: &Method,
    target: &Bytes,
    host_header: Option<HeaderValue>,
) -> Result<(usize, Option<HeaderValue>), Reason> {
    if target.iter().any(|b| *b == b'#' || !b.is_ascii()) {
        return Err(Reason::BadRequest);
    }
    if method == Method::CONNECT {
        return connect_authority(target).map(|authority| (target.len(), Some(authority)));
    }
    if target.starts_with(b"/") {
        return Ok((0, host_header));
    }
    if target.as_ref() == b"*" {
        if method != Method::OPTIONS {
            return Err(Reason::BadRequest);
        }
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
    let authority = normalize_host(&authority)?.unwrap_or(authority);
    // `http://host` has an empty path; `RequestHead::path` reads it as "/".
    Ok((scheme_end + authority_len, Some(authority)))
}

/// The authority of a CONNECT target (RFC 9112 §3.2.3): a host and a port, nothing before or
/// after them, checked and normalized like a `Host` field.
fn connect_authority(target: &Bytes) -> Result<HeaderValue, Reason> {
    if target.is_empty() || target.iter().any(|b| matches!(b, b'/' | b'?' | b'@')) {
        return Err(Reason::BadRequest);
    }
    let authority = HeaderValue::from_maybe_shared(target.clone()).map_err(|_| Reason::BadRequest)?;
    let (_, port) = split_host_port(authority.as_bytes())?;
    if port.is_none_or(|p| p.is_empty()) {
        return Err(Reason::BadRequest);
    }
    Ok(normalize_host(&authority)?.unwrap_or(authority))
}

// === Host syntax ===

/// Checks a host with optional port (a `Host` value or an absolute-form authority) and
/// returns its normalized form, or `None` when it is normal already (the common case, which
/// allocates nothing).
///
/// The host is an IP literal (`[v6]`, checked as an IPv6 address) or a reg-name of RFC 3986
/// characters (unreserved, sub-delims, percent-encoded): dotted IPv4 addresses are reg-names
/// too. No `@`, no spaces, not empty. The port, when a `:` is there, is 1 to 5 digits up to
/// 65535. Normal means lower case, percent-encoded unreserved characters decoded (any other
/// escape is refused: it has no place in a host name and could hide a `/` or `@`), and no
/// trailing dot on a name (`example.com.` is `example.com`; a name cannot end in two dots).
pub fn normalize_host(value: &HeaderValue) -> Result<Option<HeaderValue>, Reason> {
    let bytes = value.as_bytes();
    let (name, port) = split_host_port(bytes)?;
    if let Some(port) = port {
        let digits_ok = (1..=5).contains(&port.len()) && port.iter().all(u8::is_ascii_digit);
        if !digits_ok || port.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) > 65_535 {
            return Err(Reason::BadRequest);
        }
    }
    let changed = if name.starts_with(b"[") { check_ip_literal(name)? } else { check_reg_name(name)? };
    if !changed {
        return Ok(None);
    }
    let mut normalized = Vec::with_capacity(bytes.len());
    if name.starts_with(b"[") {
        normalized.extend(name.iter().map(u8::to_ascii_lowercase));
    } else {
        let mut i = 0;
        while i < name.len() {
            if name[i] == b'%' {
                // Checked by `check_reg_name`: two hex digits of an unreserved character.
                normalized.push((hex_value(name[i + 1]) << 4 | hex_value(name[i + 2])).to_ascii_lowercase());
                i += 3;
            } else {
                normalized.push(name[i].to_ascii_lowercase());
                i += 1;
            }
        }
        if normalized.last() == Some(&b'.') {
            normalized.pop();
        }
    }
    normalized.extend_from_slice(&bytes[name.len()..]);
    HeaderValue::from_maybe_shared(Bytes::from(normalized)).map(Some).map_err(|_| Reason::BadRequest)
}

/// Splits `host[:port]`; the port is `Some` whenever a `:` follows the host (possibly empty).
fn split_host_port(bytes: &[u8]) -> Result<(&[u8], Option<&[u8]>), Reason> {
    let name_end = if bytes.starts_with(b"[") {
        bytes.iter().position(|b| *b == b']').ok_or(Reason::BadRequest)? + 1
    } else {
        bytes.iter().position(|b| *b == b':').unwrap_or(bytes.len())
    };
    let (name, rest) = bytes.split_at(name_end);
    match rest {
        [] => Ok((name, None)),
        [b':', port @ ..] => Ok((name, Some(port))),
        _ => Err(Reason::BadRequest),
    }
}

/// Checks `[v6]`; returns whether it has upper-case hex to lower.
fn check_ip_literal(name: &[u8]) -> Result<bool, Reason> {
    let inner = &name[1..name.len() - 1];
    let text = std::str::from_utf8(inner).map_err(|_| Reason::BadRequest)?;
    text.parse::<std::net::Ipv6Addr>().map_err(|_| Reason::BadRequest)?;
    Ok(inner.iter().any(u8::is_ascii_uppercase))
}

/// Checks a reg-name; returns whether normalizing changes it.
fn check_reg_name(name: &[u8]) -> Result<bool, Reason> {
    let mut changed = false;
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                let (Some(&high), Some(&low)) = (name.get(i + 1), name.get(i + 2)) else {
                    return Err(Reason::BadRequest);
                };
                if !high.is_ascii_hexdigit() || !low.is_ascii_hexdigit() {
                    return Err(Reason::BadRequest);
                }
                if !is_unreserved(hex_value(high) << 4 | hex_value(low)) {
                    return Err(Reason::BadRequest);
                }
                changed = true;
                i += 3;
            }
            byte if REG_NAME_BYTE[usize::from(byte)] => {
                changed |= byte.is_ascii_uppercase();
                i += 1;
            }
            _ => return Err(Reason::BadRequest),
        }
    }
    // The name must hold something besides at most one trailing dot (`.` or `%2E`).
    let dot = trailing_dot_len(name);
    let stem = &name[..name.len() - dot];
    if stem.is_empty() || trailing_dot_len(stem) > 0 {
        return Err(Reason::BadRequest);
    }
    Ok(changed || dot > 0)
}

/// How many bytes of a checked reg-name spell a trailing dot: 0, 1 (`.`) or 3 (`%2E`).
fn trailing_dot_len(name: &[u8]) -> usize {
    match name {
        [.., b'.'] => 1,
        [.., b'%', b'2', b'e' | b'E'] => 3,
        _ => 0,
    }
}

/// Bytes a reg-name holds as they are: RFC 3986 `unreserved` and `sub-delims`.
const REG_NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let byte = i as u8;
        table[i] = is_unreserved(byte) || is_sub_delim(byte);
        i += 1;
    }
    table
};

/// RFC 3986 `unreserved`.
const fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `sub-delims`.
const fn is_sub_delim(byte: u8) -> bool {
    matches!(byte, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

/// The value of a hex digit already checked to be one.
fn hex_value(digit: u8) -> u8 {
    (digit as char).to_digit(16).unwrap_or(0) as u8
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

    /// The request parser keeps exactly the field-value bytes `HeaderValue` allows.
    #[test]
    fn field_values_hold_exactly_the_bytes_a_header_value_may() {
        super::super::test_support::field_values_match_header_value(b"GET / HTTP/1.1\r\nHost: a\r\n", |raw| {
            parse_request_head(&mut BytesMut::from(raw), &limits()).ok().flatten().map(|head| head.headers)
        });
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
    fn connect_takes_the_authority_form_only() {
        let head = parse("CONNECT Example.TEST:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.method, Method::CONNECT);
        assert_eq!(head.host.as_ref().unwrap(), "example.test:443");
        assert_eq!(head.path_and_query(), b"");
        assert!(matches!(head.body, BodyFraming::Empty));
        let zero = parse("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nContent-Length: 0\r\n\r\n");
        assert!(zero.unwrap().is_some(), "a zero length says there is no content");
        let head = parse("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.host.as_ref().unwrap(), "[::1]:8443");
        let refused = [
            // No port, an empty port, a path, userinfo, origin- and absolute-form.
            "CONNECT example.test HTTP/1.1\r\nHost: example.test\r\n\r\n",
            "CONNECT example.test: HTTP/1.1\r\nHost: example.test\r\n\r\n",
            "CONNECT example.test:443/x HTTP/1.1\r\nHost: example.test\r\n\r\n",
            "CONNECT user@example.test:443 HTTP/1.1\r\nHost: example.test\r\n\r\n",
            "CONNECT / HTTP/1.1\r\nHost: example.test\r\n\r\n",
            "CONNECT http://example.test:443/ HTTP/1.1\r\nHost: example.test\r\n\r\n",
            "CONNECT :443 HTTP/1.1\r\nHost: example.test\r\n\r\n",
            "CONNECT example.test:99999 HTTP/1.1\r\nHost: example.test\r\n\r\n",
            // Content on a CONNECT could be read as the next request by someone (a zero length
            // is accepted: see below).
            "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\n",
            "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n",
            // Only CONNECT takes the authority-form.
            "GET example.test:443 HTTP/1.1\r\nHost: example.test\r\n\r\n",
        ];
        for raw in refused {
            assert_eq!(parse(raw).unwrap_err(), Reason::BadRequest, "accepted {raw:?}");
        }
    }

    #[test]
    fn proxy_authorization_is_kept_apart_and_only_once() {
        let raw = "GET http://a/ HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Basic dTpw\r\n\r\n";
        let head = parse(raw).unwrap().unwrap();
        assert_eq!(head.proxy_authorization.unwrap(), "Basic dTpw");
        assert!(!head.headers.contains_key(header::PROXY_AUTHORIZATION));
        let twice = "GET / HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Basic a\r\nProxy-Authorization: Basic b\r\n\r\n";
        assert_eq!(parse(twice).unwrap_err(), Reason::BadRequest);
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

    /// The normalized form of `host`, `None` when already normal, or the refusal.
    fn host(host: &str) -> Result<Option<String>, Reason> {
        let value = HeaderValue::from_str(host).expect("a header value");
        normalize_host(&value).map(|n| n.map(|v| v.to_str().unwrap().to_owned()))
    }

    #[test]
    fn normal_hosts_are_kept_as_they_are() {
        for normal in [
            "a",
            "api.example.com",
            "api.example.com:8080",
            "127.0.0.1",
            "127.0.0.1:0",
            "[::1]",
            "[2001:db8::a]:443",
            "under_score.test",
            "x-y.test:65535",
            "a~b!$&'()*+,;=.test",
            "a..b",
        ] {
            assert_eq!(host(normal), Ok(None), "{normal:?}");
        }
    }

    #[test]
    fn hosts_are_lower_cased_decoded_and_lose_a_trailing_dot() {
        for (given, want) in [
            ("Example.COM", "example.com"),
            ("example.com.", "example.com"),
            ("Example.com.:8080", "example.com:8080"),
            ("%61pi.test", "api.test"),
            ("%41PI.test%2E", "api.test"),
            ("[::ABC]:80", "[::abc]:80"),
        ] {
            assert_eq!(host(given), Ok(Some(want.to_owned())), "{given:?}");
        }
    }

    #[test]
    fn malformed_hosts_are_refused() {
        for bad in [
            "",
            ".",
            ":80",
            "a..",
            "a.%2e",
            "a b",
            "user@host",
            "a/b",
            "a\\b",
            "a\"b",
            "a?b",
            "a%00b",
            "a%2Fb",
            "a%40b",
            "a%zz",
            "a%4",
            "a:",
            "a:65536",
            "a:123456",
            "a:8x",
            "a:-1",
            "a:+80",
            "a:80:80",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[zz::1]",
            "[v1.future]",
            "[fe80::1%25eth0]",
            "[127.0.0.1]",
            "::1",
        ] {
            assert_eq!(host(bad), Err(Reason::BadRequest), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_normalized_host_replaces_the_host_header() {
        let head = parse("GET / HTTP/1.1\r\nHost: WWW.Example.COM.:8080\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.headers["host"], "www.example.com:8080");
        assert_eq!(head.host.as_ref().unwrap(), "www.example.com:8080");
        assert_eq!(head.host_name(), "www.example.com");
        let head = parse("GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.headers["host"], "plain.test");
    }

    #[test]
    fn requests_with_a_bad_host_are_refused() {
        for raw in [
            "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a:\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: \r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a b\r\n\r\n",
            "GET http://a:99999/ HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET http://a%2Fb/ HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET http://ok.test/ HTTP/1.1\r\nHost: bad host\r\n\r\n",
        ] {
            assert_eq!(parse(raw).unwrap_err(), Reason::BadRequest, "accepted {raw:?}");
        }
    }

    #[test]
    fn absolute_form_authority_wins_and_still_needs_a_host_header() {
        let head = parse("GET HTTP://Proxy.Test.:81/x HTTP/1.1\r\nHost: other.test\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.host.as_ref().unwrap(), "proxy.test:81");
        assert_eq!(head.path_and_query(), b"/x");
        assert_eq!(parse("GET http://a.test/ HTTP/1.1\r\n\r\n").unwrap_err(), Reason::BadRequest);
        let head = parse("GET http://a.test/ HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.host.as_ref().unwrap(), "a.test");
    }

    #[test]
    fn asterisk_form_is_for_options_only() {
        let head = parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.target_str(), "*");
        for method in ["GET", "POST", "HEAD", "DELETE"] {
            assert_eq!(parse(&format!("{method} * HTTP/1.1\r\nHost: a\r\n\r\n")).unwrap_err(), Reason::BadRequest);
        }
    }

    #[test]
    fn fragments_and_non_ascii_targets_are_refused() {
        for raw in [
            &b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET /a?x#frag HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET http://a/#x HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(raw);
            assert_eq!(
                parse_request_head(&mut buf, &limits()).unwrap_err(),
                Reason::BadRequest,
                "accepted {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
