//! The upstream side: the client (`send(request) -> response`) over per-worker connection
//! pools, forwarding with retries, and sub-requests for filters.
//!
//! Import order: `forward` and `subrequest` use `client`, which uses `connector` (how a
//! connection is made), `h1` and `h2` (one exchange on a connection or stream), `pool` and
//! `stream`.

pub(crate) mod client;
pub mod connector;
mod forward;
mod h1;
mod h2;
pub(crate) mod pool;
mod response;
mod stream;
mod subrequest;

pub use connector::Connector;
pub(crate) use forward::{forward, Refusal};
pub(crate) use response::UpstreamBody;
pub(crate) use stream::UpstreamStream;

/// An upstream connection that switched protocols (WebSocket): the connection, the bytes the
/// upstream sent after its `101`, and the longest silence allowed on the relay.
pub(crate) struct Upgraded {
    /// The connection.
    pub(crate) stream: stream::UpstreamStream,
    /// Bytes read past the `101` head.
    pub(crate) buf: bytes::BytesMut,
    /// The relay ends after this long without a byte either way (the cluster's `timeouts.body`).
    pub(crate) idle: std::time::Duration,
    /// The client's bandwidth limit, when the relay is paced (forward-proxy tunnels).
    pub(crate) pace: Option<crate::actions::forward_proxy::Pace>,
}

/// Marks a request sent to a parent proxy: its target is written in absolute-form, with the
/// parent's own credentials (`Proxy-Authorization` is otherwise never written).
#[derive(Debug, Clone)]
pub(crate) struct ParentHop {
    /// `Proxy-Authorization` for the parent.
    pub(crate) authorization: Option<http::HeaderValue>,
}

/// Closes idle pooled connections (HTTP/1.1 ones past their time or closed by the upstream,
/// HTTP/2 ones unused for a minute).
pub(crate) fn sweep_idle_connections() {
    pool::sweep();
    h2::sweep(std::time::Duration::from_secs(60));
}
pub(crate) use subrequest::WholeResponse;
