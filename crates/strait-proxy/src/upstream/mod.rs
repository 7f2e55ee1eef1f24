//! The upstream side: per-worker connection pools and the forwarding exchange.

mod forward;
pub(crate) mod pool;

pub(crate) use forward::forward;
pub(crate) use pool::sweep as sweep_idle_connections;
