//! TLS settings: a listener's certificates and client authentication, a cluster's upstream TLS.
//!
//! Loading checks these settings as written (names, patterns, pairs of fields); the files they
//! name are read and checked by `strait-tls` when the listener or cluster is built.

use serde::Deserialize;

/// A listener's `tls:` block: the listener accepts TLS connections (nginx `listen ... ssl`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// Certificates offered, chosen by SNI; the first is the default for clients whose SNI matches none.
    pub certificates: Vec<CertificateSpec>,
    /// Protocol versions accepted (nginx `ssl_protocols`).
    #[serde(default = "default_versions")]
    pub versions: Vec<TlsVersion>,
    /// Cipher suites allowed, by IANA or OpenSSL name (nginx `ssl_ciphers`); empty means the built-in set.
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    /// Application protocols offered by ALPN, in order of preference.
    #[serde(default = "default_listener_alpn")]
    pub alpn: Vec<String>,
    /// Resume sessions from encrypted tickets the client keeps (nginx `ssl_session_tickets`).
    #[serde(default = "default_true")]
    pub session_tickets: bool,
    /// Sessions kept by the server for resumption by id; `0` disables (nginx `ssl_session_cache`).
    #[serde(default = "default_session_cache")]
    pub session_cache: usize,
    /// Ask clients for a certificate and verify it (mutual TLS).
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
}

fn default_versions() -> Vec<TlsVersion> {
    vec![TlsVersion::Tls12, TlsVersion::Tls13]
}
fn default_listener_alpn() -> Vec<String> {
    vec!["h2".into(), "http/1.1".into()]
}
fn default_true() -> bool {
    true
}
fn default_session_cache() -> usize {
    20480
}

/// A certificate chain, its private key and the server names it is offered for.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertificateSpec {
    /// PEM file with the certificate chain, leaf first.
    pub cert: String,
    /// PEM file with the private key: PKCS#8, PKCS#1 RSA or SEC1 EC.
    pub key: String,
    /// Names this certificate is chosen for (`api.example.com`, `*.example.com`); empty means its DNS names.
    #[serde(default)]
    pub server_names: Vec<String>,
    /// DER file with an OCSP response stapled to handshakes (nginx `ssl_stapling_file`).
    #[serde(default)]
    pub ocsp: Option<String>,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "tls1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "tls1.3")]
    Tls13,
}

/// Client certificate verification on a listener (nginx `ssl_verify_client`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    /// Whether a client without a certificate is refused (`required`) or let in (`optional`).
    #[serde(default)]
    pub mode: ClientAuthMode,
    /// PEM file with the certificate authorities client certificates must chain to.
    pub ca: String,
    /// Request headers that carry the verified identity to routes and upstreams; a client's
    /// own fields of these names are always removed first, so routes may match on them.
    #[serde(default)]
    pub headers: ClientCertHeaders,
}

/// Names of the request headers set from a verified client certificate (none by default).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClientCertHeaders {
    /// Header for the certificate's subject (`CN=client,O=Example`).
    pub subject: Option<String>,
    /// Header for its DNS subject alternative names, comma-separated.
    pub dns: Option<String>,
    /// Header for its URI subject alternative names (SPIFFE ids), comma-separated.
    pub uri: Option<String>,
    /// Header for the SHA-256 fingerprint of the certificate, lowercase hex.
    pub fingerprint: Option<String>,
}

/// Whether a client certificate is required.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    /// A client without a trusted certificate is refused.
    #[default]
    Required,
    /// A client may send no certificate; one it sends must be trusted.
    Optional,
}

/// A cluster's `tls:` block: connections to its endpoints use TLS (nginx `proxy_pass https://`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterTls {
    /// Name sent by SNI and verified in the endpoint's certificate; the endpoint's host by default.
    pub server_name: Option<String>,
    /// PEM file with the certificate authorities endpoints must chain to; the public web roots by default.
    pub ca: Option<String>,
    /// PEM file with the certificate chain Strait presents to endpoints (with `client_key`).
    pub client_cert: Option<String>,
    /// PEM file with the private key of `client_cert`.
    pub client_key: Option<String>,
    /// Application protocols offered by ALPN, in order of preference.
    pub alpn: Vec<String>,
    /// Accept any endpoint certificate without verification: for tests only, never in production.
    pub insecure_skip_verify: bool,
}

impl Default for ClusterTls {
    fn default() -> Self {
        ClusterTls {
            server_name: None,
            ca: None,
            client_cert: None,
            client_key: None,
            alpn: vec!["http/1.1".into()],
            insecure_skip_verify: false,
        }
    }
}

/// A cipher suite Strait can negotiate, with the names it may be written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherSuiteName {
    /// The IANA name as rustls spells it (`TLS13_AES_128_GCM_SHA256`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
    pub name: &'static str,
    /// The OpenSSL name, as in nginx `ssl_ciphers` (`ECDHE-RSA-AES128-GCM-SHA256`); for TLS 1.3
    /// suites it is the IANA name (`TLS_AES_128_GCM_SHA256`).
    pub openssl: &'static str,
    /// The protocol version the suite belongs to.
    pub version: TlsVersion,
}

/// Every cipher suite `cipher_suites` may name, TLS 1.3 first, each group in default preference.
pub const CIPHER_SUITES: &[CipherSuiteName] = &[
    CipherSuiteName { name: "TLS13_AES_256_GCM_SHA384", openssl: "TLS_AES_256_GCM_SHA384", version: TlsVersion::Tls13 },
    CipherSuiteName { name: "TLS13_AES_128_GCM_SHA256", openssl: "TLS_AES_128_GCM_SHA256", version: TlsVersion::Tls13 },
    CipherSuiteName {
        name: "TLS13_CHACHA20_POLY1305_SHA256",
        openssl: "TLS_CHACHA20_POLY1305_SHA256",
        version: TlsVersion::Tls13,
    },
    CipherSuiteName {
        name: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
        version: TlsVersion::Tls12,
    },
    CipherSuiteName {
        name: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
        version: TlsVersion::Tls12,
    },
    CipherSuiteName {
        name: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
        version: TlsVersion::Tls12,
    },
    CipherSuiteName {
        name: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        openssl: "ECDHE-RSA-AES256-GCM-SHA384",
        version: TlsVersion::Tls12,
    },
    CipherSuiteName {
        name: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        openssl: "ECDHE-RSA-AES128-GCM-SHA256",
        version: TlsVersion::Tls12,
    },
    CipherSuiteName {
        name: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        openssl: "ECDHE-RSA-CHACHA20-POLY1305",
        version: TlsVersion::Tls12,
    },
];

/// The suite `name` denotes: its IANA name (`TLS_AES_128_GCM_SHA256`, also as rustls spells it,
/// `TLS13_AES_128_GCM_SHA256`) or its OpenSSL name, compared case-insensitively.
pub fn cipher_suite(name: &str) -> Option<&'static CipherSuiteName> {
    CIPHER_SUITES.iter().find(|suite| suite.name.eq_ignore_ascii_case(name) || suite.openssl.eq_ignore_ascii_case(name))
}

/// The names listed in `cipher_suites`, each with the index of its entry: an entry may hold
/// several names separated by `:`, as nginx `ssl_ciphers` writes them.
pub fn cipher_suite_names(entries: &[String]) -> impl Iterator<Item = (usize, &str)> {
    entries.iter().enumerate().flat_map(|(index, entry)| {
        entry.split(':').map(str::trim).filter(|name| !name.is_empty()).map(move |name| (index, name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_are_found_by_every_name() {
        for name in ["TLS13_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", "tls13_aes_128_gcm_sha256"] {
            assert_eq!(cipher_suite(name).map(|suite| suite.name), Some("TLS13_AES_128_GCM_SHA256"), "{name}");
        }
        for name in ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"] {
            assert_eq!(cipher_suite(name).map(|suite| suite.name), Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
        }
        for unknown in ["AES128-SHA", "HIGH", "!aNULL", "TLS_", "", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"] {
            assert!(cipher_suite(unknown).is_none(), "{unknown}");
        }
    }

    #[test]
    fn colon_lists_are_split() {
        let entries = vec!["ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384".to_owned(), "X".to_owned()];
        let names: Vec<_> = cipher_suite_names(&entries).collect();
        assert_eq!(names, [(0, "ECDHE-RSA-AES128-GCM-SHA256"), (0, "ECDHE-RSA-AES256-GCM-SHA384"), (1, "X")]);
    }
}
