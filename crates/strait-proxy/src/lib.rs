//! Strait's data path: listeners, the HTTP/1.1 codec, routing, forwarding, actions.
//!
//! The request path, in module order: [`runtime`] (workers, listeners, reload) →
//! `server::conn` (one client connection) → [`h1`] (heads and bodies on the wire) →
//! `server::exchange` (route lookup, [`filter`] phases, action) → `upstream` (pools,
//! forwarding, retries) or [`actions`] (redirect, static files, echo) → access log.
#![forbid(unsafe_code)]

pub mod actions;
pub mod date;
pub mod filter;
pub mod h1;
mod readiness;
pub mod reason;
pub mod runtime;
pub mod server;
pub mod snapshot;
mod upstream;

pub use reason::Reason;
pub use runtime::{Server, ServerError};
