//! Strait's clusters: resolved endpoints, load balancers, and active and passive health.
#![forbid(unsafe_code)]

mod balancer;
mod cluster;
mod dns;
mod endpoint;
mod health;
mod registry;
pub mod ssrf;

pub use balancer::PickContext;
pub use cluster::ClusterState;
pub use endpoint::{EndpointState, InFlight};
pub use registry::ClusterRegistry;
