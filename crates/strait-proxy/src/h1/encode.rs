//! Serializing heads onto the wire, straight into a byte buffer.

use bytes::{BufMut, BytesMut};
use http::{HeaderMap, StatusCode, Version};

use super::decode::BodyFraming;

/// How a serialized message announces its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFraming {
    /// No body and no framing header (HEAD answers, 204, 304, bodyless requests).
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// No framing header; the body ends when the connection closes.
    Close,
}

/// Writes a status line and headers for a client.
///
/// `keep_alive` says whether the connection stays open; HTTP/1.0 clients are told so
/// explicitly, HTTP/1.1 clients are told when it closes.
pub fn write_response_head(
    out: &mut BytesMut,
    client_version: Version,
    status: StatusCode,
    headers: &HeaderMap,
    framing: OutFraming,
    keep_alive: bool,
) {
    out.reserve(256);
    if client_version == Version::HTTP_10 {
        out.put_slice(b"HTTP/1.0 ");
    } else {
        out.put_slice(b"HTTP/1.1 ");
    }
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.put_slice(b"\r\n");
    write_headers(out, headers);
    write_framing(out, framing);
    match (client_version, keep_alive) {
        (Version::HTTP_10, true) => out.put_slice(b"connection: keep-alive\r\n"),
        (Version::HTTP_10, false) => {}
        (_, false) => out.put_slice(b"connection: close\r\n"),
        (_, true) => {}
    }
    out.put_slice(b"\r\n");
}

/// The framing a response to this client gets for a body framed as `body` upstream.
pub fn response_framing(client_version: Version, body: BodyFraming) -> OutFraming {
    match body {
        BodyFraming::Empty => OutFraming::None,
        BodyFraming::Length(n) => OutFraming::Length(n),
        BodyFraming::Chunked | BodyFraming::UntilClose if client_version == Version::HTTP_11 => OutFraming::Chunked,
        BodyFraming::Chunked | BodyFraming::UntilClose => OutFraming::Close,
    }
}

fn write_headers(out: &mut BytesMut, headers: &HeaderMap) {
    for (name, value) in headers {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
}

/// Writes the header that announces a body's framing, if it needs one.
pub(crate) fn write_framing(out: &mut BytesMut, framing: OutFraming) {
    match framing {
        OutFraming::None | OutFraming::Close => {}
        OutFraming::Length(n) => {
            out.put_slice(b"content-length: ");
            out.put_slice(itoa_buf(n).as_bytes());
            out.put_slice(b"\r\n");
        }
        OutFraming::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
    }
}

/// Formats a number without going through `fmt` machinery.
fn itoa_buf(mut n: u64) -> DigitBuf {
    let mut buf = DigitBuf { bytes: [0; 20], start: 20 };
    loop {
        buf.start -= 1;
        buf.bytes[buf.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return buf;
        }
    }
}

/// Decimal digits of a number, right-aligned in a fixed array.
struct DigitBuf {
    bytes: [u8; 20],
    start: usize,
}

impl DigitBuf {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn response_head_for_http10_keep_alive() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("1"));
        let mut out = BytesMut::new();
        write_response_head(&mut out, Version::HTTP_10, StatusCode::OK, &headers, OutFraming::Length(12), true);
        assert_eq!(&out[..], b"HTTP/1.0 200 OK\r\nx-a: 1\r\ncontent-length: 12\r\nconnection: keep-alive\r\n\r\n");
    }
}
