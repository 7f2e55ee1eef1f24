//! Checks of TLS settings as written: certificates listed, versions, cipher suite names, server
//! name patterns, fields that go in pairs. The files are read when the listener or cluster is built.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{syntax, Checker};
use crate::path_index::{child_path, item_path};
use crate::tls::{cipher_suite, cipher_suite_names, ClusterTls, ListenerTls, TlsVersion, CIPHER_SUITES};

/// Longest ALPN protocol name (its length is sent in one byte).
const MAX_ALPN_BYTES: usize = 255;

impl Checker<'_> {
    /// Checks a listener's `tls` block at `path`.
    pub(super) fn listener_tls(&mut self, path: &str, tls: &ListenerTls) {
        let certificates_path = child_path(path, "certificates");
        if tls.certificates.is_empty() {
            self.error(&certificates_path, "no certificates: list at least one `{ cert, key }`");
        }
        // Lower-cased server name → the certificate that claimed it first.
        let mut claimed: HashMap<String, usize> = HashMap::new();
        for (position, certificate) in tls.certificates.iter().enumerate() {
            let certificate_path = item_path(&certificates_path, position);
            self.check_file(&child_path(&certificate_path, "cert"), &certificate.cert);
            self.check_file(&child_path(&certificate_path, "key"), &certificate.key);
            if let Some(ocsp) = &certificate.ocsp {
                self.check_file(&child_path(&certificate_path, "ocsp"), ocsp);
            }
            let names_path = child_path(&certificate_path, "server_names");
            for (name_position, name) in certificate.server_names.iter().enumerate() {
                let name_path = item_path(&names_path, name_position);
                if let Some(problem) = server_name_pattern_problem(name) {
                    self.error(&name_path, problem);
                    continue;
                }
                let key = name.trim_end_matches('.').to_ascii_lowercase();
                match claimed.get(&key) {
                    Some(&first) if first != position => {
                        self.error(&name_path, format!("`{name}` is already served by certificates[{first}]"))
                    }
                    Some(_) => {}
                    None => {
                        claimed.insert(key, position);
                    }
                }
            }
        }
        if tls.versions.is_empty() {
            self.error(&child_path(path, "versions"), "no protocol versions: list `tls1.2`, `tls1.3` or both");
        }
        self.cipher_suites(path, tls);
        self.alpn(&child_path(path, "alpn"), &tls.alpn);
        if let Some(client_auth) = &tls.client_auth {
            self.check_file(&child_path(path, "client_auth.ca"), &client_auth.ca);
            let headers = &client_auth.headers;
            let named = [("subject", &headers.subject), ("dns", &headers.dns), ("uri", &headers.uri)];
            for (field, name) in named.into_iter().chain([("fingerprint", &headers.fingerprint)]) {
                if let Some(name) = name {
                    let field_path = child_path(path, &format!("client_auth.headers.{field}"));
                    self.check(&field_path, syntax::header_name_problem(name));
                }
            }
        }
    }

    /// Checks a cluster's `tls` block at `path`.
    pub(super) fn cluster_tls(&mut self, path: &str, tls: &ClusterTls) {
        if let Some(name) = &tls.server_name {
            self.check(&child_path(path, "server_name"), upstream_server_name_problem(name));
        }
        if let Some(ca) = &tls.ca {
            self.check_file(&child_path(path, "ca"), ca);
            if tls.insecure_skip_verify {
                self.error(
                    &child_path(path, "ca"),
                    "`ca` is not used when `insecure_skip_verify` is on: remove one of them",
                );
            }
        }
        match (&tls.client_cert, &tls.client_key) {
            (Some(cert), Some(key)) => {
                self.check_file(&child_path(path, "client_cert"), cert);
                self.check_file(&child_path(path, "client_key"), key);
            }
            (Some(_), None) => {
                self.error(&child_path(path, "client_cert"), "`client_cert` needs `client_key`, the file of its key")
            }
            (None, Some(_)) => {
                self.error(&child_path(path, "client_key"), "`client_key` needs `client_cert`, the file of its chain")
            }
            (None, None) => {}
        }
        self.alpn(&child_path(path, "alpn"), &tls.alpn);
    }

    /// Reports an empty file path.
    fn check_file(&mut self, path: &str, file: &str) {
        if file.trim().is_empty() {
            self.error(path, "file path is empty");
        }
    }

    /// Checks `cipher_suites`: every name known, and a suite for TLS 1.2 when it is enabled.
    fn cipher_suites(&mut self, path: &str, tls: &ListenerTls) {
        let suites_path = child_path(path, "cipher_suites");
        let mut tls12_listed = false;
        for (position, entry) in tls.cipher_suites.iter().enumerate() {
            if entry.split(':').all(|name| name.trim().is_empty()) {
                self.error(&item_path(&suites_path, position), "cipher suite name is empty");
            }
        }
        for (position, name) in cipher_suite_names(&tls.cipher_suites) {
            match cipher_suite(name) {
                Some(suite) => tls12_listed |= suite.version == TlsVersion::Tls12,
                None => self.error(&item_path(&suites_path, position), unknown_suite_message(name)),
            }
        }
        let all_known = cipher_suite_names(&tls.cipher_suites).all(|(_, name)| cipher_suite(name).is_some());
        if !tls.cipher_suites.is_empty() && all_known && !tls12_listed && tls.versions.contains(&TlsVersion::Tls12) {
            self.error(
                &suites_path,
                "no TLS 1.2 suite is listed, so TLS 1.2 could not be negotiated: \
                 add one, or remove `tls1.2` from `versions`",
            );
        }
    }

    /// Checks a list of ALPN protocol names.
    fn alpn(&mut self, path: &str, protocols: &[String]) {
        for (position, protocol) in protocols.iter().enumerate() {
            if protocol.is_empty() {
                self.error(&item_path(path, position), "protocol name is empty");
            } else if protocol.len() > MAX_ALPN_BYTES {
                self.error(&item_path(path, position), format!("protocol name is longer than {MAX_ALPN_BYTES} bytes"));
            }
        }
    }
}

/// The error for a name that is no known cipher suite.
fn unknown_suite_message(name: &str) -> String {
    let known: Vec<&str> = CIPHER_SUITES.iter().map(|suite| suite.openssl).collect();
    let expression = name.starts_with(['!', '+', '-', '@']) || name.bytes().all(|b| b.is_ascii_uppercase());
    let hint = if expression { "OpenSSL cipher expressions are not understood, name the suites; " } else { "" };
    format!("unknown cipher suite `{name}`: {hint}known suites are {} (or their IANA names)", known.join(", "))
}

/// Why `name` is not a valid certificate server name (`api.example.com`, `*.example.com`).
fn server_name_pattern_problem(name: &str) -> Option<String> {
    if name == "*" {
        return Some("`*` is not a server name: the first certificate already serves every other name".into());
    }
    if name.starts_with('[') || name.parse::<IpAddr>().is_ok() {
        return Some(format!(
            "`{name}` is an IP address: clients send host names only by SNI, \
             and a client connecting by address gets the first certificate"
        ));
    }
    syntax::host_pattern_problem(name)
}

/// Why `name` is not a name an upstream certificate can be verified for (a host name or an IP
/// address, no wildcard).
fn upstream_server_name_problem(name: &str) -> Option<String> {
    if name.parse::<IpAddr>().is_ok() {
        return None;
    }
    if name.contains('*') {
        return Some(format!("`{name}`: the name verified upstream cannot be a wildcard"));
    }
    syntax::host_pattern_problem(name)
        .or_else(|| name.starts_with('[').then(|| format!("`{name}`: write an IPv6 address without brackets")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_patterns() {
        for good in ["example.com", "*.example.com", "API.Example.com", "localhost"] {
            assert!(server_name_pattern_problem(good).is_none(), "{good}");
        }
        for bad in ["*", "10.0.0.1", "[::1]", "::1", "a.*.com", "*example.com", "example.com:443", ""] {
            assert!(server_name_pattern_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn upstream_server_names() {
        for good in ["api.internal", "10.0.0.1", "fd00::1"] {
            assert!(upstream_server_name_problem(good).is_none(), "{good}");
        }
        for bad in ["*.internal", "[fd00::1]", "a b", "host:443"] {
            assert!(upstream_server_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn unknown_suites_hint_at_expressions() {
        assert!(unknown_suite_message("HIGH").contains("expressions"));
        assert!(unknown_suite_message("!aNULL").contains("expressions"));
        assert!(!unknown_suite_message("AES128-SHA").contains("expressions"));
        assert!(unknown_suite_message("AES128-SHA").contains("ECDHE-RSA-AES128-GCM-SHA256"));
    }
}
