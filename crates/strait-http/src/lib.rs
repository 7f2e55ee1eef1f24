//! Protocol-neutral HTTP vocabulary of Strait's request path, shared by the proxy and its plugins.
//!
//! Nothing here knows about HTTP/1 framing or HTTP/2 frames: a request is `http::request::Parts`
//! plus a body, an answer Strait makes itself is a [`LocalResponse`], and every self-made answer
//! carries a [`Reason`]. The [`filter`] module is the plugin interface; [`registry`] builds
//! plugins by name from configuration.
#![forbid(unsafe_code)]

pub mod consumer;
pub mod context;
pub mod fields;
pub mod filter;
pub mod local;
pub mod reason;
pub mod registry;
pub mod subrequest;

pub use consumer::Consumer;
pub use context::RequestCtx;
pub use fields::AddedFields;
pub use filter::{BodyFilter, BodyStep, Filter, FilterFactory, Flow, Phase, Phases, UpstreamTarget};
pub use local::LocalResponse;
pub use reason::Reason;
pub use registry::{Plugin, PluginError, PluginWarning, Registry};
pub use subrequest::Subrequests;
