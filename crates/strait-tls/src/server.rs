//! The server side of a listener: a rustls `ServerConfig` built from a `tls` block.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier};
use rustls::ServerConfig;
use strait_config::{ClientAuthMode, ListenerTls};
use tokio_rustls::TlsAcceptor;

use crate::certificate;
use crate::error::TlsError;
use crate::files::Files;
use crate::sni::{ServerNames, SniResolver};
use crate::suites;

/// Server side of a listener.
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    files: Vec<PathBuf>,
}

impl ServerTls {
    /// Reads the files and builds the rustls config. Paths relative to `base_dir` when not absolute.
    ///
    /// Every problem found is returned, each naming its field of the `tls` block.
    pub fn build(settings: &ListenerTls, base_dir: &Path) -> Result<ServerTls, Vec<TlsError>> {
        let mut errors = Vec::new();
        let mut files = Files::new(base_dir);
        let versions = suites::versions(&settings.versions, &mut errors);
        let provider = suites::server_provider(settings, &mut errors);

        if settings.certificates.is_empty() {
            errors.push(TlsError::new("certificates", "no certificates: list at least one `{ cert, key }`"));
        }
        let mut names: Option<ServerNames<_>> = None;
        for (index, spec) in settings.certificates.iter().enumerate() {
            match certificate::load(index, spec, &mut files, &provider) {
                Ok(loaded) => {
                    let table = names.get_or_insert_with(|| ServerNames::new(Arc::clone(&loaded.key)));
                    for name in &loaded.names {
                        table.insert(name, Arc::clone(&loaded.key));
                    }
                }
                Err(found) => errors.extend(found),
            }
        }

        let client_verifier = match &settings.client_auth {
            None => Some(WebPkiClientVerifier::no_client_auth()),
            Some(client_auth) => match files.roots("client_auth.ca", &client_auth.ca) {
                Ok(roots) => {
                    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
                    let builder = match client_auth.mode {
                        ClientAuthMode::Required => builder,
                        ClientAuthMode::Optional => builder.allow_unauthenticated(),
                    };
                    builder
                        .build()
                        .map_err(|error| errors.push(TlsError::new("client_auth.ca", error.to_string())))
                        .ok()
                }
                Err(error) => {
                    errors.push(error);
                    None
                }
            },
        };

        let ticketer = if settings.session_tickets {
            rustls::crypto::aws_lc_rs::Ticketer::new()
                .map_err(|error| errors.push(TlsError::new("session_tickets", error.to_string())))
                .ok()
        } else {
            None
        };

        // Without a loaded certificate or a verifier, `errors` says why.
        let (Some(names), Some(client_verifier)) = (names, client_verifier) else { return Err(errors) };
        if !errors.is_empty() {
            return Err(errors);
        }
        let builder = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|error| vec![TlsError::new("cipher_suites", error.to_string())])?;
        let mut config =
            builder.with_client_cert_verifier(client_verifier).with_cert_resolver(Arc::new(SniResolver::new(names)));
        config.alpn_protocols = settings.alpn.iter().map(|protocol| protocol.as_bytes().to_vec()).collect();
        config.session_storage = session_storage(settings.session_cache);
        if let Some(ticketer) = ticketer {
            config.ticketer = ticketer;
        }
        Ok(ServerTls { config: Arc::new(config), files: files.into_paths() })
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// An acceptor that runs the server side of handshakes on accepted sockets.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.config))
    }

    /// Every file the config read (certs, keys, OCSP, CA), so a watcher can reload on change.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

/// Where sessions are kept for resumption by id: `size` sessions in memory, or nowhere.
fn session_storage(size: usize) -> Arc<dyn StoresServerSessions> {
    if size == 0 {
        Arc::new(NoServerSessionStorage {})
    } else {
        ServerSessionMemoryCache::new(size)
    }
}
