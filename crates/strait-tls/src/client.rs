//! The upstream side of a cluster: a rustls `ClientConfig` built from a cluster's `tls` block.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use strait_config::ClusterTls;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::TlsError;
use crate::files::Files;
use crate::insecure::NoVerification;
use crate::suites;

/// Upstream side of a cluster.
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    identity_id: u64,
    files: Vec<PathBuf>,
}

impl ClientTls {
    /// Reads the files and builds the rustls config. Paths relative to `base_dir` when not absolute.
    ///
    /// Endpoints are verified against `ca`, or the public web roots (Mozilla's, from
    /// `webpki-roots`) without it; `insecure_skip_verify` verifies nothing.
    pub fn build(settings: &ClusterTls, base_dir: &Path) -> Result<ClientTls, Vec<TlsError>> {
        let mut errors = Vec::new();
        let mut files = Files::new(base_dir);
        let provider = suites::default_provider();

        let server_name = settings.server_name.as_deref().and_then(|name| {
            parse_server_name(name).map_err(|message| errors.push(TlsError::new("server_name", message))).ok()
        });
        let roots = match (&settings.ca, settings.insecure_skip_verify) {
            (_, true) => None,
            (Some(ca), false) => files.roots("ca", ca).map_err(|error| errors.push(error)).ok(),
            (None, false) => Some(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }),
        };
        let identity = match (&settings.client_cert, &settings.client_key) {
            (Some(cert), Some(key)) => {
                let chain = files.certificates("client_cert", cert).map_err(|error| errors.push(error)).ok();
                let key_der = files.private_key("client_key", key).map_err(|error| errors.push(error)).ok();
                match (chain, key_der) {
                    (Some(chain), Some(key_der)) => match CertifiedKey::from_der(chain, key_der, &provider) {
                        Ok(certified) => Some(certified),
                        Err(rustls::Error::InconsistentKeys(_)) => {
                            let message = format!("the key in `{key}` does not belong to the certificate in `{cert}`");
                            errors.push(TlsError::new("client_key", message));
                            None
                        }
                        Err(error) => {
                            errors.push(TlsError::new(
                                "client_key",
                                format!("the key in `{key}` cannot be used: {error}"),
                            ));
                            None
                        }
                    },
                    _ => None,
                }
            }
            (Some(_), None) => {
                errors.push(TlsError::new("client_cert", "`client_cert` needs `client_key`, the file of its key"));
                None
            }
            (None, Some(_)) => {
                errors.push(TlsError::new("client_key", "`client_key` needs `client_cert`, the file of its chain"));
                None
            }
            (None, None) => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }

        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| vec![TlsError::new("", error.to_string())])?;
        let builder = match roots {
            Some(roots) => builder.with_root_certificates(roots),
            None => builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification::new(provider))),
        };
        let identity_id = identity.as_ref().map_or(0, |certified| identity_id(&certified.cert));
        let mut config = match identity {
            Some(certified) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified))),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = settings.alpn.iter().map(|protocol| protocol.as_bytes().to_vec()).collect();
        Ok(ClientTls { config: Arc::new(config), server_name, identity_id, files: files.into_paths() })
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Server name sent and verified for an endpoint whose configured host is `endpoint_host`.
    ///
    /// That is `server_name` when configured, else the host itself: a DNS name (sent by SNI)
    /// or an IP address (`10.0.0.7`, `[fd00::7]`; no SNI, the certificate must list the address).
    pub fn server_name(&self, endpoint_host: &str) -> Result<ServerName<'static>, TlsError> {
        match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => parse_server_name(endpoint_host).map_err(|message| TlsError::new("server_name", message)),
        }
    }

    /// A stable number identifying the client identity (client cert) so connection pools key on it.
    ///
    /// `0` without a client certificate; otherwise derived from the SHA-256 of the chain, so
    /// the same files give the same number across reloads and processes.
    pub fn identity_id(&self) -> u64 {
        self.identity_id
    }

    /// Runs the client side of a handshake on `tcp`, verifying the endpoint as `name`.
    pub async fn connect(&self, name: ServerName<'static>, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        TlsConnector::from(Arc::clone(&self.config)).connect(name, tcp).await
    }

    /// Every file the config read (CA bundle, client certificate and key).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

/// A DNS name or an IP address (brackets around IPv6 allowed) as a rustls server name.
fn parse_server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).unwrap_or(host);
    ServerName::try_from(bare.to_owned())
        .map_err(|_| format!("`{host}` is neither a DNS name nor an IP address: set `server_name`"))
}

/// A nonzero number from the SHA-256 of a certificate chain.
fn identity_id(chain: &[CertificateDer<'_>]) -> u64 {
    let mut hash = Sha256::new();
    for certificate in chain {
        hash.update((certificate.len() as u64).to_be_bytes());
        hash.update(certificate.as_ref());
    }
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first).max(1)
}
