//! The compiled form of a listener's `tcp` block: clusters resolved to their live states.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use strait_cluster::ClusterState;
use strait_config::{Fallback, TcpForward};

use super::sni::SniTable;
use crate::listener_tls::ListenerTlsPlan;

/// How a TCP listener forwards its connections.
#[derive(Debug)]
pub(crate) struct TcpPlan {
    /// Where connections go when no passthrough route takes them (all of them without `sni`).
    pub default_cluster: Option<Arc<ClusterState>>,
    /// Passthrough routes by server name; empty without `sni`.
    pub sni: SniTable<Arc<ClusterState>>,
    /// What a ClientHello without a server name gets.
    pub missing_sni: Fallback,
    /// What a client that does not open with a TLS handshake gets.
    pub not_tls: Fallback,
    /// Time to receive the ClientHello.
    pub hello_timeout: Duration,
    /// A connection closes after this long without a byte either way.
    pub idle_timeout: Duration,
    /// Endpoints tried before the client is closed.
    pub connect_attempts: u32,
    /// Bulk transfers move by `splice(2)`.
    pub splice: bool,
    /// Each direction's end is passed on; off, the first end closes the session.
    pub half_close: bool,
    /// The listener's TLS, for the passthrough names it terminates itself.
    pub terminate: Option<Arc<ListenerTlsPlan>>,
}

impl TcpPlan {
    /// Compiles `tcp` against the cluster states of the snapshot (validation made sure every
    /// named cluster exists); `tls` is the listener's, which terminates what passthrough does not
    /// take.
    pub(crate) fn compile(
        listener: &str,
        tcp: &TcpForward,
        tls: Option<&Arc<ListenerTlsPlan>>,
        clusters: &HashMap<String, Arc<ClusterState>>,
    ) -> Result<TcpPlan, String> {
        let cluster = |name: &str| {
            clusters.get(name).cloned().ok_or_else(|| format!("listener `{listener}`: unknown cluster `{name}`"))
        };
        let default_cluster = tcp.cluster.as_deref().map(cluster).transpose()?;
        let mut routes = Vec::new();
        for route in &tcp.sni {
            let state = cluster(&route.cluster)?;
            routes.extend(route.server_names.iter().map(|name| (name.as_str(), state.clone())));
        }
        Ok(TcpPlan {
            default_cluster,
            sni: SniTable::new(routes),
            missing_sni: tcp.missing_sni,
            not_tls: tcp.not_tls,
            hello_timeout: tcp.hello_timeout.0,
            idle_timeout: tcp.idle_timeout.0,
            connect_attempts: tcp.connect_attempts.max(1),
            splice: tcp.splice,
            half_close: tcp.half_close,
            terminate: tls.cloned(),
        })
    }
}
