//! Body framing and streaming: bodies are relayed piece by piece, never buffered whole.

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How a message body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the sender closes the connection (responses only).
    UntilClose,
}

impl BodyFraming {
    /// Whether a body follows the head.
    pub fn has_body(self) -> bool {
        !matches!(self, BodyFraming::Empty)
    }
}

/// Bounds on one body relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayLimits {
    /// Longest wait for the next bytes from the source.
    pub read_timeout: Duration,
    /// Longest wait for the destination to accept bytes.
    pub write_timeout: Duration,
    /// Largest body accepted; `0` for no limit.
    pub max_bytes: u64,
}

impl RelayLimits {
    /// Whether a body of `total` bytes is over `max_bytes` (never when there is no limit).
    fn exceeded_by(&self, total: u64) -> bool {
        self.max_bytes != 0 && total > self.max_bytes
    }
}

/// Why relaying a body stopped early.
#[derive(Debug)]
pub enum RelayError {
    /// The source sent nothing for `read_timeout`.
    ReadTimeout,
    /// The source failed or closed before the body ended.
    Read(io::Error),
    /// The source's chunked coding is malformed.
    Malformed,
    /// The body exceeded `max_bytes`.
    TooLarge,
    /// The destination failed or closed.
    Write(io::Error),
    /// The destination accepted nothing for `write_timeout`.
    WriteTimeout,
}

/// Size of one read from a body source.
const READ_CHUNK: usize = 64 * 1024;
/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;
/// Longest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;
/// Output is written once this much is pending.
const FLUSH_AT: usize = 32 * 1024;

/// Relays one body from `src` to `dst`.
///
/// `buf` holds bytes already read from `src` (after the head); bytes past the end of the body
/// stay in it. With `chunked_out` the body is re-encoded as chunks (and trailers are passed on);
/// otherwise it is written as raw bytes. Returns the number of body bytes relayed.
pub async fn relay_body<R, W>(
    src: &mut R,
    buf: &mut BytesMut,
    framing: BodyFraming,
    dst: &mut W,
    chunked_out: bool,
    limits: &RelayLimits,
) -> Result<u64, RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = Output { dst, pending: BytesMut::new(), chunked: chunked_out, timeout: limits.write_timeout };
    let total = match framing {
        BodyFraming::Empty => 0,
        BodyFraming::Length(n) => {
            if limits.exceeded_by(n) {
                return Err(RelayError::TooLarge);
            }
            relay_exact(src, buf, n, &mut out, limits).await?;
            n
        }
        BodyFraming::UntilClose => relay_until_close(src, buf, &mut out, limits).await?,
        BodyFraming::Chunked => return relay_chunked(src, buf, &mut out, limits).await,
    };
    if chunked_out {
        out.push(b"0\r\n\r\n");
    }
    out.flush().await?;
    Ok(total)
}

/// Coalesces small writes; large data goes straight to the destination.
struct Output<'a, W> {
    dst: &'a mut W,
    pending: BytesMut,
    chunked: bool,
    timeout: Duration,
}

impl<W: AsyncWrite + Unpin> Output<'_, W> {
    fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Writes one piece of body data, framed as a chunk when re-encoding.
    async fn data(&mut self, data: &[u8]) -> Result<(), RelayError> {
        if data.is_empty() {
            return Ok(());
        }
        if self.chunked {
            let mut size = [0u8; 20];
            let len = hex_line(data.len() as u64, &mut size);
            self.pending.extend_from_slice(&size[..len]);
        }
        if data.len() >= FLUSH_AT {
            self.flush().await?;
            self.write(data).await?;
        } else {
            self.pending.extend_from_slice(data);
        }
        if self.chunked {
            self.pending.extend_from_slice(b"\r\n");
        }
        if self.pending.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), RelayError> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.write(&pending).await?;
            self.pending = pending;
            self.pending.clear();
        }
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), RelayError> {
        match tokio::time::timeout(self.timeout, self.dst.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(RelayError::Write(e)),
            Err(_) => Err(RelayError::WriteTimeout),
        }
    }
}

/// Formats `n` as a chunk-size line (`1a2b\r\n`) into `out`, returning its length.
fn hex_line(n: u64, out: &mut [u8; 20]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
    for i in 0..digits {
        out[digits - 1 - i] = HEX[((n >> (i * 4)) & 0xf) as usize];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    digits + 2
}

/// Reads more bytes into `buf`, flushing pending output first so the peer is never starved.
async fn fill<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    src: &mut R,
    buf: &mut BytesMut,
    out: &mut Output<'_, W>,
    limits: &RelayLimits,
) -> Result<usize, RelayError> {
    out.flush().await?;
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(READ_CHUNK);
    }
    match tokio::time::timeout(limits.read_timeout, src.read_buf(buf)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(RelayError::Read(e)),
        Err(_) => Err(RelayError::ReadTimeout),
    }
}

fn unexpected_eof() -> RelayError {
    RelayError::Read(io::Error::new(io::ErrorKind::UnexpectedEof, "body ended early"))
}

/// Relays exactly `left` bytes of body data.
async fn relay_exact<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    src: &mut R,
    buf: &mut BytesMut,
    mut left: u64,
    out: &mut Output<'_, W>,
    limits: &RelayLimits,
) -> Result<(), RelayError> {
    while left > 0 {
        if buf.is_empty() && fill(src, buf, out, limits).await? == 0 {
            return Err(unexpected_eof());
        }
        let take = (buf.len() as u64).min(left) as usize;
        out.data(&buf[..take]).await?;
        buf.advance(take);
        left -= take as u64;
    }
    Ok(())
}

async fn relay_until_close<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    src: &mut R,
    buf: &mut BytesMut,
    out: &mut Output<'_, W>,
    limits: &RelayLimits,
) -> Result<u64, RelayError> {
    let mut total = 0u64;
    loop {
        if buf.is_empty() && fill(src, buf, out, limits).await? == 0 {
            return Ok(total);
        }
        total += buf.len() as u64;
        if limits.exceeded_by(total) {
            return Err(RelayError::TooLarge);
        }
        out.data(&buf[..]).await?;
        buf.clear();
    }
}

/// Ensures `buf` holds a complete line and returns its length including the line end.
async fn read_line<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    src: &mut R,
    buf: &mut BytesMut,
    out: &mut Output<'_, W>,
    limits: &RelayLimits,
    max: usize,
) -> Result<usize, RelayError> {
    let mut scanned = 0;
    loop {
        if let Some(pos) = buf[scanned..].iter().position(|b| *b == b'\n') {
            let end = scanned + pos;
            if end == 0 || buf[end - 1] != b'\r' {
                return Err(RelayError::Malformed);
            }
            return Ok(end + 1);
        }
        scanned = buf.len();
        if scanned > max {
            return Err(RelayError::Malformed);
        }
        if fill(src, buf, out, limits).await? == 0 {
            return Err(unexpected_eof());
        }
    }
}

/// Parses a chunk-size line (`1a;ext=1\r\n`).
fn parse_chunk_size(line: &[u8]) -> Result<u64, RelayError> {
    let line = &line[..line.len() - 2];
    let digits_end = line.iter().position(|b| !b.is_ascii_hexdigit()).unwrap_or(line.len());
    if digits_end == 0 || digits_end > 16 {
        return Err(RelayError::Malformed);
    }
    let rest = &line[digits_end..];
    let rest_ok = rest.is_empty() || super::trim_ows(rest).first() == Some(&b';');
    if !rest_ok || rest.iter().any(|b| *b < 0x20 && *b != b'\t') {
        return Err(RelayError::Malformed);
    }
    let text = std::str::from_utf8(&line[..digits_end]).map_err(|_| RelayError::Malformed)?;
    u64::from_str_radix(text, 16).map_err(|_| RelayError::Malformed)
}

async fn relay_chunked<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    src: &mut R,
    buf: &mut BytesMut,
    out: &mut Output<'_, W>,
    limits: &RelayLimits,
) -> Result<u64, RelayError> {
    let mut total = 0u64;
    loop {
        let line_len = read_line(src, buf, out, limits, MAX_LINE).await?;
        let size = parse_chunk_size(&buf[..line_len])?;
        buf.advance(line_len);
        if size == 0 {
            relay_trailers(src, buf, out, limits).await?;
            out.flush().await?;
            return Ok(total);
        }
        total = total.checked_add(size).ok_or(RelayError::Malformed)?;
        if limits.exceeded_by(total) {
            return Err(RelayError::TooLarge);
        }
        relay_exact(src, buf, size, out, limits).await?;
        while buf.len() < 2 {
            if fill(src, buf, out, limits).await? == 0 {
                return Err(unexpected_eof());
            }
        }
        if &buf[..2] != b"\r\n" {
            return Err(RelayError::Malformed);
        }
        buf.advance(2);
    }
}

/// Reads the trailer section after the last chunk and passes valid fields on.
async fn relay_trailers<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    src: &mut R,
    buf: &mut BytesMut,
    out: &mut Output<'_, W>,
    limits: &RelayLimits,
) -> Result<(), RelayError> {
    let mut section = BytesMut::new();
    loop {
        let line_len = read_line(src, buf, out, limits, MAX_LINE).await?;
        let line = buf.split_to(line_len);
        if line_len == 2 {
            break;
        }
        section.extend_from_slice(&line);
        if section.len() > MAX_TRAILERS {
            return Err(RelayError::Malformed);
        }
    }
    if !out.chunked {
        return Ok(());
    }
    out.push(b"0\r\n");
    if !section.is_empty() {
        section.extend_from_slice(b"\r\n");
        let mut fields = [httparse::EMPTY_HEADER; 64];
        match httparse::parse_headers(&section, &mut fields) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return Err(RelayError::Malformed),
        }
        for field in fields.iter().take_while(|f| !f.name.is_empty()) {
            if is_forbidden_trailer(field.name) {
                continue;
            }
            out.push(field.name.as_bytes());
            out.push(b": ");
            out.push(field.value);
            out.push(b"\r\n");
        }
    }
    out.push(b"\r\n");
    Ok(())
}

/// Trailer fields that must not be forwarded (framing, routing and hop-by-hop fields).
fn is_forbidden_trailer(name: &str) -> bool {
    ["content-length", "transfer-encoding", "host", "connection", "keep-alive", "te", "trailer", "upgrade"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RelayLimits {
        RelayLimits { read_timeout: Duration::from_secs(5), write_timeout: Duration::from_secs(5), max_bytes: 0 }
    }

    async fn relay(
        input: &[u8],
        framing: BodyFraming,
        chunked_out: bool,
    ) -> (Result<u64, RelayError>, Vec<u8>, Vec<u8>) {
        let mut src = input;
        let mut buf = BytesMut::new();
        let mut dst = Vec::new();
        let result = relay_body(&mut src, &mut buf, framing, &mut dst, chunked_out, &limits()).await;
        let mut rest = buf.to_vec();
        rest.extend_from_slice(src);
        (result, dst, rest)
    }

    #[tokio::test]
    async fn chunked_is_decoded_and_leaves_next_request() {
        let input = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nGET /";
        let (result, out, rest) = relay(input, BodyFraming::Chunked, false).await;
        assert_eq!(result.unwrap(), 11);
        assert_eq!(out, b"hello world");
        assert_eq!(rest, b"GET /");
    }

    #[tokio::test]
    async fn chunked_is_reencoded_with_trailers() {
        let input = b"5\r\nhello\r\n0\r\nX-Sum: abc\r\nContent-Length: 9\r\n\r\n";
        let (result, out, _) = relay(input, BodyFraming::Chunked, true).await;
        assert_eq!(result.unwrap(), 5);
        assert_eq!(out, b"5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n");
    }

    #[tokio::test]
    async fn length_body_is_exact_and_can_be_chunked() {
        let (result, out, rest) = relay(b"abcdefXYZ", BodyFraming::Length(6), true).await;
        assert_eq!(result.unwrap(), 6);
        assert_eq!(out, b"6\r\nabcdef\r\n0\r\n\r\n");
        assert_eq!(rest, b"XYZ");
    }

    #[tokio::test]
    async fn malformed_chunks_are_refused() {
        for input in [&b"zz\r\nhello\r\n0\r\n\r\n"[..], b"5\r\nhelloXX0\r\n\r\n", b"5\nhello\r\n0\r\n\r\n", b"\r\n"] {
            let (result, _, _) = relay(input, BodyFraming::Chunked, false).await;
            assert!(matches!(result, Err(RelayError::Malformed)), "accepted {input:?}");
        }
    }

    #[tokio::test]
    async fn truncated_body_is_an_error() {
        let (result, _, _) = relay(b"abc", BodyFraming::Length(10), false).await;
        assert!(matches!(result, Err(RelayError::Read(_))));
    }

    #[test]
    fn hex_lines_are_lowercase_hex() {
        let mut out = [0u8; 20];
        let n = hex_line(0x1a2b, &mut out);
        assert_eq!(&out[..n], b"1a2b\r\n");
        let n = hex_line(0, &mut out);
        assert_eq!(&out[..n], b"0\r\n");
    }
}
