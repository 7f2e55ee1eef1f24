//! The SSRF guard's allow list: resolved addresses let through although they are internal.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::ipv4::prefix_matches;
use super::ipv6::within;

/// Addresses, address and port pairs, and CIDR blocks a destination may resolve to anyway.
///
/// An entry is an IP (`127.0.0.1`, `::1`: any port), an IP and port (`127.0.0.1:18080`,
/// `[::1]:8080`) or a CIDR block (`10.1.0.0/16`, `fd00::/8`: any port). An IPv4-mapped IPv6
/// address (`::ffff:127.0.0.1`) is the same socket as its IPv4 address and matches the IPv4
/// entries; mapped entries are read as IPv4 entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

/// One allow-list entry: a block of addresses, and the one port it is limited to if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    net: Net,
    port: Option<u16>,
}

/// An address block of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Net {
    V4 { bits: u32, len: u8 },
    V6 { bits: u128, len: u8 },
}

// === impl AllowList ===

impl AllowList {
    /// Parses the entries; the error names the first bad one and says why.
    pub fn parse<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Result<AllowList, String> {
        let entries = entries.into_iter().map(|e| parse_entry(e.as_ref())).collect::<Result<_, _>>()?;
        Ok(AllowList { entries })
    }

    /// True when no entry is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when some entry holds the destination `addr`.
    pub fn allows(&self, addr: SocketAddr) -> bool {
        let ip = canonical(addr.ip());
        self.entries.iter().any(|entry| entry.port.is_none_or(|p| p == addr.port()) && entry.net.holds(ip))
    }
}

// === impl Net ===

impl Net {
    fn holds(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Net::V4 { bits, len }, IpAddr::V4(v4)) => prefix_matches(u32::from(v4), bits, len),
            (Net::V6 { bits, len }, IpAddr::V6(v6)) => within(u128::from(v6), (bits, len)),
            // A block wider than the mapped range (`::/0`) holds the IPv4 addresses it maps.
            (Net::V6 { bits, len }, IpAddr::V4(v4)) => len < 96 && within(u128::from(v4.to_ipv6_mapped()), (bits, len)),
            (Net::V4 { .. }, IpAddr::V6(_)) => false,
        }
    }

    /// The block of `ip/len`, an IPv4-mapped block read as the IPv4 block it maps.
    fn new(ip: IpAddr, len: u8) -> Net {
        match ip {
            IpAddr::V4(v4) => Net::V4 { bits: u32::from(v4), len },
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if len >= 96 => Net::V4 { bits: u32::from(v4), len: len - 96 },
                _ => Net::V6 { bits: u128::from(v6), len },
            },
        }
    }
}

/// `ip`, with an IPv4-mapped IPv6 address turned into its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn parse_entry(raw: &str) -> Result<Entry, String> {
    let entry = raw.trim();
    let shape =
        "an IP (`127.0.0.1`, `::1`), an IP and port (`127.0.0.1:18080`, `[::1]:8080`) or a CIDR block (`10.1.0.0/16`)";
    if let Some((addr, len)) = entry.split_once('/') {
        let ip: IpAddr = addr.parse().map_err(|_| format!("`{entry}`: `{addr}` is not an IP address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u8 = len
            .parse()
            .ok()
            .filter(|len| *len <= max)
            .ok_or_else(|| format!("`{entry}`: the prefix length must be a number from 0 to {max}"))?;
        let network = masked(ip, len);
        if network != ip {
            return Err(format!("`{entry}` has bits set past the /{len} prefix (the block is `{network}/{len}`)"));
        }
        return Ok(Entry { net: Net::new(ip, len), port: None });
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(Entry { net: Net::new(ip, if ip.is_ipv4() { 32 } else { 128 }), port: None });
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!("`{entry}`: port 0 is no destination port"));
        }
        let ip = addr.ip();
        return Ok(Entry { net: Net::new(ip, if ip.is_ipv4() { 32 } else { 128 }), port: Some(addr.port()) });
    }
    Err(format!("`{entry}` is not {shape}; names are not accepted, since destinations are checked after resolution"))
}

/// `ip` with every bit past the first `len` cleared.
fn masked(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}
