//! TLS inspection (Squid `ssl_bump`): which tunnels are decrypted, the certificates shown to
//! their clients, and the verified TLS connections their requests go on over.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use strait_config::{ClusterTls, TlsInspection};
use strait_http::context::InspectedTunnel;
use strait_tls::{ClientTls, Minter};
use tokio_rustls::TlsAcceptor;

use crate::upstream::Connector;

/// A route's TLS inspection, ready for tunnels.
#[derive(Debug)]
pub(crate) struct InspectionPlan {
    minter: Arc<Minter>,
    /// Exact names and `.suffix` domains.
    domains: Vec<String>,
    /// Verifies origins (the configured CAs or the web roots).
    origin_tls: ClientTls,
    /// A connector per origin host, each verifying that name.
    connectors: Mutex<HashMap<String, Arc<Connector>>>,
}

impl InspectionPlan {
    /// Loads the CA and the origins' trust; an error names the field and what is wrong.
    pub(crate) fn load(spec: &TlsInspection, base_dir: &Path) -> Result<InspectionPlan, (String, String)> {
        let minter = Minter::load(&spec.ca_cert, &spec.ca_key, base_dir).map_err(|errors| {
            let first = &errors[0];
            (first.path_in("tls_inspection"), first.message.clone())
        })?;
        if spec.domains.is_empty() {
            return Err(("tls_inspection.domains".into(), "list at least one domain to inspect".into()));
        }
        let trust = ClusterTls { ca: spec.origin_ca.clone(), ..ClusterTls::default() };
        let origin_tls = ClientTls::build(&trust, base_dir).map_err(|errors| {
            let first = &errors[0];
            let field = if first.field == "ca" {
                "tls_inspection.origin_ca".to_string()
            } else {
                first.path_in("tls_inspection")
            };
            (field, first.message.clone())
        })?;
        let domains = spec.domains.iter().map(|d| d.trim_end_matches('.').to_ascii_lowercase()).collect();
        Ok(InspectionPlan { minter: Arc::new(minter), domains, origin_tls, connectors: Mutex::new(HashMap::new()) })
    }

    /// Whether tunnels to `host` are decrypted.
    pub(crate) fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().any(|domain| match domain.strip_prefix('.') {
            Some(parent) => host == parent || host.strip_suffix(domain.as_str()).is_some_and(|sub| !sub.is_empty()),
            None => host == *domain,
        })
    }

    /// The acceptor for a decrypted tunnel to `host`: minted certificates for the name the
    /// client sends (or `host`), HTTP/1.1 inside.
    pub(crate) fn acceptor(&self, host: &str) -> Option<TlsAcceptor> {
        let config = self.minter.server_config(host, &[b"http/1.1"]).ok()?;
        Some(TlsAcceptor::from(config))
    }

    /// The connector to the origin `host` over TLS, verifying that name.
    pub(crate) fn connector(&self, host: &str) -> Option<Arc<Connector>> {
        let mut connectors = self.connectors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = connectors.get(host) {
            return Some(found.clone());
        }
        let connector = Arc::new(Connector::tls(self.origin_tls.clone(), host).ok()?);
        if connectors.len() >= 4096 {
            connectors.clear();
        }
        connectors.insert(host.to_string(), connector.clone());
        Some(connector)
    }
}

/// A CONNECT tunnel to decrypt, handed to the connection driver after the `200`: the acceptor
/// showing minted certificates, and what the requests inside are for.
pub(crate) struct Bump {
    /// Terminates the client's TLS.
    pub(crate) acceptor: TlsAcceptor,
    /// The tunnel's target and user, for the requests inside.
    pub(crate) tunnel: Arc<InspectedTunnel>,
}
