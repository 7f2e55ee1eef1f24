//! The upstream side: the client (`send(request) -> response`) over per-worker connection
//! pools, forwarding with retries, and sub-requests for filters.
//!
//! Import order: `forward` and `subrequest` use `client`, which uses `h1` (one exchange on one
//! connection), `pool` and `stream`.

mod client;
mod forward;
mod h1;
pub(crate) mod pool;
mod stream;
mod subrequest;

pub(crate) use forward::{forward, Refusal};
pub(crate) use pool::sweep as sweep_idle_connections;
pub(crate) use subrequest::SnapshotSubrequests;
