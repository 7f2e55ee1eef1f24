//! Forwarding a request to a cluster: proxy headers, endpoint choice, attempts and retries.

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{request, Response};
use http_body::Body;
use strait_cluster::{ClusterState, PickContext};
use strait_config::HashOn;
use strait_http::filter::UpstreamTarget;
use strait_http::{LocalResponse, Phases, Reason, RequestCtx};
use tokio::time::Instant;

use super::client::{self, is_idempotent, SendOptions};
use super::response::UpstreamBody;
use crate::body::BodyError;
use crate::chain::Chain;
use crate::exchange::respond::remove_framing;
use crate::snapshot::{RoutePlan, ServerPlan, Snapshot, Upstream};

/// Most attempts one request makes, whatever the retry policy says.
const MAX_ATTEMPTS: usize = 16;
/// Placeholder for unused slots of the tried-endpoints list.
const UNSPECIFIED: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Why forwarding produced no upstream response.
pub(crate) enum Refusal {
    /// Answer with the standard page of this reason.
    Reason(Reason),
    /// A filter's answer (from the upstream-request phase).
    Local(LocalResponse),
}

/// Forwards the request to `cluster`: returns the upstream's response with its body still
/// streaming, or why there is none.
pub(crate) async fn forward<B>(
    snapshot: &Snapshot,
    route: &RoutePlan,
    upstream: &Upstream,
    request: &mut request::Parts,
    body: B,
    ctx: &mut RequestCtx,
    chain: &mut Chain,
) -> Result<Response<UpstreamBody<B>>, Refusal>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let cluster = &upstream.state;
    ctx.cluster = Some(cluster.shared_name().clone());
    let replayable = body.is_end_stream();
    let idempotent = is_idempotent(&request.method);
    let hash_key = hash_key(cluster, &request.headers);
    let pick = PickContext { client_ip: ctx.client_ip, hash_key: hash_key.as_deref() };
    // A gRPC client's own deadline (`grpc-timeout`) bounds the exchange too.
    let grpc_timeout =
        if crate::grpc::is_grpc_family(&request.headers) { crate::grpc::timeout(&request.headers) } else { None };
    let timeout = match (route.timeout, grpc_timeout) {
        (Some(route), Some(grpc)) => Some(route.min(grpc)),
        (route, grpc) => route.or(grpc),
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let attempts = route.retries.attempts.clamp(1, MAX_ATTEMPTS as u32);
    add_proxy_headers(&mut request.headers, &snapshot.server, ctx);
    // The client's `Host`, to put back on a retry when an upstream-request filter changed it.
    let client_sent_host = request.headers.contains_key(header::HOST);
    let restore_host =
        if chain.has(Phases::UPSTREAM_REQUEST) { request.headers.get(header::HOST).cloned() } else { None };
    let cfg = &cluster.config;
    let options = SendOptions {
        connect_timeout: cfg.timeouts.connect.0,
        deadline,
        response_header_timeout: cfg.timeouts.response_header.0,
        body_timeout: cfg.timeouts.body.0,
        keepalive: cfg.keepalive,
        idle: cfg.timeouts.idle.0,
    };
    // The upstream's time is measured only for whoever reads it (access log, filters of the
    // later phases).
    let timed = snapshot.access_log.is_enabled()
        || chain.has(Phases::LOG)
        || chain.has(Phases::RESPONSE_HEADERS)
        || chain.has(Phases::RESPONSE_BODY);
    let mut tried = [UNSPECIFIED; MAX_ATTEMPTS];
    let mut failure = Reason::NoHealthyUpstream;
    let mut body = Some(body);
    for attempt in 0..attempts as usize {
        let Some(request_body) = body.take() else { break };
        let Some(endpoint) = cluster.pick(&pick, &tried[..attempt]) else { break };
        if tried[..attempt].contains(&endpoint.addr) {
            // Every endpoint has been tried (nginx `proxy_next_upstream` semantics): asking
            // the same endpoint again would only double the wait.
            break;
        }
        tried[attempt] = endpoint.addr;
        ctx.attempts += 1;
        ctx.upstream_addr = Some(endpoint.addr);
        set_host(&mut request.headers, &cfg.host_header, client_sent_host, restore_host.as_ref(), endpoint.addr);
        if chain.has(Phases::UPSTREAM_REQUEST) {
            let target = UpstreamTarget { cluster: &cluster.name, addr: endpoint.addr, attempt: ctx.attempts };
            if let Some(answer) = chain.upstream_request(request, target, ctx).await {
                return Err(Refusal::Local(answer));
            }
            remove_framing(&mut request.headers);
        }
        let _in_flight = endpoint.start_request();
        let sent_at = Instant::now();
        match client::send(&upstream.connector, endpoint.addr, request, request_body, &options, sent_at).await {
            Ok(response) => {
                if timed {
                    ctx.upstream_time = Some(sent_at.elapsed());
                }
                let retry_status = attempt + 1 < attempts as usize
                    && idempotent
                    && replayable
                    && route.retries.on_status.contains(&response.status())
                    && deadline.is_none_or(|d| Instant::now() < d)
                    && has_untried_endpoint(cluster, &tried[..=attempt]);
                if retry_status {
                    failure = Reason::UpstreamBadResponse;
                    body = response.into_body().into_request_body();
                    continue;
                }
                endpoint.report_success();
                let mut response = response;
                if snapshot.server.via {
                    response.headers_mut().append(header::VIA, HeaderValue::from_static("1.1 strait"));
                }
                return Ok(response);
            }
            Err(error) => {
                if error.endpoint_fault {
                    endpoint.report_failure();
                }
                failure = error.reason;
                let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
                // Another endpoint gets the request only if nothing of it could have been acted
                // on twice: never sent, or bodyless and idempotent (nginx does not resend POST,
                // PATCH or LOCK once sent either).
                let retryable = error.endpoint_fault && (!error.sent || (replayable && idempotent));
                if !retryable || timed_out {
                    break;
                }
                body = error.body;
            }
        }
    }
    Err(Refusal::Reason(failure))
}

/// Sets the upstream `Host` by the cluster's policy: `preserve` (the client's, or the
/// endpoint's address when it sent none), `endpoint`, or a literal value. `restore` is the
/// client's `Host` when a filter may have changed it since.
fn set_host(
    headers: &mut http::HeaderMap,
    policy: &str,
    client_sent_host: bool,
    restore: Option<&HeaderValue>,
    endpoint: SocketAddr,
) {
    let value = match (policy, client_sent_host) {
        ("preserve", true) => {
            if let Some(host) = restore {
                if headers.get(header::HOST) != Some(host) {
                    headers.insert(header::HOST, host.clone());
                }
            }
            return;
        }
        ("preserve" | "endpoint", _) => {
            let mut text = String::with_capacity(24);
            let _ = write!(text, "{endpoint}");
            HeaderValue::from_str(&text).expect("an address is a valid header value")
        }
        (literal, _) => match HeaderValue::from_str(literal) {
            Ok(value) => value,
            Err(_) => return,
        },
    };
    headers.insert(header::HOST, value);
}

/// Adds `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto` and `X-Forwarded-Host`, and
/// `Via`; from an untrusted peer, any such fields it sent (and `Forwarded`, the other
/// `X-Forwarded-*` fields, and their underscore spellings) are replaced or removed.
fn add_proxy_headers(headers: &mut http::HeaderMap, server: &ServerPlan, ctx: &RequestCtx) {
    if server.via {
        headers.append(header::VIA, HeaderValue::from_static("1.1 strait"));
    }
    if !server.forwarded_headers {
        return;
    }
    let peer = ctx.peer().ip();
    let trusted_peer = server.is_trusted(peer);
    if !trusted_peer {
        remove_identity_claims(headers);
    }
    // A trusted proxy's chain is extended (nginx `$proxy_add_x_forwarded_for`); an untrusted
    // client's claim is replaced by what the connection shows (as Traefik does).
    let mut forwarded_for = String::with_capacity(48);
    if trusted_peer {
        for previous in headers.get_all(&X_FORWARDED_FOR) {
            if let Ok(text) = previous.to_str() {
                forwarded_for.push_str(text);
                forwarded_for.push_str(", ");
            }
        }
    }
    let _ = write!(forwarded_for, "{peer}");
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    if let Ok(value) = HeaderValue::from_str(&ctx.client_ip.to_string()) {
        headers.insert(X_REAL_IP, value);
    }
    if !trusted_peer || !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(ctx.conn.scheme));
    }
    if !trusted_peer || !headers.contains_key(&X_FORWARDED_HOST) {
        match headers.get(header::HOST).cloned() {
            Some(host) => {
                headers.insert(X_FORWARDED_HOST, host);
            }
            None => {
                headers.remove(&X_FORWARDED_HOST);
            }
        }
    }
}

/// Identity fields only a trusted proxy may send; `X-Forwarded-For`, `-Proto`, `-Host` and
/// `X-Real-IP` are replaced separately.
const IDENTITY_CLAIMS: [&str; 8] = [
    "forwarded",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-forwarded-uri",
    "x-original-forwarded-for",
];

/// Removes what an untrusted client claims about itself or the path it took, in the spelling
/// given and with underscores (`X_Forwarded_For`), which some upstreams read as dashes.
fn remove_identity_claims(headers: &mut http::HeaderMap) {
    for name in IDENTITY_CLAIMS {
        headers.remove(name);
    }
    let underscored: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().contains('_'))
        .filter(|name| {
            let dashed = name.as_str().replace('_', "-");
            dashed.starts_with("x-forwarded-") || dashed == "x-real-ip" || IDENTITY_CLAIMS.contains(&dashed.as_str())
        })
        .cloned()
        .collect();
    for name in underscored {
        headers.remove(name);
    }
}

/// Whether a healthy endpoint remains that this request has not tried.
fn has_untried_endpoint(cluster: &ClusterState, tried: &[SocketAddr]) -> bool {
    cluster.endpoints().iter().any(|e| e.is_healthy() && !tried.contains(&e.addr))
}

/// The bytes a hashing balancer hashes for this request, when not the client address.
fn hash_key(cluster: &ClusterState, headers: &http::HeaderMap) -> Option<Vec<u8>> {
    match cluster.config.hash_on.as_ref()? {
        HashOn::SourceIp => None,
        HashOn::Header(name) => headers.get(name.as_str()).map(|v| v.as_bytes().to_vec()),
        HashOn::Cookie(name) => headers.get_all(header::COOKIE).iter().find_map(|v| {
            let text = v.to_str().ok()?;
            text.split(';').find_map(|pair| {
                let (k, val) = pair.trim().split_once('=')?;
                (k == name).then(|| val.as_bytes().to_vec())
            })
        }),
    }
}
