//! Forwarding a request to a cluster: pick an endpoint, exchange, retry, relay the response.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderValue};
use http::Method;
use strait_cluster::{ClusterState, EndpointState, PickContext};
use strait_config::HashOn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::pool;
use crate::filter::{LocalResponse, RequestCtx};
use crate::h1::encode::{response_framing, write_framing, write_response_head, OutFraming};
use crate::h1::response::parse_response_head;
use crate::h1::{relay_body, BodyFraming, RelayError, RelayLimits, RequestHead};
use crate::reason::Reason;
use crate::server::conn::ClientConn;
use crate::server::exchange::{body_limits, run_response_filters, send_local};
use crate::snapshot::{RoutePlan, Snapshot};

/// Most attempts one request makes, whatever the retry policy says.
const MAX_ATTEMPTS: usize = 16;
/// Placeholder for unused slots of the tried-endpoints list.
const UNSPECIFIED: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// How long an upstream that stopped reading a request body gets to show its early answer.
const EARLY_RESPONSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Largest upstream response head accepted.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How one attempt on one endpoint ended.
enum Attempt {
    /// A response went to the client (completely or not); carries whether the client
    /// connection may be kept.
    Done(bool),
    /// The attempt failed before anything was sent to the client.
    Failed {
        /// What went wrong.
        reason: Reason,
        /// Whether another endpoint may be tried (nothing of the request body was consumed).
        retryable: bool,
        /// Whether the endpoint itself is to blame (passive health).
        endpoint_fault: bool,
    },
    /// The upstream answered with a status the retry policy retries.
    RetryStatus,
}

/// Forwards the request to `cluster`; returns whether the client connection may be kept.
pub(crate) async fn forward(
    conn: &mut ClientConn,
    head: &mut RequestHead,
    ctx: &mut RequestCtx,
    snapshot: &Snapshot,
    route: &RoutePlan,
    cluster: &Arc<ClusterState>,
    rewritten: Option<&str>,
) -> bool {
    ctx.cluster = Some(cluster.clone());
    let replayable = !head.body.has_body();
    let idempotent = is_idempotent(&head.method);
    let hash_key = hash_key(cluster, head);
    let pick = PickContext { client_ip: ctx.client_ip, hash_key: hash_key.as_deref() };
    let deadline = route.timeout.map(|t| Instant::now() + t);
    let attempts = route.retries.attempts.clamp(1, MAX_ATTEMPTS as u32);
    let mut tried = [UNSPECIFIED; MAX_ATTEMPTS];
    let mut failure = Reason::NoHealthyUpstream;
    let mut body_consumed = false;
    for attempt in 0..attempts {
        let Some(endpoint) = cluster.pick(&pick, &tried[..attempt as usize]) else { break };
        if tried[..attempt as usize].contains(&endpoint.addr) {
            // Every endpoint has been tried (nginx `proxy_next_upstream` semantics): asking
            // the same endpoint again would only double the wait.
            break;
        }
        tried[attempt as usize] = endpoint.addr;
        ctx.attempts += 1;
        ctx.upstream_addr = Some(endpoint.addr);
        let _in_flight = endpoint.start_request();
        let may_retry_status =
            attempt + 1 < attempts && idempotent && replayable && !route.retries.on_status.is_empty();
        let tried = &tried[..=attempt as usize];
        let exchange =
            Exchange { snapshot, route, cluster, endpoint: &endpoint, rewritten, deadline, may_retry_status, tried };
        match exchange.run(conn, head, ctx).await {
            Attempt::Done(keep) => return keep,
            Attempt::RetryStatus => {
                failure = Reason::UpstreamBadResponse;
                continue;
            }
            Attempt::Failed { reason, retryable, endpoint_fault } => {
                if endpoint_fault {
                    endpoint.report_failure();
                }
                failure = reason;
                if !retryable {
                    body_consumed = head.body.has_body();
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
            }
        }
    }
    if body_consumed || head.body.has_body() {
        // The body is unread or partly consumed: the connection cannot carry another request,
        // and the answer says it closes.
        head.keep_alive = false;
    }
    send_local(conn, head, ctx, snapshot, &route.filters, LocalResponse::for_reason(failure)).await
}

/// Whether a response to `method` with `status` has a body, possibly empty (RFC 9110 §6.4.1).
fn may_have_body(method: &Method, status: http::StatusCode) -> bool {
    *method != Method::HEAD
        && !status.is_informational()
        && status != http::StatusCode::NO_CONTENT
        && status != http::StatusCode::NOT_MODIFIED
}

/// Writes bytes to the client within `limit`; a write the socket takes at once (the usual
/// case for a response head and small body) needs no timer.
async fn write_to_client(conn: &mut ClientConn, bytes: &[u8], limit: std::time::Duration) -> bool {
    let written = match conn.stream.try_write(bytes) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(_) => return false,
    };
    if written == bytes.len() {
        return true;
    }
    matches!(tokio::time::timeout(limit, conn.stream.write_all(&bytes[written..])).await, Ok(Ok(())))
}

/// Whether a healthy endpoint remains that this request has not tried.
fn has_untried_endpoint(cluster: &ClusterState, tried: &[SocketAddr]) -> bool {
    cluster.endpoints().iter().any(|e| e.is_healthy() && !tried.contains(&e.addr))
}

/// Methods whose requests may be sent twice.
fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
}

/// The bytes a hashing balancer hashes for this request, when not the client address.
fn hash_key(cluster: &ClusterState, head: &RequestHead) -> Option<Vec<u8>> {
    match cluster.config.hash_on.as_ref()? {
        HashOn::SourceIp => None,
        HashOn::Header(name) => head.headers.get(name.as_str()).map(|v| v.as_bytes().to_vec()),
        HashOn::Cookie(name) => head.headers.get_all(header::COOKIE).iter().find_map(|v| {
            let text = v.to_str().ok()?;
            text.split(';').find_map(|pair| {
                let (k, val) = pair.trim().split_once('=')?;
                (k == name).then(|| val.as_bytes().to_vec())
            })
        }),
    }
}

/// One attempt's fixed inputs.
struct Exchange<'a> {
    snapshot: &'a Snapshot,
    route: &'a RoutePlan,
    cluster: &'a ClusterState,
    endpoint: &'a Arc<EndpointState>,
    rewritten: Option<&'a str>,
    deadline: Option<Instant>,
    /// The policy allows retrying this attempt on a status (before checking endpoints left).
    may_retry_status: bool,
    /// Endpoints tried so far, this one included.
    tried: &'a [SocketAddr],
}

impl Exchange<'_> {
    /// Runs one attempt: connect (or reuse), send, receive, relay.
    async fn run(&self, conn: &mut ClientConn, head: &mut RequestHead, ctx: &mut RequestCtx) -> Attempt {
        let cfg = &self.cluster.config;
        let addr = self.endpoint.addr;
        let mut out = BytesMut::with_capacity(512);
        self.write_head(&mut out, head, ctx);
        let replayable = !head.body.has_body();
        // A request may go out again only if nothing of it could have been acted on twice:
        // no body consumed, and a method that is safe to repeat (nginx does not resend POST,
        // PATCH or LOCK once sent either).
        let resendable = replayable && is_idempotent(&head.method);
        // The check costs no system call unless the idle connection became readable (closed
        // by the upstream, or stray bytes): Tokio knows that from epoll.
        let mut pooled = pool::take(addr).filter(pool::is_reusable);
        loop {
            let reused = pooled.is_some();
            let mut upstream = match pooled.take() {
                Some(stream) => stream,
                None => match self.connect().await {
                    Ok(stream) => stream,
                    Err(reason) => return Attempt::Failed { reason, retryable: true, endpoint_fault: true },
                },
            };
            let sent_at = Instant::now();
            let written = tokio::time::timeout(cfg.timeouts.body.0, upstream.write_all(&out)).await;
            if !matches!(written, Ok(Ok(()))) {
                if reused {
                    continue;
                }
                return Attempt::Failed { reason: Reason::UpstreamReset, retryable: true, endpoint_fault: true };
            }
            if head.body.has_body() {
                if let Err(attempt) = self.send_body(conn, head, &mut upstream).await {
                    if let Attempt::Failed { reason: Reason::UpstreamReset, .. } = attempt {
                        if let Some(done) = self.early_response(conn, head, ctx, upstream, sent_at).await {
                            return done;
                        }
                    }
                    return attempt;
                }
            }
            let mut buf = BytesMut::with_capacity(8192);
            let response = match self.read_response_head(&mut upstream, &mut buf, &head.method).await {
                Ok(response) => response,
                Err((Reason::UpstreamReset, true)) if reused && resendable => continue,
                Err((reason, _)) => {
                    let timed_out_route = self.deadline.is_some_and(|d| Instant::now() >= d);
                    return Attempt::Failed { reason, retryable: resendable && !timed_out_route, endpoint_fault: true };
                }
            };
            ctx.upstream_time = Some(sent_at.elapsed());
            if self.may_retry_status
                && self.route.retries.on_status.contains(&response.status)
                && self.deadline.is_none_or(|d| Instant::now() < d)
                && has_untried_endpoint(self.cluster, self.tried)
            {
                return Attempt::RetryStatus;
            }
            self.endpoint.report_success();
            return self.relay_response(conn, head, ctx, upstream, buf, response).await;
        }
    }

    /// After the upstream stopped taking the request body: relays the response it sent
    /// early, if any (a 401 or 413 refusing an upload), and closes both connections after it.
    async fn early_response(
        &self,
        conn: &mut ClientConn,
        head: &mut RequestHead,
        ctx: &mut RequestCtx,
        mut upstream: TcpStream,
        sent_at: Instant,
    ) -> Option<Attempt> {
        let mut buf = BytesMut::with_capacity(8192);
        let read = self.read_response_head(&mut upstream, &mut buf, &head.method);
        let Ok(Ok(mut response)) = tokio::time::timeout(EARLY_RESPONSE_WAIT, read).await else { return None };
        ctx.upstream_time = Some(sent_at.elapsed());
        response.keep_alive = false;
        // The rest of the client's body stays unread: the connection closes after the answer.
        head.keep_alive = false;
        Some(self.relay_response(conn, head, ctx, upstream, buf, response).await)
    }

    /// Connects to the endpoint within the connect timeout (and the route deadline).
    async fn connect(&self) -> Result<TcpStream, Reason> {
        let connect_timeout = self.cluster.config.timeouts.connect.0;
        let limit = match self.deadline {
            Some(d) => connect_timeout.min(d.saturating_duration_since(Instant::now())),
            None => connect_timeout,
        };
        match tokio::time::timeout(limit, TcpStream::connect(self.endpoint.addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(_)) => Err(Reason::UpstreamConnectFailed),
            Err(_) if limit < connect_timeout => Err(Reason::UpstreamTimeout),
            Err(_) => Err(Reason::UpstreamConnectTimeout),
        }
    }

    /// Streams the client's body to the upstream.
    async fn send_body(
        &self,
        conn: &mut ClientConn,
        head: &RequestHead,
        upstream: &mut TcpStream,
    ) -> Result<(), Attempt> {
        if head.expect_continue && conn.buf.is_empty() {
            let _ = conn.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
        }
        let mut limits = body_limits(self.snapshot, self.snapshot.server.max_body_bytes);
        limits.write_timeout = self.cluster.config.timeouts.body.0;
        let chunked = head.body == BodyFraming::Chunked;
        match relay_body(&mut conn.stream, &mut conn.buf, head.body, upstream, chunked, &limits).await {
            Ok(_) => Ok(()),
            Err(RelayError::Write(_)) | Err(RelayError::WriteTimeout) => {
                Err(Attempt::Failed { reason: Reason::UpstreamReset, retryable: false, endpoint_fault: true })
            }
            Err(RelayError::TooLarge) => {
                Err(Attempt::Failed { reason: Reason::BodyTooLarge, retryable: false, endpoint_fault: false })
            }
            Err(RelayError::ReadTimeout) => {
                Err(Attempt::Failed { reason: Reason::ClientBodyTimeout, retryable: false, endpoint_fault: false })
            }
            Err(RelayError::Malformed) => {
                Err(Attempt::Failed { reason: Reason::BadRequest, retryable: false, endpoint_fault: false })
            }
            Err(RelayError::Read(_)) => {
                Err(Attempt::Failed { reason: Reason::ClientAborted, retryable: false, endpoint_fault: false })
            }
        }
    }

    /// Reads the final response head, skipping interim (1xx) responses.
    ///
    /// The error's flag says whether nothing at all was received (a stale pooled connection).
    async fn read_response_head(
        &self,
        upstream: &mut TcpStream,
        buf: &mut BytesMut,
        method: &Method,
    ) -> Result<crate::h1::ResponseHead, (Reason, bool)> {
        let header_timeout = self.cluster.config.timeouts.response_header.0;
        let limit = Instant::now() + header_timeout;
        let deadline = self.deadline.map_or(limit, |d| d.min(limit));
        let mut received = false;
        loop {
            if !buf.is_empty() {
                match parse_response_head(buf, method, MAX_RESPONSE_HEAD) {
                    Ok(Some(response)) if response.status.is_informational() => continue,
                    Ok(Some(response)) => return Ok(response),
                    Ok(None) => {}
                    Err(_) => return Err((Reason::UpstreamBadResponse, false)),
                }
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(8192);
            }
            let room = buf.capacity() - buf.len();
            match tokio::time::timeout_at(deadline, upstream.read_buf(buf)).await {
                Err(_) => return Err((Reason::UpstreamTimeout, false)),
                Ok(Ok(0)) | Ok(Err(_)) => return Err((Reason::UpstreamReset, !received)),
                Ok(Ok(n)) => {
                    crate::readiness::note_read(upstream, n, room);
                    received = true;
                }
            }
        }
    }

    /// Sends the response head and streams the body to the client; pools the upstream
    /// connection when the exchange ended cleanly.
    async fn relay_response(
        &self,
        conn: &mut ClientConn,
        head: &RequestHead,
        ctx: &mut RequestCtx,
        mut upstream: TcpStream,
        mut buf: BytesMut,
        response: crate::h1::ResponseHead,
    ) -> Attempt {
        let server = &self.snapshot.server;
        let mut headers = response.headers;
        if server.via {
            headers.append(header::VIA, HeaderValue::from_static("1.1 strait"));
        }
        run_response_filters(ctx, &self.route.filters, response.status, &mut headers);
        ctx.status = response.status;
        let mut framing = response_framing(head.version, response.body);
        if framing == OutFraming::None && may_have_body(&head.method, response.status) {
            // `Content-Length: 0` upstream: the client still needs the length, or it would
            // read until the (kept-alive) connection closes.
            framing = OutFraming::Length(0);
        }
        let keep_client = head.keep_alive && framing != OutFraming::Close;
        let mut out = BytesMut::with_capacity(512);
        write_response_head(&mut out, head.version, response.status, &headers, framing, keep_client);
        let body_in_buffer = matches!(response.body, BodyFraming::Length(n) if buf.len() as u64 == n);
        if body_in_buffer || !response.body.has_body() {
            // Bytes after a bodyless response (HEAD, 204, 304) are the upstream's error: they
            // are neither relayed nor left on a pooled connection.
            let clean = body_in_buffer || buf.is_empty();
            if body_in_buffer {
                ctx.bytes_sent = buf.len() as u64;
                out.extend_from_slice(&buf);
            }
            let written = write_to_client(conn, &out, server.client_body_timeout).await;
            if response.keep_alive && clean {
                pool::put(
                    self.endpoint.addr,
                    upstream,
                    self.cluster.config.keepalive,
                    self.cluster.config.timeouts.idle.0,
                );
            }
            return Attempt::Done(keep_client && written);
        }
        if !write_to_client(conn, &out, server.client_body_timeout).await {
            return Attempt::Done(false);
        }
        let limits = RelayLimits {
            read_timeout: self.cluster.config.timeouts.body.0,
            write_timeout: server.client_body_timeout,
            max_bytes: 0,
        };
        let chunked_out = framing == OutFraming::Chunked;
        match relay_body(&mut upstream, &mut buf, response.body, &mut conn.stream, chunked_out, &limits).await {
            Ok(n) => {
                ctx.bytes_sent = n;
                if response.keep_alive && buf.is_empty() && response.body != BodyFraming::UntilClose {
                    pool::put(
                        self.endpoint.addr,
                        upstream,
                        self.cluster.config.keepalive,
                        self.cluster.config.timeouts.idle.0,
                    );
                }
                Attempt::Done(keep_client)
            }
            Err(error) => {
                ctx.reason = Some(match error {
                    RelayError::ReadTimeout => Reason::UpstreamTimeout,
                    RelayError::Write(_) | RelayError::WriteTimeout => Reason::ClientAborted,
                    _ => Reason::UpstreamReset,
                });
                Attempt::Done(false)
            }
        }
    }

    /// Writes the request head as the upstream gets it.
    fn write_head(&self, out: &mut BytesMut, head: &RequestHead, ctx: &RequestCtx) {
        let server = &self.snapshot.server;
        let trusted_peer = server.is_trusted(ctx.peer.ip());
        out.put_slice(head.method.as_str().as_bytes());
        out.put_u8(b' ');
        match self.rewritten {
            Some(path) => {
                out.put_slice(path.as_bytes());
                if let Some(query) = head.query() {
                    out.put_u8(b'?');
                    out.put_slice(query.as_bytes());
                }
            }
            None => {
                let target = head.path_and_query();
                if !target.starts_with(b"/") {
                    // `GET http://host?x=1` has an empty path: origin-form needs the `/`.
                    out.put_u8(b'/');
                }
                out.put_slice(target);
            }
        }
        out.put_slice(b" HTTP/1.1\r\n");
        for (name, value) in &head.headers {
            if name == header::HOST {
                continue;
            }
            if server.forwarded_headers {
                let n = name.as_str();
                let replaced = n == "x-forwarded-for"
                    || n == "x-real-ip"
                    || (!trusted_peer && (n == "x-forwarded-proto" || n == "x-forwarded-host"));
                if replaced {
                    continue;
                }
            }
            put_header(out, name.as_str().as_bytes(), value.as_bytes());
        }
        out.put_slice(b"host: ");
        match self.cluster.config.host_header.as_str() {
            "preserve" => match &head.host {
                Some(host) => out.put_slice(host.as_bytes()),
                None => {
                    let _ = write!(out, "{}", self.endpoint.addr);
                }
            },
            "endpoint" => {
                let _ = write!(out, "{}", self.endpoint.addr);
            }
            literal => out.put_slice(literal.as_bytes()),
        }
        out.put_slice(b"\r\n");
        if server.forwarded_headers {
            out.put_slice(b"x-forwarded-for: ");
            for previous in head.headers.get_all("x-forwarded-for") {
                out.put_slice(previous.as_bytes());
                out.put_slice(b", ");
            }
            let _ = write!(out, "{}\r\nx-real-ip: {}\r\n", ctx.peer.ip(), ctx.client_ip);
            if !trusted_peer || !head.headers.contains_key("x-forwarded-proto") {
                out.put_slice(b"x-forwarded-proto: http\r\n");
            }
            if !trusted_peer || !head.headers.contains_key("x-forwarded-host") {
                if let Some(host) = &head.host {
                    put_header(out, b"x-forwarded-host", host.as_bytes());
                }
            }
        }
        if server.via {
            out.put_slice(b"via: 1.1 strait\r\n");
        }
        let framing = match head.body {
            BodyFraming::Length(n) => OutFraming::Length(n),
            BodyFraming::Chunked => OutFraming::Chunked,
            BodyFraming::Empty | BodyFraming::UntilClose => OutFraming::None,
        };
        write_framing(out, framing);
        out.put_slice(b"\r\n");
    }
}

/// Writes one `name: value` line.
fn put_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}
