//! Who a verified client certificate says the peer is.

use std::fmt::Write;

use rustls::ServerConnection;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use crate::x509;

/// Who a verified client certificate says the peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The certificate's subject, as `CN=client, O=Example`.
    pub subject: String,
    /// DNS names of its subject alternative names.
    pub dns_names: Vec<String>,
    /// URIs of its subject alternative names (`spiffe://example.org/ns/web`).
    pub uris: Vec<String>,
    /// SHA-256 of the certificate's DER, in lowercase hex.
    pub fingerprint_sha256: String,
}

impl PeerIdentity {
    /// The identity in the DER certificate `certificate`, if it parses.
    pub fn from_certificate(certificate: &CertificateDer<'_>) -> Option<PeerIdentity> {
        let facts = x509::facts(certificate).ok()?;
        let digest = Sha256::digest(certificate.as_ref());
        let mut fingerprint_sha256 = String::with_capacity(64);
        for byte in digest {
            let _ = write!(fingerprint_sha256, "{byte:02x}");
        }
        Some(PeerIdentity { subject: facts.subject, dns_names: facts.dns_names, uris: facts.uris, fingerprint_sha256 })
    }
}

/// The identity of the client of `conn`: its verified certificate's, or `None` when it sent none.
///
/// Certificates are only known once the handshake verified them, so this is `None` before.
pub fn peer_identity(conn: &ServerConnection) -> Option<PeerIdentity> {
    PeerIdentity::from_certificate(conn.peer_certificates()?.first()?)
}
