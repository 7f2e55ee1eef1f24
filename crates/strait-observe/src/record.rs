//! The per-request data an access log line is made from.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// Everything the access log records about one request; borrowed from the request state.
#[derive(Debug, Clone, Copy)]
pub struct LogRecord<'a> {
    /// Address of the client (after trusted-proxy resolution, if any).
    pub client_addr: SocketAddr,
    /// When the request arrived.
    pub time: SystemTime,
    /// Request method as received.
    pub method: &'a str,
    /// Request target as received: path and query, an absolute URI, or `host:port` (CONNECT).
    pub target: &'a str,
    /// `https` on TLS listeners, `http` otherwise (the squid format's URL of an origin-form
    /// target).
    pub scheme: &'a str,
    /// Protocol version, e.g. `HTTP/1.1`.
    pub version: &'a str,
    /// Response status code sent to the client.
    pub status: u16,
    /// Response body bytes sent to the client.
    pub bytes_sent: u64,
    /// `Referer` request header.
    pub referer: Option<&'a str>,
    /// `User-Agent` request header.
    pub user_agent: Option<&'a str>,
    /// `Host` of the request.
    pub host: Option<&'a str>,
    /// Name of the matched route.
    pub route: Option<&'a str>,
    /// Name of the cluster the request was forwarded to.
    pub cluster: Option<&'a str>,
    /// Address of the upstream server that answered.
    pub upstream_addr: Option<SocketAddr>,
    /// Time until the upstream response head arrived.
    pub upstream_time: Option<Duration>,
    /// Time from request arrival until the response was complete.
    pub total_time: Duration,
    /// Stable reason code when Strait answered itself (e.g. `no_route`).
    pub reason: Option<&'a str>,
    /// Request id, if one was received or generated.
    pub request_id: Option<&'a str>,
    /// Name of the consumer (user) an authentication filter identified.
    pub user: Option<&'a str>,
    /// What a response cache did (`HIT`, `MISS`, `EXPIRED`, `STALE`, `REVALIDATED`, `BYPASS`).
    pub cache_status: Option<&'a str>,
    /// The request went to its origin through a parent proxy (the squid format's
    /// `FIRSTUP_PARENT`).
    pub via_parent: bool,
    /// `Content-Type` of the response; recorded only for the formats that log it
    /// ([`crate::AccessLog::records_content_type`]).
    pub content_type: Option<&'a str>,
}

/// Everything the access log records about one layer 4 session (a TCP connection or a UDP
/// session), written when it ends, in the manner of NGINX `stream` logs.
#[derive(Debug, Clone, Copy)]
pub struct StreamRecord<'a> {
    /// Address of the client (from the PROXY header, when a trusted peer sent one).
    pub client_addr: SocketAddr,
    /// When the session started.
    pub time: SystemTime,
    /// `TCP` or `UDP` (NGINX `$protocol`).
    pub protocol: &'a str,
    /// The listener that accepted it.
    pub listener: &'a str,
    /// NGINX `$status`: 200 carried, 400 bad client input (a malformed PROXY header or hello),
    /// 403 refused by rule, 502 no endpoint could be connected, 503 no healthy endpoint.
    pub status: u16,
    /// Bytes sent to the client.
    pub bytes_sent: u64,
    /// Bytes received from the client.
    pub bytes_received: u64,
    /// How long the session lasted.
    pub session_time: Duration,
    /// Cluster the session went to.
    pub cluster: Option<&'a str>,
    /// Endpoint it was connected to.
    pub upstream_addr: Option<SocketAddr>,
    /// Time to connect to that endpoint (all attempts).
    pub connect_time: Option<Duration>,
    /// TLS server name read from the ClientHello (passthrough listeners).
    pub server_name: Option<&'a str>,
    /// Reason code when the session did not end normally.
    pub reason: Option<&'a str>,
}
