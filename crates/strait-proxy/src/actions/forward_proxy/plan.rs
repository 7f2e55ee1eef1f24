//! A `forward_proxy` route's settings, checked and compiled once per snapshot.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use strait_cluster::ssrf::{self, AllowList};
use strait_config::ForwardProxy;

use super::bandwidth::ClientBandwidth;
use super::inspection::InspectionPlan;
use super::pac::PacPlan;
use crate::upstream::client::SendOptions;
use crate::upstream::Connector;

/// What a forward-proxy route does, ready for requests.
#[derive(Debug)]
pub struct ForwardPlan {
    /// Which resolved addresses may be connected to.
    pub(crate) guard: Guard,
    /// How requests are sent to origins (and to the parent).
    pub(crate) options: SendOptions,
    /// Longest wait for a name to resolve.
    pub(crate) dns_timeout: Duration,
    /// A tunnel closes after this long without a byte either way.
    pub(crate) tunnel_idle: Duration,
    /// Plain HTTP/1.1 connections to origins, pooled per address.
    pub(crate) connector: Arc<Connector>,
    /// The upstream proxy every request goes through, if any.
    pub(crate) parent: Option<ParentPlan>,
    /// The proxy auto-config file, if served.
    pub(crate) pac: Option<PacPlan>,
    /// Each client's bytes per second, if limited.
    pub(crate) bandwidth: Option<Arc<ClientBandwidth>>,
    /// Which tunnels are decrypted, if any.
    pub(crate) inspection: Option<InspectionPlan>,
}

/// The SSRF guard: internal addresses are refused unless allowed.
#[derive(Debug)]
pub(crate) struct Guard {
    enabled: bool,
    allow: AllowList,
}

impl Guard {
    /// A guard that permits everything (for the configured parent proxy).
    pub(crate) fn off() -> Guard {
        Guard { enabled: false, allow: AllowList::default() }
    }

    /// Whether a connection to `addr` may be made.
    pub(crate) fn permits(&self, addr: SocketAddr) -> bool {
        !self.enabled || self.allow.allows(addr) || !ssrf::is_internal(addr.ip())
    }
}

/// The parent proxy: where it is and the credentials it gets.
#[derive(Debug)]
pub(crate) struct ParentPlan {
    /// `host:port` as configured (resolved per request, through the same cache as origins).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `Proxy-Authorization` for the parent, when credentials are set.
    pub authorization: Option<HeaderValue>,
}

/// Compiles a route's `forward_proxy` settings; an error names the field (below
/// `forward_proxy`) and what is wrong with it.
pub(crate) fn compile(spec: &ForwardProxy, base_dir: &Path) -> Result<ForwardPlan, (String, String)> {
    let inspection = spec.tls_inspection.as_ref().map(|t| InspectionPlan::load(t, base_dir)).transpose()?;
    let allow = AllowList::parse(&spec.ssrf_guard.allow).map_err(|e| ("ssrf_guard.allow".to_string(), e))?;
    let parent = spec.parent.as_ref().map(compile_parent).transpose()?;
    let pac = spec.pac.as_ref().map(PacPlan::compile).transpose().map_err(|e| ("pac".to_string(), e))?;
    let t = &spec.timeouts;
    Ok(ForwardPlan {
        guard: Guard { enabled: spec.ssrf_guard.enabled, allow },
        options: SendOptions {
            connect_timeout: t.connect.0,
            deadline: None,
            response_header_timeout: t.response_header.0,
            body_timeout: t.body.0,
            keepalive: spec.keepalive(),
            idle: t.idle.0,
        },
        dns_timeout: t.dns.0,
        tunnel_idle: t.tunnel_idle.0,
        connector: Arc::new(Connector::plain()),
        parent,
        pac,
        bandwidth: spec.client_bandwidth.map(|rate| Arc::new(ClientBandwidth::new(rate.0))),
        inspection,
    })
}

fn compile_parent(parent: &strait_config::ParentProxy) -> Result<ParentPlan, (String, String)> {
    let bad = |message: &str| ("parent.address".to_string(), format!("`{}`: {message}", parent.address));
    let (host, port) = super::destination::split_authority(&parent.address).ok_or_else(|| bad("expected host:port"))?;
    let port = port.ok_or_else(|| bad("the port is required"))?;
    let authorization = match (&parent.username, &parent.password) {
        (None, None) => None,
        (Some(user), Some(password)) => {
            let encoded = base64_encode(format!("{user}:{password}").as_bytes());
            let value = HeaderValue::from_str(&format!("Basic {encoded}"))
                .map_err(|_| ("parent.username".to_string(), "not a valid header value".to_string()))?;
            let mut value = value;
            value.set_sensitive(true);
            Some(value)
        }
        _ => return Err(("parent".to_string(), "give both `username` and `password`, or neither".to_string())),
    };
    Ok(ParentPlan { host: host.to_string(), port, authorization })
}

/// Standard base64 with padding (credentials for `Basic`).
fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
