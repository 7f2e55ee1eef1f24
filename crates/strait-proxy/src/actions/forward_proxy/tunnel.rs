//! CONNECT: a TCP connection to the destination (directly, or through the parent's own
//! CONNECT), a `200` to the client, then bytes relayed both ways until both sides closed or
//! the tunnel idled out.

use bytes::BytesMut;
use http::{request, Response, StatusCode};
use strait_http::context::{InspectedTunnel, ViaParentProxy};
use strait_http::{LocalResponse, Reason, RequestCtx};
use tokio::net::TcpStream;

use super::destination;
use super::inspection::Bump;
use super::parent;
use super::plan::{ForwardPlan, Guard};
use crate::body::Full;
use crate::chain::Chain;
use crate::exchange::respond;
use crate::exchange::ResponseSink;
use crate::snapshot::Snapshot;
use crate::upstream::Upgraded;

/// Marks the `200` that opens a CONNECT tunnel, in the response head's extensions: the sink
/// writes it without framing fields (RFC 9110 §9.3.6) and relays the connection after it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TunnelOpen;

/// Opens the tunnel the CONNECT request asks for and answers `200`, or refuses it.
pub(super) async fn open<S: ResponseSink>(
    plan: &ForwardPlan,
    snapshot: &Snapshot,
    parts: &request::Parts,
    sink: &mut S,
    ctx: &mut RequestCtx,
    chain: &mut Chain,
) -> bool {
    // Inspection takes the TCP connection back from the listener: plain listeners only (on a
    // TLS listener the tunnel stays opaque).
    if let Some(inspection) = plan.inspection.as_ref().filter(|_| ctx.conn.tls.is_none()) {
        if let Some(bump) = inspect(plan, inspection, parts, ctx).await {
            let answer = match bump {
                Ok(bump) => bump,
                Err(reason) => {
                    return respond::send_local(sink, chain, ctx, snapshot, LocalResponse::for_reason(reason)).await
                }
            };
            return respond::send(sink, chain, ctx, established()).await && sink.bump(answer);
        }
    }
    let (stream, early) = match connect(plan, parts, ctx).await {
        Ok(connected) => connected,
        Err(reason) => {
            return respond::send_local(sink, chain, ctx, snapshot, LocalResponse::for_reason(reason)).await;
        }
    };
    if !respond::send(sink, chain, ctx, established()).await {
        return false;
    }
    let pace = plan.bandwidth.clone().map(|limit| super::Pace { limit, client: ctx.client_ip });
    let upgraded =
        Upgraded { stream: crate::upstream::UpstreamStream::Tcp(stream), buf: early, idle: plan.tunnel_idle, pace };
    sink.upgrade(upgraded)
}

/// The `200` that opens a tunnel.
fn established() -> Response<Full> {
    let mut response = Response::new(Full::default());
    *response.status_mut() = StatusCode::OK;
    response.extensions_mut().insert(TunnelOpen);
    response
}

/// The connection the tunnel runs over, and any bytes that came after the parent's answer.
async fn connect(
    plan: &ForwardPlan,
    parts: &request::Parts,
    ctx: &mut RequestCtx,
) -> Result<(TcpStream, BytesMut), Reason> {
    let (host, port) = destination::of_request(parts, 443)?;
    if let Some(parent) = &plan.parent {
        destination::check_address_for_parent(&host, port, &plan.guard, plan.dns_timeout).await?;
        ctx.extensions.insert(ViaParentProxy);
        let addrs = destination::resolve(&parent.host, parent.port, &Guard::off(), plan.dns_timeout).await?;
        let stream = dial(&addrs, plan, ctx).await?;
        return parent::connect_through(stream, &host, port, parent, &plan.options).await;
    }
    let addrs = destination::resolve(&host, port, &plan.guard, plan.dns_timeout).await?;
    Ok((dial(&addrs, plan, ctx).await?, BytesMut::new()))
}

/// Connects to the first of `addrs` that answers within the connect timeout.
async fn dial(addrs: &[std::net::SocketAddr], plan: &ForwardPlan, ctx: &mut RequestCtx) -> Result<TcpStream, Reason> {
    let mut failure = Reason::UpstreamConnectFailed;
    for addr in addrs {
        ctx.attempts += 1;
        ctx.upstream_addr = Some(*addr);
        match tokio::time::timeout(plan.options.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(_)) => failure = Reason::UpstreamConnectFailed,
            Err(_) => failure = Reason::UpstreamConnectTimeout,
        }
    }
    Err(failure)
}

/// For a tunnel to an inspected domain: checks that its destination may be reached and makes
/// the acceptor for its TLS; `None` for a domain that is not inspected.
async fn inspect(
    plan: &ForwardPlan,
    inspection: &super::inspection::InspectionPlan,
    parts: &request::Parts,
    ctx: &RequestCtx,
) -> Option<Result<Bump, Reason>> {
    let (host, port) = match destination::of_request(parts, 443) {
        Ok(target) => target,
        Err(reason) => return Some(Err(reason)),
    };
    if !inspection.covers(&host) {
        return None;
    }
    if let Err(reason) = destination::resolve(&host, port, &plan.guard, plan.dns_timeout).await {
        return Some(Err(reason));
    }
    let Some(acceptor) = inspection.acceptor(&host) else { return Some(Err(Reason::UpstreamTlsFailed)) };
    let authority = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let tunnel = InspectedTunnel { authority: authority.to_string(), consumer: ctx.consumer.clone() };
    Some(Ok(Bump { acceptor, tunnel: std::sync::Arc::new(tunnel) }))
}
