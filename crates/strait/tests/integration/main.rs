//! End-to-end tests of strait, one test binary: each module is one area of behaviour.

mod support;

mod access_log;
mod cli;
mod dns_udp_example;
mod lifecycle;
mod quickstart;
mod reload;
mod reload_under_load;
mod squid_example;
mod tls_passthrough_example;
