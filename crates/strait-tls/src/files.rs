//! Reading the files a `tls` block names: PEM chains, keys and CA bundles, DER OCSP responses.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::TlsError;

/// Reads files relative to a base directory and remembers every path it read.
pub(crate) struct Files<'a> {
    base_dir: &'a Path,
    read: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
}

impl<'a> Files<'a> {
    /// A reader resolving relative paths against `base_dir`.
    pub fn new(base_dir: &'a Path) -> Files<'a> {
        Files { base_dir, read: Vec::new(), seen: HashSet::new() }
    }

    /// Every file read so far, each once, in the order first read.
    pub fn into_paths(self) -> Vec<PathBuf> {
        self.read
    }

    /// The bytes of the file `configured` (for `field`), and its resolved path.
    fn read(&mut self, field: &str, configured: &str) -> Result<(PathBuf, Vec<u8>), TlsError> {
        let path = self.base_dir.join(configured);
        if self.seen.insert(path.clone()) {
            self.read.push(path.clone());
        }
        match std::fs::read(&path) {
            Ok(bytes) => Ok((path, bytes)),
            Err(error) => Err(TlsError::new(field, format!("cannot read `{}`: {error}", path.display()))),
        }
    }

    /// A PEM certificate chain, leaf first.
    pub fn certificates(&mut self, field: &str, configured: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let (path, bytes) = self.read(field, configured)?;
        let chain = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| TlsError::new(field, pem_problem(&path, &error)))?;
        if chain.is_empty() {
            return Err(TlsError::new(
                field,
                format!("`{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)", path.display()),
            ));
        }
        Ok(chain)
    }

    /// A PEM private key: PKCS#8, PKCS#1 RSA or SEC1 EC.
    pub fn private_key(&mut self, field: &str, configured: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
        let (path, bytes) = self.read(field, configured)?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| {
            let message = match error {
                pem::Error::NoItemsFound => format!(
                    "`{}` holds no PEM private key (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)",
                    path.display()
                ),
                error => pem_problem(&path, &error),
            };
            TlsError::new(field, message)
        })
    }

    /// The raw bytes of a file (a DER OCSP response).
    pub fn bytes(&mut self, field: &str, configured: &str) -> Result<Vec<u8>, TlsError> {
        self.read(field, configured).map(|(_, bytes)| bytes)
    }

    /// A PEM bundle of certificate authorities.
    pub fn roots(&mut self, field: &str, configured: &str) -> Result<RootCertStore, TlsError> {
        let certificates = self.certificates(field, configured)?;
        let mut roots = RootCertStore::empty();
        for (position, certificate) in certificates.into_iter().enumerate() {
            if let Err(error) = roots.add(certificate) {
                let path = self.base_dir.join(configured);
                return Err(TlsError::new(
                    field,
                    format!(
                        "certificate {} of `{}` is not a usable CA certificate: {error}",
                        position + 1,
                        path.display()
                    ),
                ));
            }
        }
        Ok(roots)
    }
}

/// The message for a file whose PEM could not be decoded.
fn pem_problem(path: &Path, error: &pem::Error) -> String {
    format!("`{}` is not valid PEM: {error}", path.display())
}
