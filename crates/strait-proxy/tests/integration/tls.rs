//! TLS listeners: certificates by SNI, ALPN, HTTP/2 over TLS, mutual TLS and identity headers,
//! bad certificates refused at load and on reload, certificates replaced by a reload.

use crate::support;

use bytes::Bytes;
use http_body_util::Full;
use support::pki::{self, Pki};
use support::{Backend, Proxy, Reply};

/// A proxy with one TLS listener `tls` forwarding to `backend`, with `tls_extra` YAML lines
/// added to its `tls:` block (indented six spaces).
fn tls_proxy(backend: &Backend, certificates: &str, tls_extra: &str) -> String {
    format!(
        r#"
listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls:
      certificates:
{certificates}
{tls_extra}
    routes:
      - forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    )
}

fn cert_entry(leaf: &pki::Leaf, names: &[&str]) -> String {
    let names = names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
    format!(
        "        - {{ cert: \"{}\", key: \"{}\", server_names: [{names}] }}",
        leaf.cert.display(),
        leaf.key.display()
    )
}

fn get(host: &str, path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(path).header("host", host).body(Full::new(Bytes::new())).unwrap()
}

#[test]
fn certificates_are_chosen_by_sni_and_requests_forwarded_as_https() {
    let pki = Pki::new("test ca");
    let a = pki.server("a", &["a.test"]);
    let wildcard = pki.server("b", &["*.b.test"]);
    let backend = Backend::start(|_| Reply::text("over tls"));
    let certificates = [cert_entry(&a, &["a.test"]), cert_entry(&wildcard, &["*.b.test"])].join("\n");
    let proxy = Proxy::start(&tls_proxy(&backend, &certificates, "      alpn: [http/1.1]"));
    let addr = proxy.addr("tls");
    let rt = pki::runtime();
    rt.block_on(async {
        let config = pki.client_config(&["http/1.1"], None);
        let connected = pki::connect(addr, "x.b.test", config.clone()).await.expect("handshake for x.b.test");
        assert_eq!(connected.peer_cert, wildcard.der, "the wildcard certificate for x.b.test");
        let got = pki::http1_requests(connected.stream, vec![get("x.b.test", "/one"), get("x.b.test", "/two")]).await;
        assert!(got.iter().all(|g| g.parts.status == 200 && g.body == "over tls"), "{got:?}");
        let connected = pki::connect(addr, "a.test", config.clone()).await.expect("handshake for a.test");
        assert_eq!(connected.peer_cert, a.der);
        // A name no certificate claims gets the first (default) certificate, which the client
        // then refuses to trust for that name.
        assert!(pki::connect(addr, "other.test", config).await.is_err());
    });
    let recorded = backend.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].headers["x-forwarded-proto"], "https");
    assert_eq!(recorded[0].headers["host"], "x.b.test");
}

#[test]
fn alpn_h2_serves_http2_streams_over_tls() {
    let pki = Pki::new("test ca");
    let leaf = pki.server("api", &["api.test"]);
    let backend = Backend::start(|r| Reply::text(&format!("got {}", r.uri)));
    let proxy = Proxy::start(&tls_proxy(&backend, &cert_entry(&leaf, &[]), ""));
    let rt = pki::runtime();
    let got = rt.block_on(async {
        let connected = pki::connect(proxy.addr("tls"), "api.test", pki.client_config(&["h2", "http/1.1"], None))
            .await
            .expect("handshake");
        assert_eq!(connected.alpn.as_deref(), Some(&b"h2"[..]));
        let requests = (0..8).map(|i| get("api.test", &format!("https://api.test/s{i}"))).collect();
        pki::http2_requests(connected.stream, requests).await
    });
    assert_eq!(got.len(), 8);
    for (i, got) in got.iter().enumerate() {
        assert_eq!(got.parts.status, 200);
        assert_eq!(got.parts.version, http::Version::HTTP_2);
        assert_eq!(got.body, format!("got /s{i}"));
    }
    assert_eq!(backend.count(), 8);
    assert!(backend.requests().iter().all(|r| r.headers["host"] == "api.test"));
}

#[test]
fn curl_gets_https_with_http2_and_http1() {
    let pki = Pki::new("test ca");
    let leaf = pki.server("api", &["api.test"]);
    let backend = Backend::start(|_| Reply::text("curl ok"));
    let proxy = Proxy::start(&tls_proxy(&backend, &cert_entry(&leaf, &[]), ""));
    let addr = proxy.addr("tls");
    let resolve = format!("api.test:{}:127.0.0.1", addr.port());
    let url = format!("https://api.test:{}/", addr.port());
    let ca = pki.ca_file();
    for version in ["--http2", "--http1.1"] {
        let response = support::curl(&[version, "--cacert", ca.to_str().unwrap(), "--resolve", &resolve, &url]);
        assert_eq!(response.status, 200, "{version}");
        assert_eq!(response.text(), "curl ok", "{version}");
    }
}

#[test]
fn mutual_tls_refuses_clients_without_a_trusted_certificate_and_names_the_others() {
    let pki = Pki::new("test ca");
    let leaf = pki.server("api", &["api.test"]);
    let client = pki.client("billing");
    let stranger_pki = Pki::new("another ca");
    let stranger = stranger_pki.client("mallory");
    let backend = Backend::start(|_| Reply::text("hello"));
    let client_auth = format!(
        "      alpn: [http/1.1]\n      client_auth:\n        ca: \"{}\"\n        headers: {{ subject: x-client-subject, uri: x-client-uri, fingerprint: x-client-fingerprint }}",
        pki.ca_file().display()
    );
    let proxy = Proxy::start(&tls_proxy(&backend, &cert_entry(&leaf, &[]), &client_auth));
    let addr = proxy.addr("tls");
    let rt = pki::runtime();
    rt.block_on(async {
        // Without a certificate, or with one from another CA, there is no exchange at all.
        for identity in [None, Some(&stranger)] {
            let config = pki.client_config(&["http/1.1"], identity);
            let refused = match pki::connect(addr, "api.test", config).await {
                Err(_) => true,
                // TLS 1.3 clients learn of the refusal on their first read.
                Ok(connected) => pki::try_http1(connected.stream, get("api.test", "/")).await.is_none(),
            };
            assert!(refused, "a client with {:?} was served", identity.map(|_| "an untrusted certificate"));
        }
        let connected = pki::connect(addr, "api.test", pki.client_config(&["http/1.1"], Some(&client))).await.unwrap();
        let spoofed = http::Request::get("/")
            .header("host", "api.test")
            .header("x-client-uri", "spiffe://strait.test/admin")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let got = pki::http1_requests(connected.stream, vec![spoofed]).await;
        assert_eq!(got[0].parts.status, 200);
    });
    assert_eq!(backend.count(), 1);
    let headers = &backend.requests()[0].headers;
    assert_eq!(headers["x-client-uri"], "spiffe://strait.test/billing", "the client's own value is replaced");
    assert_eq!(headers.get_all("x-client-uri").iter().count(), 1);
    assert!(headers["x-client-subject"].to_str().unwrap().contains("billing"));
    assert_eq!(headers["x-client-fingerprint"].len(), 64);
}

#[test]
fn a_mismatched_key_is_refused_at_start_and_on_reload_and_a_new_certificate_is_served_after_reload() {
    let pki = Pki::new("test ca");
    let first = pki.server("first", &["api.test"]);
    let second = pki.server("second", &["api.test"]);
    let backend = Backend::start(|_| Reply::text("ok"));

    // Start: the key of another certificate is a configuration error at its field.
    let mismatched = format!("        - {{ cert: \"{}\", key: \"{}\" }}", first.cert.display(), second.key.display());
    let config = strait_config::load_str(&tls_proxy(&backend, &mismatched, ""), "test.yaml").unwrap();
    let errors = strait_proxy::check(&config).unwrap_err().to_string();
    assert!(errors.contains("listeners[0].tls.certificates[0].key"), "{errors}");
    assert!(strait_proxy::Server::start(config).is_err());

    // Running with the first certificate; a reload with a bad pair keeps it.
    let good = tls_proxy(&backend, &cert_entry(&first, &[]), "      alpn: [http/1.1]");
    let proxy = Proxy::start(&good);
    let addr = proxy.addr("tls");
    let rejected = proxy.reload(&tls_proxy(&backend, &mismatched, "      alpn: [http/1.1]")).unwrap_err();
    assert!(rejected.contains("certificates[0].key"), "{rejected}");
    let rt = pki::runtime();
    let config = pki.client_config(&["http/1.1"], None);
    let kept = rt.block_on(pki::connect(addr, "api.test", config.clone())).unwrap();
    assert_eq!(kept.peer_cert, first.der);

    // The files are replaced in place and the same configuration reloaded: new handshakes get
    // the new certificate, and the connection opened before keeps working.
    std::fs::copy(&second.cert, &first.cert).unwrap();
    std::fs::copy(&second.key, &first.key).unwrap();
    proxy.reload(&good).unwrap();
    let renewed = rt.block_on(pki::connect(addr, "api.test", config)).unwrap();
    assert_eq!(renewed.peer_cert, second.der);
    let got = rt.block_on(pki::http1_requests(kept.stream, vec![get("api.test", "/after-reload")]));
    assert_eq!(got[0].parts.status, 200);
    let files = proxy.server().watched_files();
    assert!(files.contains(&first.cert) && files.contains(&first.key), "{files:?}");
}
