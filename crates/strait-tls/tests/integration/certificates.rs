//! Reading a listener's certificates: every problem reported at its field, OCSP stapled, the
//! files read listed.

use crate::common;

use common::{connect, listener_tls, pem, recording_client, unwrap_pkcs8, Pki, Server};
use rcgen::{date_time_ymd, CertificateParams, DnType, KeyPair, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256};
use strait_tls::{ServerTls, TlsError};

fn build_errors(pki: &Pki, block: &str) -> Vec<TlsError> {
    match ServerTls::build(&listener_tls(block), pki.dir()) {
        Ok(_) => panic!("expected errors"),
        Err(errors) => errors,
    }
}

#[test]
fn a_key_of_another_certificate_is_refused_at_the_key() {
    let pki = Pki::new("Test CA");
    pki.server("good", &["good.test"]);
    pki.server("other", &["other.test"]);
    let errors = build_errors(
        &pki,
        "certificates:\n  - { cert: good.pem, key: good.key }\n  - { cert: good.pem, key: other.key, server_names: [x.test] }",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "certificates[1].key");
    assert!(errors[0].message.contains("does not belong to the certificate in `good.pem`"), "{}", errors[0].message);
}

#[test]
fn an_expired_certificate_is_refused_with_its_date() {
    let pki = Pki::new("Test CA");
    let mut params = CertificateParams::new(vec!["old.test".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "old");
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2021, 1, 1);
    pki.issue("old", params);
    let errors = build_errors(&pki, "certificates: [{ cert: old.pem, key: old.key }]");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "certificates[0].cert");
    assert_eq!(errors[0].message, "the certificate in `old.pem` expired on 2021-01-01 00:00:00 UTC");
}

#[test]
fn unreadable_and_non_pem_files_are_named() {
    let pki = Pki::new("Test CA");
    pki.server("good", &["good.test"]);
    pki.write("garbage.pem", "not a certificate\n");
    let errors = build_errors(
        &pki,
        "\
certificates:
  - { cert: missing.pem, key: good.key }
  - { cert: garbage.pem, key: good.pem, server_names: [b.test] }",
    );
    let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
    assert_eq!(fields, ["certificates[0].cert", "certificates[1].cert", "certificates[1].key"], "{errors:?}");
    let missing = pki.dir().join("missing.pem");
    assert!(errors[0].message.starts_with(&format!("cannot read `{}`", missing.display())), "{}", errors[0].message);
    let garbage = pki.dir().join("garbage.pem");
    assert!(errors[1].message.contains(&format!("`{}` holds no PEM certificate", garbage.display())));
    assert!(errors[2].message.contains("holds no PEM private key"), "{}", errors[2].message);
}

#[test]
fn every_certificate_is_checked_before_failing() {
    let pki = Pki::new("Test CA");
    pki.server("a", &["a.test"]);
    pki.server("b", &["b.test"]);
    let mut settings = listener_tls("certificates:\n  - { cert: a.pem, key: b.key }\n  - { cert: b.pem, key: a.key }");
    settings.cipher_suites = vec!["RC4-MD5".into()];
    let errors = ServerTls::build(&settings, pki.dir()).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
    assert_eq!(fields, ["cipher_suites[0]", "certificates[0].key", "certificates[1].key"], "{errors:?}");
    assert_eq!(errors[1].path_in("listeners[2].tls"), "listeners[2].tls.certificates[0].key");
}

#[test]
fn no_certificates_and_no_versions_are_refused() {
    let pki = Pki::new("Test CA");
    pki.server("a", &["a.test"]);
    let mut settings = listener_tls("certificates: [{ cert: a.pem, key: a.key }]");
    settings.certificates.clear();
    settings.versions.clear();
    let errors = ServerTls::build(&settings, pki.dir()).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
    assert_eq!(fields, ["versions", "certificates"]);
}

#[test]
fn a_later_certificate_without_names_is_refused() {
    let pki = Pki::new("Test CA");
    pki.server("a", &["a.test"]);
    pki.server("nameless", &[]);
    let errors = build_errors(
        &pki,
        "certificates:\n  - { cert: a.pem, key: a.key }\n  - { cert: nameless.pem, key: nameless.key }",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "certificates[1].server_names");
}

#[tokio::test]
async fn keys_are_read_as_pkcs8_pkcs1_rsa_and_sec1_ec() {
    let pki = Pki::new("Test CA");
    let rsa = pki.issue_with_key(
        "rsa",
        CertificateParams::new(vec!["rsa.test".to_owned()]).unwrap(),
        KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap(),
    );
    pki.write("rsa.pkcs1.key", pem("RSA PRIVATE KEY", &unwrap_pkcs8(&rsa.key_der)));
    let ec = pki.issue_with_key(
        "ec",
        CertificateParams::new(vec!["ec.test".to_owned()]).unwrap(),
        KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap(),
    );
    pki.write("ec.sec1.key", pem("EC PRIVATE KEY", &unwrap_pkcs8(&ec.key_der)));
    pki.server("p8", &["p8.test"]);
    let settings = listener_tls(
        "\
certificates:
  - { cert: p8.pem, key: p8.key }
  - { cert: rsa.pem, key: rsa.pkcs1.key }
  - { cert: ec.pem, key: ec.sec1.key }",
    );
    let tls = ServerTls::build(&settings, pki.dir()).unwrap_or_else(|errors| panic!("{errors:?}"));
    let server = Server::start(tls.acceptor()).await;
    let client = common::client(pki.roots(), &[], rustls::ALL_VERSIONS);
    for (name, leaf) in [("rsa.test", &rsa), ("ec.test", &ec)] {
        assert_eq!(connect(&client, server.addr, name).await.unwrap().leaf, leaf.der, "{name}");
    }
}

#[test]
fn files_lists_every_file_read_once() {
    let pki = Pki::new("Test CA");
    let both = pki.server("both", &["both.test"]);
    // One PEM file holding the chain and the key, as some tools write it.
    let combined = format!(
        "{}{}",
        std::fs::read_to_string(pki.dir().join(&both.cert_file)).unwrap(),
        std::fs::read_to_string(pki.dir().join(&both.key_file)).unwrap()
    );
    let combined = pki.write("combined.pem", combined);
    pki.write("both.ocsp", [0x30, 0x03, 0x0a, 0x01, 0x00]);
    let ca = pki.dir().join("ca.pem");
    let settings = listener_tls(&format!(
        "certificates: [{{ cert: combined.pem, key: combined.pem, ocsp: both.ocsp }}]\nclient_auth: {{ ca: '{}' }}",
        ca.display()
    ));
    let tls = ServerTls::build(&settings, pki.dir()).unwrap_or_else(|errors| panic!("{errors:?}"));
    assert_eq!(tls.files(), [combined, pki.dir().join("both.ocsp"), ca]);
}

#[tokio::test]
async fn the_ocsp_response_is_stapled() {
    let pki = Pki::new("Test CA");
    pki.server("site", &["site.test"]);
    // A DER `OCSPResponse` with status `tryLater`: the proxy staples it as it is.
    let response = [0x30, 0x03, 0x0a, 0x01, 0x03];
    pki.write("site.ocsp", response);
    let settings = listener_tls("certificates: [{ cert: site.pem, key: site.key, ocsp: site.ocsp }]");
    let server = Server::start(ServerTls::build(&settings, pki.dir()).unwrap().acceptor()).await;
    let (client, stapled) = recording_client(true);
    connect(&client, server.addr, "site.test").await.unwrap();
    assert_eq!(*stapled.lock().unwrap(), response);
}

#[test]
fn an_ocsp_file_that_is_not_der_is_refused() {
    let pki = Pki::new("Test CA");
    pki.server("site", &["site.test"]);
    pki.write("site.ocsp", "-----BEGIN OCSP-----\n");
    let errors = build_errors(&pki, "certificates: [{ cert: site.pem, key: site.key, ocsp: site.ocsp }]");
    assert_eq!(errors[0].field, "certificates[0].ocsp");
}
