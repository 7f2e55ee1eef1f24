//! Versions, cipher suites, ALPN and session resumption of a listener.

use crate::common;

use std::sync::Arc;

use common::{client, connect, listener_tls, Pki, Server};
use rustls::version::{TLS12, TLS13};
use rustls::{CipherSuite, ClientConfig, HandshakeKind, ProtocolVersion, SupportedProtocolVersion};
use strait_tls::ServerTls;

/// A server for `site.test` with `extra` lines added to its `tls` block.
async fn server(pki: &Pki, extra: &str) -> Server {
    pki.server("site", &["site.test"]);
    let settings = listener_tls(&format!("certificates: [{{ cert: site.pem, key: site.key }}]\n{extra}"));
    let tls = ServerTls::build(&settings, pki.dir()).unwrap_or_else(|errors| panic!("{errors:?}"));
    Server::start(tls.acceptor()).await
}

#[tokio::test]
async fn h2_is_negotiated_by_default() {
    let pki = Pki::new("Test CA");
    let mut server = server(&pki, "").await;
    let outcome = connect(&client(pki.roots(), &["h2", "http/1.1"], rustls::ALL_VERSIONS), server.addr, "site.test")
        .await
        .unwrap();
    assert_eq!(outcome.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(server.next().await.unwrap().alpn.as_deref(), Some(&b"h2"[..]));
    let http1 = client(pki.roots(), &["http/1.1"], rustls::ALL_VERSIONS);
    assert_eq!(connect(&http1, server.addr, "site.test").await.unwrap().alpn.as_deref(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn alpn_follows_the_configuration() {
    let pki = Pki::new("Test CA");
    let server = server(&pki, "alpn: [http/1.1]").await;
    let both = client(pki.roots(), &["h2", "http/1.1"], rustls::ALL_VERSIONS);
    assert_eq!(connect(&both, server.addr, "site.test").await.unwrap().alpn.as_deref(), Some(&b"http/1.1"[..]));
    // A client that offers only protocols the listener does not speak is refused (RFC 7301).
    assert!(connect(&client(pki.roots(), &["h2"], rustls::ALL_VERSIONS), server.addr, "site.test").await.is_err());
}

#[tokio::test]
async fn both_versions_by_default() {
    let pki = Pki::new("Test CA");
    let server = server(&pki, "").await;
    for (version, expected) in [(&TLS12, ProtocolVersion::TLSv1_2), (&TLS13, ProtocolVersion::TLSv1_3)] {
        let outcome = connect(&client(pki.roots(), &[], &[version]), server.addr, "site.test").await.unwrap();
        assert_eq!(outcome.version, expected);
    }
}

#[tokio::test]
async fn tls13_only_refuses_tls12_clients() {
    let pki = Pki::new("Test CA");
    let mut server = server(&pki, "versions: [tls1.3]").await;
    assert!(connect(&client(pki.roots(), &[], &[&TLS12]), server.addr, "site.test").await.is_err());
    assert!(server.next().await.is_err());
    connect(&client(pki.roots(), &[], &[&TLS13]), server.addr, "site.test").await.unwrap();
}

#[tokio::test]
async fn listed_suites_limit_tls12_and_leave_tls13_on() {
    let pki = Pki::new("Test CA");
    // rcgen's keys are ECDSA P-256, so the ECDSA suites are the ones that can be used.
    let server = server(&pki, "cipher_suites: [ECDHE-ECDSA-CHACHA20-POLY1305]").await;
    let tls12 = connect(&client(pki.roots(), &[], &[&TLS12]), server.addr, "site.test").await.unwrap();
    assert_eq!(tls12.suite, CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256);
    let tls13 = connect(&client(pki.roots(), &[], &[&TLS13]), server.addr, "site.test").await.unwrap();
    assert_eq!(tls13.version, ProtocolVersion::TLSv1_3);

    let aes_only = {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        provider.cipher_suites.retain(|suite| suite.suite() == CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
        let config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&TLS12])
            .unwrap()
            .with_root_certificates(pki.roots())
            .with_no_client_auth();
        Arc::new(config)
    };
    assert!(connect(&aes_only, server.addr, "site.test").await.is_err());
}

#[tokio::test]
async fn listed_tls13_suites_limit_tls13() {
    let pki = Pki::new("Test CA");
    let server = server(&pki, "versions: [tls1.3]\ncipher_suites: [TLS_CHACHA20_POLY1305_SHA256]").await;
    let outcome = connect(&client(pki.roots(), &[], &[&TLS13]), server.addr, "site.test").await.unwrap();
    assert_eq!(outcome.suite, CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
}

#[test]
fn unknown_suites_are_refused_at_their_entry() {
    let pki = Pki::new("Test CA");
    pki.server("site", &["site.test"]);
    let mut settings = listener_tls("certificates: [{ cert: site.pem, key: site.key }]");
    settings.cipher_suites = vec!["ECDHE-RSA-AES128-GCM-SHA256".into(), "ECDHE-RSA-AES128-SHA:HIGH".into()];
    let errors = ServerTls::build(&settings, pki.dir()).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
    assert_eq!(fields, ["cipher_suites[1]", "cipher_suites[1]"], "{errors:?}");
    assert!(errors[0].message.contains("`ECDHE-RSA-AES128-SHA`"));
}

// === Resumption ===

/// Whether a second connection of the same client resumed the first one's session.
async fn second_handshake(pki: &Pki, extra: &str, version: &'static SupportedProtocolVersion) -> HandshakeKind {
    let server = server(pki, extra).await;
    let client = client(pki.roots(), &[], &[version]);
    let first = connect(&client, server.addr, "site.test").await.unwrap();
    assert_eq!(first.kind, HandshakeKind::Full);
    connect(&client, server.addr, "site.test").await.unwrap().kind
}

#[tokio::test]
async fn tickets_resume_sessions_without_a_server_cache() {
    for version in [&TLS12, &TLS13] {
        let pki = Pki::new("Test CA");
        let kind = second_handshake(&pki, "session_tickets: true\nsession_cache: 0", version).await;
        assert_eq!(kind, HandshakeKind::Resumed, "{version:?}");
    }
}

#[tokio::test]
async fn tickets_off_and_no_cache_means_no_resumption() {
    for version in [&TLS12, &TLS13] {
        let pki = Pki::new("Test CA");
        let kind = second_handshake(&pki, "session_tickets: false\nsession_cache: 0", version).await;
        assert_eq!(kind, HandshakeKind::Full, "{version:?}");
    }
}

#[tokio::test]
async fn the_session_cache_resumes_without_tickets() {
    for version in [&TLS12, &TLS13] {
        let pki = Pki::new("Test CA");
        let kind = second_handshake(&pki, "session_tickets: false\nsession_cache: 100", version).await;
        assert_eq!(kind, HandshakeKind::Resumed, "{version:?}");
    }
}
