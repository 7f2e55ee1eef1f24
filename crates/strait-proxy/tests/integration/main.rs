//! End-to-end tests of strait-proxy, one test binary: each module is one area of behaviour.

mod support;

mod actions;
mod balancing;
mod bodies;
mod connection_limits;
mod deadlines;
mod gateway_jwt;
mod hardening;
mod headers;
mod health;
mod http2;
mod hygiene;
mod interop;
mod plugins;
mod retries;
mod routing;
mod smoke;
mod static_files;
mod timeouts;
mod tls;
mod upstream_protocols;
mod websocket_h2;
