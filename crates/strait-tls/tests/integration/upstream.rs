//! Upstream TLS of a cluster: verification against a CA bundle or the web roots, the name
//! verified, client certificates, and `insecure_skip_verify`.

use crate::common;

use common::{cluster_tls, listener_tls, Pki, Server, GREETING};
use rustls::pki_types::ServerName;
use strait_tls::{ClientTls, ServerTls};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A server with certificate `stem` for `names`, extra lines added to its `tls` block.
async fn server(pki: &Pki, stem: &str, names: &[&str], extra: &str) -> Server {
    pki.server(stem, names);
    let settings = listener_tls(&format!("certificates: [{{ cert: {stem}.pem, key: {stem}.key }}]\n{extra}"));
    Server::start(ServerTls::build(&settings, pki.dir()).unwrap_or_else(|errors| panic!("{errors:?}")).acceptor()).await
}

/// Connects `tls` to `server` for an endpoint configured as `host`; returns the greeting.
async fn greeting(tls: &ClientTls, server: &Server, host: &str) -> std::io::Result<Vec<u8>> {
    let name = tls.server_name(host).unwrap();
    let mut stream = tls.connect(name, TcpStream::connect(server.addr).await?).await?;
    let mut greeting = Vec::new();
    stream.read_to_end(&mut greeting).await?;
    Ok(greeting)
}

fn build(pki: &Pki, block: &str) -> ClientTls {
    ClientTls::build(&cluster_tls(block), pki.dir()).unwrap_or_else(|errors| panic!("{errors:?}"))
}

#[tokio::test]
async fn endpoints_are_verified_against_the_ca_bundle() {
    let pki = Pki::new("Upstream CA");
    let mut server = server(&pki, "backend", &["backend.internal"], "").await;
    let tls = build(&pki, "ca: ca.pem");
    assert_eq!(greeting(&tls, &server, "backend.internal").await.unwrap(), GREETING);
    let accepted = server.next().await.unwrap();
    assert_eq!(accepted.server_name.as_deref(), Some("backend.internal"));
    assert_eq!(accepted.alpn.as_deref(), Some(&b"http/1.1"[..]), "the default upstream ALPN");
}

#[tokio::test]
async fn a_wrong_ca_or_the_web_roots_refuse_a_private_certificate() {
    let pki = Pki::new("Upstream CA");
    let other = Pki::new("Other CA");
    let server = server(&pki, "backend", &["backend.internal"], "").await;
    let wrong = build(&other, "ca: ca.pem");
    let error = greeting(&wrong, &server, "backend.internal").await.unwrap_err();
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    let web_roots = build(&pki, "{}");
    assert!(greeting(&web_roots, &server, "backend.internal").await.is_err());
}

#[tokio::test]
async fn the_name_verified_is_the_endpoint_host_unless_configured() {
    let pki = Pki::new("Upstream CA");
    let server = server(&pki, "backend", &["backend.internal", "127.0.0.1"], "").await;
    let by_host = build(&pki, "ca: ca.pem");
    assert_eq!(by_host.server_name("127.0.0.1").unwrap(), ServerName::try_from("127.0.0.1").unwrap());
    greeting(&by_host, &server, "127.0.0.1").await.unwrap();
    let error = greeting(&by_host, &server, "wrong.internal").await.unwrap_err();
    assert!(error.to_string().contains("not valid for name"), "{error}");

    let configured = build(&pki, "ca: ca.pem\nserver_name: backend.internal");
    assert_eq!(configured.server_name("10.9.9.9").unwrap(), ServerName::try_from("backend.internal").unwrap());
    greeting(&configured, &server, "wrong.internal").await.unwrap();
}

#[test]
fn endpoint_hosts_become_server_names() {
    let pki = Pki::new("Upstream CA");
    let tls = build(&pki, "{}");
    assert_eq!(tls.server_name("[fd00::7]").unwrap(), ServerName::try_from("fd00::7").unwrap());
    assert_eq!(tls.server_name("api.internal").unwrap(), ServerName::try_from("api.internal").unwrap());
    let error = tls.server_name("not a name").unwrap_err();
    assert_eq!(error.field, "server_name");
}

#[tokio::test]
async fn insecure_skip_verify_connects_to_a_self_signed_server() {
    let dir = tempfile::tempdir().unwrap();
    let self_signed = rcgen::generate_simple_self_signed(vec!["self.test".to_owned()]).unwrap();
    std::fs::write(dir.path().join("self.pem"), self_signed.cert.pem()).unwrap();
    std::fs::write(dir.path().join("self.key"), self_signed.signing_key.serialize_pem()).unwrap();
    let settings = listener_tls("certificates: [{ cert: self.pem, key: self.key }]");
    let server = Server::start(ServerTls::build(&settings, dir.path()).unwrap().acceptor()).await;

    let verifying = ClientTls::build(&cluster_tls("{}"), dir.path()).unwrap();
    assert!(greeting(&verifying, &server, "self.test").await.is_err());
    let insecure = ClientTls::build(&cluster_tls("insecure_skip_verify: true"), dir.path()).unwrap();
    assert_eq!(greeting(&insecure, &server, "any.name").await.unwrap(), GREETING);
}

#[tokio::test]
async fn the_client_certificate_is_presented() {
    let pki = Pki::new("Upstream CA");
    let mut server = server(&pki, "backend", &["backend.internal"], "client_auth: { ca: ca.pem }").await;
    pki.client("strait");
    let tls = build(&pki, "ca: ca.pem\nclient_cert: strait.pem\nclient_key: strait.key\nalpn: [h2]");
    greeting(&tls, &server, "backend.internal").await.unwrap();
    let accepted = server.next().await.unwrap();
    assert_eq!(accepted.identity.unwrap().uris, ["spiffe://strait.test/strait"]);
    assert_eq!(accepted.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(tls.files(), [pki.dir().join("ca.pem"), pki.dir().join("strait.pem"), pki.dir().join("strait.key")]);

    let without = build(&pki, "ca: ca.pem");
    assert!(greeting(&without, &server, "backend.internal").await.is_err());
}

#[test]
fn identity_ids_follow_the_client_certificate() {
    let pki = Pki::new("Upstream CA");
    pki.client("one");
    pki.client("two");
    let one = build(&pki, "client_cert: one.pem\nclient_key: one.key");
    let one_again = build(&pki, "client_cert: one.pem\nclient_key: one.key\nalpn: [h2]");
    let two = build(&pki, "client_cert: two.pem\nclient_key: two.key");
    let anonymous = build(&pki, "{}");
    assert_eq!(anonymous.identity_id(), 0);
    assert_ne!(one.identity_id(), 0);
    assert_eq!(one.identity_id(), one_again.identity_id());
    assert_ne!(one.identity_id(), two.identity_id());
}

#[test]
fn client_certificate_problems_name_their_field() {
    let pki = Pki::new("Upstream CA");
    pki.client("one");
    pki.client("two");
    let mismatched =
        ClientTls::build(&cluster_tls("client_cert: one.pem\nclient_key: two.key"), pki.dir()).unwrap_err();
    assert_eq!(mismatched.len(), 1, "{mismatched:?}");
    assert_eq!(mismatched[0].field, "client_key");
    assert!(mismatched[0].message.contains("does not belong"), "{}", mismatched[0].message);

    let mut half = cluster_tls("{}");
    half.client_cert = Some("one.pem".into());
    let errors = ClientTls::build(&half, pki.dir()).unwrap_err();
    assert_eq!(errors[0].field, "client_cert");

    let missing_ca = ClientTls::build(&cluster_tls("ca: nowhere.pem"), pki.dir()).unwrap_err();
    assert_eq!(missing_ca[0].field, "ca");
    assert!(missing_ca[0].message.contains("nowhere.pem"));
}
