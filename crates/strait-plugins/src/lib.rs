//! Strait's built-in filters (plugins). Each plugin is one module with its own typed config
//! and tests; [`builtin`] registers them all, one line each.
#![forbid(unsafe_code)]

pub mod acl;
pub mod auth_request;
pub mod basic_auth;
pub mod compression;
mod consumer_auth;
pub mod headers;
pub mod ip_restriction;
pub mod key_auth;

use strait_http::Registry;

/// A registry with every built-in plugin.
pub fn builtin() -> Registry {
    let mut registry = Registry::new();
    registry.register(acl::acl_plugin());
    registry.register(auth_request::auth_request_plugin());
    registry.register(basic_auth::basic_auth_plugin());
    registry.register(compression::compression_plugin());
    registry.register(headers::request_headers_plugin());
    registry.register(headers::response_headers_plugin());
    registry.register(ip_restriction::ip_restriction_plugin());
    registry.register(key_auth::key_auth_plugin());
    registry
}
