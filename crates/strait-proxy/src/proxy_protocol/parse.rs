//! Strict parsing of PROXY protocol headers from the bytes a connection opened with: version 1
//! (one text line of at most 107 bytes) and version 2 (binary: 16 bytes, then the address
//! block and TLVs, which are length-checked and skipped).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Endpoints, V1_MAX_LEN, V1_SIGNATURE, V2_FIXED_LEN, V2_SIGNATURE};

/// What the bytes a connection opened with make of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parsed {
    /// The connection opens with something else than a PROXY signature.
    Absent,
    /// The start of a header: more bytes are needed. `len` is the whole header's length once
    /// known (version 2, from its fixed part).
    Partial { len: Option<usize> },
    /// A whole header of `len` bytes, naming the client's endpoints unless it names none
    /// (v1 `UNKNOWN`, v2 `LOCAL`, v2 without IP addresses: the real peer stays the client).
    Complete { len: usize, endpoints: Option<Endpoints> },
}

/// Why a header is not a valid one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed(pub &'static str);

/// Reads the header at the start of `bytes`, if the connection opens with one.
pub(super) fn parse(bytes: &[u8]) -> Result<Parsed, Malformed> {
    if bytes.starts_with(V1_SIGNATURE) {
        parse_v1(bytes)
    } else if bytes.starts_with(&V2_SIGNATURE) {
        parse_v2(bytes)
    } else if V1_SIGNATURE.starts_with(bytes) || V2_SIGNATURE.starts_with(bytes) {
        Ok(Parsed::Partial { len: None })
    } else {
        Ok(Parsed::Absent)
    }
}

// === version 1 ===

/// `PROXY TCP4|TCP6 <source> <destination> <source port> <destination port>\r\n`, or
/// `PROXY UNKNOWN<anything>\r\n`.
fn parse_v1(bytes: &[u8]) -> Result<Parsed, Malformed> {
    let window = &bytes[..bytes.len().min(V1_MAX_LEN)];
    let Some(end) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return if bytes.len() >= V1_MAX_LEN { Err(TOO_LONG) } else { Ok(Parsed::Partial { len: None }) };
    };
    if window[end] == b'\n' {
        return Err(Malformed("a line feed without a carriage return"));
    }
    if end + 2 > V1_MAX_LEN {
        return Err(TOO_LONG);
    }
    match bytes.get(end + 1) {
        None => return Ok(Parsed::Partial { len: None }),
        Some(b'\n') => {}
        Some(_) => return Err(Malformed("a carriage return without a line feed")),
    }
    let len = end + 2;
    let line = &bytes[V1_SIGNATURE.len()..end];
    let (protocol, rest) = match line.iter().position(|&b| b == b' ') {
        Some(space) => (&line[..space], Some(&line[space + 1..])),
        None => (line, None),
    };
    let endpoints = match protocol {
        // Whatever follows UNKNOWN is ignored, as the specification says.
        b"UNKNOWN" => return Ok(Parsed::Complete { len, endpoints: None }),
        b"TCP4" => v1_endpoints(rest, |text| text.parse::<Ipv4Addr>().ok().map(Into::into))?,
        b"TCP6" => v1_endpoints(rest, |text| text.parse::<Ipv6Addr>().ok().map(Into::into))?,
        _ => return Err(Malformed("the protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    Ok(Parsed::Complete { len, endpoints: Some(endpoints) })
}

/// Longer than a version 1 header may be.
const TOO_LONG: Malformed = Malformed("a version 1 header longer than 107 bytes");

/// The four fields after `TCP4 ` or `TCP6 `, single spaces between, addresses of the family
/// `address` parses.
fn v1_endpoints(
    fields: Option<&[u8]>,
    address: impl Fn(&str) -> Option<std::net::IpAddr>,
) -> Result<Endpoints, Malformed> {
    let fields = fields.and_then(|f| std::str::from_utf8(f).ok()).ok_or(Malformed("addresses are missing"))?;
    let parts: Vec<&str> = fields.split(' ').collect();
    let [source, destination, source_port, destination_port] = parts[..] else {
        return Err(Malformed("not two addresses and two ports separated by single spaces"));
    };
    let source = address(source).ok_or(Malformed("the source is not an address of the protocol's family"))?;
    let destination =
        address(destination).ok_or(Malformed("the destination is not an address of the protocol's family"))?;
    let source_port = v1_port(source_port)?;
    let destination_port = v1_port(destination_port)?;
    Ok(Endpoints {
        source: SocketAddr::new(source, source_port),
        destination: SocketAddr::new(destination, destination_port),
    })
}

/// A port in decimal, 0 to 65535, without sign or leading zeros.
fn v1_port(text: &str) -> Result<u16, Malformed> {
    let canonical = !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse::<u16>().ok()).flatten().ok_or(Malformed("a port is not a number from 0 to 65535"))
}

// === version 2 ===

/// The command `LOCAL`: a connection of the load balancer itself (a health check).
const COMMAND_LOCAL: u8 = 0x20;
/// The command `PROXY`: a relayed connection.
const COMMAND_PROXY: u8 = 0x21;
/// Length of the TCP/UDP over IPv4 address block: two addresses, two ports.
const INET_LEN: usize = 12;
/// Length of the TCP/UDP over IPv6 address block.
const INET6_LEN: usize = 36;
/// Length of the Unix socket address block: two 108-byte paths.
const UNIX_LEN: usize = 216;

/// Signature, version and command, family and transport, length, then the address block and
/// TLVs.
fn parse_v2(bytes: &[u8]) -> Result<Parsed, Malformed> {
    let Some(&version_command) = bytes.get(12) else { return Ok(Parsed::Partial { len: None }) };
    if version_command >> 4 != 2 {
        return Err(Malformed("a version 2 signature with another version"));
    }
    if version_command != COMMAND_LOCAL && version_command != COMMAND_PROXY {
        return Err(Malformed("the command is neither LOCAL nor PROXY"));
    }
    let local = version_command == COMMAND_LOCAL;
    // The seven combinations the specification defines; receivers drop any other. LOCAL
    // ignores the family along with the addresses.
    let address_len = match bytes.get(13) {
        None => return Ok(Parsed::Partial { len: None }),
        Some(_) if local => 0,
        Some(0x00) => 0,
        Some(0x11 | 0x12) => INET_LEN,
        Some(0x21 | 0x22) => INET6_LEN,
        Some(0x31 | 0x32) => UNIX_LEN,
        Some(_) => return Err(Malformed("an unknown address family or transport")),
    };
    if bytes.len() < V2_FIXED_LEN {
        return Ok(Parsed::Partial { len: None });
    }
    let len = V2_FIXED_LEN + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    if bytes.len() < len {
        return Ok(Parsed::Partial { len: Some(len) });
    }
    if local || bytes[13] == 0x00 {
        // The load balancer's own connection, or an unspecified family: the real endpoints
        // stay, and the block is discarded unread, as the specification asks.
        return Ok(Parsed::Complete { len, endpoints: None });
    }
    let block = &bytes[V2_FIXED_LEN..len];
    if block.len() < address_len {
        return Err(Malformed("the address block is shorter than its family needs"));
    }
    check_tlvs(&block[address_len..])?;
    let endpoints = match address_len {
        INET_LEN => {
            let ip = |at: usize| Ipv4Addr::from(<[u8; 4]>::try_from(&block[at..at + 4]).expect("4 bytes"));
            Some(v2_endpoints(ip(0).into(), ip(4).into(), &block[8..12]))
        }
        INET6_LEN => {
            let ip = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&block[at..at + 16]).expect("16 bytes"));
            Some(v2_endpoints(ip(0).into(), ip(16).into(), &block[32..36]))
        }
        // Unix sockets and unspecified families: the real peer stays the client.
        _ => None,
    };
    Ok(Parsed::Complete { len, endpoints })
}

/// Endpoints from two addresses and the four bytes of their ports.
fn v2_endpoints(source: std::net::IpAddr, destination: std::net::IpAddr, ports: &[u8]) -> Endpoints {
    Endpoints {
        source: SocketAddr::new(source, u16::from_be_bytes([ports[0], ports[1]])),
        destination: SocketAddr::new(destination, u16::from_be_bytes([ports[2], ports[3]])),
    }
}

/// Checks that `tlvs` is a sequence of whole type-length-value records (their contents are
/// not used).
fn check_tlvs(mut tlvs: &[u8]) -> Result<(), Malformed> {
    while !tlvs.is_empty() {
        if tlvs.len() < 3 {
            return Err(Malformed("a TLV is cut short"));
        }
        let end = 3 + usize::from(u16::from_be_bytes([tlvs[1], tlvs[2]]));
        if tlvs.len() < end {
            return Err(Malformed("a TLV is longer than the header"));
        }
        tlvs = &tlvs[end..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(source: &str, destination: &str) -> Option<Endpoints> {
        Some(Endpoints { source: source.parse().unwrap(), destination: destination.parse().unwrap() })
    }

    fn malformed(bytes: &[u8]) -> bool {
        parse(bytes).is_err()
    }

    /// A version 2 header: command byte, family byte, then the block (its length computed).
    fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut header = V2_SIGNATURE.to_vec();
        header.extend_from_slice(&[command, family]);
        header.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
        header.extend_from_slice(block);
        header
    }

    const INET_BLOCK: [u8; 12] = [192, 0, 2, 7, 198, 51, 100, 1, 0xc3, 0x50, 0x01, 0xbb];

    #[test]
    fn v1_tcp4_and_tcp6_name_the_endpoints_and_leave_what_follows() {
        let header = b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse(header),
            Ok(Parsed::Complete { len: 45, endpoints: endpoints("192.0.2.7:50000", "198.51.100.1:443") })
        );
        let header = b"PROXY TCP6 2001:db8::7 ::1 1 65535\r\n";
        assert_eq!(
            parse(header),
            Ok(Parsed::Complete { len: header.len(), endpoints: endpoints("[2001:db8::7]:1", "[::1]:65535") })
        );
    }

    #[test]
    fn v1_unknown_keeps_the_peer_and_ignores_the_rest_of_its_line() {
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Ok(Parsed::Complete { len: 15, endpoints: None }));
        let header = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        assert_eq!(parse(header), Ok(Parsed::Complete { len: header.len(), endpoints: None }));
    }

    #[test]
    fn v1_needs_its_whole_line_within_107_bytes() {
        assert_eq!(parse(b"PROXY TCP4 192.0.2.7 198.51"), Ok(Parsed::Partial { len: None }));
        assert_eq!(parse(b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r"), Ok(Parsed::Partial { len: None }));
        let mut longest = b"PROXY UNKNOWN ".to_vec();
        longest.resize(105, b'x');
        longest.extend_from_slice(b"\r\n");
        assert_eq!(parse(&longest), Ok(Parsed::Complete { len: 107, endpoints: None }));
        let mut too_long = b"PROXY UNKNOWN ".to_vec();
        too_long.resize(106, b'x');
        too_long.extend_from_slice(b"\r\n");
        assert_eq!(parse(&too_long), Err(TOO_LONG));
        let mut endless = b"PROXY UNKNOWN ".to_vec();
        endless.resize(200, b'x');
        assert_eq!(parse(&endless), Err(TOO_LONG));
    }

    #[test]
    fn v1_refuses_bad_addresses_ports_families_and_line_ends() {
        for bad in [
            &b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\n"[..],
            b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\rX",
            b"PROXY TCP5 192.0.2.7 198.51.100.1 50000 443\r\n",
            b"PROXY tcp4 192.0.2.7 198.51.100.1 50000 443\r\n",
            b"PROXY TCP4 2001:db8::7 198.51.100.1 50000 443\r\n",
            b"PROXY TCP6 192.0.2.7 ::1 50000 443\r\n",
            b"PROXY TCP4 192.0.2.300 198.51.100.1 50000 443\r\n",
            b"PROXY TCP4 192.0.2.07 198.51.100.1 50000 443\r\n",
            b"PROXY TCP4 example.com 198.51.100.1 50000 443\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 -1 443\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 +1 443\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 0443 443\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 50000\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443 1\r\n",
            b"PROXY TCP4 192.0.2.7  198.51.100.1 50000 443\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443 \r\n",
            b"PROXY TCP4\r\n",
            b"PROXY \r\n",
        ] {
            assert!(malformed(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn other_openings_are_no_header_and_prefixes_wait_for_more() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Ok(Parsed::Absent));
        assert_eq!(parse(b"PROXYX"), Ok(Parsed::Absent));
        assert_eq!(parse(b"POST /"), Ok(Parsed::Absent));
        assert_eq!(parse(&[0x16, 0x03, 0x01]), Ok(Parsed::Absent));
        assert_eq!(parse(b"\r\n\r\nX"), Ok(Parsed::Absent));
        for prefix in [&b""[..], b"P", b"PROX", b"PROXY", b"\r\n\r\n\0\r\nQU"] {
            assert_eq!(parse(prefix), Ok(Parsed::Partial { len: None }), "{prefix:?}");
        }
    }

    #[test]
    fn v2_tcp4_and_tcp6_name_the_endpoints() {
        let header = v2(COMMAND_PROXY, 0x11, &INET_BLOCK);
        assert_eq!(
            parse(&header),
            Ok(Parsed::Complete { len: 28, endpoints: endpoints("192.0.2.7:50000", "198.51.100.1:443") })
        );
        let mut block = Vec::new();
        block.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        block.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        block.extend_from_slice(&[0, 80, 0x1f, 0x90]);
        let header = v2(COMMAND_PROXY, 0x21, &block);
        assert_eq!(
            parse(&header),
            Ok(Parsed::Complete { len: 52, endpoints: endpoints("[2001:db8::7]:80", "[::1]:8080") })
        );
    }

    #[test]
    fn v2_tlvs_are_skipped_but_must_fit() {
        let mut block = INET_BLOCK.to_vec();
        block.extend_from_slice(&[0x04, 0, 3, b'a', b'b', b'c', 0x05, 0, 0]);
        assert!(matches!(
            parse(&v2(COMMAND_PROXY, 0x11, &block)),
            Ok(Parsed::Complete { len: 37, endpoints: Some(_) })
        ));
        let mut cut = INET_BLOCK.to_vec();
        cut.extend_from_slice(&[0x04, 0]);
        assert!(malformed(&v2(COMMAND_PROXY, 0x11, &cut)));
        let mut overlong = INET_BLOCK.to_vec();
        overlong.extend_from_slice(&[0x04, 0, 9, b'a']);
        assert!(malformed(&v2(COMMAND_PROXY, 0x11, &overlong)));
    }

    #[test]
    fn v2_local_unspec_and_unix_keep_the_peer() {
        assert_eq!(parse(&v2(COMMAND_LOCAL, 0x00, &[])), Ok(Parsed::Complete { len: 16, endpoints: None }));
        // LOCAL discards its block, whatever it holds.
        assert_eq!(parse(&v2(COMMAND_LOCAL, 0x11, &INET_BLOCK)), Ok(Parsed::Complete { len: 28, endpoints: None }));
        assert_eq!(parse(&v2(COMMAND_LOCAL, 0x41, &[7])), Ok(Parsed::Complete { len: 17, endpoints: None }));
        assert_eq!(parse(&v2(COMMAND_PROXY, 0x00, &[4, 0, 0])), Ok(Parsed::Complete { len: 19, endpoints: None }));
        assert_eq!(
            parse(&v2(COMMAND_PROXY, 0x31, &[0; UNIX_LEN])),
            Ok(Parsed::Complete { len: 16 + UNIX_LEN, endpoints: None })
        );
    }

    #[test]
    fn v2_refuses_bad_versions_commands_families_and_short_blocks() {
        assert!(malformed(&v2(0x11, 0x11, &INET_BLOCK)), "version 1 in a version 2 signature");
        assert!(malformed(&v2(0x22, 0x11, &INET_BLOCK)), "command 2");
        assert!(malformed(&v2(COMMAND_PROXY, 0x13, &INET_BLOCK)), "transport 3");
        assert!(malformed(&v2(COMMAND_PROXY, 0x41, &INET_BLOCK)), "family 4");
        assert!(malformed(&v2(COMMAND_PROXY, 0x10, &INET_BLOCK)), "IPv4 of no transport");
        assert!(malformed(&v2(COMMAND_PROXY, 0x11, &INET_BLOCK[..11])), "IPv4 block of 11 bytes");
        assert!(malformed(&v2(COMMAND_PROXY, 0x21, &[0; 35])), "IPv6 block of 35 bytes");
        assert!(malformed(&v2(COMMAND_PROXY, 0x31, &[0; 100])), "Unix block of 100 bytes");
    }

    #[test]
    fn v2_waits_for_its_fixed_part_then_for_its_length() {
        let header = v2(COMMAND_PROXY, 0x11, &INET_BLOCK);
        assert_eq!(parse(&header[..13]), Ok(Parsed::Partial { len: None }));
        assert_eq!(parse(&header[..15]), Ok(Parsed::Partial { len: None }));
        assert_eq!(parse(&header[..16]), Ok(Parsed::Partial { len: Some(28) }));
        assert_eq!(parse(&header[..27]), Ok(Parsed::Partial { len: Some(28) }));
        // A bad version byte is refused as soon as it arrives.
        let mut bad = header.clone();
        bad[12] = 0x31;
        assert!(malformed(&bad[..13]));
    }
}
