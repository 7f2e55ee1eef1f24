//! Layer 4: TCP connections forwarded to a cluster as byte streams (HAProxy `mode tcp`, NGINX
//! `stream`), chosen by TLS server name for passthrough, with the clusters, balancers and
//! health of the HTTP side.
//!
//! `plan` is the compiled form of a listener's `tcp` block, `accepted` takes a new connection
//! (its PROXY header first), `tcp` serves one connection,
//! `passthrough` chooses its cluster by the server name `hello` reads from the ClientHello,
//! `connect` opens the upstream connection (balancing, retries, passive health), `relay` moves
//! the bytes, `drain` ends the connections of a removed listener, and `log` writes the stream
//! log line. `udp` forwards the datagrams of UDP listeners in sessions keyed by client address.

pub(crate) mod accepted;
mod connect;
pub(crate) mod drain;
mod hello;
mod log;
mod passthrough;
pub(crate) mod plan;
mod relay;
pub(crate) mod sni;
pub(crate) mod tcp;
pub(crate) mod udp;

pub(crate) use plan::TcpPlan;
pub(crate) use udp::UdpPlan;
