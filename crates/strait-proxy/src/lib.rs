//! Strait's data path: listeners, connection drivers, the protocol-neutral exchange, routing,
//! forwarding, actions.
//!
//! The request path, in module order: [`runtime`] (workers, listeners, reload) → `driver`
//! (one client connection in one protocol over one [`transport`]) → `exchange` (filters
//! ([`chain`]), route, action, answer through the driver's response sink, log) → `upstream`
//! (client, pools, forwarding, retries) or [`actions`] (redirect, static files, echo).
#![forbid(unsafe_code)]

mod actions;
mod body;
mod buffers;
pub mod chain;
pub mod date;
mod deadline;
mod driver;
mod exchange;
mod grpc;
pub mod h1;
pub mod listener_tls;
mod readiness;
pub mod runtime;
pub mod scopes;
mod shared;
pub mod snapshot;
mod transport;
mod upstream;
mod websocket;

pub use runtime::{Server, ServerError};
pub use strait_http::Reason;

/// Checks what only the data path can check in a configuration that loaded: every filter's
/// own settings, the TLS files (certificates that parse, keys that match, dates that hold) and
/// the descriptor sets of `grpc_transcode` routes,
/// with the built-in plugins. Errors carry file, line and field like the loader's.
pub fn check(config: &strait_config::Config) -> Result<(), strait_config::ConfigErrors> {
    check_with(config, &strait_plugins::builtin())
}

/// [`check`] with the plugins of `registry`.
pub fn check_with(
    config: &strait_config::Config,
    registry: &strait_http::Registry,
) -> Result<(), strait_config::ConfigErrors> {
    let filters = scopes::compile_filters(config, registry);
    let tls = listener_tls::TlsCache::default().plans(config);
    let transcoders = actions::grpc_transcode::load_all(config);
    let forward_proxies = actions::forward_proxy::load_all(config).err().unwrap_or_default();
    match (filters, tls, transcoders) {
        (Ok(_), Ok(_), Ok(_)) if forward_proxies.is_empty() => Ok(()),
        (filters, tls, transcoders) => {
            let mut errors = filters.err().map(|e| e.0).unwrap_or_default();
            errors.extend(tls.err().unwrap_or_default());
            errors.extend(transcoders.err().unwrap_or_default());
            errors.extend(forward_proxies);
            Err(strait_config::ConfigErrors(errors).sorted())
        }
    }
}
