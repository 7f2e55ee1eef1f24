//! End-to-end tests of strait-tls, one test binary: each module is one area of behaviour.

mod common;

mod certificates;
mod client_auth;
mod protocol;
mod sni;
mod upstream;
