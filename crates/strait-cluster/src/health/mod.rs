//! Health of endpoints: active probes on a timer and passive accounting of real traffic.

pub(crate) mod active;
pub(crate) mod passive;
