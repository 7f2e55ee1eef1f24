//! Client certificates on a listener: required, optional, untrusted, and who the client is.

use crate::common;

use common::{client, client_with_certificate, connect, listener_tls, Pki, Server, GREETING};
use sha2::{Digest, Sha256};
use strait_tls::ServerTls;

/// A server for `site.test` trusting client certificates of `pki`'s CA, in `mode`.
async fn server(pki: &Pki, mode: &str) -> Server {
    pki.server("site", &["site.test"]);
    let settings = listener_tls(&format!(
        "certificates: [{{ cert: site.pem, key: site.key }}]\nclient_auth: {{ mode: {mode}, ca: ca.pem }}"
    ));
    let tls = ServerTls::build(&settings, pki.dir()).unwrap_or_else(|errors| panic!("{errors:?}"));
    Server::start(tls.acceptor()).await
}

#[tokio::test]
async fn required_refuses_a_client_without_certificate() {
    let pki = Pki::new("Client CA");
    let mut server = server(&pki, "required").await;
    let outcome = connect(&client(pki.roots(), &[], rustls::ALL_VERSIONS), server.addr, "site.test").await;
    assert!(outcome.is_err(), "{outcome:?}");
    let refused = server.next().await.unwrap_err();
    assert!(refused.contains("peer sent no certificates"), "{refused}");
}

#[tokio::test]
async fn required_accepts_a_trusted_client_and_names_it() {
    let pki = Pki::new("Client CA");
    let mut server = server(&pki, "required").await;
    let leaf = pki.client("billing");
    let outcome = connect(&client_with_certificate(pki.roots(), &leaf), server.addr, "site.test").await.unwrap();
    assert_eq!(outcome.greeting, GREETING);
    let identity = server.next().await.unwrap().identity.expect("a verified client");
    assert_eq!(identity.subject, "CN=billing");
    assert_eq!(identity.dns_names, ["billing.test"]);
    assert_eq!(identity.uris, ["spiffe://strait.test/billing"]);
    let fingerprint: String = Sha256::digest(&leaf.der).iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(identity.fingerprint_sha256, fingerprint);
}

#[tokio::test]
async fn an_untrusted_client_certificate_is_refused() {
    let pki = Pki::new("Client CA");
    let other = Pki::new("Other CA");
    for mode in ["required", "optional"] {
        let mut server = server(&pki, mode).await;
        let stranger = other.client("stranger");
        let outcome = connect(&client_with_certificate(pki.roots(), &stranger), server.addr, "site.test").await;
        assert!(outcome.is_err(), "{mode}: {outcome:?}");
        let refused = server.next().await.unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{mode}: {refused}");
    }
}

#[tokio::test]
async fn optional_lets_a_client_without_certificate_in() {
    let pki = Pki::new("Client CA");
    let mut server = server(&pki, "optional").await;
    connect(&client(pki.roots(), &[], rustls::ALL_VERSIONS), server.addr, "site.test").await.unwrap();
    assert_eq!(server.next().await.unwrap().identity, None);
    let leaf = pki.client("reports");
    connect(&client_with_certificate(pki.roots(), &leaf), server.addr, "site.test").await.unwrap();
    assert_eq!(server.next().await.unwrap().identity.unwrap().dns_names, ["reports.test"]);
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let pki = Pki::new("Client CA");
    pki.server("site", &["site.test"]);
    pki.write("empty.pem", "");
    let settings = listener_tls("certificates: [{ cert: site.pem, key: site.key }]\nclient_auth: { ca: empty.pem }");
    let errors = ServerTls::build(&settings, pki.dir()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "client_auth.ca");
}
