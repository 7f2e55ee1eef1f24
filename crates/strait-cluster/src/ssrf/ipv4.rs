//! IPv4 classes, from the IANA IPv4 Special-Purpose Address Registry and the multicast space.

use std::net::Ipv4Addr;

use super::AddressClass;
use AddressClass::*;

/// `(network, prefix length, class)`, most specific first; the first block that holds an
/// address decides, and an address in none of them is public.
///
/// `192.0.0.0/24` is reserved as a whole, its two globally reachable anycast addresses
/// (`192.0.0.9` PCP, `192.0.0.10` TURN) included: no proxied request has business there.
/// The deprecated 6to4 relay anycast block `192.88.99.0/24` (RFC 7526) is reserved too. The
/// registry's globally reachable blocks (AS112 `192.31.196.0/24` and `192.175.48.0/24`, AMT
/// `192.52.193.0/24`) are public.
const BLOCKS: &[(Ipv4Addr, u8, AddressClass)] = &[
    (Ipv4Addr::new(255, 255, 255, 255), 32, Broadcast),
    (Ipv4Addr::new(0, 0, 0, 0), 8, Unspecified),
    (Ipv4Addr::new(10, 0, 0, 0), 8, Private),
    (Ipv4Addr::new(100, 64, 0, 0), 10, SharedCgnat),
    (Ipv4Addr::new(127, 0, 0, 0), 8, Loopback),
    (Ipv4Addr::new(169, 254, 0, 0), 16, LinkLocal),
    (Ipv4Addr::new(172, 16, 0, 0), 12, Private),
    (Ipv4Addr::new(192, 0, 0, 0), 24, Reserved),
    (Ipv4Addr::new(192, 0, 2, 0), 24, Documentation),
    (Ipv4Addr::new(192, 88, 99, 0), 24, Reserved),
    (Ipv4Addr::new(192, 168, 0, 0), 16, Private),
    (Ipv4Addr::new(198, 18, 0, 0), 15, Benchmarking),
    (Ipv4Addr::new(198, 51, 100, 0), 24, Documentation),
    (Ipv4Addr::new(203, 0, 113, 0), 24, Documentation),
    (Ipv4Addr::new(224, 0, 0, 0), 4, Multicast),
    (Ipv4Addr::new(240, 0, 0, 0), 4, Reserved),
];

/// The class of an IPv4 address.
pub(super) fn classify(ip: Ipv4Addr) -> AddressClass {
    let bits = u32::from(ip);
    BLOCKS
        .iter()
        .find(|(net, len, _)| prefix_matches(bits, u32::from(*net), *len))
        .map_or(Public, |&(_, _, class)| class)
}

/// True when the first `len` bits of `bits` and `net` agree.
pub(super) fn prefix_matches(bits: u32, net: u32, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    bits & mask == net & mask
}
