//! The forward proxy (`forward_proxy` route action): absolute-form requests go to the origin
//! they name, CONNECT opens a tunnel, and a request addressed to the proxy itself gets the
//! proxy auto-config file.
//!
//! Every destination is resolved once, checked by the SSRF guard, and connected to at the
//! address that was checked: no second lookup can point the connection elsewhere (DNS
//! rebinding). Nothing identifying the client is added on the way (no `X-Forwarded-For`, no
//! `Via`); the `privacy` filter decides what else the origin sees. Who may use the proxy is the
//! listener filters' business (`proxy_auth`, `http_access`), which run before routing.

mod bandwidth;
mod destination;
mod origin;
mod pac;
mod parent;
mod plan;
mod tunnel;

use bytes::Bytes;
use http::{request, Method};
use http_body::Body;
use strait_http::{LocalResponse, Reason, RequestCtx};

use crate::body::BodyError;
use crate::chain::Chain;
use crate::exchange::respond;
use crate::exchange::ResponseSink;
use crate::snapshot::Snapshot;
pub(crate) use bandwidth::Pace;
pub(crate) use plan::compile;
pub use plan::ForwardPlan;
pub(crate) use tunnel::TunnelOpen;

/// Serves one request of a forward-proxy route; returns whether the whole answer was sent.
pub(crate) async fn serve<B, S>(
    plan: &ForwardPlan,
    snapshot: &Snapshot,
    parts: &mut request::Parts,
    body: B,
    sink: &mut S,
    ctx: &mut RequestCtx,
    chain: &mut Chain,
) -> bool
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
    S: ResponseSink,
{
    if parts.method == Method::CONNECT {
        return tunnel::open(plan, snapshot, parts, sink, ctx, chain).await;
    }
    let answer = match parts.uri.scheme_str() {
        Some("http") => match origin::forward(plan, parts, body, ctx).await {
            Ok(response) => match &plan.bandwidth {
                Some(limit) => {
                    let client = ctx.client_ip;
                    let paced = response.map(|body| bandwidth::Throttled::new(body, limit, client));
                    return respond::send(sink, chain, ctx, paced).await;
                }
                None => return respond::send(sink, chain, ctx, response).await,
            },
            Err(reason) => LocalResponse::for_reason(reason),
        },
        // Origins over TLS are reached through CONNECT; an absolute `https` target asks the
        // proxy to make the TLS connection itself, which it does not do.
        Some(_) => LocalResponse::for_reason(Reason::UnsupportedProtocol),
        // Origin-form: the request is for the proxy itself.
        None => match &plan.pac {
            Some(pac) if parts.uri.path() == pac.path => pac.answer(parts),
            _ => LocalResponse::for_reason(Reason::BadRequest),
        },
    };
    respond::send_local(sink, chain, ctx, snapshot, answer).await
}
