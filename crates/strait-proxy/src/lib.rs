//! Strait's data path: listeners, connection drivers, the protocol-neutral exchange, routing,
//! forwarding, actions.
//!
//! The request path, in module order: [`runtime`] (workers, listeners, reload) → `driver`
//! (one client connection in one protocol over one [`transport`]) → `exchange` (filters
//! ([`chain`]), route, action, answer through the driver's response sink, log) → `upstream`
//! (client, pools, forwarding, retries) or [`actions`] (redirect, static files, echo). Layer 4
//! listeners go from [`runtime`] to `l4` (TCP sessions relayed to a cluster); listeners that accept
//! the PROXY protocol read its header first (`proxy_protocol`).
// One measured exception, `h1::request::value_from_parser`, allows itself.
#![deny(unsafe_code)]

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
mod l4;
pub mod listener_tls;
mod proxy_protocol;
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
/// with the built-in plugins. Errors carry file, line and field like the loader's. A
/// configuration that passes may still have warnings (an access rule that can never take
/// effect), returned in file order, located the same way.
pub fn check(config: &strait_config::Config) -> Result<Vec<strait_config::ConfigError>, strait_config::ConfigErrors> {
    check_with(config, &strait_plugins::builtin())
}

/// [`check`] with the plugins of `registry`.
pub fn check_with(
    config: &strait_config::Config,
    registry: &strait_http::Registry,
) -> Result<Vec<strait_config::ConfigError>, strait_config::ConfigErrors> {
    let filters = scopes::compile_filters(config, registry);
    let tls = listener_tls::TlsCache::default().plans(config);
    let transcoders = actions::grpc_transcode::load_all(config);
    let forward_proxies = actions::forward_proxy::load_all(config).err().unwrap_or_default();
    match (filters, tls, transcoders) {
        (Ok(_), Ok(_), Ok(_)) if forward_proxies.is_empty() => Ok(filter_warnings(config, registry)),
        (filters, tls, transcoders) => {
            let mut errors = filters.err().map(|e| e.0).unwrap_or_default();
            errors.extend(tls.err().unwrap_or_default());
            errors.extend(transcoders.err().unwrap_or_default());
            errors.extend(forward_proxies);
            Err(strait_config::ConfigErrors(errors).sorted())
        }
    }
}

/// The plugins' warnings about every `filters:` entry of `config`, in file order.
fn filter_warnings(
    config: &strait_config::Config,
    registry: &strait_http::Registry,
) -> Vec<strait_config::ConfigError> {
    let env = strait_http::registry::BuildEnv { config };
    let mut lists: Vec<(String, &[strait_config::FilterSpec])> = vec![("filters".into(), &config.filters)];
    for (c, cluster) in config.clusters.iter().enumerate() {
        lists.push((format!("clusters[{c}].filters"), &cluster.filters));
    }
    for (u, consumer) in config.consumers.iter().enumerate() {
        lists.push((format!("consumers[{u}].filters"), &consumer.filters));
    }
    for (l, listener) in config.listeners.iter().enumerate() {
        lists.push((format!("listeners[{l}].filters"), &listener.filters));
        for (r, route) in listener.routes.iter().enumerate() {
            lists.push((format!("listeners[{l}].routes[{r}].filters"), &route.filters));
        }
    }
    let mut warnings: Vec<strait_config::ConfigError> = lists
        .iter()
        .flat_map(|(path, specs)| {
            specs.iter().enumerate().flat_map(move |(i, spec)| registry.warnings(spec, &format!("{path}[{i}]"), &env))
        })
        .collect();
    warnings.sort_by_key(strait_config::ConfigError::position);
    warnings
}
