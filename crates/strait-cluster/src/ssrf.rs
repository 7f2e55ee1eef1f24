//! SSRF address classes: which destination addresses are internal, following the IANA IPv4 and
//! IPv6 special-purpose address registries, and the allow list that lets some of them through.
//!
//! Everything here works on IP addresses, never on names, and does no I/O. A caller resolves
//! the destination first, classifies every address it may connect to, and then connects to
//! exactly the address it checked. Deciding on the name or on the text of the request would
//! not hold:
//!
//! - a name can resolve to a public address when checked and to `127.0.0.1` a moment later
//!   (DNS rebinding), so a second lookup at connect time undoes the check;
//! - one address has many spellings: `127.1`, `2130706433`, `0x7f000001` and `0177.0.0.1` are
//!   all `127.0.0.1` to `getaddrinfo`, and `[::ffff:127.0.0.1]` is the same socket on a
//!   dual-stack host. Only the resolved address says where the packets go.
//!
//! IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo)
//! are classified by the IPv4 address they carry, since that is what a translator or tunnel
//! delivers to; [`Classified::embedded`] says which form and address decided.

mod allow;
mod ipv4;
mod ipv6;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

pub use allow::AllowList;

/// What kind of destination an address is; everything but `Public` is internal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Globally reachable unicast.
    Public,
    /// This host: `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 private networks: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// Carrier-grade NAT shared space: `100.64.0.0/10`.
    SharedCgnat,
    /// Link-local: `169.254.0.0/16` (cloud metadata at `169.254.169.254`), `fe80::/10`.
    LinkLocal,
    /// IPv6 unique-local: `fc00::/7`.
    UniqueLocal,
    /// Deprecated IPv6 site-local: `fec0::/10`.
    SiteLocal,
    /// "This network" and the unspecified address: `0.0.0.0/8`, `::`.
    Unspecified,
    /// Multicast: `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// The limited broadcast address `255.255.255.255`.
    Broadcast,
    /// Documentation examples: `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`,
    /// `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Benchmarking networks: `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// IPv6 discard-only prefix: `100::/64`.
    Discard,
    /// Other special-purpose or unallocated space that is not globally reachable (`240.0.0.0/4`,
    /// `192.0.0.0/24`, `2001::/23` outside its global exceptions, IPv6 outside `2000::/3`...).
    Reserved,
}

// === impl AddressClass ===

impl AddressClass {
    /// True for every class but `Public`.
    pub fn is_internal(self) -> bool {
        self != AddressClass::Public
    }

    /// The class's name as logs and denial pages show it (`loopback`, `link_local`...).
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::SharedCgnat => "shared_cgnat",
            AddressClass::LinkLocal => "link_local",
            AddressClass::UniqueLocal => "unique_local",
            AddressClass::SiteLocal => "site_local",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::Discard => "discard",
            AddressClass::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IPv6 form that carries an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Embedding {
    /// `::ffff:a.b.c.d` (RFC 4291).
    Mapped,
    /// `::a.b.c.d`, deprecated (RFC 4291).
    Compatible,
    /// The well-known NAT64 prefix `64:ff9b::/96` (RFC 6052).
    Nat64,
    /// The local-use NAT64 prefix `64:ff9b:1::/48` (RFC 8215), IPv4 in the last 32 bits.
    Nat64Local,
    /// 6to4 `2002:AABB:CCDD::/48` (RFC 3056).
    SixToFour,
    /// Teredo's server address, bits 32..64 of `2001::/32` (RFC 4380).
    TeredoServer,
    /// Teredo's client address, the last 32 bits inverted (RFC 4380).
    TeredoClient,
}

// === impl Embedding ===

impl Embedding {
    /// The form's name as logs show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Embedding::Mapped => "ipv4_mapped",
            Embedding::Compatible => "ipv4_compatible",
            Embedding::Nat64 => "nat64",
            Embedding::Nat64Local => "nat64_local",
            Embedding::SixToFour => "6to4",
            Embedding::TeredoServer => "teredo_server",
            Embedding::TeredoClient => "teredo_client",
        }
    }
}

/// The IPv4 address an IPv6 address carries, and in which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Embedded {
    /// How the IPv6 address carries it.
    pub form: Embedding,
    /// The IPv4 address that was classified.
    pub v4: Ipv4Addr,
}

/// The outcome of [`classify`]: the class, and the embedded IPv4 address that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Classified {
    /// The address's class (for an embedding form, the carried IPv4 address's class).
    pub class: AddressClass,
    /// Set when the address is an IPv6 form carrying an IPv4 address.
    pub embedded: Option<Embedded>,
}

// === impl Classified ===

impl Classified {
    /// The carried IPv4 address, if the address is an embedding form.
    pub fn embedded_v4(&self) -> Option<Ipv4Addr> {
        self.embedded.map(|e| e.v4)
    }

    /// True unless the class is `Public`.
    pub fn is_internal(&self) -> bool {
        self.class.is_internal()
    }

    fn plain(class: AddressClass) -> Classified {
        Classified { class, embedded: None }
    }

    fn carried(form: Embedding, v4: Ipv4Addr) -> Classified {
        Classified { class: ipv4::classify(v4), embedded: Some(Embedded { form, v4 }) }
    }
}

/// `loopback`, or `loopback (127.0.0.1 as ipv4_mapped)` for an embedding form.
impl fmt::Display for Classified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            None => f.write_str(self.class.as_str()),
            Some(e) => write!(f, "{} ({} as {})", self.class, e.v4, e.form.as_str()),
        }
    }
}

/// Classifies a resolved destination address.
pub fn classify(ip: IpAddr) -> Classified {
    match ip {
        IpAddr::V4(v4) => Classified::plain(ipv4::classify(v4)),
        IpAddr::V6(v6) => ipv6::classify(v6),
    }
}

/// True when `ip` is anything but a public address.
pub fn is_internal(ip: IpAddr) -> bool {
    classify(ip).is_internal()
}
