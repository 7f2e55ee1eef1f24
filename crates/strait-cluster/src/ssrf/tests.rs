//! Every address class in both families, the edges of each block, every IPv4-carrying form,
//! and the allow list.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::AddressClass::{self, *};
use super::{classify, is_internal, AllowList, Embedded, Embedding};

fn class_of(ip: &str) -> AddressClass {
    classify(ip.parse().unwrap()).class
}

#[track_caller]
fn assert_classes(cases: &[(&str, AddressClass)]) {
    for (ip, want) in cases {
        let got = classify(ip.parse().unwrap());
        assert_eq!(got.class, *want, "{ip}");
        assert_eq!(got.embedded, None, "{ip} carries no IPv4 address");
        assert_eq!(is_internal(ip.parse().unwrap()), *want != Public, "{ip}");
    }
}

#[track_caller]
fn assert_carried(ip: &str, form: Embedding, v4: &str, want: AddressClass) {
    let got = classify(ip.parse().unwrap());
    let v4: Ipv4Addr = v4.parse().unwrap();
    assert_eq!(got.embedded, Some(Embedded { form, v4 }), "{ip}");
    assert_eq!(got.class, want, "{ip}");
    assert_eq!(got.embedded_v4(), Some(v4));
    assert_eq!(got.is_internal(), want != Public, "{ip}");
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn ipv4_classes_and_block_edges() {
    assert_classes(&[
        ("0.0.0.0", Unspecified),
        ("0.255.255.255", Unspecified),
        ("1.0.0.0", Public),
        ("8.8.8.8", Public),
        ("9.255.255.255", Public),
        ("10.0.0.0", Private),
        ("10.255.255.255", Private),
        ("11.0.0.0", Public),
        ("100.63.255.255", Public),
        ("100.64.0.0", SharedCgnat),
        ("100.127.255.255", SharedCgnat),
        ("100.128.0.0", Public),
        ("126.255.255.255", Public),
        ("127.0.0.0", Loopback),
        ("127.0.0.1", Loopback),
        ("127.255.255.255", Loopback),
        ("128.0.0.0", Public),
        ("169.253.255.255", Public),
        ("169.254.0.0", LinkLocal),
        ("169.254.169.254", LinkLocal),
        ("169.254.255.255", LinkLocal),
        ("169.255.0.0", Public),
        ("172.15.255.255", Public),
        ("172.16.0.0", Private),
        ("172.31.255.255", Private),
        ("172.32.0.0", Public),
        ("191.255.255.255", Public),
        ("192.0.0.0", Reserved),
        ("192.0.0.8", Reserved),
        ("192.0.0.9", Reserved),
        ("192.0.0.170", Reserved),
        ("192.0.0.255", Reserved),
        ("192.0.1.0", Public),
        ("192.0.2.0", Documentation),
        ("192.0.2.255", Documentation),
        ("192.0.3.0", Public),
        ("192.31.196.1", Public),
        ("192.52.193.1", Public),
        ("192.88.98.255", Public),
        ("192.88.99.1", Reserved),
        ("192.88.100.0", Public),
        ("192.167.255.255", Public),
        ("192.168.0.0", Private),
        ("192.168.255.255", Private),
        ("192.169.0.0", Public),
        ("192.175.48.1", Public),
        ("198.17.255.255", Public),
        ("198.18.0.0", Benchmarking),
        ("198.19.255.255", Benchmarking),
        ("198.20.0.0", Public),
        ("198.51.99.255", Public),
        ("198.51.100.0", Documentation),
        ("198.51.100.255", Documentation),
        ("198.51.101.0", Public),
        ("203.0.112.255", Public),
        ("203.0.113.0", Documentation),
        ("203.0.113.255", Documentation),
        ("203.0.114.0", Public),
        ("223.255.255.255", Public),
        ("224.0.0.0", Multicast),
        ("224.0.0.251", Multicast),
        ("239.255.255.255", Multicast),
        ("240.0.0.0", Reserved),
        ("255.255.255.254", Reserved),
        ("255.255.255.255", Broadcast),
    ]);
}

#[test]
fn ipv6_classes_and_block_edges() {
    assert_classes(&[
        ("::", Unspecified),
        ("::1", Loopback),
        ("::1:0:0:0", Reserved),
        ("ff::", Reserved),
        ("100::", Discard),
        ("100::ffff:ffff:ffff:ffff", Discard),
        ("100:0:0:1::", Reserved),
        ("100:0:0:2::", Reserved),
        ("1fff:ffff::", Reserved),
        ("2000::", Public),
        ("2001:1::1", Public),
        ("2001:1::2", Public),
        ("2001:1::3", Public),
        ("2001:1::4", Reserved),
        ("2001:2::", Benchmarking),
        ("2001:2:0:ffff::1", Benchmarking),
        ("2001:2:1::", Reserved),
        ("2001:3::1", Public),
        ("2001:4:112::1", Public),
        ("2001:4:113::1", Reserved),
        ("2001:10::1", Reserved),
        ("2001:20::1", Public),
        ("2001:2f:ffff::", Public),
        ("2001:30::1", Public),
        ("2001:1ff:ffff::", Reserved),
        ("2001:200::", Public),
        ("2001:db7:ffff::", Public),
        ("2001:db8::", Documentation),
        ("2001:db8:ffff:ffff::1", Documentation),
        ("2001:db9::", Public),
        ("2606:4700::1111", Public),
        ("2620:4f:8000::1", Public),
        ("3ffe::1", Public),
        ("3fff::", Documentation),
        ("3fff:fff::1", Documentation),
        ("3fff:1000::", Public),
        ("4000::1", Reserved),
        ("5f00::1", Reserved),
        ("fbff:ffff::", Reserved),
        ("fc00::", UniqueLocal),
        ("fd00::1", UniqueLocal),
        ("fdff:ffff::1", UniqueLocal),
        ("fe00::", Reserved),
        ("fe7f:ffff::", Reserved),
        ("fe80::", LinkLocal),
        ("fe80::1", LinkLocal),
        ("febf:ffff::", LinkLocal),
        ("fec0::", SiteLocal),
        ("feff:ffff::", SiteLocal),
        ("ff00::", Multicast),
        ("ff02::1", Multicast),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Multicast),
    ]);
}

#[test]
fn ipv4_mapped_and_compatible_forms_take_the_ipv4_class() {
    assert_carried("::ffff:127.0.0.1", Embedding::Mapped, "127.0.0.1", Loopback);
    assert_carried("::ffff:7f00:1", Embedding::Mapped, "127.0.0.1", Loopback);
    assert_carried("::ffff:169.254.169.254", Embedding::Mapped, "169.254.169.254", LinkLocal);
    assert_carried("::ffff:10.1.2.3", Embedding::Mapped, "10.1.2.3", Private);
    assert_carried("::ffff:0.0.0.0", Embedding::Mapped, "0.0.0.0", Unspecified);
    assert_carried("::ffff:255.255.255.255", Embedding::Mapped, "255.255.255.255", Broadcast);
    assert_carried("::ffff:8.8.8.8", Embedding::Mapped, "8.8.8.8", Public);
    assert_carried("::127.0.0.1", Embedding::Compatible, "127.0.0.1", Loopback);
    assert_carried("::192.168.1.1", Embedding::Compatible, "192.168.1.1", Private);
    assert_carried("::2", Embedding::Compatible, "0.0.0.2", Unspecified);
    assert_carried("::8.8.8.8", Embedding::Compatible, "8.8.8.8", Public);
}

#[test]
fn nat64_forms_take_the_ipv4_class() {
    assert_carried("64:ff9b::127.0.0.1", Embedding::Nat64, "127.0.0.1", Loopback);
    assert_carried("64:ff9b::100.64.0.1", Embedding::Nat64, "100.64.0.1", SharedCgnat);
    assert_carried("64:ff9b::8.8.8.8", Embedding::Nat64, "8.8.8.8", Public);
    assert_carried("64:ff9b:1::10.0.0.1", Embedding::Nat64Local, "10.0.0.1", Private);
    assert_carried("64:ff9b:1::169.254.169.254", Embedding::Nat64Local, "169.254.169.254", LinkLocal);
    assert_carried("64:ff9b:1::8.8.8.8", Embedding::Nat64Local, "8.8.8.8", Public);
    // Another RFC 6052 layout inside the local-use prefix (127.0.0.1 under a /48): the IPv4
    // address cannot be located, so it is not vouched for.
    assert_classes(&[("64:ff9b:1:7f00:0:100::", Reserved), ("64:ff9b:1:ffff::1", Reserved)]);
    // Outside the /96 well-known prefix but inside 64:ff9b::/32: not a NAT64 address.
    assert_classes(&[("64:ff9b:0:0:1::7f00:1", Reserved), ("64:ff9a::8.8.8.8", Reserved)]);
}

#[test]
fn six_to_four_takes_the_ipv4_class_of_bits_16_to_48() {
    assert_carried("2002:7f00:1::", Embedding::SixToFour, "127.0.0.1", Loopback);
    assert_carried("2002:a9fe:a9fe::1", Embedding::SixToFour, "169.254.169.254", LinkLocal);
    assert_carried("2002:c0a8:101:1::1", Embedding::SixToFour, "192.168.1.1", Private);
    assert_carried("2002:e000::", Embedding::SixToFour, "224.0.0.0", Multicast);
    assert_carried("2002:808:808::1", Embedding::SixToFour, "8.8.8.8", Public);
    assert_carried("2002:ffff:ffff:ffff::", Embedding::SixToFour, "255.255.255.255", Broadcast);
}

#[test]
fn teredo_is_internal_when_either_its_client_or_server_is() {
    // Client 127.0.0.1 inverted is 80ff:fffe; server 65.54.227.120 (public).
    assert_carried("2001:0:4136:e378:8000:63bf:80ff:fffe", Embedding::TeredoClient, "127.0.0.1", Loopback);
    // Client 192.0.2.45 inverted (Documentation), server public.
    assert_carried("2001:0:4136:e378:8000:63bf:3fff:fdd2", Embedding::TeredoClient, "192.0.2.45", Documentation);
    // Public client 8.8.8.8 (f7f7:f7f7), internal server 10.0.0.1: the server decides.
    assert_carried("2001:0:a00:1::f7f7:f7f7", Embedding::TeredoServer, "10.0.0.1", Private);
    // Both internal: the client is reported.
    assert_carried("2001:0:a00:1::80ff:fffe", Embedding::TeredoClient, "127.0.0.1", Loopback);
    // Both public: public, reported by the client.
    assert_carried("2001:0:4136:e378:8000:63bf:f7f7:f7f7", Embedding::TeredoClient, "8.8.8.8", Public);
    // Client bits all ones invert to 0.0.0.0.
    assert_carried("2001:0:4136:e378::ffff:ffff", Embedding::TeredoClient, "0.0.0.0", Unspecified);
}

#[test]
fn names_and_display() {
    let got = classify("::ffff:127.0.0.1".parse().unwrap());
    assert_eq!(got.to_string(), "loopback (127.0.0.1 as ipv4_mapped)");
    assert_eq!(classify("169.254.169.254".parse().unwrap()).to_string(), "link_local");
    assert_eq!(SharedCgnat.to_string(), "shared_cgnat");
    assert!(!Public.is_internal());
    for class in [
        Loopback,
        Private,
        SharedCgnat,
        LinkLocal,
        UniqueLocal,
        SiteLocal,
        Unspecified,
        Multicast,
        Broadcast,
        Documentation,
        Benchmarking,
        Discard,
        Reserved,
    ] {
        assert!(class.is_internal(), "{class}");
    }
    assert_eq!(class_of("127.0.0.1"), class_of("::ffff:127.0.0.1"));
}

#[test]
fn allow_list_matches_addresses_ports_and_blocks() {
    let list =
        AllowList::parse(["127.0.0.1:18080", "[::1]:8080", "10.1.0.0/16", "fd00::/8", " 169.254.169.254 "]).unwrap();
    assert!(list.allows(sock("127.0.0.1:18080")));
    assert!(!list.allows(sock("127.0.0.1:18081")), "the port is part of the entry");
    assert!(!list.allows(sock("127.0.0.2:18080")));
    assert!(list.allows(sock("[::1]:8080")));
    assert!(!list.allows(sock("[::1]:8081")));
    assert!(!list.allows(sock("127.0.0.1:8080")), "::1 is not 127.0.0.1");
    assert!(list.allows(sock("10.1.0.0:1")));
    assert!(list.allows(sock("10.1.255.255:443")));
    assert!(!list.allows(sock("10.2.0.0:443")));
    assert!(list.allows(sock("[fd00::1]:80")));
    assert!(list.allows(sock("[fdff:ffff::1]:80")));
    assert!(!list.allows(sock("[fe00::1]:80")));
    assert!(list.allows(sock("169.254.169.254:80")), "an IP without a port allows every port");
    assert!(list.allows(sock("169.254.169.254:65535")));
    assert!(!AllowList::default().allows(sock("8.8.8.8:80")));
    assert!(AllowList::default().is_empty());
    assert!(!list.is_empty());
}

#[test]
fn allow_list_reads_ipv4_mapped_addresses_as_ipv4() {
    let list = AllowList::parse(["127.0.0.1", "10.0.0.0/8"]).unwrap();
    assert!(list.allows(sock("[::ffff:127.0.0.1]:80")));
    assert!(list.allows(sock("[::ffff:10.9.8.7]:80")));
    assert!(!list.allows(sock("[::ffff:11.0.0.1]:80")));
    assert!(!list.allows(sock("[::127.0.0.1]:80")), "only the mapped form is the same socket");
    assert!(!list.allows(sock("[64:ff9b::127.0.0.1]:80")));

    let mapped = AllowList::parse(["::ffff:127.0.0.1", "::ffff:192.168.0.0/112"]).unwrap();
    assert!(mapped.allows(sock("127.0.0.1:80")));
    assert!(mapped.allows(sock("[::ffff:127.0.0.1]:80")));
    assert!(mapped.allows(sock("192.168.7.7:80")));
    assert!(!mapped.allows(sock("192.169.0.0:80")));

    let v6_any = AllowList::parse(["::/0"]).unwrap();
    assert!(v6_any.allows(sock("[2001:db8::1]:80")));
    assert!(v6_any.allows(sock("127.0.0.1:80")), "::/0 holds the mapped range");
    assert!(!AllowList::parse(["0.0.0.0/0"]).unwrap().allows(sock("[::1]:80")));
    assert!(AllowList::parse(["0.0.0.0/0"]).unwrap().allows(sock("[::ffff:1.2.3.4]:80")));
}

#[test]
fn allow_list_errors_name_the_bad_entry() {
    let cases = [
        ("localhost", "`localhost` is not an IP"),
        ("", "`` is not an IP"),
        ("127.0.0.1:0", "port 0"),
        ("127.0.0.1:65536", "`127.0.0.1:65536` is not an IP"),
        ("10.0.0.0/33", "from 0 to 32"),
        ("fd00::/129", "from 0 to 128"),
        ("10.0.0.0/x", "from 0 to 32"),
        ("10.0.0/8", "`10.0.0` is not an IP address"),
        ("10.1.0.1/16", "the block is `10.1.0.0/16`"),
        ("fd00::1/8", "the block is `fd00::/8`"),
        ("127.1", "`127.1` is not an IP"),
    ];
    for (entry, want) in cases {
        let err = AllowList::parse(["127.0.0.1", entry]).unwrap_err();
        assert!(err.contains(want), "{entry}: {err}");
    }
    // A bare IPv6 address with what looks like a port is the address `::1:8080`.
    let odd = AllowList::parse(["::1:8080"]).unwrap();
    assert!(odd.allows(sock("[::1:8080]:1")) && !odd.allows(sock("[::1]:8080")));
    let v4: IpAddr = "127.0.0.1".parse().unwrap();
    assert!(AllowList::parse(["127.0.0.1/32"]).unwrap().allows(SocketAddr::new(v4, 9)));
    assert!(AllowList::parse(["0.0.0.0/0"]).unwrap().allows(SocketAddr::new(v4, 9)));
}
