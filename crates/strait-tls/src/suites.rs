//! Protocol versions and cipher suites of a listener, as a rustls crypto provider.

use std::sync::Arc;

use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use strait_config::{cipher_suite, cipher_suite_names, ListenerTls, TlsVersion};

use crate::error::{item, TlsError};

/// The provider Strait uses everywhere: aws-lc-rs with its default suites and key exchanges.
pub(crate) fn default_provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// The rustls versions for `versions`, in the configured order, without repeats.
pub(crate) fn versions(versions: &[TlsVersion], errors: &mut Vec<TlsError>) -> Vec<&'static SupportedProtocolVersion> {
    let mut chosen: Vec<&'static SupportedProtocolVersion> = Vec::new();
    for version in versions {
        let rustls_version = match version {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        };
        if !chosen.iter().any(|known| known.version == rustls_version.version) {
            chosen.push(rustls_version);
        }
    }
    if chosen.is_empty() {
        errors.push(TlsError::new("versions", "no protocol versions: list `tls1.2`, `tls1.3` or both"));
    }
    chosen
}

/// The provider for a listener: the default one with the cipher suites of `settings`.
///
/// An empty `cipher_suites` keeps every default suite. Otherwise TLS 1.2 uses exactly the
/// listed TLS 1.2 suites, and TLS 1.3 the listed TLS 1.3 suites, or all of them when none is
/// listed (TLS 1.3 suites are always on, as with nginx `ssl_ciphers`).
pub(crate) fn server_provider(settings: &ListenerTls, errors: &mut Vec<TlsError>) -> Arc<CryptoProvider> {
    let mut provider = aws_lc_rs::default_provider();
    if settings.cipher_suites.is_empty() {
        return Arc::new(provider);
    }
    let available = std::mem::take(&mut provider.cipher_suites);
    let mut tls13: Vec<SupportedCipherSuite> = Vec::new();
    let mut tls12: Vec<SupportedCipherSuite> = Vec::new();
    let mut all_known = true;
    for (position, name) in cipher_suite_names(&settings.cipher_suites) {
        let field = item("cipher_suites", position);
        let Some(known) = cipher_suite(name) else {
            all_known = false;
            errors.push(TlsError::new(field, format!("unknown cipher suite `{name}`")));
            continue;
        };
        let Some(suite) = available.iter().find(|suite| suite.suite().as_str() == Some(known.name)) else {
            errors.push(TlsError::new(field, format!("cipher suite `{name}` is not available")));
            continue;
        };
        let group = if known.version == TlsVersion::Tls13 { &mut tls13 } else { &mut tls12 };
        if !group.iter().any(|listed| listed.suite() == suite.suite()) {
            group.push(*suite);
        }
    }
    if tls13.is_empty() {
        tls13 = available.iter().copied().filter(|suite| suite.version() == &rustls::version::TLS13).collect();
    }
    if all_known && tls12.is_empty() && settings.versions.contains(&TlsVersion::Tls12) {
        errors.push(TlsError::new(
            "cipher_suites",
            "no TLS 1.2 suite is listed, so TLS 1.2 could not be negotiated: add one, or remove `tls1.2` from `versions`",
        ));
    }
    provider.cipher_suites = tls13.into_iter().chain(tls12).collect();
    Arc::new(provider)
}
