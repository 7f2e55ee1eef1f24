//! The `forward_proxy` route action: requests for any origin (absolute-form targets and CONNECT
//! tunnels) sent on to that origin, as Squid and tinyproxy do.

use std::time::Duration;

use serde::Deserialize;

use crate::units::{ByteSize, Dur};

/// Forwards absolute-form requests to their origin and turns CONNECT into a tunnel. Who may
/// use it is the listener's filters' business (`proxy_auth`, `http_access`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardProxy {
    /// Refusal of destinations that resolve to internal addresses (on unless turned off).
    pub ssrf_guard: SsrfGuard,
    /// Time limits towards origins and on tunnels.
    pub timeouts: ForwardTimeouts,
    /// Idle connections kept per origin and worker.
    pub keepalive: Option<usize>,
    /// An upstream proxy every request goes through (Squid `cache_peer ... parent`).
    pub parent: Option<ParentProxy>,
    /// The proxy auto-config file served to clients that ask the proxy itself for it.
    pub pac: Option<PacFile>,
    /// Bytes per second each client address may receive, over all its responses and tunnels
    /// (Squid `delay_pools` class 2); unlimited when unset.
    pub client_bandwidth: Option<ByteSize>,
    /// Decrypting the tunnels to some domains (Squid `ssl_bump`); off unless set.
    pub tls_inspection: Option<TlsInspection>,
}

/// TLS inspection: CONNECT tunnels to the listed domains are terminated with certificates
/// minted from a CA the clients trust, their requests go through the listener's rules and log,
/// and each is sent on to the origin over TLS verified as usual. Other tunnels stay opaque.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsInspection {
    /// PEM file of the CA certificate that signs the minted certificates.
    pub ca_cert: String,
    /// PEM file of that CA's private key.
    pub ca_key: String,
    /// Domains inspected: exact names, or `.example.com` for the domain and its subdomains.
    pub domains: Vec<String>,
    /// PEM file of the CAs origins must chain to; the public web roots when unset.
    #[serde(default)]
    pub origin_ca: Option<String>,
}

impl ForwardProxy {
    /// Idle connections kept per origin and worker (128 unless set).
    pub fn keepalive(&self) -> usize {
        self.keepalive.unwrap_or(128)
    }
}

/// The SSRF guard: after resolving a destination, refuse loopback, private, shared (CGNAT),
/// link-local, unique-local, unspecified, multicast and reserved addresses, and IPv6 forms
/// that embed such an IPv4 address, unless the allow list names them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SsrfGuard {
    /// `false` lets every destination through (not advised).
    pub enabled: bool,
    /// Addresses let through anyway: an IP (`127.0.0.1`), an IP and port (`127.0.0.1:18080`,
    /// `[::1]:8080`), or a CIDR block (`10.1.0.0/16`).
    pub allow: Vec<String>,
}

impl Default for SsrfGuard {
    fn default() -> SsrfGuard {
        SsrfGuard { enabled: true, allow: Vec::new() }
    }
}

/// Time limits of the forward proxy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardTimeouts {
    /// Resolving the destination's name.
    pub dns: Dur,
    /// Connecting to the origin (or the parent).
    pub connect: Dur,
    /// From sending a request to its response head.
    pub response_header: Dur,
    /// Longest pause on a body in either direction.
    pub body: Dur,
    /// A CONNECT tunnel closes after this long without a byte either way.
    pub tunnel_idle: Dur,
    /// How long an idle origin connection stays reusable.
    pub idle: Dur,
}

impl Default for ForwardTimeouts {
    fn default() -> ForwardTimeouts {
        ForwardTimeouts {
            dns: Dur(Duration::from_secs(5)),
            connect: Dur(Duration::from_secs(10)),
            response_header: Dur(Duration::from_secs(60)),
            body: Dur(Duration::from_secs(60)),
            tunnel_idle: Dur(Duration::from_secs(600)),
            idle: Dur(Duration::from_secs(60)),
        }
    }
}

/// An upstream proxy (Squid `cache_peer HOST PORT 0 no-query default`, `never_direct allow all`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ParentProxy {
    /// `host:port` of the parent proxy.
    pub address: String,
    /// User name sent to the parent in `Proxy-Authorization: Basic` (with `password`).
    pub username: Option<String>,
    /// Password for the parent (a `{vault://...}` reference keeps it out of the file).
    pub password: Option<String>,
}

/// The proxy auto-config file (`FindProxyForURL`), generated from this proxy's own settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PacFile {
    /// Path the file is served at, for requests addressed to the proxy itself.
    pub path: String,
    /// `host:port` clients should use for the proxy; the listener's address when unset (which
    /// is only right when it is not a wildcard address).
    pub proxy: Option<String>,
    /// Hosts reached directly: exact names, `.suffix` for a domain and its subdomains, or CIDR
    /// blocks for IP literals. Plain host names (no dot) always go direct.
    pub direct: Vec<String>,
}

impl Default for PacFile {
    fn default() -> PacFile {
        PacFile { path: "/proxy.pac".into(), proxy: None, direct: Vec::new() }
    }
}
