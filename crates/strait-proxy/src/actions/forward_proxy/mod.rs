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
mod inspection;
mod origin;
mod pac;
mod parent;
mod plan;
mod tunnel;

use bytes::Bytes;
use http::{request, Method};
use http_body::Body;
use strait_http::context::InspectedTunnel;
use strait_http::{LocalResponse, Reason, RequestCtx};

use crate::body::BodyError;
use crate::chain::Chain;
use crate::exchange::respond;
use crate::exchange::ResponseSink;
use crate::snapshot::Snapshot;
pub(crate) use bandwidth::Pace;
pub(crate) use inspection::Bump;
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
    let inspected = ctx.conn.tls.as_ref().and_then(|tls| tls.inspected.clone());
    if let Some(refusal) = refusal(plan, parts, ctx, inspected.as_deref()) {
        return respond::send_local(sink, chain, ctx, snapshot, LocalResponse::for_reason(refusal)).await;
    }
    if !snapshot.server.trust_request_id {
        // The id is Strait's own, for its log: origins are not told a proxy was there.
        parts.headers.remove(X_REQUEST_ID);
    }
    if parts.method == Method::CONNECT {
        return tunnel::open(plan, snapshot, parts, sink, ctx, chain).await;
    }
    let sent = match (&inspected, parts.uri.scheme_str()) {
        // Inside an inspected tunnel: to the tunnel's origin, over TLS.
        (Some(tunnel), _) => origin::forward_inspected(plan, tunnel, parts, body, ctx).await,
        (None, Some("http")) => origin::forward(plan, parts, body, ctx).await,
        // Origins over TLS are reached through CONNECT; an absolute `https` target asks the
        // proxy to make the TLS connection itself, which it does not do.
        (None, Some(_)) => Err(Reason::UnsupportedProtocol),
        // Origin-form: the request is for the proxy itself.
        (None, None) => {
            let answer = match &plan.pac {
                Some(pac) if parts.uri.path() == pac.path => pac.answer(parts),
                _ => LocalResponse::for_reason(Reason::BadRequest),
            };
            return respond::send_local(sink, chain, ctx, snapshot, answer).await;
        }
    };
    match (sent, &plan.bandwidth) {
        (Ok(response), Some(limit)) => {
            let client = ctx.client_ip;
            let paced = response.map(|body| bandwidth::Throttled::new(body, limit, client));
            respond::send(sink, chain, ctx, paced).await
        }
        (Ok(response), None) => respond::send(sink, chain, ctx, response).await,
        (Err(reason), _) => respond::send_local(sink, chain, ctx, snapshot, LocalResponse::for_reason(reason)).await,
    }
}

/// `X-Request-Id`.
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Why a request is refused before anything is contacted:
/// - inside an inspected tunnel, anything but a request for the tunnel's own origin (the
///   access rules judged the tunnel's target: a CONNECT or another authority inside it would
///   go where no rule looked);
/// - on a listener without `http_access`, Squid's safe default: only clients on this host,
///   and tunnels only to port 443.
fn refusal(
    plan: &ForwardPlan,
    parts: &request::Parts,
    ctx: &RequestCtx,
    inspected: Option<&InspectedTunnel>,
) -> Option<Reason> {
    if let Some(tunnel) = inspected {
        if parts.method == Method::CONNECT {
            return Some(Reason::MethodNotAllowed);
        }
        let asked = parts
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()));
        let same = asked.is_some_and(|asked| same_authority(asked, &tunnel.authority));
        if !same || parts.uri.scheme_str().is_some_and(|s| s != "https") {
            return Some(Reason::BadRequest);
        }
    }
    if plan.default_access {
        if !ctx.client_ip.to_canonical().is_loopback() {
            return Some(Reason::ProxyAccessDenied);
        }
        if parts.method == Method::CONNECT && destination::of_request(parts, 443).is_ok_and(|(_, port)| port != 443) {
            return Some(Reason::ProxyAccessDenied);
        }
    }
    None
}

/// Whether `asked` (`host[:port]`) names the tunnel's `host:port` (443 when no port is given).
fn same_authority(asked: &str, tunnel: &str) -> bool {
    match (destination::split_authority(asked), destination::split_authority(tunnel)) {
        (Some((h1, p1)), Some((h2, p2))) => h1.eq_ignore_ascii_case(h2) && p1.unwrap_or(443) == p2.unwrap_or(443),
        _ => false,
    }
}

/// The plans of every `forward_proxy` route, by listener and route index; a problem is
/// reported at its field (files are read relative to the configuration's directory).
pub(crate) fn load_all(
    config: &strait_config::Config,
) -> Result<std::collections::HashMap<(usize, usize), ForwardPlan>, Vec<strait_config::ConfigError>> {
    let base_dir = config.source.dir();
    let mut plans = std::collections::HashMap::new();
    let mut errors = Vec::new();
    for (l, listener) in config.listeners.iter().enumerate() {
        for (r, route) in listener.routes.iter().enumerate() {
            let Some(spec) = &route.forward_proxy else { continue };
            let guarded = listener.filters.iter().any(|f| f.name == "http_access");
            match plan::compile(spec, &base_dir).map(|mut plan| {
                plan.default_access = !guarded;
                plan
            }) {
                Ok(plan) => {
                    plans.insert((l, r), plan);
                }
                Err((field, message)) => {
                    let path = format!("listeners[{l}].routes[{r}].forward_proxy.{field}");
                    errors.push(config.source.error(&path, message));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors)
    }
}
