//! Strait's built-in filters (plugins). Each plugin is one module with its own typed config
//! and tests; [`builtin`] registers them all, one line each.
#![forbid(unsafe_code)]

pub mod auth_request;
pub mod compression;
pub mod headers;
pub mod jwt;

use strait_http::Registry;

/// A registry with every built-in plugin.
pub fn builtin() -> Registry {
    let mut registry = Registry::new();
    registry.register(auth_request::auth_request_plugin());
    registry.register(compression::compression_plugin());
    registry.register(headers::request_headers_plugin());
    registry.register(headers::response_headers_plugin());
    registry.register(jwt::jwt_plugin());
    registry
}
