//! Strait's configuration: YAML with positions → typed model → validated [`Config`].
#![forbid(unsafe_code)]

pub mod model;
pub mod units;

pub use model::*;
