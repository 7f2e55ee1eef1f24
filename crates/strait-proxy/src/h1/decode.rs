//! Body framing and incremental decoding: `Content-Length`, chunked (with trailers) and
//! close-delimited bodies, decoded piece by piece from a read buffer without copying.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

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

/// Longest chunk-size line accepted.
const MAX_LINE: usize = 4096;
/// Longest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;
/// Most trailer fields accepted.
const MAX_TRAILER_FIELDS: usize = 64;

/// What the decoder found in the buffer.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A piece of body data.
    Data(Bytes),
    /// The trailer section (chunked bodies only); the end follows.
    Trailers(HeaderMap),
    /// The body is complete.
    End,
    /// More bytes are needed.
    NeedMore,
}

/// Why a body cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The chunked coding is malformed.
    Malformed,
    /// The source closed before the body ended.
    Truncated,
}

/// The decoder of one body.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
    /// Body bytes decoded so far.
    total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes left of a `Content-Length` body.
    Length(u64),
    /// Waiting for a chunk-size line.
    ChunkSize,
    /// Bytes left of the current chunk.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// The trailer section after the last chunk.
    Trailers,
    /// Until the source closes.
    UntilClose,
    /// Complete.
    Done,
}

impl Decoder {
    /// A decoder for a body framed as `framing`.
    pub(crate) fn new(framing: BodyFraming) -> Decoder {
        let state = match framing {
            BodyFraming::Empty | BodyFraming::Length(0) => State::Done,
            BodyFraming::Length(n) => State::Length(n),
            BodyFraming::Chunked => State::ChunkSize,
            BodyFraming::UntilClose => State::UntilClose,
        };
        Decoder { state, total: 0 }
    }

    /// Whether the whole body has been decoded.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes decoded so far.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Bytes still expected when the length is known (`Content-Length` bodies).
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// Decodes the next piece from the start of `buf`, consuming what it used. Bytes after
    /// the end of the body (a pipelined request) stay in `buf`.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, DecodeError> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::Length(left) | State::ChunkData(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = (buf.len() as u64).min(left) as usize;
                    let data = buf.split_to(take).freeze();
                    let left = left - take as u64;
                    self.total += take as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), n) => State::Length(n),
                        (_, 0) => State::ChunkEnd,
                        (_, n) => State::ChunkData(n),
                    };
                    return Ok(Decoded::Data(data));
                }
                State::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    self.total += buf.len() as u64;
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                State::ChunkSize => {
                    let Some(newline) = buf.iter().position(|b| *b == b'\n') else {
                        return if buf.len() > MAX_LINE { Err(DecodeError::Malformed) } else { Ok(Decoded::NeedMore) };
                    };
                    if newline == 0 || buf[newline - 1] != b'\r' || newline > MAX_LINE {
                        return Err(DecodeError::Malformed);
                    }
                    let size = parse_chunk_size(&buf[..newline - 1])?;
                    buf.advance(newline + 1);
                    self.state = if size == 0 { State::Trailers } else { State::ChunkData(size) };
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(DecodeError::Malformed);
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    if buf.len() >= 2 && &buf[..2] == b"\r\n" {
                        buf.advance(2);
                        self.state = State::Done;
                        return Ok(Decoded::End);
                    }
                    let Some(end) = find_section_end(buf) else {
                        let too_long =
                            buf.len() > MAX_TRAILERS || (buf.len() >= 2 && buf[0] == b'\r' && buf[1] != b'\n');
                        return if too_long { Err(DecodeError::Malformed) } else { Ok(Decoded::NeedMore) };
                    };
                    if end > MAX_TRAILERS {
                        return Err(DecodeError::Malformed);
                    }
                    let trailers = parse_trailers(&buf[..end])?;
                    buf.advance(end);
                    self.state = State::Done;
                    return Ok(Decoded::Trailers(trailers));
                }
            }
        }
    }

    /// The source closed: the end of a close-delimited body, an error for any other unfinished one.
    pub(crate) fn eof(&mut self) -> Result<Decoded, DecodeError> {
        match self.state {
            State::Done => Ok(Decoded::End),
            State::UntilClose => {
                self.state = State::Done;
                Ok(Decoded::End)
            }
            _ => Err(DecodeError::Truncated),
        }
    }
}

/// Where the trailer section (ending with an empty line) ends, if it is complete.
fn find_section_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
}

/// Parses a chunk-size line without its CRLF (`1a;ext=1`).
fn parse_chunk_size(line: &[u8]) -> Result<u64, DecodeError> {
    let digits_end = line.iter().position(|b| !b.is_ascii_hexdigit()).unwrap_or(line.len());
    if digits_end == 0 || digits_end > 16 {
        return Err(DecodeError::Malformed);
    }
    let rest = &line[digits_end..];
    let rest_ok = rest.is_empty() || super::trim_ows(rest).first() == Some(&b';');
    if !rest_ok || rest.iter().any(|b| *b < 0x20 && *b != b'\t' || *b == 0x7f) {
        return Err(DecodeError::Malformed);
    }
    let text = std::str::from_utf8(&line[..digits_end]).map_err(|_| DecodeError::Malformed)?;
    u64::from_str_radix(text, 16).map_err(|_| DecodeError::Malformed)
}

/// Parses a trailer section into fields, dropping those that must never travel as trailers.
fn parse_trailers(section: &[u8]) -> Result<HeaderMap, DecodeError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
    match httparse::parse_headers(section, &mut fields) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(DecodeError::Malformed),
    }
    let mut trailers = HeaderMap::new();
    for field in fields.iter().take_while(|f| !f.name.is_empty()) {
        let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| DecodeError::Malformed)?;
        if is_forbidden_trailer(&name) {
            continue;
        }
        let value = HeaderValue::from_bytes(field.value).map_err(|_| DecodeError::Malformed)?;
        trailers.append(name, value);
    }
    Ok(trailers)
}

/// Fields that must not be forwarded as trailers (framing, routing, hop-by-hop fields).
pub(crate) fn is_forbidden_trailer(name: &HeaderName) -> bool {
    use http::header;
    name == header::CONTENT_LENGTH
        || name == header::HOST
        || super::is_hop_by_hop(name)
        || name == header::CONTENT_ENCODING
        || name == header::CONTENT_TYPE
        || name == header::CONTENT_RANGE
        || name == header::AUTHORIZATION
        || name == header::SET_COOKIE
        || name == header::COOKIE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Body data, trailers, and the bytes left after the body.
    type Decoded3 = (Vec<u8>, Option<HeaderMap>, Vec<u8>);

    /// Decodes all of `input`, returning data, trailers and what is left.
    fn decode_all(input: &[u8], framing: BodyFraming) -> Result<Decoded3, DecodeError> {
        let mut decoder = Decoder::new(framing);
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut trailers = None;
        // Feed one byte at a time: every state must cope with partial input.
        let mut rest = input;
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(d) => data.extend_from_slice(&d),
                Decoded::Trailers(t) => trailers = Some(t),
                Decoded::End => return Ok((data, trailers, [&buf[..], rest].concat())),
                Decoded::NeedMore => match rest.split_first() {
                    Some((byte, tail)) => {
                        buf.extend_from_slice(&[*byte]);
                        rest = tail;
                    }
                    None => match decoder.eof()? {
                        Decoded::End => return Ok((data, trailers, buf.to_vec())),
                        other => panic!("unexpected {other:?}"),
                    },
                },
            }
        }
    }

    #[test]
    fn chunked_is_decoded_and_leaves_next_request() {
        let (data, trailers, rest) =
            decode_all(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nGET /", BodyFraming::Chunked).unwrap();
        assert_eq!(data, b"hello world");
        assert!(trailers.is_none());
        assert_eq!(rest, b"GET /");
    }

    #[test]
    fn trailers_are_parsed_and_framing_fields_dropped() {
        let (data, trailers, _) =
            decode_all(b"5\r\nhello\r\n0\r\nX-Sum: abc\r\nContent-Length: 9\r\n\r\n", BodyFraming::Chunked).unwrap();
        assert_eq!(data, b"hello");
        let trailers = trailers.unwrap();
        assert_eq!(trailers["x-sum"], "abc");
        assert!(trailers.get("content-length").is_none());
    }

    #[test]
    fn length_body_is_exact() {
        let (data, _, rest) = decode_all(b"abcdefXYZ", BodyFraming::Length(6)).unwrap();
        assert_eq!(data, b"abcdef");
        assert_eq!(rest, b"XYZ");
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for input in [&b"zz\r\nhello\r\n0\r\n\r\n"[..], b"5\r\nhelloXX0\r\n\r\n", b"5\nhello\r\n0\r\n\r\n", b"\r\n"] {
            assert_eq!(decode_all(input, BodyFraming::Chunked).unwrap_err(), DecodeError::Malformed, "{input:?}");
        }
    }

    #[test]
    fn truncated_body_is_an_error() {
        assert_eq!(decode_all(b"abc", BodyFraming::Length(10)).unwrap_err(), DecodeError::Truncated);
        let (data, _, _) = decode_all(b"abc", BodyFraming::UntilClose).unwrap();
        assert_eq!(data, b"abc");
    }
}
