//! The filter (plugin) interface: the phases a request goes through, and the filters that
//! ship with the core.
//!
//! A route carries an ordered list of filters. For every request:
//!
//! 1. [`HttpFilter::on_request`] runs in list order after the route is chosen and before the
//!    action (forward, redirect, static...). It may change the request head, or answer the
//!    request itself by returning [`Verdict::Respond`]; later filters and the action are then
//!    skipped, but response and log phases still run.
//! 2. [`HttpFilter::on_response`] runs in reverse list order on the response head just before
//!    it is sent to the client: on upstream responses and on Strait's own answers alike.
//! 3. [`HttpFilter::on_log`] runs in list order after the exchange ended (even when it failed),
//!    with the final [`RequestCtx`]: for metrics, tracing and audit.
//!
//! Filters are built once per configuration snapshot and shared by every worker thread, so
//! they hold configuration and shared state (rate-limit counters, caches) behind `Arc`s.
//! Authentication, rate limiting, transforms, caching and compression plug in here.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::h1::RequestHead;
use crate::reason::Reason;

/// What a request phase decided.
pub enum Verdict {
    /// Go on with the next filter, then the route's action.
    Continue,
    /// Answer the request with this response now.
    Respond(LocalResponse),
}

/// A response Strait generates itself.
#[derive(Debug, Clone)]
pub struct LocalResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers (framing headers are added when sent).
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// Why Strait answered, when it is an error or refusal.
    pub reason: Option<Reason>,
}

impl LocalResponse {
    /// The standard answer for a reason: its status and a one-line text body.
    pub fn for_reason(reason: Reason) -> LocalResponse {
        let status = reason.status();
        let body = format!("{} {}: {}\n", status.as_str(), status.canonical_reason().unwrap_or(""), reason.code());
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        LocalResponse { status, headers, body: Bytes::from(body), reason: Some(reason) }
    }
}

/// Everything known about one request as it moves through the phases.
#[derive(Debug)]
pub struct RequestCtx {
    /// When the request head was complete.
    pub start: Instant,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client address (from `X-Forwarded-For` when the peer is a trusted proxy).
    pub client_ip: IpAddr,
    /// Listener name.
    pub listener: std::sync::Arc<str>,
    /// Chosen route's name.
    pub route: Option<std::sync::Arc<str>>,
    /// Chosen cluster.
    pub cluster: Option<std::sync::Arc<strait_cluster::ClusterState>>,
    /// Upstream endpoint of the last attempt.
    pub upstream_addr: Option<SocketAddr>,
    /// Time from sending the request upstream to its response head.
    pub upstream_time: Option<Duration>,
    /// Status sent to the client.
    pub status: StatusCode,
    /// Response body bytes sent to the client.
    pub bytes_sent: u64,
    /// Why Strait answered itself, if it did.
    pub reason: Option<Reason>,
    /// Request id (received or generated).
    pub request_id: Option<HeaderValue>,
    /// Upstream attempts made.
    pub attempts: u32,
}

/// One filter: override the phases it takes part in.
pub trait HttpFilter: Send + Sync + fmt::Debug {
    /// Name used in logs and `explain`.
    fn name(&self) -> &'static str;

    /// Request phase; may change the head or answer. The default continues.
    fn on_request(&self, _ctx: &mut RequestCtx, _head: &mut RequestHead) -> Verdict {
        Verdict::Continue
    }

    /// Response phase; may change status-dependent headers. The default does nothing.
    fn on_response(&self, _ctx: &RequestCtx, _status: StatusCode, _headers: &mut HeaderMap) {}

    /// Log phase, after the exchange. The default does nothing.
    fn on_log(&self, _ctx: &RequestCtx) {}
}

// === impl HeaderEdits ===

/// Compiled header edits: set (replace), add (append), remove.
#[derive(Debug, Default, Clone)]
pub struct HeaderEdits {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl HeaderEdits {
    /// Compiles configured edits; names and values were validated with the config.
    pub fn compile(config: &strait_config::HeaderEdits) -> Result<HeaderEdits, String> {
        let pair = |(k, v): (&String, &String)| -> Result<(HeaderName, HeaderValue), String> {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("invalid header name `{k}`"))?;
            let value = HeaderValue::from_str(v).map_err(|_| format!("invalid value for header `{k}`"))?;
            Ok((name, value))
        };
        Ok(HeaderEdits {
            set: config.set.iter().map(pair).collect::<Result<_, _>>()?,
            add: config.add.iter().map(pair).collect::<Result<_, _>>()?,
            remove: config
                .remove
                .iter()
                .map(|n| HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("invalid header name `{n}`")))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Applies the edits to a header map.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// Edits request headers before the action runs (`request_headers` of a route).
#[derive(Debug)]
pub struct RequestHeadersFilter(pub HeaderEdits);

impl HttpFilter for RequestHeadersFilter {
    fn name(&self) -> &'static str {
        "request_headers"
    }

    fn on_request(&self, _ctx: &mut RequestCtx, head: &mut RequestHead) -> Verdict {
        self.0.apply(&mut head.headers);
        Verdict::Continue
    }
}

/// Edits every response's headers (`response_headers` of a route; nginx `add_header ... always`).
#[derive(Debug)]
pub struct ResponseHeadersFilter(pub HeaderEdits);

impl HttpFilter for ResponseHeadersFilter {
    fn name(&self) -> &'static str {
        "response_headers"
    }

    fn on_response(&self, _ctx: &RequestCtx, _status: StatusCode, headers: &mut HeaderMap) {
        self.0.apply(headers);
    }
}
