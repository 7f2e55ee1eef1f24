//! The file of one disk entry: a fixed head (magic, lengths), the metadata (key, status,
//! times, `Vary` values, headers), the body, and a CRC-32 of everything before it, so a
//! truncated or corrupt file is recognised and never served.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use super::super::key::VaryKey;

/// First bytes of every entry file (the last one is the format's version).
const MAGIC: &[u8; 8] = b"STRAITC\x01";
/// Bytes of the fixed head: magic, metadata length (u32), body length (u64).
pub const HEAD_LEN: usize = 8 + 4 + 8;
/// Bytes of the checksum at the end.
const CHECKSUM_LEN: usize = 4;
/// Largest metadata a file may declare; more means the file is not an entry.
pub const MAX_META: usize = 1 << 20;

/// What a file says about its entry, besides the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// The primary key.
    pub key: String,
    /// Status.
    pub status: StatusCode,
    /// When it was stored (or last revalidated), by the wall clock.
    pub stored: SystemTime,
    /// Its `Age` when it arrived.
    pub initial_age: Duration,
    /// How long it is fresh from arrival.
    pub fresh_for: Duration,
    /// `no-cache`: revalidate before every use.
    pub revalidate: bool,
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage`: never served stale.
    pub no_stale: bool,
    /// The request fields it varies on.
    pub vary: VaryKey,
    /// Headers as stored.
    pub headers: HeaderMap,
}

/// The lengths a file's head declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Bytes of metadata after the head.
    pub meta_len: usize,
    /// Bytes of body after the metadata.
    pub body_len: u64,
}

impl Head {
    /// Reads the fixed head; `None` when it is not an entry's.
    pub fn parse(bytes: &[u8]) -> Option<Head> {
        if bytes.len() < HEAD_LEN || &bytes[..8] != MAGIC {
            return None;
        }
        let meta_len = u32::from_le_bytes(bytes[8..12].try_into().ok()?) as usize;
        let body_len = u64::from_le_bytes(bytes[12..20].try_into().ok()?);
        (meta_len <= MAX_META).then_some(Head { meta_len, body_len })
    }

    /// The length the whole file must have.
    pub fn file_len(&self) -> u64 {
        (HEAD_LEN + self.meta_len + CHECKSUM_LEN) as u64 + self.body_len
    }
}

/// The whole file of an entry.
pub fn encode(meta: &Meta, body: &[u8]) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(256);
    put_bytes(&mut encoded, meta.key.as_bytes());
    encoded.extend_from_slice(&meta.status.as_u16().to_le_bytes());
    let stored = meta.stored.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    for duration in [stored, meta.initial_age, meta.fresh_for] {
        encoded.extend_from_slice(&u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).to_le_bytes());
    }
    encoded.push(u8::from(meta.revalidate) | (u8::from(meta.no_stale) << 1));
    let fields = meta.vary.fields();
    encoded.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    for (name, values) in fields {
        put_bytes(&mut encoded, name.as_str().as_bytes());
        encoded.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for value in values {
            put_bytes(&mut encoded, value.as_bytes());
        }
    }
    encoded.extend_from_slice(&(meta.headers.len() as u32).to_le_bytes());
    for (name, value) in &meta.headers {
        put_bytes(&mut encoded, name.as_str().as_bytes());
        put_bytes(&mut encoded, value.as_bytes());
    }
    let mut file = Vec::with_capacity(HEAD_LEN + encoded.len() + body.len() + CHECKSUM_LEN);
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
    file.extend_from_slice(&(body.len() as u64).to_le_bytes());
    file.extend_from_slice(&encoded);
    file.extend_from_slice(body);
    let checksum = crc32fast::hash(&file);
    file.extend_from_slice(&checksum.to_le_bytes());
    file
}

/// The metadata after a head (`bytes` holds exactly `head.meta_len` bytes).
pub fn decode_meta(bytes: &[u8]) -> Option<Meta> {
    let mut reader = Reader(bytes);
    let key = String::from_utf8(reader.bytes()?.to_vec()).ok()?;
    let status = StatusCode::from_u16(u16::from_le_bytes(reader.take(2)?.try_into().ok()?)).ok()?;
    let stored = UNIX_EPOCH + reader.millis()?;
    let initial_age = reader.millis()?;
    let fresh_for = reader.millis()?;
    let flags = reader.take(1)?[0];
    let mut fields = Vec::new();
    for _ in 0..reader.count()? {
        let name = HeaderName::from_bytes(reader.bytes()?).ok()?;
        let mut values = Vec::new();
        for _ in 0..reader.count()? {
            values.push(HeaderValue::from_bytes(reader.bytes()?).ok()?);
        }
        fields.push((name, values));
    }
    let mut headers = HeaderMap::new();
    for _ in 0..reader.count()? {
        let name = HeaderName::from_bytes(reader.bytes()?).ok()?;
        headers.append(name, HeaderValue::from_bytes(reader.bytes()?).ok()?);
    }
    reader.0.is_empty().then_some(Meta {
        key,
        status,
        stored,
        initial_age,
        fresh_for,
        revalidate: flags & 1 != 0,
        no_stale: flags & 2 != 0,
        vary: VaryKey::from_fields(fields),
        headers,
    })
}

/// A whole file read back: its metadata and body, when its length and checksum hold.
pub fn decode(file: Bytes) -> Option<(Meta, Bytes)> {
    let head = Head::parse(&file)?;
    if file.len() as u64 != head.file_len() {
        return None;
    }
    let (content, checksum) = file.split_at(file.len() - CHECKSUM_LEN);
    if crc32fast::hash(content) != u32::from_le_bytes(checksum.try_into().ok()?) {
        return None;
    }
    let meta = decode_meta(&file[HEAD_LEN..HEAD_LEN + head.meta_len])?;
    let body_start = HEAD_LEN + head.meta_len;
    let body = file.slice(body_start..file.len() - CHECKSUM_LEN);
    Some((meta, body))
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads the metadata's fields in order; every read fails on missing bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(taken)
    }

    fn count(&mut self) -> Option<usize> {
        let count = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        // Every item takes at least four bytes: a larger count is a corrupt file.
        (count <= self.0.len() / 4).then_some(count)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(len)
    }

    fn millis(&mut self) -> Option<Duration> {
        Some(Duration::from_millis(u64::from_le_bytes(self.take(8)?.try_into().ok()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        let mut response = HeaderMap::new();
        response.insert(http::header::VARY, HeaderValue::from_static("accept-encoding"));
        let mut request = HeaderMap::new();
        request.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        Meta {
            key: "GET cache.test/a?b".into(),
            status: StatusCode::OK,
            stored: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            initial_age: Duration::from_secs(3),
            fresh_for: Duration::from_secs(60),
            revalidate: false,
            no_stale: true,
            vary: VaryKey::capture(&response, &request).unwrap(),
            headers,
        }
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let file = encode(&meta(), b"the body");
        let (read, body) = decode(Bytes::from(file)).expect("valid file");
        assert_eq!(read, meta());
        assert_eq!(&body[..], b"the body");
    }

    #[test]
    fn truncated_extended_or_flipped_files_are_refused() {
        let file = encode(&meta(), b"the body");
        for cut in [0, 5, HEAD_LEN, file.len() / 2, file.len() - 1] {
            assert!(decode(Bytes::copy_from_slice(&file[..cut])).is_none(), "cut at {cut}");
        }
        let mut longer = file.clone();
        longer.push(0);
        assert!(decode(Bytes::from(longer)).is_none());
        for at in [3, HEAD_LEN + 2, file.len() - 6, file.len() - 2] {
            let mut flipped = file.clone();
            flipped[at] ^= 0x40;
            assert!(decode(Bytes::from(flipped)).is_none(), "flipped byte {at}");
        }
    }

    #[test]
    fn the_head_declares_the_file_length() {
        let file = encode(&meta(), b"12345");
        let head = Head::parse(&file).unwrap();
        assert_eq!(head.body_len, 5);
        assert_eq!(head.file_len(), file.len() as u64);
        assert!(decode_meta(&file[HEAD_LEN..HEAD_LEN + head.meta_len]).is_some());
        assert!(Head::parse(b"not an entry file at all").is_none());
    }
}
