//! Layer 4 listeners: TCP connections and UDP datagrams forwarded to a cluster as they are
//! (HAProxy `mode tcp`, NGINX `stream {}`), TLS passed through by server name (sniproxy), and
//! the PROXY protocol on both sides.

use serde::Deserialize;

use crate::units::Dur;

/// A listener's TCP forwarding (`listeners[].tcp`): every connection goes to a cluster as a
/// byte stream, chosen by the TLS server name when `sni` routes are set.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TcpForward {
    /// Cluster the connections go to; with `sni`, the one for names no route lists (and, per
    /// `missing_sni` and `not_tls`, for hellos without a name and for non-TLS clients).
    pub cluster: Option<String>,
    /// TLS passthrough: the server name (and ALPN) read from the ClientHello choose the
    /// cluster, without terminating TLS. First route listing the name wins; exact names
    /// before `*.` wildcards.
    pub sni: Vec<SniRoute>,
    /// What a ClientHello without a server name gets.
    pub missing_sni: Fallback,
    /// What a client whose first bytes are not a TLS handshake gets.
    pub not_tls: Fallback,
    /// Time to receive the whole ClientHello (with `sni`).
    pub hello_timeout: Dur,
    /// A connection closes after this long without a byte in either direction (NGINX
    /// `proxy_timeout`, HAProxy `timeout client`/`timeout server`).
    pub idle_timeout: Dur,
    /// Endpoints tried to connect to before the client is closed (NGINX
    /// `proxy_next_upstream_tries`, HAProxy `retries`); at least 1.
    pub connect_attempts: u32,
    /// Move bulk transfers with `splice(2)`, inside the kernel, once a read fills the first
    /// buffer (HAProxy `option splice-auto`): less CPU per byte, some throughput on loopback.
    /// Off by default, as in HAProxy: bulk transfers are copied through a 16 KiB buffer.
    pub splice: bool,
    /// Each direction's end is passed on as a half-close and the session lasts until both
    /// sides ended (HAProxy's behaviour, NGINX `proxy_half_close on`). Off, the first end
    /// closes the session, as NGINX does by default: cheaper for short sessions, but a client
    /// that shuts down its writing side to ask for the answer gets none.
    pub half_close: bool,
}

impl Default for TcpForward {
    fn default() -> Self {
        TcpForward {
            cluster: None,
            sni: Vec::new(),
            missing_sni: Fallback::Default,
            not_tls: Fallback::Refuse,
            hello_timeout: Dur::secs(5),
            idle_timeout: Dur::secs(600),
            connect_attempts: 3,
            splice: false,
            half_close: true,
        }
    }
}

/// One TLS passthrough route: the server names it takes and the cluster they go to.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SniRoute {
    /// Exact names (`db.example.com`) and wildcards (`*.example.com`: one or more labels in
    /// front of `example.com`), compared without regard to case.
    pub server_names: Vec<String>,
    /// Cluster these connections go to.
    pub cluster: String,
}

/// Where a passthrough connection that no route takes goes.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// The default: `tcp.cluster` when set; otherwise, on a listener with `tls`, TLS is
    /// terminated and the listener's routes serve it; otherwise the connection is closed.
    #[default]
    Default,
    /// Close the connection.
    Refuse,
}

/// A listener's UDP forwarding (`listeners[].udp`): datagrams go to a cluster, in sessions
/// keyed by the client's address; replies go back to that client from the listener's address.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UdpForward {
    /// Cluster the datagrams go to.
    pub cluster: String,
    /// A session ends after this long without a datagram either way (NGINX `proxy_timeout`).
    pub idle_timeout: Dur,
    /// Most sessions at once per worker; datagrams of new clients beyond it are dropped.
    pub max_sessions: usize,
    /// Datagrams expected back per datagram sent, after which the session ends (NGINX
    /// `proxy_responses`; `1` suits DNS); `0` waits for the idle timeout.
    pub responses: u32,
}

impl Default for UdpForward {
    fn default() -> Self {
        UdpForward { cluster: String::new(), idle_timeout: Dur::secs(30), max_sessions: 10_000, responses: 0 }
    }
}

/// Accepting the PROXY protocol (`listeners[].proxy_protocol`, HAProxy `accept-proxy`): peers
/// in `trusted` must open with a v1 or v2 header, whose source address becomes the client's
/// (for logs, `X-Forwarded-For`, balancing and access rules). A header from any other peer, or
/// a malformed one, closes the connection.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AcceptProxyProtocol {
    /// Addresses and CIDR blocks of the load balancers in front.
    pub trusted: Vec<String>,
    /// Time to receive the header.
    #[serde(default = "default_header_timeout")]
    pub timeout: Dur,
}

fn default_header_timeout() -> Dur {
    Dur::secs(5)
}

/// The PROXY protocol version a cluster's connections start with (HAProxy `send-proxy`,
/// `send-proxy-v2`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProxyProtocolVersion {
    /// The text header.
    V1,
    /// The binary header.
    V2,
}
