//! IPv6 classes, from the IANA IPv6 Special-Purpose Address Registry and the IPv6 address
//! space (only `2000::/3` is global unicast), with the forms that carry an IPv4 address.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{AddressClass, Classified, Embedding};
use AddressClass::*;

/// `(network, prefix length, class)` for addresses that carry no IPv4 address, most specific
/// first; the first block that holds an address decides. The globally reachable exceptions of
/// `2001::/23` come before it; anything past the table is outside `2000::/3`, hence reserved.
const BLOCKS: &[(Ipv6Addr, u8, AddressClass)] = &[
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, Discard),
    // Dummy IPv6 prefix (RFC 9780).
    (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64, Reserved),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, UniqueLocal),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, LinkLocal),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, SiteLocal),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, Multicast),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, Documentation),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, Documentation),
    (Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 0), 48, Benchmarking),
    // Globally reachable parts of 2001::/23: PCP, TURN and DNS-SD SRP anycast, AMT,
    // AS112-v6, ORCHIDv2, DRIP.
    (Ipv6Addr::new(0x2001, 0x1, 0, 0, 0, 0, 0, 1), 128, Public),
    (Ipv6Addr::new(0x2001, 0x1, 0, 0, 0, 0, 0, 2), 128, Public),
    (Ipv6Addr::new(0x2001, 0x1, 0, 0, 0, 0, 0, 3), 128, Public),
    (Ipv6Addr::new(0x2001, 0x3, 0, 0, 0, 0, 0, 0), 32, Public),
    (Ipv6Addr::new(0x2001, 0x4, 0x112, 0, 0, 0, 0, 0), 48, Public),
    (Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28, Public),
    (Ipv6Addr::new(0x2001, 0x30, 0, 0, 0, 0, 0, 0), 28, Public),
    // IETF protocol assignments (ORCHID, the rest of 2001:1::/48...).
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, Reserved),
    (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3, Public),
];

const MAPPED: (u128, u8) = (0xffff_0000_0000, 96);
const COMPATIBLE: (u128, u8) = (0, 96);
const NAT64: (u128, u8) = (0x0064_ff9b << 96, 96);
const NAT64_LOCAL: (u128, u8) = ((0x0064_ff9b_0001 << 80), 48);
const SIX_TO_FOUR: (u128, u8) = (0x2002 << 112, 16);
const TEREDO: (u128, u8) = (0x2001_0000 << 96, 32);

/// The class of an IPv6 address; forms that carry an IPv4 address get that address's class.
pub(super) fn classify(ip: Ipv6Addr) -> Classified {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from(bits as u32);
    if bits == 0 {
        return Classified::plain(Unspecified);
    }
    if bits == 1 {
        return Classified::plain(Loopback);
    }
    if within(bits, MAPPED) {
        return Classified::carried(Embedding::Mapped, low32);
    }
    if within(bits, COMPATIBLE) {
        return Classified::carried(Embedding::Compatible, low32);
    }
    if within(bits, NAT64) {
        return Classified::carried(Embedding::Nat64, low32);
    }
    if within(bits, NAT64_LOCAL) {
        // Only the /96 layout (bits 48..96 zero) says where the IPv4 address is; a longer
        // prefix puts it elsewhere (RFC 6052), so such an address cannot be vouched for.
        return match within(bits, (NAT64_LOCAL.0, 96)) {
            true => Classified::carried(Embedding::Nat64Local, low32),
            false => Classified::plain(Reserved),
        };
    }
    if within(bits, SIX_TO_FOUR) {
        return Classified::carried(Embedding::SixToFour, Ipv4Addr::from((bits >> 80) as u32));
    }
    if within(bits, TEREDO) {
        return teredo(bits);
    }
    let class = BLOCKS
        .iter()
        .find(|(net, len, _)| within(bits, (u128::from(*net), *len)))
        .map_or(Reserved, |&(_, _, class)| class);
    Classified::plain(class)
}

/// A Teredo address: internal when either its client or its server address is; reported
/// by the client address unless only the server's is internal.
fn teredo(bits: u128) -> Classified {
    let server = Ipv4Addr::from((bits >> 64) as u32);
    let client = Ipv4Addr::from(!(bits as u32));
    let by_client = Classified::carried(Embedding::TeredoClient, client);
    let by_server = Classified::carried(Embedding::TeredoServer, server);
    match by_client.is_internal() || !by_server.is_internal() {
        true => by_client,
        false => by_server,
    }
}

/// True when `bits` lies in the block `(net, len)`.
pub(super) fn within(bits: u128, (net, len): (u128, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    bits & mask == net & mask
}
