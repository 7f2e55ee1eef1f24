//! End-to-end tests of strait-cluster, one test binary: each module is one area of behaviour.

mod common;

mod balancers;
mod health;
mod registry;
