//! End-to-end tests of strait-proxy, one test binary: each module is one area of behaviour.

mod support;

mod actions;
mod aggregate;
mod balancing;
mod bodies;
mod cache;
mod circuit_breaker;
mod connection_limits;
mod deadlines;
mod forward_access;
mod forward_proxy;
mod gateway_auth;
mod gateway_cors_size;
mod gateway_jwt;
mod grpc_transcode;
mod hardening;
mod headers;
mod health;
mod http2;
mod hygiene;
mod interop;
mod l4_tcp;
mod plugins;
mod rate_limit_redis;
mod rate_limits;
mod retries;
mod routing;
mod scopes;
mod smoke;
mod static_files;
mod timeouts;
mod tls;
mod transforms;
mod upstream_protocols;
mod websocket_h2;
