//! Route actions that Strait answers itself: redirects, the echo demo upstream, static files,
//! aggregations of several upstreams' answers, REST to gRPC transcoding, and the forward proxy.
//! They build answers and never write to a connection; the exchange sends what they return.
//! (Forwarding lives in [`crate::upstream`]; fixed responses need no code of their own.)

pub mod aggregate;
pub mod echo;
pub mod forward_proxy;
pub mod grpc_transcode;
pub mod redirect;
pub mod static_files;
