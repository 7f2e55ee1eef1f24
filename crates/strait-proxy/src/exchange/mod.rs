//! One request/response exchange, the same for every protocol: filters, route, action, answer,
//! log. A connection driver hands in the request as `http::request::Parts` plus a body, and a
//! [`ResponseSink`] to answer through; nothing here knows how either travels on the wire.

mod log;
pub(crate) mod respond;
pub(crate) mod sink;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{request, HeaderMap, Uri};
use http_body::Body;
use strait_http::context::{ConnInfo, OriginalUri, RequestLength};
use strait_http::{LocalResponse, Phases, Reason, RequestCtx};
use strait_router::RequestView;
use tokio::time::Instant;

use crate::actions;
use crate::body::{BodyError, Either};
use crate::chain::{Chain, ConsumerLists, FilteredBody};
use crate::snapshot::{Action, ListenerPlan, RoutePlan, ServerPlan, Snapshot, Upstream};
use crate::upstream;
pub(crate) use sink::{BodySize, ResponseSink, SinkClosed};

/// `X-Request-Id` (a constant, so its name is not checked again per request).
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest request body the echo action reads.
const ECHO_BODY_MAX: u64 = 1 << 20;

/// What an exchange runs against: the snapshot it started with, its listener, its connection.
pub(crate) struct Inbound<'s> {
    /// The configuration snapshot, fixed for the whole exchange.
    pub snapshot: &'s Arc<Snapshot>,
    /// The listener the request came in on.
    pub listener: &'s ListenerPlan,
    /// The connection.
    pub conn: &'s Rc<ConnInfo>,
}

/// Handles one request; returns whether the whole response was sent (the connection driver
/// decides on keep-alive from that and from what it knows of the request body).
///
/// Forwarding, the path nearly every proxied request takes, runs inline; everything else
/// (local answers, static files, echo) runs in boxed futures of its own, so the state every
/// forwarded request carries (and moves between futures) stays small.
pub(crate) async fn handle<B, S>(inbound: &Inbound<'_>, mut parts: request::Parts, body: B, sink: &mut S) -> bool
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
    S: ResponseSink,
{
    let snapshot = inbound.snapshot;
    let mut ctx =
        RequestCtx::new(inbound.conn.clone(), client_ip(&parts.headers, &snapshot.server, inbound.conn.peer.ip()));
    if snapshot.server.request_id {
        if !snapshot.server.trust_request_id {
            parts.headers.remove("x-request-id");
        }
        ctx.request_id = Some(ensure_request_id(&mut parts.headers));
    }
    if let Some(tunnel) = inbound.conn.tls.as_ref().and_then(|tls| tls.inspected.as_ref()) {
        // Inside an inspected tunnel: the requests are the tunnel's user's.
        ctx.consumer = tunnel.consumer.clone();
    }
    if let Some(tls) = &inbound.listener.tls {
        if !tls.identity.is_empty() {
            let cert = inbound.conn.tls.as_ref().and_then(|t| t.client_cert.as_ref());
            tls.identity.apply(&mut parts.headers, cert);
        }
    }
    if crate::grpc::is_grpc(&parts.headers) {
        ctx.extensions.insert(crate::grpc::GrpcRequest);
    }
    let logged_target = snapshot.access_log.is_enabled().then(|| parts.uri.clone());
    let mut chain = Chain::default();
    chain.extend(&inbound.listener.filters);
    // The whole exchange's deadline (`timeouts.exchange`, or the route's): routing may move it,
    // so it is a cell the work below sets and the timer around it reads after each poll.
    let start = Instant::from_std(ctx.start);
    let deadline = Cell::new(snapshot.server.exchange_timeout.map(|limit| start + limit));
    let outcome = {
        let work = async {
            match route_request(inbound, &mut parts, &body, &mut ctx, &mut chain, &deadline).await {
                Ok((route, cluster)) => {
                    let body = with_body_filters(body, &mut chain, &ctx);
                    match upstream::forward(snapshot, route, cluster, &mut parts, body, &mut ctx, &mut chain).await {
                        Ok(response) if switches(&parts, response.status()) => {
                            let boxed =
                                Box::pin(switch_protocols(sink, &mut chain, &mut ctx, snapshot, &parts, response));
                            boxed.await
                        }
                        Ok(response) => respond::send(sink, &mut chain, &mut ctx, response).await,
                        Err(upstream::Refusal::Reason(reason)) => {
                            local(sink, &mut chain, &mut ctx, snapshot, LocalResponse::for_reason(reason)).await
                        }
                        Err(upstream::Refusal::Local(answer)) => {
                            local(sink, &mut chain, &mut ctx, snapshot, answer).await
                        }
                    }
                }
                Err(Routed::Local(answer)) => local(sink, &mut chain, &mut ctx, snapshot, answer).await,
                Err(Routed::Act(route)) => {
                    let body = with_body_filters(body, &mut chain, &ctx);
                    let boxed = Box::pin(answer_locally(inbound, route, &mut parts, body, sink, &mut ctx, &mut chain));
                    boxed.await
                }
            }
        };
        // Polled where it lies: moving the exchange's state into a wrapper future would copy
        // all of it on every request.
        let mut work = std::pin::pin!(work);
        let mut timer = None;
        poll_fn(|cx| poll_within(&deadline, &mut timer, work.as_mut(), cx)).await
    };
    let mut sent = match outcome {
        Some(sent) => sent,
        None => {
            let boxed = Box::pin(out_of_time(sink, &mut chain, &mut ctx, snapshot));
            boxed.await
        }
    };
    if sent && sink.has_tunnel() {
        // A CONNECT tunnel: relayed here, so that the log line has its bytes and duration.
        let boxed = Box::pin(sink.relay_tunnel());
        match boxed.await {
            Some(relayed) => ctx.bytes_sent = relayed.down,
            None => sent = false,
        }
    }
    if chain.has(Phases::LOG) {
        chain.log(&ctx, ctx.reason).await;
    }
    if let Some(target) = logged_target {
        // An origin-form target is its path and query as received: logged without a copy.
        match (target.scheme(), target.path_and_query()) {
            (None, Some(origin)) => log::log_exchange(snapshot, &ctx, &parts, origin.as_str()),
            _ => log::log_exchange(snapshot, &ctx, &parts, &target.to_string()),
        }
    }
    crate::buffers::recycle_headers(std::mem::take(&mut parts.headers));
    sent
}

/// Whether an upstream answer goes to [`switch_protocols`]: a `101`, or any success to a
/// WebSocket request whose client (over HTTP/2) would take a `2xx` as the tunnel opening.
fn switches(request: &request::Parts, status: http::StatusCode) -> bool {
    status == http::StatusCode::SWITCHING_PROTOCOLS
        || (status.is_success() && request.extensions.get::<crate::websocket::OwnKey>().is_some())
}

/// Polls `work` until it ends or the time in `deadline` (read after every poll) passes:
/// `None` then, and the caller drops `work`, which closes its upstream connection. Without a
/// deadline this is one check per poll: no timer and no clock.
fn poll_within<F: Future<Output = bool>>(
    deadline: &Cell<Option<Instant>>,
    timer: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    work: Pin<&mut F>,
    cx: &mut std::task::Context<'_>,
) -> Poll<Option<bool>> {
    if let Poll::Ready(sent) = work.poll(cx) {
        return Poll::Ready(Some(sent));
    }
    let Some(at) = deadline.get() else { return Poll::Pending };
    let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
    if timer.deadline() != at {
        timer.as_mut().reset(at);
    }
    timer.as_mut().poll(cx).map(|()| None)
}

/// The exchange ran out of time: 408 `exchange_timeout` when nothing of the answer reached the
/// client yet; otherwise the HTTP/1 connection closes (the answer stays incomplete) or the
/// HTTP/2 stream is reset. Never complete, so the connection is not reused.
async fn out_of_time<S: ResponseSink>(
    sink: &mut S,
    chain: &mut Chain,
    ctx: &mut RequestCtx,
    snapshot: &Snapshot,
) -> bool {
    if sink.interrupt() {
        respond::send_local(sink, chain, ctx, snapshot, LocalResponse::for_reason(Reason::ExchangeTimeout)).await;
    }
    ctx.reason = Some(Reason::ExchangeTimeout);
    false
}

/// Relays an upstream's `101 Switching Protocols` and hands its connection to the client's
/// connection driver; a switch the client did not ask for is the upstream's error.
///
/// When Strait made the handshake's key (a WebSocket over HTTP/2), the upstream must answer
/// `101` with the matching `Sec-WebSocket-Accept`, which the client does not get: it never
/// sent a key.
async fn switch_protocols<S, B>(
    sink: &mut S,
    chain: &mut Chain,
    ctx: &mut RequestCtx,
    snapshot: &Snapshot,
    request: &request::Parts,
    response: http::Response<upstream::UpstreamBody<B>>,
) -> bool
where
    S: ResponseSink,
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let Some(offer) = request.extensions.get::<strait_http::context::UpgradeRequest>().cloned() else {
        return local(sink, chain, ctx, snapshot, LocalResponse::for_reason(Reason::UpstreamBadResponse)).await;
    };
    let own_key = request.extensions.get::<crate::websocket::OwnKey>().is_some();
    if own_key
        && (response.status() != http::StatusCode::SWITCHING_PROTOCOLS
            || !crate::websocket::accepted(&request.headers, response.headers()))
    {
        return local(sink, chain, ctx, snapshot, LocalResponse::for_reason(Reason::UpstreamBadResponse)).await;
    }
    let (mut head, body) = response.into_parts();
    let Some(upgraded) = body.into_upgraded() else {
        return local(sink, chain, ctx, snapshot, LocalResponse::for_reason(Reason::UpstreamBadResponse)).await;
    };
    if own_key {
        head.headers.remove(crate::websocket::SEC_WEBSOCKET_ACCEPT);
    }
    head.extensions.insert(offer);
    let sent = respond::send(sink, chain, ctx, http::Response::from_parts(head, crate::body::Full::default())).await;
    let switched = sent && sink.upgrade(upgraded);
    if switched && own_key {
        // The HTTP/2 client got `200` (RFC 8441 §5); the log says what it got.
        ctx.status = http::StatusCode::OK;
    }
    switched
}

/// Where a request goes when it is not forwarded.
enum Routed<'s> {
    /// Answer with this now (a filter's answer, no route, a refused body).
    Local(LocalResponse),
    /// The route's action answers locally (direct, redirect, echo, static files).
    Act(&'s RoutePlan),
}

/// Request-header phases and routing: the route and cluster to forward to, or why not.
async fn route_request<'s, B>(
    inbound: &Inbound<'s>,
    parts: &mut request::Parts,
    body: &B,
    ctx: &mut RequestCtx,
    chain: &mut Chain,
    deadline: &Cell<Option<Instant>>,
) -> Result<(&'s RoutePlan, &'s Upstream), Routed<'s>>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let snapshot = inbound.snapshot;
    // One spelling per path for filters, routing and the upstream alike (as Envoy forwards it).
    if let Some(options) = &inbound.listener.path_normalization {
        match strait_router::normalize::changed_path(parts.uri.path(), options) {
            Ok(None) => {}
            Ok(Some(path)) if set_path(&mut parts.uri, &path) => {}
            _ => return Err(Routed::Local(LocalResponse::for_reason(Reason::BadRequest))),
        }
    }
    if !chain.members_empty() {
        declare_length(parts, body, chain.has(Phases::REQUEST_BODY));
        ctx.subrequests = Some(snapshot.clone());
        if let Some(answer) = chain.request_headers(0, parts, ctx, None).await {
            return Err(Routed::Local(answer));
        }
    }
    let listener: &'s ListenerPlan = inbound.listener;
    let view = RequestView {
        host: host_name(&parts.headers),
        path: parts.uri.path(),
        query: parts.uri.query(),
        method: &parts.method,
        headers: &parts.headers,
    };
    let Some(found) = listener.routes.find(&view) else {
        return Err(Routed::Local(LocalResponse::for_reason(Reason::NoRoute)));
    };
    let route: &'s RoutePlan = found.route;
    if let Some(limit) = route.exchange_timeout {
        deadline.set(limit.map(|limit| Instant::from_std(ctx.start) + limit));
    }
    let rewritten = route.rewrite.as_ref().map(|r| r.apply(parts.uri.path(), found.matched_prefix).into_owned());
    ctx.route = Some(route.name.clone());
    let consumer_filters = ConsumerLists { route: route.consumer_filters.as_ref(), all: &snapshot.consumer_filters };
    if !route.filters.is_empty() || !consumer_filters.is_empty() {
        let route_start = chain.len();
        chain.extend(&route.filters);
        // Unless the listener chain was told already; a consumer's filters, joining later, may
        // read it too.
        declare_length(parts, body, chain.has(Phases::REQUEST_BODY) || !consumer_filters.is_empty());
        if ctx.subrequests.is_none() {
            ctx.subrequests = Some(snapshot.clone());
        }
        if let Some(answer) = chain.request_headers(route_start, parts, ctx, Some(consumer_filters)).await {
            return Err(Routed::Local(answer));
        }
    }
    if let Some(path) = rewritten {
        ctx.extensions.insert(OriginalUri(parts.uri.clone()));
        if !set_path(&mut parts.uri, &path) {
            return Err(Routed::Local(LocalResponse::for_reason(Reason::BadRequest)));
        }
    }
    let max_body = snapshot.server.max_body_bytes;
    if max_body != 0 && body.size_hint().lower() > max_body {
        return Err(Routed::Local(LocalResponse::for_reason(Reason::BodyTooLarge)));
    }
    if parts.method == http::Method::CONNECT && !matches!(route.action, Action::ForwardProxy(_)) {
        // A tunnel is opened only by a forward-proxy route.
        return Err(Routed::Local(LocalResponse::for_reason(Reason::MethodNotAllowed)));
    }
    match &route.action {
        Action::Forward(cluster) => Ok((route, cluster)),
        Action::Split(split) => Ok((route, split.pick())),
        Action::GrpcTranscode(plan, cluster) if plan.passes_through(parts) => Ok((route, cluster)),
        _ => Err(Routed::Act(route)),
    }
}

/// Tells the request phases the body's declared length, when its framing gives one
/// ([`RequestLength`]); only chains with a request-body filter (the filters that read it) pay
/// for the extension.
fn declare_length<B: Body>(parts: &mut request::Parts, body: &B, wanted: bool) {
    if !wanted || parts.extensions.get::<RequestLength>().is_some() {
        return;
    }
    if let Some(length) = body.size_hint().exact() {
        parts.extensions.insert(RequestLength(length));
    }
}

/// The request body, through the request-body filters when the chain has any.
fn with_body_filters<B>(body: B, chain: &mut Chain, ctx: &RequestCtx) -> Either<B, Box<FilteredBody<B>>>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    // A request without a body has nothing to filter, and stays bodyless (and retryable).
    if !chain.has(Phases::REQUEST_BODY) || body.is_end_stream() {
        return Either::Left(body);
    }
    match chain.request_body(ctx) {
        filters if filters.is_empty() => Either::Left(body),
        filters => Either::Right(Box::new(FilteredBody::new(body, filters))),
    }
}

/// Performs an action Strait answers itself (direct, redirect, echo, static files, aggregation,
/// gRPC transcoding).
async fn answer_locally<B, S>(
    inbound: &Inbound<'_>,
    route: &RoutePlan,
    parts: &mut request::Parts,
    mut body: B,
    sink: &mut S,
    ctx: &mut RequestCtx,
    chain: &mut Chain,
) -> bool
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
    S: ResponseSink,
{
    let snapshot = inbound.snapshot;
    let local = match &route.action {
        // Forwarding never comes here (see `route_request`).
        Action::Forward(_) | Action::Split(_) => LocalResponse::for_reason(Reason::NoRoute),
        Action::ForwardProxy(plan) => {
            return actions::forward_proxy::serve(plan, snapshot, parts, body, sink, ctx, chain).await;
        }
        Action::GrpcTranscode(plan, _) => {
            let context =
                actions::grpc_transcode::CallContext { timeout: route.timeout, request_id: ctx.request_id.as_ref() };
            let boxed = Box::pin(actions::grpc_transcode::answer(plan, parts, &mut body, context, snapshot));
            boxed.await
        }
        Action::Direct(response) => response.clone(),
        Action::Redirect(plan) => actions::redirect::answer(plan, parts),
        Action::Aggregate(plan) => {
            let boxed = Box::pin(actions::aggregate::answer(plan, parts, &**snapshot));
            boxed.await
        }
        Action::Echo(plan) => {
            let max = match snapshot.server.max_body_bytes {
                0 => ECHO_BODY_MAX,
                limit => limit.min(ECHO_BODY_MAX),
            };
            match crate::body::collect(&mut body, max).await {
                Ok((data, _)) => actions::echo::answer(plan, parts, ctx, &data),
                Err(BodyError(reason)) => LocalResponse::for_reason(reason),
            }
        }
        Action::Static(plan) => {
            let asked = ctx.extensions.get::<OriginalUri>().map_or(parts.uri.path(), |o| o.0.path()).to_owned();
            match actions::static_files::answer(plan, parts, &asked).await {
                actions::static_files::Answer::Local(response) => response,
                actions::static_files::Answer::File(head, file) => {
                    let mut head = head;
                    head.headers.insert(header::DATE, crate::date::now());
                    if let Some(id) = &ctx.request_id {
                        head.headers.insert(X_REQUEST_ID, id.clone());
                    }
                    return respond::send(sink, chain, ctx, http::Response::from_parts(head, file)).await;
                }
            }
        }
    };
    respond::send_local(sink, chain, ctx, snapshot, local).await
}

/// Sends a local answer in its own boxed future (see [`handle`]).
async fn local<S: ResponseSink>(
    sink: &mut S,
    chain: &mut Chain,
    ctx: &mut RequestCtx,
    snapshot: &Snapshot,
    answer: LocalResponse,
) -> bool {
    let boxed = Box::pin(respond::send_local(sink, chain, ctx, snapshot, answer));
    boxed.await
}

/// Answers a request whose head could not be accepted: the listener's filters see the answer
/// (local-reply, response and log phases), then the access log.
pub(crate) async fn refuse<S: ResponseSink>(inbound: &Inbound<'_>, reason: Reason, sink: &mut S) {
    let snapshot = inbound.snapshot;
    let mut ctx = RequestCtx::new(inbound.conn.clone(), inbound.conn.peer.ip());
    let mut chain = Chain::default();
    chain.extend(&inbound.listener.filters);
    respond::send_local(sink, &mut chain, &mut ctx, snapshot, LocalResponse::for_reason(reason)).await;
    chain.log(&ctx, ctx.reason).await;
    if snapshot.access_log.is_enabled() {
        log::log_refused(snapshot, &ctx);
    }
}

/// The host name routing uses: the `Host` field (the connection driver made it the request's
/// authority) without its port.
fn host_name(headers: &HeaderMap) -> &str {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return "" };
    crate::h1::request::strip_port(host)
}

/// Replaces the path of `uri`, keeping its query; `false` when the result is not a valid URI.
fn set_path(uri: &mut Uri, path: &str) -> bool {
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let Ok(path_and_query) = http::uri::PathAndQuery::try_from(target) else { return false };
    let mut uri_parts = std::mem::take(uri).into_parts();
    uri_parts.path_and_query = Some(path_and_query);
    match Uri::from_parts(uri_parts) {
        Ok(new) => {
            *uri = new;
            true
        }
        Err(_) => false,
    }
}

/// The client address: the peer, or from a trusted peer the rightmost `X-Forwarded-For`
/// address that is not a trusted proxy.
fn client_ip(headers: &HeaderMap, server: &ServerPlan, peer: IpAddr) -> IpAddr {
    if !server.is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    let values: Vec<&HeaderValue> = headers.get_all("x-forwarded-for").iter().collect();
    for value in values.iter().rev() {
        let Ok(text) = value.to_str() else { break };
        for part in text.rsplit(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !server.is_trusted(ip) {
                        return ip;
                    }
                }
                Err(_) => return client,
            }
        }
    }
    client
}

/// Returns the request's `x-request-id`, generating and inserting one when missing.
fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get("x-request-id") {
        return id.clone();
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let random = fastrand::u128(..);
    let mut text = [0u8; 32];
    for (i, byte) in text.iter_mut().enumerate() {
        *byte = HEX[((random >> (i * 4)) & 0xf) as usize];
    }
    let id = HeaderValue::from_maybe_shared(Bytes::copy_from_slice(&text)).expect("hex is a valid header value");
    headers.insert(X_REQUEST_ID, id.clone());
    id
}
