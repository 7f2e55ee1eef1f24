//! End-to-end tests of strait-config, one test binary: each module is one area of behaviour.

mod deadlines;
mod durations;
mod examples;
mod l4;
mod load;
mod passthrough;
mod path_normalization;
mod proxy_protocol;
mod reference_doc;
mod secrets;
mod support;
mod tls;
