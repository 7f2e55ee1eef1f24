//! How a cluster's connections are made: plain TCP or TLS (server name, trust, client
//! certificate), speaking HTTP/1.1 or HTTP/2. One connector per cluster and snapshot; the pool
//! key it gives says which connections are interchangeable.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use strait_config::{Cluster, UpstreamProtocol};
use strait_http::Reason;
use strait_tls::{ClientTls, TlsError};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::client::SendOptions;
use super::pool::{PoolKey, Protocol};
use super::stream::UpstreamStream;

/// Makes connections to one cluster's endpoints.
#[derive(Debug)]
pub struct Connector {
    tls: Option<TlsConnect>,
    protocol: Protocol,
}

/// The TLS side of a connector.
#[derive(Debug)]
struct TlsConnect {
    client: ClientTls,
    name: ServerName<'static>,
    /// Tells connections with another name or client identity apart in the pool.
    key: u64,
}

impl Connector {
    /// Plain HTTP/1.1.
    pub fn plain() -> Connector {
        Connector { tls: None, protocol: Protocol::Http1 }
    }

    /// The connector a cluster's settings describe; TLS files are read from `base_dir`.
    pub fn build(cluster: &Cluster, base_dir: &Path) -> Result<Connector, Vec<TlsError>> {
        let protocol = match cluster.protocol {
            UpstreamProtocol::Http1 => Protocol::Http1,
            UpstreamProtocol::Http2 => Protocol::Http2,
        };
        let Some(settings) = &cluster.tls else { return Ok(Connector { tls: None, protocol }) };
        let mut settings = settings.clone();
        if protocol == Protocol::Http2 && !settings.alpn.iter().any(|p| p == "h2") {
            settings.alpn = vec!["h2".into()];
        }
        let client = ClientTls::build(&settings, base_dir)?;
        // The name verified: the configured one, or the first endpoint's host.
        let host = cluster.endpoints.first().map(|e| host_of(&e.address)).unwrap_or_default();
        let name = client.server_name(host).map_err(|e| vec![e])?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        client.identity_id().hash(&mut hasher);
        name.to_str().hash(&mut hasher);
        let key = hasher.finish() | 1;
        Ok(Connector { tls: Some(TlsConnect { client, name, key }), protocol })
    }

    /// HTTP/1.1 over TLS with `client`'s trust, verifying the server as `host` (the forward
    /// proxy's connections to inspected origins).
    pub(crate) fn tls(client: ClientTls, host: &str) -> Result<Connector, TlsError> {
        let name = client.server_name(host)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        client.identity_id().hash(&mut hasher);
        name.to_str().hash(&mut hasher);
        let key = hasher.finish() | 1;
        Ok(Connector { tls: Some(TlsConnect { client, name, key }), protocol: Protocol::Http1 })
    }

    /// The pool key of connections to `addr`.
    pub(crate) fn key(&self, addr: SocketAddr) -> PoolKey {
        PoolKey { addr, tls: self.tls.as_ref().map_or(0, |t| t.key), protocol: self.protocol }
    }

    /// Whether this connector speaks HTTP/2.
    pub(crate) fn is_http2(&self) -> bool {
        self.protocol == Protocol::Http2
    }

    /// Connects to `addr` (and completes the TLS handshake) within the connect timeout and
    /// the deadline.
    pub(crate) async fn connect(&self, addr: SocketAddr, options: &SendOptions) -> Result<UpstreamStream, Reason> {
        let limit = match options.deadline {
            Some(d) => options.connect_timeout.min(d.saturating_duration_since(Instant::now())),
            None => options.connect_timeout,
        };
        let timed_out =
            if limit < options.connect_timeout { Reason::UpstreamTimeout } else { Reason::UpstreamConnectTimeout };
        let deadline = Instant::now() + limit;
        let tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(_)) => return Err(Reason::UpstreamConnectFailed),
            Err(_) => return Err(timed_out),
        };
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else { return Ok(UpstreamStream::Tcp(tcp)) };
        match tokio::time::timeout_at(deadline, tls.client.connect(tls.name.clone(), tcp)).await {
            Ok(Ok(stream)) => Ok(UpstreamStream::Tls(Box::new(stream))),
            Ok(Err(error)) => {
                tracing::debug!(%addr, %error, "upstream TLS handshake failed");
                Err(Reason::UpstreamTlsFailed)
            }
            Err(_) => Err(timed_out),
        }
    }
}

/// The host of an endpoint address (`name:port`, `[v6]:port`, `v4:port`).
fn host_of(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    address.rsplit_once(':').map_or(address, |(host, _)| host)
}

/// The connectors of every cluster of a configuration, by name; TLS problems are reported at
/// their fields.
pub fn build_all(
    config: &strait_config::Config,
) -> Result<std::collections::HashMap<String, Arc<Connector>>, Vec<strait_config::ConfigError>> {
    let base_dir = config.source.dir();
    let mut connectors = std::collections::HashMap::new();
    let mut errors = Vec::new();
    for (index, cluster) in config.clusters.iter().enumerate() {
        match Connector::build(cluster, &base_dir) {
            Ok(connector) => {
                connectors.insert(cluster.name.clone(), Arc::new(connector));
            }
            Err(found) => {
                let tls_path = format!("clusters[{index}].tls");
                errors.extend(found.iter().map(|e| config.source.error(&e.path_in(&tls_path), &e.message)));
            }
        }
    }
    if errors.is_empty() {
        Ok(connectors)
    } else {
        Err(errors)
    }
}
