//! Writing PROXY protocol headers at the start of upstream connections (a cluster's
//! `proxy_protocol`, HAProxy `send-proxy` and `send-proxy-v2`).

use std::net::{IpAddr, SocketAddr};

use strait_config::ProxyProtocolVersion;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Endpoints, V2_SIGNATURE};

/// Writes the `version` header naming `endpoints` to `upstream`, before any other byte.
pub(crate) async fn send<W: AsyncWrite + Unpin>(
    upstream: &mut W,
    version: ProxyProtocolVersion,
    endpoints: Endpoints,
) -> std::io::Result<()> {
    upstream.write_all(&encode(version, endpoints)).await
}

/// The `version` header naming `endpoints`.
pub(super) fn encode(version: ProxyProtocolVersion, endpoints: Endpoints) -> Vec<u8> {
    let (source, destination) = same_family(endpoints.source, endpoints.destination);
    match version {
        ProxyProtocolVersion::V1 => {
            let protocol = if source.is_ipv4() { "TCP4" } else { "TCP6" };
            format!(
                "PROXY {protocol} {} {} {} {}\r\n",
                source.ip(),
                destination.ip(),
                source.port(),
                destination.port()
            )
            .into_bytes()
        }
        ProxyProtocolVersion::V2 => {
            let mut header = Vec::with_capacity(52);
            header.extend_from_slice(&V2_SIGNATURE);
            // Version 2, command PROXY; TCP over IPv4 or IPv6, and the address block's length.
            match (source.ip(), destination.ip()) {
                (IpAddr::V4(from), IpAddr::V4(to)) => {
                    header.extend_from_slice(&[0x21, 0x11, 0, 12]);
                    header.extend_from_slice(&from.octets());
                    header.extend_from_slice(&to.octets());
                }
                (from, to) => {
                    header.extend_from_slice(&[0x21, 0x21, 0, 36]);
                    header.extend_from_slice(&ipv6(from).octets());
                    header.extend_from_slice(&ipv6(to).octets());
                }
            }
            header.extend_from_slice(&source.port().to_be_bytes());
            header.extend_from_slice(&destination.port().to_be_bytes());
            header
        }
    }
}

/// The two addresses in one family: IPv4-mapped IPv6 addresses as IPv4 where both can be, and
/// otherwise both as IPv6 (an IPv4 address mapped).
fn same_family(source: SocketAddr, destination: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canonical = |addr: SocketAddr| SocketAddr::new(addr.ip().to_canonical(), addr.port());
    let (source, destination) = (canonical(source), canonical(destination));
    if source.is_ipv4() == destination.is_ipv4() {
        return (source, destination);
    }
    let mapped = |addr: SocketAddr| SocketAddr::new(IpAddr::V6(ipv6(addr.ip())), addr.port());
    (mapped(source), mapped(destination))
}

/// `ip` as an IPv6 address (IPv4 mapped).
fn ipv6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::{parse, Parsed};
    use super::*;

    fn endpoints(source: &str, destination: &str) -> Endpoints {
        Endpoints { source: source.parse().unwrap(), destination: destination.parse().unwrap() }
    }

    #[test]
    fn v1_is_one_line_per_family() {
        let header = encode(ProxyProtocolVersion::V1, endpoints("192.0.2.7:50000", "198.51.100.1:443"));
        assert_eq!(header, b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\n");
        let header = encode(ProxyProtocolVersion::V1, endpoints("[2001:db8::7]:1", "[::1]:2"));
        assert_eq!(header, b"PROXY TCP6 2001:db8::7 ::1 1 2\r\n");
    }

    #[test]
    fn v2_is_the_binary_header() {
        let header = encode(ProxyProtocolVersion::V2, endpoints("192.0.2.7:50000", "198.51.100.1:443"));
        let mut expected = V2_SIGNATURE.to_vec();
        expected.extend_from_slice(&[0x21, 0x11, 0, 12, 192, 0, 2, 7, 198, 51, 100, 1, 0xc3, 0x50, 0x01, 0xbb]);
        assert_eq!(header, expected);
    }

    #[test]
    fn mixed_families_are_sent_in_one() {
        let header = encode(ProxyProtocolVersion::V1, endpoints("[::ffff:192.0.2.7]:1", "198.51.100.1:2"));
        assert_eq!(header, b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r\n");
        let header = encode(ProxyProtocolVersion::V1, endpoints("192.0.2.7:1", "[2001:db8::1]:2"));
        assert_eq!(header, b"PROXY TCP6 ::ffff:192.0.2.7 2001:db8::1 1 2\r\n");
    }

    #[test]
    fn what_is_written_parses_back() {
        for version in [ProxyProtocolVersion::V1, ProxyProtocolVersion::V2] {
            for sent in [endpoints("192.0.2.7:50000", "198.51.100.1:443"), endpoints("[2001:db8::7]:80", "[::1]:8080")]
            {
                let header = encode(version, sent);
                assert_eq!(parse(&header), Ok(Parsed::Complete { len: header.len(), endpoints: Some(sent) }));
            }
        }
    }
}
