//! The certificate a client gets: exact name, one-label wildcard, or the first certificate.

use crate::common;

use common::{connect, listener_tls, recording_client, Pki, Server, GREETING};
use strait_tls::ServerTls;

/// A server with a default certificate, an exact `api.example.com` and a `*.example.com`.
async fn three_certificates(pki: &Pki) -> (Server, [rustls::pki_types::CertificateDer<'static>; 3]) {
    let default = pki.server("default", &["default.test"]);
    let api = pki.server("api", &["api.example.com"]);
    let wildcard = pki.server("wildcard", &["*.example.com"]);
    let settings = listener_tls(
        "\
certificates:
  - { cert: default.pem, key: default.key }
  - { cert: wildcard.pem, key: wildcard.key }
  - { cert: api.pem, key: api.key, server_names: [API.example.com] }",
    );
    let tls = ServerTls::build(&settings, pki.dir()).unwrap_or_else(|errors| panic!("{errors:?}"));
    (Server::start(tls.acceptor()).await, [default.der, api.der, wildcard.der])
}

#[tokio::test]
async fn exact_name_beats_the_wildcard() {
    let pki = Pki::new("SNI CA");
    let (mut server, [_, api, _]) = three_certificates(&pki).await;
    let (client, _) = recording_client(true);
    let outcome = connect(&client, server.addr, "api.example.com").await.unwrap();
    assert_eq!(outcome.leaf, api);
    assert_eq!(outcome.greeting, GREETING);
    assert_eq!(server.next().await.unwrap().server_name.as_deref(), Some("api.example.com"));
}

#[tokio::test]
async fn wildcard_covers_exactly_one_label() {
    let pki = Pki::new("SNI CA");
    let (_server, [default, _, wildcard]) = three_certificates(&pki).await;
    let (client, _) = recording_client(true);
    for (name, expected) in [
        ("www.example.com", &wildcard),
        ("shop.example.com", &wildcard),
        ("example.com", &default),
        ("a.b.example.com", &default),
    ] {
        let outcome = connect(&client, _server.addr, name).await.unwrap();
        assert_eq!(&outcome.leaf, expected, "{name}");
    }
}

#[tokio::test]
async fn names_compare_case_insensitively() {
    let pki = Pki::new("SNI CA");
    let (server, [_, api, wildcard]) = three_certificates(&pki).await;
    let (client, _) = recording_client(true);
    assert_eq!(connect(&client, server.addr, "Api.Example.COM").await.unwrap().leaf, api);
    assert_eq!(connect(&client, server.addr, "WWW.example.com").await.unwrap().leaf, wildcard);
}

#[tokio::test]
async fn unknown_names_and_clients_without_sni_get_the_first_certificate() {
    let pki = Pki::new("SNI CA");
    let (server, [default, _, _]) = three_certificates(&pki).await;
    let (client, _) = recording_client(true);
    assert_eq!(connect(&client, server.addr, "other.test").await.unwrap().leaf, default);
    let (no_sni, _) = recording_client(false);
    assert_eq!(connect(&no_sni, server.addr, "api.example.com").await.unwrap().leaf, default);
}

#[tokio::test]
async fn names_come_from_the_certificate_unless_listed() {
    let pki = Pki::new("SNI CA");
    let first = pki.server("first", &["first.test"]);
    let second = pki.server("second", &["second.test", "also-second.test"]);
    let settings = listener_tls(
        "\
certificates:
  - { cert: first.pem, key: first.key, server_names: [listed.test] }
  - { cert: second.pem, key: second.key }",
    );
    let server = Server::start(ServerTls::build(&settings, pki.dir()).unwrap().acceptor()).await;
    let (client, _) = recording_client(true);
    assert_eq!(connect(&client, server.addr, "also-second.test").await.unwrap().leaf, second.der);
    assert_eq!(connect(&client, server.addr, "listed.test").await.unwrap().leaf, first.der);
    // `server_names` replaces the certificate's own names; `first.test` is the default anyway.
    assert_eq!(connect(&client, server.addr, "first.test").await.unwrap().leaf, first.der);
}

#[tokio::test]
async fn a_verifying_client_accepts_the_chosen_certificate() {
    let pki = Pki::new("SNI CA");
    let (server, _) = three_certificates(&pki).await;
    let client = common::client(pki.roots(), &[], rustls::ALL_VERSIONS);
    for name in ["api.example.com", "www.example.com", "default.test"] {
        connect(&client, server.addr, name).await.unwrap_or_else(|error| panic!("{name}: {error}"));
    }
}
