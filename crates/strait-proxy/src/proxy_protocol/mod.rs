//! The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): a header a load
//! balancer puts in front of a connection's bytes to name the client it came from.
//!
//! `parse` reads headers strictly from bytes, `encode` writes them for upstreams (clusters'
//! `proxy_protocol`, HAProxy `send-proxy`), and `accept` takes them from trusted peers on HTTP
//! and TCP listeners before the connection is served, consuming exactly the header's bytes.

mod accept;
mod encode;
mod parse;

use std::net::SocketAddr;

pub(crate) use accept::{accept, http_client, wait_for_more, AcceptPlan};
pub(crate) use encode::send;

/// The 12 bytes every version 2 header starts with.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// What every version 1 header starts with.
const V1_SIGNATURE: &[u8] = b"PROXY ";
/// Longest version 1 header, CRLF included.
const V1_MAX_LEN: usize = 107;
/// Fixed part of a version 2 header: signature, version and command, family, length.
const V2_FIXED_LEN: usize = 16;

/// The connection's endpoints a header names: who connected (`source`) to where
/// (`destination`), as the load balancer saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoints {
    /// The client.
    pub source: SocketAddr,
    /// The address the client connected to.
    pub destination: SocketAddr,
}
