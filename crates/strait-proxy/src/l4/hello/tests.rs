//! Tests of the ClientHello reader: real hellos from rustls whole, cut into pieces and into
//! several records, hellos built field by field, and truncated, mutated and random input.

use std::sync::Arc;

use super::{scan, Scan, MAX_HELLO_BYTES};

/// The first flight of a rustls client for `server_name` (none when `None`) offering `alpn`.
fn rustls_hello(server_name: Option<&str>, alpn: &[&str]) -> Vec<u8> {
    let roots = rustls::RootCertStore::empty();
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    config.enable_sni = server_name.is_some();
    let name = rustls::pki_types::ServerName::try_from(server_name.unwrap_or("unnamed.test").to_owned()).unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut bytes = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut bytes).unwrap();
    }
    bytes
}

/// The handshake message of a one-record hello, cut into records of `size` payload bytes.
fn in_records(hello: &[u8], size: usize) -> Vec<u8> {
    let message = &hello[5..];
    let mut bytes = Vec::new();
    for piece in message.chunks(size) {
        bytes.extend_from_slice(&[22, 3, 1]);
        bytes.extend_from_slice(&(piece.len() as u16).to_be_bytes());
        bytes.extend_from_slice(piece);
    }
    bytes
}

/// Scans a copy of `bytes` and describes the outcome (the hello's name and ALPN, or the kind).
fn outcome(bytes: &[u8]) -> String {
    let mut copy = bytes.to_vec();
    match scan(&mut copy) {
        Scan::Hello(hello) => format!("hello {:?} {:?}", hello.server_name, hello.alpn),
        Scan::Incomplete => "incomplete".into(),
        Scan::NotTls => "not tls".into(),
        Scan::Invalid(why) => format!("invalid: {why}"),
    }
}

/// A ClientHello record with these extensions (type, data), built field by field.
fn built_hello(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    let mut list = Vec::new();
    for (kind, data) in extensions {
        list.extend_from_slice(&kind.to_be_bytes());
        list.extend_from_slice(&(data.len() as u16).to_be_bytes());
        list.extend_from_slice(data);
    }
    body.extend_from_slice(&(list.len() as u16).to_be_bytes());
    body.extend_from_slice(&list);
    let mut message = vec![1, 0];
    message.extend_from_slice(&(body.len() as u16).to_be_bytes());
    message.extend_from_slice(&body);
    let mut record = vec![22, 3, 1];
    record.extend_from_slice(&(message.len() as u16).to_be_bytes());
    record.extend_from_slice(&message);
    record
}

/// The data of a server_name extension listing `(name_type, name)` entries.
fn sni_data(entries: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (kind, name) in entries {
        list.push(*kind);
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&list);
    data
}

/// The data of an ALPN extension offering `protocols`.
fn alpn_data(protocols: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for protocol in protocols {
        list.push(protocol.len() as u8);
        list.extend_from_slice(protocol);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&list);
    data
}

#[test]
fn a_rustls_hello_gives_its_server_name_and_alpn() {
    let hello = rustls_hello(Some("Pay.Example.com"), &["h2", "http/1.1"]);
    assert_eq!(outcome(&hello), r#"hello Some("Pay.Example.com") ["h2", "http/1.1"]"#);
    let without = rustls_hello(None, &[]);
    assert_eq!(outcome(&without), "hello None []");
}

#[test]
fn every_prefix_of_a_hello_is_incomplete() {
    let hello = rustls_hello(Some("pay.example.com"), &["h2"]);
    for end in 0..hello.len() {
        assert_eq!(outcome(&hello[..end]), "incomplete", "first {end} bytes");
    }
}

#[test]
fn a_hello_over_several_records_reads_the_same_whole_and_in_every_prefix() {
    let hello = rustls_hello(Some("pay.example.com"), &["h2", "http/1.1"]);
    let expected = outcome(&hello);
    for size in [1, 2, 3, 4, 5, 17, 100, 511, hello.len() - 6] {
        let records = in_records(&hello, size);
        assert_eq!(outcome(&records), expected, "records of {size} bytes");
        if size >= 100 {
            for end in 0..records.len() {
                assert_eq!(outcome(&records[..end]), "incomplete", "records of {size}, first {end} bytes");
            }
        }
    }
}

#[test]
fn bytes_after_the_hello_do_not_matter() {
    let mut hello = rustls_hello(Some("a.test"), &[]);
    hello.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
    assert_eq!(outcome(&hello), r#"hello Some("a.test") []"#);
}

#[test]
fn other_protocols_are_not_tls() {
    for first in [&b"GET / HTTP/1.1\r\n"[..], b"SSH-2.0-OpenSSH", b"\x80\x2e\x01\x03\x01", &[22, 2, 0], b"\x00"] {
        assert_eq!(outcome(first), "not tls", "{first:?}");
    }
    assert_eq!(outcome(&[22]), "incomplete");
}

#[test]
fn malformed_records_and_messages_are_invalid() {
    let hello = rustls_hello(Some("a.test"), &[]);
    let mut server_hello = hello.clone();
    server_hello[5] = 2;
    assert!(outcome(&server_hello).starts_with("invalid"), "another handshake message");
    let mut empty_record = hello.clone();
    empty_record[3..5].copy_from_slice(&[0, 0]);
    assert!(outcome(&empty_record).starts_with("invalid"), "an empty record");
    let mut huge_record = hello.clone();
    huge_record[3..5].copy_from_slice(&[0x40, 0x01]);
    assert!(outcome(&huge_record).starts_with("invalid"), "a record over 16 KiB");
    let mut huge_message = hello.clone();
    huge_message[6..9].copy_from_slice(&[0, 0x40, 0]);
    assert!(outcome(&huge_message).starts_with("invalid"), "a hello over 16 KiB");
    let mut records = in_records(&hello, 40);
    let second = 5 + 40;
    records[second] = 23;
    assert!(outcome(&records).starts_with("invalid"), "application data inside the hello");
    let mut records = in_records(&hello, 40);
    records[second + 1] = 2;
    assert!(outcome(&records).starts_with("invalid"), "a record version that is not TLS");
}

/// Extensions of a built hello: type and data.
type Extensions = Vec<(u16, Vec<u8>)>;

#[test]
fn hellos_built_field_by_field() {
    let sni = |entries: &[(u8, &[u8])]| (0u16, sni_data(entries));
    let alpn = |protocols: &[&[u8]]| (16u16, alpn_data(protocols));
    let cases: Vec<(Extensions, &str)> = vec![
        (vec![], "hello None []"),
        (
            vec![sni(&[(0, b"db.example.com")]), alpn(&[b"postgresql"])],
            r#"hello Some("db.example.com") ["postgresql"]"#,
        ),
        (vec![(0, Vec::new())], "hello None []"),
        (vec![(0xff01, vec![0]), sni(&[(7, b"other"), (0, b"x.test")])], r#"hello Some("x.test") []"#),
        (
            vec![sni(&[(0, b"a.test")]), sni(&[(0, b"b.test")])],
            "invalid: the ClientHello has two server_name extensions",
        ),
        (vec![sni(&[(0, b"a.test"), (0, b"b.test")])], "invalid: the ClientHello names two host names"),
        (vec![sni(&[(0, b"")])], "invalid: the ClientHello's server name is not a host name"),
        (vec![sni(&[(0, b"a b.test")])], "invalid: the ClientHello's server name is not a host name"),
        (vec![sni(&[(0, "é.test".as_bytes())])], "invalid: the ClientHello's server name is not a host name"),
        (vec![sni(&[])], "invalid: the ClientHello's server_name extension is malformed"),
        (vec![(0, vec![0, 9, 0, 0, 2, b'a'])], "invalid: the ClientHello's server_name extension is malformed"),
        (vec![alpn(&[b"h2", b""])], "invalid: the ClientHello's ALPN extension is malformed"),
        (vec![alpn(&[])], "invalid: the ClientHello's ALPN extension is malformed"),
        (vec![alpn(&[b"h2"]), alpn(&[b"h2"])], "invalid: the ClientHello has two ALPN extensions"),
    ];
    for (extensions, expected) in cases {
        assert_eq!(outcome(&built_hello(&extensions)), expected, "{extensions:?}");
    }
    let long_name = vec![b'a'; 256];
    assert!(outcome(&built_hello(&[sni(&[(0, &long_name)])])).starts_with("invalid"));
}

#[test]
fn hello_fields_out_of_bounds_are_invalid() {
    let good = built_hello(&[]);
    // The body starts after the record header (5) and the message header (4).
    let body = 9;
    let mut version = good.clone();
    version[body] = 4;
    assert!(outcome(&version).starts_with("invalid"), "a version that is not TLS");
    let mut session = good.clone();
    session[body + 34] = 33;
    assert!(outcome(&session).starts_with("invalid"), "a session id over 32 bytes");
    let mut odd_suites = good.clone();
    odd_suites[body + 36] = 1;
    assert!(outcome(&odd_suites).starts_with("invalid"), "an odd cipher suite list");
    let mut trailing = good.clone();
    trailing.push(0);
    let message_length = u16::from_be_bytes([trailing[7], trailing[8]]) + 1;
    trailing[7..9].copy_from_slice(&message_length.to_be_bytes());
    trailing[3..5].copy_from_slice(&(message_length + 4).to_be_bytes());
    assert!(outcome(&trailing).starts_with("invalid"), "a byte after the extensions");
}

/// A small deterministic generator for the fuzz-like tests.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn mutated_and_random_input_never_panics() {
    let hello = rustls_hello(Some("pay.example.com"), &["h2", "http/1.1"]);
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    // Every single byte of the hello replaced, by several values.
    for at in 0..hello.len() {
        for value in [0u8, 1, 0x7f, 0xff, hello[at].wrapping_add(1)] {
            let mut mutated = hello.clone();
            mutated[at] = value;
            let _ = outcome(&mutated);
        }
    }
    // Several random bytes replaced at once, cut at a random length, in random records.
    for _ in 0..5_000 {
        let mut mutated = if random.next().is_multiple_of(2) {
            hello.clone()
        } else {
            in_records(&hello, 1 + (random.next() % 64) as usize)
        };
        for _ in 0..1 + random.next() % 4 {
            let at = (random.next() as usize) % mutated.len();
            mutated[at] = random.next() as u8;
        }
        mutated.truncate((random.next() as usize) % (mutated.len() + 1));
        let _ = outcome(&mutated);
    }
    // Random bytes after a handshake record header.
    for _ in 0..5_000 {
        let length = (random.next() as usize) % 600;
        let mut bytes = vec![22, 3, 1, (length >> 8) as u8, length as u8];
        bytes.extend((0..length).map(|_| random.next() as u8));
        if length > 0 && random.next().is_multiple_of(2) {
            bytes[5] = 1;
        }
        let _ = outcome(&bytes);
    }
    let full = vec![22u8; MAX_HELLO_BYTES];
    let _ = outcome(&full);
}
