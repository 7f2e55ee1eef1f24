//! TLS blocks of listeners and clusters: defaults, and every syntactic error at its field.

use strait_config::{load_str_with_env, ClientAuthMode, ClusterTls, ConfigError, ConfigErrors, TlsVersion};

fn no_env(_: &str) -> Option<String> {
    None
}

/// Loads `text` expecting failure; returns `(line, column, path, message)` of every error.
fn errors_of(text: &str) -> Vec<(usize, usize, String, String)> {
    match load_str_with_env(text, "test.yaml", &no_env) {
        Ok(config) => panic!("expected errors, loaded {config:?}"),
        Err(errors) => errors.0.into_iter().map(|e: ConfigError| (e.line, e.column, e.path, e.message)).collect(),
    }
}

/// A listener whose `tls` block is `tls` (indented by six spaces).
fn listener_with_tls(tls: &str) -> String {
    let tls: String = tls.lines().map(|line| format!("      {line}\n")).collect();
    format!("listeners:\n  - name: web\n    bind: 127.0.0.1:8443\n    tls:\n{tls}")
}

/// A cluster whose `tls` block is `tls` (indented by six spaces).
fn cluster_with_tls(tls: &str) -> String {
    let tls: String = tls.lines().map(|line| format!("      {line}\n")).collect();
    format!("clusters:\n  - name: app\n    endpoints: [{{ address: 'app.internal:443' }}]\n    tls:\n{tls}")
}

#[test]
fn listener_tls_defaults() {
    let text = listener_with_tls("certificates:\n  - { cert: site.pem, key: site.key }");
    let config = load_str_with_env(&text, "test.yaml", &no_env).unwrap_or_else(|errors| panic!("{errors}"));
    let tls = config.listeners[0].tls.as_ref().expect("tls block");
    assert_eq!(tls.certificates[0].cert, "site.pem");
    assert!(tls.certificates[0].server_names.is_empty());
    assert_eq!(tls.versions, [TlsVersion::Tls12, TlsVersion::Tls13]);
    assert!(tls.cipher_suites.is_empty());
    assert_eq!(tls.alpn, ["h2", "http/1.1"]);
    assert!(tls.session_tickets);
    assert_eq!(tls.session_cache, 20480);
    assert_eq!(tls.client_auth, None);
}

#[test]
fn listener_tls_every_field() {
    let text = listener_with_tls(
        "\
certificates:
  - cert: a.pem
    key: a.key
    server_names: [a.example.com, '*.example.com']
    ocsp: a.ocsp
versions: [tls1.3]
cipher_suites: [TLS13_AES_128_GCM_SHA256, 'TLS_CHACHA20_POLY1305_SHA256']
alpn: [http/1.1]
session_tickets: false
session_cache: 0
client_auth: { mode: optional, ca: clients.pem }",
    );
    let config = load_str_with_env(&text, "test.yaml", &no_env).unwrap_or_else(|errors| panic!("{errors}"));
    let tls = config.listeners[0].tls.as_ref().unwrap();
    assert_eq!(tls.certificates[0].server_names, ["a.example.com", "*.example.com"]);
    assert_eq!(tls.certificates[0].ocsp.as_deref(), Some("a.ocsp"));
    assert_eq!(tls.versions, [TlsVersion::Tls13]);
    assert!(!tls.session_tickets);
    assert_eq!(tls.session_cache, 0);
    let client_auth = tls.client_auth.as_ref().unwrap();
    assert_eq!((client_auth.mode, client_auth.ca.as_str()), (ClientAuthMode::Optional, "clients.pem"));
}

#[test]
fn client_auth_is_required_by_default() {
    let text = listener_with_tls("certificates: [{ cert: a.pem, key: a.key }]\nclient_auth: { ca: clients.pem }");
    let config = load_str_with_env(&text, "test.yaml", &no_env).unwrap();
    assert_eq!(config.listeners[0].tls.as_ref().unwrap().client_auth.as_ref().unwrap().mode, ClientAuthMode::Required);
}

#[test]
fn cluster_tls_defaults() {
    let config = load_str_with_env(&cluster_with_tls("{}"), "test.yaml", &no_env).unwrap();
    assert_eq!(config.clusters[0].tls, Some(ClusterTls::default()));
    let tls = config.clusters[0].tls.as_ref().unwrap();
    assert_eq!(tls.alpn, ["http/1.1"]);
    assert!(!tls.insecure_skip_verify);
    assert_eq!((&tls.server_name, &tls.ca, &tls.client_cert), (&None, &None, &None));
}

#[test]
fn no_tls_block_means_plain_tcp() {
    let text = "listeners:\n  - name: web\n    bind: 127.0.0.1:80\n";
    assert_eq!(load_str_with_env(text, "test.yaml", &no_env).unwrap().listeners[0].tls, None);
}

#[test]
fn empty_certificate_list_is_refused() {
    let errors = errors_of(&listener_with_tls("certificates: []"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].0, errors[0].1), (5, 21));
    assert_eq!(errors[0].2, "listeners[0].tls.certificates");
    assert!(errors[0].3.contains("no certificates"));
}

#[test]
fn missing_certificates_field_is_a_type_error() {
    let errors = errors_of(&listener_with_tls("alpn: [h2]"));
    assert_eq!(errors[0].2, "listeners[0].tls");
    assert!(errors[0].3.contains("missing field `certificates`"), "{errors:?}");
}

#[test]
fn unknown_cipher_suite_points_at_the_entry() {
    let text = listener_with_tls(
        "certificates: [{ cert: a.pem, key: a.key }]\ncipher_suites:\n  - ECDHE-RSA-AES128-GCM-SHA256\n  - AES128-SHA",
    );
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (line, column, path, message) = &errors[0];
    assert_eq!((*line, *column), (8, 11));
    assert_eq!(path, "listeners[0].tls.cipher_suites[1]");
    assert!(message.starts_with("unknown cipher suite `AES128-SHA`"), "{message}");
}

#[test]
fn colon_separated_suites_are_read_one_by_one() {
    let text = listener_with_tls(
        "certificates: [{ cert: a.pem, key: a.key }]\n\
         cipher_suites: ['ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:!aNULL']",
    );
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].2, "listeners[0].tls.cipher_suites[0]");
    assert!(errors[0].3.contains("`!aNULL`") && errors[0].3.contains("expressions"), "{}", errors[0].3);
}

#[test]
fn tls12_needs_a_tls12_suite() {
    let text =
        listener_with_tls("certificates: [{ cert: a.pem, key: a.key }]\ncipher_suites: [TLS_AES_128_GCM_SHA256]");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].2, "listeners[0].tls.cipher_suites");
    assert!(errors[0].3.contains("no TLS 1.2 suite"));
    let only_tls13 = listener_with_tls(
        "certificates: [{ cert: a.pem, key: a.key }]\nversions: [tls1.3]\ncipher_suites: [TLS_AES_128_GCM_SHA256]",
    );
    load_str_with_env(&only_tls13, "test.yaml", &no_env).unwrap_or_else(|errors| panic!("{errors}"));
}

#[test]
fn empty_version_list_is_refused() {
    let errors = errors_of(&listener_with_tls("certificates: [{ cert: a.pem, key: a.key }]\nversions: []"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].0, errors[0].2.as_str()), (6, "listeners[0].tls.versions"));
    assert!(errors[0].3.contains("no protocol versions"));
}

#[test]
fn unknown_version_is_a_type_error() {
    let errors = errors_of(&listener_with_tls("certificates: [{ cert: a.pem, key: a.key }]\nversions: [tls1.1]"));
    assert_eq!(errors[0].2, "listeners[0].tls.versions[0]");
    assert!(errors[0].3.contains("unknown variant `tls1.1`"), "{errors:?}");
}

#[test]
fn bad_server_names_are_refused_where_written() {
    let text = listener_with_tls(
        "\
certificates:
  - cert: a.pem
    key: a.key
    server_names: [a.example.com, 'a.*.example.com', 10.0.0.1, '*']
  - cert: b.pem
    key: b.key
    server_names: [A.example.com]",
    );
    let errors = errors_of(&text);
    let paths: Vec<&str> = errors.iter().map(|error| error.2.as_str()).collect();
    assert_eq!(
        paths,
        [
            "listeners[0].tls.certificates[0].server_names[1]",
            "listeners[0].tls.certificates[0].server_names[2]",
            "listeners[0].tls.certificates[0].server_names[3]",
            "listeners[0].tls.certificates[1].server_names[0]",
        ]
    );
    assert!(errors[0].3.contains("leading `*.`"), "{}", errors[0].3);
    assert!(errors[1].3.contains("IP address"), "{}", errors[1].3);
    assert!(errors[3].3.contains("already served by certificates[0]"), "{}", errors[3].3);
    assert_eq!((errors[3].0, errors[3].1), (11, 26));
}

#[test]
fn empty_paths_and_alpn_names_are_refused() {
    let text = listener_with_tls("certificates: [{ cert: '', key: a.key }]\nalpn: ['']\nclient_auth: { ca: '' }");
    let paths: Vec<String> = errors_of(&text).into_iter().map(|error| error.2).collect();
    assert_eq!(
        paths,
        ["listeners[0].tls.certificates[0].cert", "listeners[0].tls.alpn[0]", "listeners[0].tls.client_auth.ca"]
    );
}

#[test]
fn client_cert_needs_client_key() {
    let errors = errors_of(&cluster_with_tls("client_cert: client.pem"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].2, "clusters[0].tls.client_cert");
    assert_eq!((errors[0].0, errors[0].1), (5, 20));
    assert!(errors[0].3.contains("needs `client_key`"));
    let errors = errors_of(&cluster_with_tls("client_key: client.key"));
    assert_eq!(errors[0].2, "clusters[0].tls.client_key");
}

#[test]
fn upstream_server_name_and_ca_are_checked() {
    let errors = errors_of(&cluster_with_tls("server_name: '*.internal'\nca: ca.pem\ninsecure_skip_verify: true"));
    let paths: Vec<&str> = errors.iter().map(|error| error.2.as_str()).collect();
    assert_eq!(paths, ["clusters[0].tls.server_name", "clusters[0].tls.ca"], "{}", display(&errors));
    let ip = cluster_with_tls("server_name: 10.0.0.7");
    assert_eq!(
        load_str_with_env(&ip, "test.yaml", &no_env).unwrap().clusters[0].tls.as_ref().unwrap().server_name.as_deref(),
        Some("10.0.0.7")
    );
}

#[test]
fn unknown_tls_field_points_at_the_key() {
    let errors = errors_of(&cluster_with_tls("sni: api.internal"));
    assert_eq!(errors[0].2, "clusters[0].tls.sni");
    assert_eq!((errors[0].0, errors[0].1), (5, 7));
}

fn display(errors: &[(usize, usize, String, String)]) -> String {
    let errors = errors
        .iter()
        .map(|(line, column, path, message)| {
            ConfigError::new("test.yaml", strait_config::Position::new(*line, *column), path, message.clone())
        })
        .collect();
    ConfigErrors(errors).to_string()
}
