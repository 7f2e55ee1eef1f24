//! Absolute-form `http://` requests sent to their origin (or to the parent proxy), over the
//! worker's pooled connections.

use bytes::Bytes;
use http::{request, Response};
use http_body::Body;
use strait_http::context::{InspectedTunnel, ViaParentProxy};
use strait_http::{Reason, RequestCtx};
use tokio::time::Instant;

use super::destination;
use super::plan::ForwardPlan;
use crate::body::BodyError;
use crate::upstream::client::{self, is_idempotent};
use crate::upstream::{Connector, ParentHop, UpstreamBody};

/// Sends the request to its origin, trying the next permitted address when a connection
/// cannot be made; returns the response with its body streaming.
pub(super) async fn forward<B>(
    plan: &ForwardPlan,
    parts: &mut request::Parts,
    body: B,
    ctx: &mut RequestCtx,
) -> Result<Response<UpstreamBody<ProxiedBody<B>>>, Reason>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let addrs = match &plan.parent {
        Some(parent) => {
            let (host, port) = destination::of_request(parts, 80)?;
            destination::check_address_for_parent(&host, port, &plan.guard, plan.dns_timeout).await?;
            parts.extensions.insert(ParentHop { authorization: parent.authorization.clone() });
            ctx.extensions.insert(ViaParentProxy);
            // The parent is configured, not asked for: the guard does not apply to it.
            let unguarded = super::plan::Guard::off();
            destination::resolve(&parent.host, parent.port, &unguarded, plan.dns_timeout).await?
        }
        None => {
            let (host, port) = destination::of_request(parts, 80)?;
            destination::resolve(&host, port, &plan.guard, plan.dns_timeout).await?
        }
    };
    send_to(&plan.connector, plan, &addrs, parts, body, ctx).await
}

/// Sends a request from inside an inspected tunnel to the tunnel's origin, over TLS that
/// verifies the origin's name against the inspection's trust.
pub(super) async fn forward_inspected<B>(
    plan: &ForwardPlan,
    tunnel: &InspectedTunnel,
    parts: &mut request::Parts,
    body: B,
    ctx: &mut RequestCtx,
) -> Result<Response<UpstreamBody<ProxiedBody<B>>>, Reason>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let inspection = plan.inspection.as_ref().ok_or(Reason::BadRequest)?;
    let (host, port) = destination::split_authority(&tunnel.authority).ok_or(Reason::BadRequest)?;
    let connector = inspection.connector(host).ok_or(Reason::UpstreamTlsFailed)?;
    let addrs = destination::resolve(host, port.unwrap_or(443), &plan.guard, plan.dns_timeout).await?;
    send_to(&connector, plan, &addrs, parts, body, ctx).await
}

/// Sends the request to the first of `addrs` that takes it.
async fn send_to<B>(
    connector: &Connector,
    plan: &ForwardPlan,
    addrs: &[std::net::SocketAddr],
    parts: &mut request::Parts,
    body: B,
    ctx: &mut RequestCtx,
) -> Result<Response<UpstreamBody<ProxiedBody<B>>>, Reason>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let replayable = body.is_end_stream() && is_idempotent(&parts.method);
    let mut body = Some(body);
    let mut failure = Reason::UpstreamConnectFailed;
    for &addr in addrs {
        let Some(request_body) = body.take() else { break };
        ctx.attempts += 1;
        ctx.upstream_addr = Some(addr);
        let sent_at = Instant::now();
        match client::send(connector, addr, parts, ProxiedBody(request_body), &plan.options, sent_at).await {
            Ok(response) => {
                ctx.upstream_time = Some(sent_at.elapsed());
                return Ok(response);
            }
            Err(error) => {
                failure = error.reason;
                // Another address gets the request only if nothing of it could have been
                // acted on twice.
                if !error.endpoint_fault || (error.sent && !replayable) {
                    break;
                }
                body = error.body.map(|b| b.0);
            }
        }
    }
    Err(failure)
}

/// The request body of a proxied request, as it is: a type of its own, so that the client's
/// code for the reverse proxy's bodies keeps one caller and the compiler keeps it inline
/// there (sharing it cost the plain path a copy of its future per request).
pub(super) struct ProxiedBody<B>(B);

impl<B: Body<Data = Bytes, Error = BodyError> + Unpin> Body for ProxiedBody<B> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BodyError>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}
