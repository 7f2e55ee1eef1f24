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
    if parts.method == Method::CONNECT {
        return tunnel::open(plan, snapshot, parts, sink, ctx, chain).await;
    }
    let inspected = ctx.conn.tls.as_ref().and_then(|tls| tls.inspected.clone());
    let scheme = match (&inspected, parts.uri.scheme_str()) {
        // A request inside an inspected tunnel goes to the tunnel's origin, over TLS.
        (Some(_), None) => Some("https-inspected"),
        (_, scheme) => scheme,
    };
    let answer = match scheme {
        Some("https-inspected") => {
            let tunnel = inspected.expect("matched above");
            match origin::forward_inspected(plan, &tunnel, parts, body, ctx).await {
                Ok(response) => return respond::send(sink, chain, ctx, response).await,
                Err(reason) => LocalResponse::for_reason(reason),
            }
        }
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

/// The plans of every `forward_proxy` route, by listener and route index; a problem is
/// reported at its field (files are read relative to the configuration's directory).
pub(crate) fn load_all(
    config: &strait_config::Config,
) -> Result<std::collections::HashMap<(usize, usize), ForwardPlan>, Vec<strait_config::ConfigError>> {
    let base_dir = match std::path::Path::new(config.source.file()).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut plans = std::collections::HashMap::new();
    let mut errors = Vec::new();
    for (l, listener) in config.listeners.iter().enumerate() {
        for (r, route) in listener.routes.iter().enumerate() {
            let Some(spec) = &route.forward_proxy else { continue };
            match plan::compile(spec, &base_dir) {
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
