//! Strait's built-in filters (plugins). Each plugin is one module with its own typed config
//! and tests; [`builtin`] registers them all, one line each.
#![forbid(unsafe_code)]

pub mod acl;
pub mod auth_request;
pub mod basic_auth;
pub mod circuit_breaker;
pub mod compression;
mod consumer_auth;
pub mod cors;
pub mod headers;
pub mod http_access;
pub mod ip_restriction;
pub mod jwt;
pub mod key_auth;
mod passwords;
pub mod privacy;
pub mod proxy_auth;
pub mod proxy_cache;
pub mod rate_limiting;
pub mod request_size_limiting;
pub mod transform;

use strait_http::registry::prioritized;
use strait_http::Registry;

/// A registry with every built-in plugin.
pub fn builtin() -> Registry {
    let mut registry = Registry::new();
    registry.register(acl::acl_plugin());
    registry.register(auth_request::auth_request_plugin());
    registry.register(circuit_breaker::circuit_breaker_plugin());
    registry.register(basic_auth::basic_auth_plugin());
    // Outermost: the response it compresses is what every other filter made of it.
    registry.register(prioritized(compression::compression_plugin(), 3000));
    registry.register(rate_limiting::concurrency_limit_plugin());
    registry.register(prioritized(cors::cors_plugin(), cors::PRIORITY));
    registry.register(headers::request_headers_plugin());
    registry.register(headers::response_headers_plugin());
    registry.register(rate_limiting::limit_req_plugin());
    registry.register(rate_limiting::rate_limiting_plugin());
    registry
        .register(prioritized(request_size_limiting::request_size_limiting_plugin(), request_size_limiting::PRIORITY));
    registry.register(ip_restriction::ip_restriction_plugin());
    registry.register(jwt::jwt_plugin());
    registry.register(key_auth::key_auth_plugin());
    registry.register(transform::request_transformer_plugin());
    registry.register(transform::response_transformer_plugin());
    registry.register(proxy_cache::proxy_cache_plugin());
    registry.register(proxy_auth::proxy_auth_plugin());
    registry.register(http_access::http_access_plugin());
    registry.register(privacy::privacy_plugin());
    registry
}
