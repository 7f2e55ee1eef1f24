//! UDP listeners (layer 4): datagrams forwarded to a cluster in sessions keyed by the client's
//! address (NGINX `stream` `listen ... udp`), replies sent back from the listener's address.
//!
//! Every worker has its own socket per listener (`SO_REUSEPORT`: the kernel keeps a client's
//! datagrams on one socket), so each worker's session table is its own and needs no lock.
//! `plan` is the compiled `udp` block, `socket` binds and connects the sockets and holds the
//! worker's datagram buffer, `listen` reads the listener's socket, `table` keeps the sessions
//! of one listener on one worker, and `session` relays one client's replies and ends it.

mod listen;
pub(crate) mod plan;
mod session;
pub(crate) mod socket;
mod table;

pub(crate) use listen::serve;
pub(crate) use plan::UdpPlan;
pub(crate) use table::{end_all, end_listener};
