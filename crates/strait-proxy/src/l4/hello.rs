//! Reading a TLS ClientHello without terminating TLS: the server name (SNI) and the ALPN
//! protocols, from the bytes a client sent first, as sniproxy and HAProxy `req.ssl_sni` read
//! them. The hello may come in several records; their payloads are joined in place, so reading
//! allocates nothing.

/// TLS record type of handshake messages.
const HANDSHAKE: u8 = 22;
/// Handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;
/// Bytes of a record header: type, version, payload length.
const RECORD_HEADER: usize = 5;
/// Bytes of a handshake message header: type, body length.
const MESSAGE_HEADER: usize = 4;
/// Largest record payload (RFC 8446 section 5.1).
const MAX_RECORD: usize = 16 * 1024;
/// Most bytes a hello may take on the wire: up to 16 KiB of handshake in up to two records.
pub(crate) const MAX_HELLO_BYTES: usize = MAX_RECORD + 2 * RECORD_HEADER;
/// Extension carrying the server name (RFC 6066).
const SERVER_NAME: u16 = 0;
/// Extension carrying the ALPN protocols (RFC 7301).
const ALPN: u16 = 16;

/// What a client's first bytes turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan<'a> {
    /// A whole ClientHello.
    Hello(ClientHello<'a>),
    /// The start of a TLS handshake: more bytes are needed.
    Incomplete,
    /// Not a TLS handshake record.
    NotTls,
    /// A TLS handshake record that is not a well-formed ClientHello, and why.
    Invalid(&'static str),
}

/// The parts of a ClientHello that routing reads.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ClientHello<'a> {
    /// The `host_name` of the server_name extension, as sent.
    pub server_name: Option<&'a str>,
    /// The protocols the ALPN extension offers.
    pub alpn: Alpn<'a>,
}

/// The protocols of an ALPN extension, in the client's order.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Alpn<'a>(&'a [u8]);

impl<'a> Alpn<'a> {
    /// The protocol names (checked well-formed when the hello was read).
    pub(crate) fn protocols(self) -> impl Iterator<Item = &'a [u8]> {
        let mut rest = self.0;
        std::iter::from_fn(move || {
            let (&length, tail) = rest.split_first()?;
            let (name, tail) = tail.split_at(usize::from(length));
            rest = tail;
            Some(name)
        })
    }
}

impl std::fmt::Debug for Alpn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.protocols().map(String::from_utf8_lossy)).finish()
    }
}

/// Reads the ClientHello at the start of `bytes` (what the client sent so far). The record
/// payloads are moved together at the front of `bytes`, so the buffer's content changes.
pub(crate) fn scan(bytes: &mut [u8]) -> Scan<'_> {
    match bytes {
        [] => return Scan::Incomplete,
        [kind, ..] if *kind != HANDSHAKE => return Scan::NotTls,
        [_, major, ..] if *major != 3 => return Scan::NotTls,
        _ => {}
    }
    // `joined` handshake bytes are gathered at the front; the next record header is at `next`.
    let (mut joined, mut next) = (0, 0);
    loop {
        if joined >= MESSAGE_HEADER {
            if bytes[0] != CLIENT_HELLO {
                return Scan::Invalid("the first handshake message is not a ClientHello");
            }
            let length = usize::from(bytes[1]) << 16 | usize::from(bytes[2]) << 8 | usize::from(bytes[3]);
            if MESSAGE_HEADER + length > MAX_RECORD {
                return Scan::Invalid("the ClientHello is larger than 16 KiB");
            }
            if joined >= MESSAGE_HEADER + length {
                return match client_hello(&bytes[MESSAGE_HEADER..MESSAGE_HEADER + length]) {
                    Ok(hello) => Scan::Hello(hello),
                    Err(why) => Scan::Invalid(why),
                };
            }
        }
        let rest = &bytes[next..];
        if let Some(problem) = record_header_problem(rest) {
            return Scan::Invalid(problem);
        }
        if rest.len() < RECORD_HEADER {
            return Scan::Incomplete;
        }
        let length = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let arrived = length.min(rest.len() - RECORD_HEADER);
        let payload = next + RECORD_HEADER;
        bytes.copy_within(payload..payload + arrived, joined);
        joined += arrived;
        // Of a record cut short, the hello may still be whole in the part that arrived; if
        // not, the next round finds no further record header and waits for more.
        next = if arrived < length { bytes.len() } else { payload + length };
    }
}

/// What is wrong with the (possibly partial) record header at the start of `rest`, if anything.
fn record_header_problem(rest: &[u8]) -> Option<&'static str> {
    match rest {
        [kind, ..] if *kind != HANDSHAKE => Some("a record within the ClientHello is not a handshake record"),
        [_, major, ..] if *major != 3 => Some("a record of the ClientHello has a version that is not TLS"),
        [_, _, _, high, low, ..] => {
            let length = usize::from(u16::from_be_bytes([*high, *low]));
            (length == 0 || length > MAX_RECORD).then_some("a record of the ClientHello is empty or larger than 16 KiB")
        }
        _ => None,
    }
}

/// Parses the body of a ClientHello message (RFC 8446 section 4.1.2).
fn client_hello(body: &[u8]) -> Result<ClientHello<'_>, &'static str> {
    const TRUNCATED: &str = "the ClientHello is truncated";
    let mut hello = Reader(body);
    let version = hello.take(2).ok_or(TRUNCATED)?;
    if version[0] != 3 {
        return Err("the ClientHello's version is not TLS");
    }
    hello.take(32).ok_or(TRUNCATED)?;
    let session_id = hello.vec8().ok_or(TRUNCATED)?;
    if session_id.len() > 32 {
        return Err("the ClientHello's session id is longer than 32 bytes");
    }
    let suites = hello.vec16().ok_or(TRUNCATED)?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err("the ClientHello's cipher suite list is empty or odd");
    }
    if hello.vec8().ok_or(TRUNCATED)?.is_empty() {
        return Err("the ClientHello offers no compression method");
    }
    let mut found = ClientHello { server_name: None, alpn: Alpn::default() };
    if hello.0.is_empty() {
        return Ok(found);
    }
    let mut extensions = Reader(hello.vec16().ok_or(TRUNCATED)?);
    if !hello.0.is_empty() {
        return Err("bytes follow the ClientHello's extensions");
    }
    let (mut seen_name, mut seen_alpn) = (false, false);
    while !extensions.0.is_empty() {
        let kind = extensions.u16().ok_or(TRUNCATED)?;
        let data = extensions.vec16().ok_or(TRUNCATED)?;
        match kind {
            SERVER_NAME if seen_name => return Err("the ClientHello has two server_name extensions"),
            SERVER_NAME => {
                seen_name = true;
                found.server_name = server_name(data)?;
            }
            ALPN if seen_alpn => return Err("the ClientHello has two ALPN extensions"),
            ALPN => {
                seen_alpn = true;
                found.alpn = alpn(data)?;
            }
            _ => {}
        }
    }
    Ok(found)
}

/// The host name of a server_name extension's data (RFC 6066 section 3); `None` when the
/// extension is empty, as servers send it and some clients echo it.
fn server_name(data: &[u8]) -> Result<Option<&str>, &'static str> {
    const MALFORMED: &str = "the ClientHello's server_name extension is malformed";
    if data.is_empty() {
        return Ok(None);
    }
    let mut extension = Reader(data);
    let mut list = Reader(extension.vec16().ok_or(MALFORMED)?);
    if !extension.0.is_empty() || list.0.is_empty() {
        return Err(MALFORMED);
    }
    let mut host_name = None;
    while !list.0.is_empty() {
        let kind = list.u8().ok_or(MALFORMED)?;
        let name = list.vec16().ok_or(MALFORMED)?;
        if kind != 0 {
            continue;
        }
        if host_name.is_some() {
            return Err("the ClientHello names two host names");
        }
        let valid = !name.is_empty()
            && name.len() <= 255
            && name.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            return Err("the ClientHello's server name is not a host name");
        }
        // Only ASCII passed the check above.
        host_name = std::str::from_utf8(name).ok();
    }
    Ok(host_name)
}

/// The protocol list of an ALPN extension's data (RFC 7301 section 3.1), checked.
fn alpn(data: &[u8]) -> Result<Alpn<'_>, &'static str> {
    const MALFORMED: &str = "the ClientHello's ALPN extension is malformed";
    let mut extension = Reader(data);
    let list = extension.vec16().ok_or(MALFORMED)?;
    if !extension.0.is_empty() || list.is_empty() {
        return Err(MALFORMED);
    }
    let mut names = Reader(list);
    while !names.0.is_empty() {
        if names.vec8().ok_or(MALFORMED)?.is_empty() {
            return Err(MALFORMED);
        }
    }
    Ok(Alpn(list))
}

/// A cursor over big-endian TLS fields.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(taken)
    }

    /// A one-byte number.
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A two-byte number.
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// Bytes after a one-byte length.
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let length = self.u8()?;
        self.take(usize::from(length))
    }

    /// Bytes after a two-byte length.
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let length = self.u16()?;
        self.take(usize::from(length))
    }
}

#[cfg(test)]
mod tests;
