//! The filter (plugin) interface: one method per phase of a request, in the order they run.
//!
//! # Lifecycle
//!
//! A [`FilterFactory`] is built once per configuration snapshot from a `filters:` entry (see
//! [`crate::registry`]) and shared by every worker. For each request it creates one [`Filter`]
//! per chain it belongs to: the instance is the request's private state (a decoded token, a
//! compressor's encoder) and is dropped after the log phase.
//!
//! # Chains and order
//!
//! A request passes two chains:
//!
//! * the **listener chain** (`listeners[].filters`), created when the request head is read,
//!   before routing: it sees every request, also those answered 404 and those whose head was
//!   refused (for them only [`Filter::local_reply`] and [`Filter::log`] run);
//! * the **route chain** (`routes[].filters`, then the route's `request_headers` and
//!   `response_headers` shorthands), created once the route is chosen.
//!
//! Request-side phases run listener chain first, each chain in list order. Response-side
//! phases run in the opposite order (route chain last filter first, then the listener chain
//! last filter first), so the outermost filter sees the request first and the response last.
//! The log phase runs in request order.
//!
//! # What filters see
//!
//! Filters see protocol-neutral parts: method, URI, end-to-end headers, status. They never see
//! framing (`content-length`, `transfer-encoding`, `connection` and other hop-by-hop fields):
//! the connection writes framing from the body itself and removes any such field a filter
//! adds, so no filter can create a smuggling shape. A filter that changes body bytes drops the
//! length on its own side (the body is then streamed without a known length). What framing
//! says that filters need comes as typed extensions instead: a request body's declared length
//! ([`crate::context::RequestLength`]), a client waiting for `100 Continue`
//! ([`crate::context::ExpectContinue`]), a response body's length
//! ([`crate::context::ResponseLength`]); the lengths only to chains with a body filter on
//! that side.
//!
//! # Async work
//!
//! Every phase returns a [`Phase`]: [`Phase::Ready`] for work done on the spot (no allocation),
//! [`Phase::wait`] for a future (a Redis call, a JWKS fetch through
//! [`crate::RequestCtx::subrequests`]). Futures run on the worker's thread and need not be `Send`.
//!
//! # Bodies
//!
//! Body phases hand out a [`BodyFilter`], an object that owns its state and sees every chunk
//! (and the end) of one body. A filter keeps what it learned in the header phases in the body
//! filter it returns; the body then streams while the rest of the request goes on (an upstream
//! may answer before the upload ends).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::{request, response};

use crate::context::RequestCtx;
use crate::local::LocalResponse;
use crate::reason::Reason;

/// What a request-side phase decided.
#[derive(Debug)]
pub enum Flow {
    /// Go on with the next filter, then the route's action.
    Continue,
    /// Answer the request with this response now: later request-side phases and the action
    /// are skipped; the response goes through [`Filter::local_reply`] and the response phases.
    /// Boxed, so the common `Continue` is one word wherever phases pass it along.
    Respond(Box<LocalResponse>),
}

impl Flow {
    /// Answer with `response` ([`Flow::Respond`]).
    pub fn respond(response: LocalResponse) -> Flow {
        Flow::Respond(Box::new(response))
    }
}

/// The result of a phase: ready now, or a future to wait for.
pub enum Phase<'a, T> {
    /// Done, no waiting.
    Ready(T),
    /// Wait for this future (it runs on the worker thread).
    Wait(Pin<Box<dyn Future<Output = T> + 'a>>),
}

impl<'a, T> Phase<'a, T> {
    /// A phase that waits for `future`.
    pub fn wait(future: impl Future<Output = T> + 'a) -> Phase<'a, T> {
        Phase::Wait(Box::pin(future))
    }

    /// Waits for the phase's result.
    pub async fn resolve(self) -> T {
        match self {
            Phase::Ready(value) => value,
            Phase::Wait(future) => future.await,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Phase<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Ready(value) => f.debug_tuple("Ready").field(value).finish(),
            Phase::Wait(_) => f.write_str("Wait(..)"),
        }
    }
}

/// Where a request goes upstream, for [`Filter::upstream_request`].
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTarget<'a> {
    /// The cluster's name.
    pub cluster: &'a str,
    /// The endpoint chosen for this attempt.
    pub addr: std::net::SocketAddr,
    /// Attempt number, 1 for the first.
    pub attempt: u32,
}

/// One filter's state for one request. Override the phases it takes part in and declare them
/// in [`FilterFactory::phases`]; every default lets the request through unchanged.
pub trait Filter {
    /// **Request headers**, once per request, before the action (for the listener chain:
    /// before routing). May change method, URI and headers, store values in
    /// `ctx.extensions`, or answer with [`Flow::Respond`]. Default: continue.
    fn request_headers<'a>(
        &'a mut self,
        _request: &'a mut request::Parts,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, Flow> {
        Phase::Ready(Flow::Continue)
    }

    /// **Request body**, once, after the request-header phases of both chains: return a
    /// [`BodyFilter`] to see (and change) the body as it streams upstream. Only called when
    /// [`FilterFactory::phases`] has [`Phases::REQUEST_BODY`]. Default: none.
    fn request_body(&mut self, _ctx: &RequestCtx) -> Option<Box<dyn BodyFilter>> {
        None
    }

    /// **Upstream request**, for each attempt after the endpoint is chosen and the proxy
    /// headers are set: the last look at what the upstream receives (a signature, an auth
    /// token for this endpoint). [`Flow::Respond`] answers instead of sending. Default: send.
    fn upstream_request<'a>(
        &'a mut self,
        _request: &'a mut request::Parts,
        _target: UpstreamTarget<'a>,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, Flow> {
        Phase::Ready(Flow::Continue)
    }

    /// **Response headers**, once, on every response before it is sent: upstream responses
    /// and Strait's own answers alike. Status and headers may change; a filter that only adds
    /// fields sets them in `ctx.response_fields` (they replace the map's fields of the same
    /// names, and every later filter finds them in the map). Default: nothing.
    fn response_headers<'a>(
        &'a mut self,
        _response: &'a mut response::Parts,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, ()> {
        Phase::Ready(())
    }

    /// **Response body**, once, after the response-header phases: return a [`BodyFilter`] to
    /// see (and change) the body on its way to the client (a compressor returns its encoder
    /// when `response` is worth compressing). Only called when [`FilterFactory::phases`] has
    /// [`Phases::RESPONSE_BODY`]. Default: none.
    fn response_body(&mut self, _response: &response::Parts, _ctx: &RequestCtx) -> Option<Box<dyn BodyFilter>> {
        None
    }

    /// **Local reply**, when Strait answers itself (an error with a reason code, a redirect, a
    /// fixed response, a filter's [`Flow::Respond`]), before the response phases. May rewrite
    /// the answer (a JSON error page). Default: nothing.
    fn local_reply<'a>(&'a mut self, _reply: &'a mut LocalResponse, _ctx: &'a mut RequestCtx) -> Phase<'a, ()> {
        Phase::Ready(())
    }

    /// **Log**, once, after the exchange ended (even when it failed), with the reason it
    /// failed for, if any: metrics, audit, tracing. Default: nothing.
    fn log<'a>(&'a mut self, _ctx: &'a RequestCtx, _error: Option<Reason>) -> Phase<'a, ()> {
        Phase::Ready(())
    }
}

/// What a body filter passes on: itself (for the next chunk) and the bytes to send, or the
/// reason the body is refused.
pub type BodyStep = Phase<'static, (Box<dyn BodyFilter>, Result<Bytes, Reason>)>;

/// A transform of one body, chunk by chunk; it owns its state (an encoder, a running hash).
///
/// It takes itself by value and hands itself back with each result, so a chunk that needs
/// async work (a call per chunk) can move the state into its future instead of borrowing the
/// request. Trailers pass through unchanged.
pub trait BodyFilter {
    /// One chunk in, in order; `end` is true on the last call (then `chunk` may be empty).
    /// Returns the bytes to pass on (possibly empty, to hold data back until later). An error
    /// on a request body answers the request with that reason if no response was sent yet;
    /// on a response body it ends the response early.
    fn chunk(self: Box<Self>, chunk: Bytes, end: bool) -> BodyStep;
}

/// Which phases a filter takes part in; the chain skips the others (and a chain with no
/// body phase leaves bodies, and their lengths, untouched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Phases(u8);

impl Phases {
    /// [`Filter::request_headers`].
    pub const REQUEST_HEADERS: Phases = Phases(1);
    /// [`Filter::request_body`].
    pub const REQUEST_BODY: Phases = Phases(1 << 1);
    /// [`Filter::upstream_request`].
    pub const UPSTREAM_REQUEST: Phases = Phases(1 << 2);
    /// [`Filter::response_headers`].
    pub const RESPONSE_HEADERS: Phases = Phases(1 << 3);
    /// [`Filter::response_body`].
    pub const RESPONSE_BODY: Phases = Phases(1 << 4);
    /// [`Filter::local_reply`].
    pub const LOCAL_REPLY: Phases = Phases(1 << 5);
    /// [`Filter::log`].
    pub const LOG: Phases = Phases(1 << 6);
    /// No phase.
    pub const NONE: Phases = Phases(0);

    /// Whether every phase of `other` is in `self`.
    pub const fn contains(self, other: Phases) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
}

impl std::ops::BitOr for Phases {
    type Output = Phases;

    fn bitor(self, other: Phases) -> Phases {
        Phases(self.0 | other.0)
    }
}

impl std::ops::BitOrAssign for Phases {
    fn bitor_assign(&mut self, other: Phases) {
        self.0 |= other.0;
    }
}

/// Builds a filter's per-request instances; one per configured `filters:` entry and snapshot.
pub trait FilterFactory: Send + Sync + fmt::Debug {
    /// The plugin name, for logs and `explain`.
    fn name(&self) -> &'static str;

    /// The phases the filters take part in.
    fn phases(&self) -> Phases;

    /// A fresh instance for one request.
    fn create(&self) -> Box<dyn Filter>;
}
