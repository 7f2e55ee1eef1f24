//! TLS of listeners in the form connections use: the rustls configuration built from the
//! config and its files, kept across reloads while neither changed (so session tickets and the
//! session cache survive a reload), and the headers that carry a client's verified identity.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use strait_config::{Config, ConfigError, ListenerTls};
use strait_http::context::ClientCert;
use strait_tls::ServerTls;
use tokio_rustls::TlsAcceptor;

/// A listener's TLS: its certificates and settings, and the identity headers.
#[derive(Debug)]
pub struct ListenerTlsPlan {
    server: Arc<ServerTls>,
    /// Request headers set from the client's verified certificate.
    pub identity: IdentityHeaders,
}

impl ListenerTlsPlan {
    /// An acceptor for new connections.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.server.acceptor()
    }
}

impl std::fmt::Debug for CachedTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedTls").field("files", &self.stamps.len()).finish()
    }
}

/// The names of the headers that carry a verified client identity (none by default).
#[derive(Debug, Default, Clone)]
pub struct IdentityHeaders {
    subject: Option<HeaderName>,
    dns: Option<HeaderName>,
    uri: Option<HeaderName>,
    fingerprint: Option<HeaderName>,
}

impl IdentityHeaders {
    /// Whether no header is configured.
    pub fn is_empty(&self) -> bool {
        self.subject.is_none() && self.dns.is_none() && self.uri.is_none() && self.fingerprint.is_none()
    }

    /// Removes the client's own fields of these names, then sets them from `cert`.
    pub(crate) fn apply(&self, headers: &mut HeaderMap, cert: Option<&ClientCert>) {
        let fields = [
            (&self.subject, cert.map(|c| c.subject.clone())),
            (&self.dns, cert.map(|c| c.dns_names.join(","))),
            (&self.uri, cert.map(|c| c.uris.join(","))),
            (&self.fingerprint, cert.map(|c| c.fingerprint_sha256.clone())),
        ];
        for (name, value) in fields {
            let Some(name) = name else { continue };
            headers.remove(name);
            let value = value.filter(|v| !v.is_empty()).and_then(|v| HeaderValue::from_str(&v).ok());
            if let Some(value) = value {
                headers.insert(name.clone(), value);
            }
        }
    }
}

/// A built TLS configuration and what it was built from.
#[derive(Clone)]
struct CachedTls {
    settings: ListenerTls,
    base_dir: PathBuf,
    stamps: Vec<(PathBuf, Option<(SystemTime, u64)>)>,
    built: Arc<ServerTls>,
}

/// Built listener TLS configurations by listener name, reused while unchanged.
#[derive(Default)]
pub struct TlsCache {
    entries: Mutex<HashMap<String, CachedTls>>,
}

impl std::fmt::Debug for TlsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCache").finish_non_exhaustive()
    }
}

impl TlsCache {
    /// The TLS plan of every TLS listener of `config` (by listener index), reading the files;
    /// every problem is reported at its field.
    pub fn plans(&self, config: &Config) -> Result<Vec<Option<Arc<ListenerTlsPlan>>>, Vec<ConfigError>> {
        let base_dir = config_dir(config.source.file());
        let mut errors = Vec::new();
        let mut plans = Vec::with_capacity(config.listeners.len());
        let mut entries = self.entries.lock().expect("TLS cache lock");
        let mut kept = HashMap::new();
        for (index, listener) in config.listeners.iter().enumerate() {
            let Some(settings) = &listener.tls else {
                plans.push(None);
                continue;
            };
            // Looked up, not taken: a rejected configuration leaves every entry (and the files
            // the watcher follows) as it was.
            let reused = entries
                .get(&listener.name)
                .filter(|cached| {
                    cached.settings == *settings
                        && cached.base_dir == base_dir
                        && cached.stamps == stamps(cached.built.files())
                })
                .cloned();
            let cached = match reused {
                Some(cached) => cached,
                None => match ServerTls::build(settings, &base_dir) {
                    Ok(built) => CachedTls {
                        settings: settings.clone(),
                        base_dir: base_dir.clone(),
                        stamps: stamps(built.files()),
                        built: Arc::new(built),
                    },
                    Err(found) => {
                        let tls_path = format!("listeners[{index}].tls");
                        errors.extend(found.iter().map(|e| config.source.error(&e.path_in(&tls_path), &e.message)));
                        plans.push(None);
                        continue;
                    }
                },
            };
            let identity = identity_headers(settings);
            plans.push(Some(Arc::new(ListenerTlsPlan { server: cached.built.clone(), identity })));
            kept.insert(listener.name.clone(), cached);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        *entries = kept;
        Ok(plans)
    }

    /// Every file the current TLS configurations read (for a watcher that reloads on change).
    pub fn files(&self) -> Vec<PathBuf> {
        let entries = self.entries.lock().expect("TLS cache lock");
        entries.values().flat_map(|cached| cached.built.files().iter().cloned()).collect()
    }
}

/// The directory relative file names in a configuration are read from.
fn config_dir(file: &str) -> PathBuf {
    match Path::new(file).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// When each file was last changed, and its size.
fn stamps(files: &[PathBuf]) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
    files
        .iter()
        .map(|path| {
            let stamp = std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
            (path.clone(), stamp)
        })
        .collect()
}

/// The identity header names configured for a listener (validated with the config).
fn identity_headers(settings: &ListenerTls) -> IdentityHeaders {
    let Some(client_auth) = &settings.client_auth else { return IdentityHeaders::default() };
    let name = |n: &Option<String>| n.as_deref().and_then(|n| HeaderName::from_bytes(n.as_bytes()).ok());
    let headers = &client_auth.headers;
    IdentityHeaders {
        subject: name(&headers.subject),
        dns: name(&headers.dns),
        uri: name(&headers.uri),
        fingerprint: name(&headers.fingerprint),
    }
}
