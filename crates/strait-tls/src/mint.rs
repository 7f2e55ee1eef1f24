//! Certificates minted on the fly for TLS inspection: a leaf for each server name a client
//! asks for, signed by a configured CA the clients trust (as Squid `ssl_bump` and Burp do).
//!
//! Every leaf shares one ECDSA P-256 key made at start, so minting costs one signature; leaves
//! are cached by name (a bounded map, emptied when full) and valid from a day before to 90
//! days after they were made.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::TlsError;
use crate::suites;

/// Most minted certificates kept.
const CACHE: usize = 4096;

/// Mints leaf certificates signed by one CA.
pub struct Minter {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    leaf_key: KeyPair,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    cache: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minter").finish_non_exhaustive()
    }
}

impl Minter {
    /// Reads the CA certificate and its key (PEM files, relative to `base_dir`); errors name
    /// the field `ca_cert` or `ca_key`.
    pub fn load(ca_cert: &str, ca_key: &str, base_dir: &Path) -> Result<Minter, Vec<TlsError>> {
        let read = |field: &str, file: &str| {
            let path = base_dir.join(file);
            std::fs::read_to_string(&path)
                .map_err(|e| TlsError::new(field, format!("cannot read `{}`: {e}", path.display())))
        };
        let (cert_pem, key_pem) = match (read("ca_cert", ca_cert), read("ca_key", ca_key)) {
            (Ok(cert), Ok(key)) => (cert, key),
            (cert, key) => return Err([cert.err(), key.err()].into_iter().flatten().collect()),
        };
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| vec![TlsError::new("ca_key", format!("`{ca_key}` is not a usable private key: {e}"))])?;
        let ca_der = first_certificate(&cert_pem)
            .ok_or_else(|| vec![TlsError::new("ca_cert", format!("`{ca_cert}` holds no PEM certificate"))])?;
        if !key_matches(&ca_der, &key) {
            return Err(vec![TlsError::new("ca_key", format!("the key in `{ca_key}` does not belong to `{ca_cert}`"))]);
        }
        let issuer = Issuer::from_ca_cert_der(&ca_der, key)
            .map_err(|e| vec![TlsError::new("ca_cert", format!("`{ca_cert}` cannot sign certificates: {e}"))])?;
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| vec![TlsError::new("", format!("cannot make a key: {e}"))])?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signing_key = suites::default_provider()
            .key_provider
            .load_private_key(der)
            .map_err(|e| vec![TlsError::new("", format!("cannot load the leaf key: {e}"))])?;
        Ok(Minter { issuer, ca_der, leaf_key, signing_key, cache: Mutex::new(HashMap::new()) })
    }

    /// The certificate (leaf and CA) for `name`, minted the first time it is asked for.
    pub fn certified(&self, name: &str) -> Result<Arc<CertifiedKey>, String> {
        let name = name.to_ascii_lowercase();
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = cache.get(&name) {
            return Ok(found.clone());
        }
        let minted = Arc::new(self.mint(&name)?);
        if cache.len() >= CACHE {
            cache.clear();
        }
        cache.insert(name, minted.clone());
        Ok(minted)
    }

    fn mint(&self, name: &str) -> Result<CertifiedKey, String> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![match name.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(name.try_into().map_err(|e| format!("`{name}`: {e}"))?),
        }];
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(86_400)).into();
        params.not_after = (now + Duration::from_secs(90 * 86_400)).into();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&fastrand_serial()));
        let leaf = params.signed_by(&self.leaf_key, &self.issuer).map_err(|e| format!("cannot mint `{name}`: {e}"))?;
        let chain = vec![leaf.der().clone(), self.ca_der.clone()];
        Ok(CertifiedKey::new(chain, self.signing_key.clone()))
    }

    /// A server configuration presenting a minted certificate for the client's SNI, or for
    /// `fallback` when it sends none (the CONNECT target's host).
    pub fn server_config(self: &Arc<Self>, fallback: &str, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, String> {
        let resolver = MintingResolver { minter: self.clone(), fallback: fallback.to_string() };
        let mut config = ServerConfig::builder_with_provider(suites::default_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// A random positive 16-byte serial number.
fn fastrand_serial() -> [u8; 16] {
    let mut serial =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos().to_be_bytes();
    let salt = std::collections::hash_map::RandomState::new();
    let mixed = std::hash::BuildHasher::hash_one(&salt, serial);
    serial[..8].copy_from_slice(&mixed.to_be_bytes());
    serial[0] &= 0x7f;
    serial
}

/// Whether `key` is the key of the certificate `ca` (same public key): a CA with another key
/// would mint leaves no client can verify.
fn key_matches(ca: &CertificateDer<'_>, key: &KeyPair) -> bool {
    use rcgen::PublicKeyData as _;
    match x509_parser::parse_x509_certificate(ca) {
        Ok((_, cert)) => cert.tbs_certificate.subject_pki.raw == key.subject_public_key_info().as_slice(),
        Err(_) => false,
    }
}

/// The first certificate of a PEM text.
fn first_certificate(pem: &str) -> Option<CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes()).next()?.ok()
}

/// Presents a minted certificate for the name the client asks for.
#[derive(Debug)]
struct MintingResolver {
    minter: Arc<Minter>,
    fallback: String,
}

impl ResolvesServerCert for MintingResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = client_hello.server_name().unwrap_or(&self.fallback);
        // A name that cannot be minted (not a DNS name) ends the handshake with an alert.
        self.minter.certified(name).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_minted_per_name_signed_by_the_ca_and_cached() {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "inspection ca");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("ca.key"), ca_key.serialize_pem()).unwrap();
        let minter = Minter::load("ca.pem", "ca.key", dir.path()).unwrap();
        let a = minter.certified("Shop.Example").unwrap();
        assert_eq!(a.cert.len(), 2, "the leaf and the CA");
        assert_eq!(a.cert[1], *ca.der());
        assert!(Arc::ptr_eq(&a, &minter.certified("shop.example").unwrap()), "cached by name");
        let (_, leaf) = x509_parser::parse_x509_certificate(&a.cert[0]).unwrap();
        assert_eq!(leaf.issuer().to_string(), "CN=inspection ca");
        let names: Vec<String> = leaf
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["DNSName(shop.example)"]);
        assert!(minter.certified("10.0.0.1").is_ok(), "an IP address gets an IP SAN");
        assert!(Minter::load("missing.pem", "ca.key", dir.path()).is_err());
        std::fs::write(dir.path().join("other.key"), KeyPair::generate().unwrap().serialize_pem()).unwrap();
        assert!(Minter::load("ca.pem", "other.key", dir.path()).is_err(), "a key that is not the CA's");
    }
}
