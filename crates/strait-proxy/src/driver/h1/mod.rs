//! The HTTP/1.x connection driver: read request heads, hand each request to the exchange with
//! its body ([`RequestBody`]) and a response sink ([`H1Sink`]), keep alive, close gently.
//!
//! While a connection is idle it holds no buffer: the read buffer is released after every
//! request and allocated again when the next bytes arrive, so thousands of idle keep-alive
//! connections cost little memory. The body and the sink of one exchange share the connection
//! through a `RefCell` borrowed only inside each poll, so the request body can stream upstream
//! while the response streams back (full duplex) on one single-threaded task.

mod body;
mod sink;

use std::cell::RefCell;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use http::header;
use http::{request, Request, Uri};
use strait_http::context::ConnInfo;
use strait_http::Reason;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};

use super::drain::{self, DrainWatch};
use crate::body::RateMeter;
use crate::deadline::LazyDeadline;
use crate::exchange::{self, Inbound};
use crate::h1::decode::Decoder;
use crate::h1::{parse_request_head, BodyFraming, RequestHead};
use crate::shared::Shared;
use crate::snapshot::ServerPlan;
use crate::transport::Transport;
use body::RequestBody;
use sink::H1Sink;

/// How long a closing connection keeps reading what the client still sends (nginx `lingering_time`).
const LINGER_TIME: Duration = Duration::from_secs(10);
/// Longest wait for more bytes while closing (nginx `lingering_timeout`).
const LINGER_READ: Duration = Duration::from_secs(2);
/// Most bytes discarded while closing.
const LINGER_BYTES: usize = 64 << 20;
/// Longest unread request body drained (instead of closing) after an answer.
const DRAIN_BODY_MAX: u64 = 64 * 1024;

/// The client connection, shared by the current exchange's body and sink.
struct Conn<T> {
    /// The transport.
    io: T,
    /// Bytes read but not consumed yet (empty and unallocated while idle).
    buf: BytesMut,
    /// The current request's body decoder.
    decoder: Decoder,
    /// The client asked for `100 Continue` and has not been answered yet.
    expect_continue: bool,
    /// Longest unread body drained after an answer (never more than the body limit).
    drain_limit: u64,
    /// The keep-alive timer, kept across requests (created on the first wait).
    idle_timer: Option<LazyDeadline>,
}

impl<T: Transport> Conn<T> {
    /// Whether the rest of the request body will be read (it is complete, or small enough to
    /// drain after the answer): if not, the connection closes after the answer.
    fn body_settles(&self) -> bool {
        if self.decoder.is_done() {
            return true;
        }
        !self.expect_continue && self.decoder.remaining().is_some_and(|n| n <= self.drain_limit)
    }
}

/// Serves one connection until it closes, idles out or the server drains.
pub(crate) async fn serve<T: Transport>(io: T, info: ConnInfo, shared: Arc<Shared>) {
    let listener = info.listener.clone();
    let info = Rc::new(info);
    let conn = RefCell::new(Conn {
        io,
        buf: BytesMut::new(),
        decoder: Decoder::new(BodyFraming::Empty),
        expect_continue: false,
        drain_limit: DRAIN_BODY_MAX,
        idle_timer: None,
    });
    let mut drain = DrainWatch::default();
    loop {
        if conn.borrow().buf.is_empty() {
            let idle = shared.snapshot.load().server.idle_timeout;
            if !wait_for_bytes(&conn, idle, &mut drain).await {
                return;
            }
        }
        // Everything a request needs lives in this boxed future, allocated per request: the
        // idle connection's own state stays small.
        let request = Box::pin(serve_request(&conn, &info, &shared, &listener));
        match request.await {
            Next::KeepAlive if !drain::is_draining() => {}
            Next::KeepAlive | Next::Close => break,
            Next::Gone => return,
            Next::Upgraded(upgraded) => {
                // `101 Switching Protocols` went out: from now on the connection carries the
                // new protocol's bytes both ways, untouched.
                let Conn { io, buf, .. } = conn.into_inner();
                let boxed = Box::pin(super::tunnel::relay(io, buf, upgraded));
                let _ = boxed.await;
                return;
            }
            Next::Inspect(bump) => {
                // The client waited for the `200` before its TLS hello: bytes already here
                // would be a protocol error.
                let Conn { io, buf, .. } = conn.into_inner();
                if let (true, Ok(tcp)) = (buf.is_empty(), io.into_tcp()) {
                    let boxed = Box::pin(super::inspect(tcp, &info, shared, *bump));
                    boxed.await;
                }
                return;
            }
        }
    }
    // An answer was just written and the client may still be sending (an unread body, a
    // pipelined request): close gently so the answer is not lost to a reset.
    let boxed = Box::pin(linger_close(conn.into_inner().io));
    boxed.await;
}

/// What the connection does after a request.
enum Next {
    /// Read the next request.
    KeepAlive,
    /// Close gently (lingering).
    Close,
    /// The peer went away: nothing more to do.
    Gone,
    /// Relay bytes to this upstream connection from now on.
    Upgraded(crate::upstream::Upgraded),
    /// Terminate the client's TLS and serve the requests inside (TLS inspection).
    Inspect(Box<crate::actions::forward_proxy::Bump>),
}

/// Reads one request head (bytes are waiting), runs its exchange, and says what comes next.
async fn serve_request<T: Transport>(
    conn: &RefCell<Conn<T>>,
    info: &Rc<ConnInfo>,
    shared: &Arc<Shared>,
    listener: &Arc<str>,
) -> Next {
    let snapshot = shared.snapshot.load_full();
    let Some(listener_plan) = snapshot.listener(listener) else { return Next::Gone };
    let inbound = Inbound { snapshot: &snapshot, listener: listener_plan, conn: info };
    let head = match read_head(conn, &snapshot.server).await {
        Ok(Some(head)) => head,
        Ok(None) => return Next::Gone,
        Err(reason) => {
            let mut sink = H1Sink::new(conn, http::Version::HTTP_11, false, false, &snapshot.server)
                .keeping_content_type(snapshot.access_log.records_content_type());
            let boxed = Box::pin(exchange::refuse(&inbound, reason, &mut sink));
            boxed.await;
            return Next::Close;
        }
    };
    let keep_alive = head.keep_alive && !drain::is_draining();
    let version = head.version;
    let head_request = head.method == http::Method::HEAD;
    let (parts, framing, expect_continue) = match into_parts(head) {
        Ok(split) => split,
        Err(reason) => {
            let mut sink = H1Sink::new(conn, version, false, false, &snapshot.server)
                .keeping_content_type(snapshot.access_log.records_content_type());
            let boxed = Box::pin(exchange::refuse(&inbound, reason, &mut sink));
            boxed.await;
            return Next::Close;
        }
    };
    {
        let mut c = conn.borrow_mut();
        c.decoder = Decoder::new(framing);
        c.expect_continue = expect_continue && framing.has_body();
        c.drain_limit = match snapshot.server.max_body_bytes {
            0 => DRAIN_BODY_MAX,
            max => max.min(DRAIN_BODY_MAX),
        };
    }
    let body = RequestBody::new(conn, &snapshot.server);
    let mut sink = H1Sink::new(conn, version, keep_alive, head_request, &snapshot.server)
        .keeping_content_type(snapshot.access_log.records_content_type());
    let complete = exchange::handle(&inbound, parts, body, &mut sink).await;
    if let Some(upgraded) = sink.take_upgraded() {
        return Next::Upgraded(upgraded);
    }
    if let Some(bump) = sink.take_bump() {
        return Next::Inspect(bump);
    }
    if sink.tunneled() {
        // Both directions of the tunnel ended (or it failed): nothing is left to read.
        return Next::Gone;
    }
    let mut keep = complete && sink.keeps_alive();
    if keep && !conn.borrow().decoder.is_done() {
        let boxed = Box::pin(finish_body(conn, &snapshot.server));
        keep = boxed.await;
    }
    if keep {
        Next::KeepAlive
    } else {
        Next::Close
    }
}

/// Turns a parsed head into neutral request parts, its body framing and `Expect: 100-continue`.
///
/// The `Host` field becomes the request's authority: from an absolute-form target it replaces
/// whatever `Host` said (RFC 9112 §3.2.2), so routing and the upstream see the same host.
fn into_parts(head: RequestHead) -> Result<(request::Parts, BodyFraming, bool), Reason> {
    let RequestHead {
        method,
        version,
        target,
        path_start,
        host,
        mut headers,
        body,
        expect_continue,
        upgrade,
        proxy_authorization,
        ..
    } = head;
    if target.contains(&b'#') {
        return Err(Reason::BadRequest);
    }
    let uri = Uri::from_maybe_shared(target).map_err(|_| Reason::BadRequest)?;
    if path_start > 0 {
        if let Some(host) = host {
            headers.insert(header::HOST, host);
        }
    }
    let mut parts = Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    if let Some(protocol) = upgrade {
        parts.extensions.insert(strait_http::context::UpgradeRequest(protocol));
    }
    if expect_continue && body.has_body() {
        parts.extensions.insert(strait_http::context::ExpectContinue);
    }
    if let Some(credentials) = proxy_authorization {
        parts.extensions.insert(strait_http::context::ProxyAuthorization(credentials));
    }
    Ok((parts, body, expect_continue))
}

/// After the exchange: reads what is left of a small request body so the connection can be
/// reused; `false` when the connection is to close instead.
async fn finish_body<T: Transport>(conn: &RefCell<Conn<T>>, server: &ServerPlan) -> bool {
    if conn.borrow().decoder.is_done() {
        return true;
    }
    if !conn.borrow().body_settles() {
        return false;
    }
    let mut body = RequestBody::new(conn, server);
    while let Some(frame) = crate::body::next_frame(&mut body).await {
        if frame.is_err() {
            return false;
        }
    }
    true
}

/// Closes the way nginx's lingering close does: send FIN, then read and discard what the client
/// still sends, for a bounded time and size. Closing a socket with unread data makes the kernel
/// send a reset, which can destroy the response the client has not read yet.
async fn linger_close<T: Transport>(mut io: T) {
    if io.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_TIME;
    let mut sink = vec![0u8; 16 * 1024];
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        let wait = deadline.min(Instant::now() + LINGER_READ);
        match timeout_at(wait, io.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => return,
        }
    }
}

/// Waits, at most `idle`, until the client sends its first bytes, and reads them into the buffer.
///
/// Returns `false` when the connection is to close: idle too long, closed by the peer, or the
/// server drains. `readable()` may wake up without data (it always does once on a fresh
/// connection), so readiness is confirmed by a read; the header timer starts only after it.
// Between exchanges the driver is the connection's only user: the borrow cannot conflict.
#[allow(clippy::await_holding_refcell_ref)]
async fn wait_for_bytes<T: Transport>(conn: &RefCell<Conn<T>>, idle: Duration, drain: &mut DrainWatch) -> bool {
    let deadline = Instant::now() + idle;
    let mut conn = conn.borrow_mut();
    let conn = &mut *conn;
    let timer = match &mut conn.idle_timer {
        Some(timer) => {
            timer.set(deadline);
            timer
        }
        none => none.insert(LazyDeadline::new(deadline)),
    };
    loop {
        // The last request is over and nothing points into its buffer any more: the worker
        // keeps it for whichever connection reads next.
        crate::buffers::recycle_read(std::mem::take(&mut conn.buf));
        tokio::select! {
            biased;
            ready = conn.io.readable() => {
                if ready.is_err() {
                    return false;
                }
            }
            () = poll_fn(|cx| timer.poll_expired(cx)) => return false,
            _ = drain.wait() => return false,
        }
        conn.buf = crate::buffers::read();
        let room = conn.buf.capacity() - conn.buf.len();
        match conn.io.try_read_buf(&mut conn.buf) {
            Ok(0) => return false,
            Ok(n) => {
                conn.io.note_read(n, room);
                return true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return false,
        }
    }
}

/// Reads until a complete request head is parsed, the peer closes, or a limit is hit.
///
/// `Ok(None)` means the peer closed (or failed) before sending a complete head.
// Between exchanges the driver is the connection's only user: the borrow cannot conflict.
#[allow(clippy::await_holding_refcell_ref)]
async fn read_head<T: Transport>(conn: &RefCell<Conn<T>>, server: &ServerPlan) -> Result<Option<RequestHead>, Reason> {
    let mut conn = conn.borrow_mut();
    let conn = &mut *conn;
    // The deadline is taken only when a read is needed: usually the whole head came in the
    // first read, and the clock is not consulted at all.
    let mut deadline = None;
    loop {
        if !conn.buf.is_empty() {
            if let Some(head) = parse_request_head(&mut conn.buf, &server.head_limits)? {
                return Ok(Some(head));
            }
        }
        let deadline = *deadline.get_or_insert_with(|| Instant::now() + server.client_header_timeout);
        if conn.buf.capacity() - conn.buf.len() < 1024 {
            conn.buf.reserve(crate::buffers::READ);
        }
        let room = conn.buf.capacity() - conn.buf.len();
        match timeout_at(deadline, conn.io.read_buf(&mut conn.buf)).await {
            Err(_) => return Err(Reason::HeaderTimeout),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
            Ok(Ok(n)) => conn.io.note_read(n, room),
        }
    }
}

/// Reads what the transport has into `buf` (used inside polls, with the borrow held only for it).
fn poll_read_into<T: AsyncRead + Unpin>(
    io: &mut T,
    buf: &mut BytesMut,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<std::io::Result<usize>> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(64 * 1024);
    }
    std::future::Future::poll(std::pin::pin!(io.read_buf(buf)), cx)
}

/// Writes all of `bytes` within `limit` of waiting, and no slower than `meter`'s minimum rate
/// when the response is metered. A write the socket takes at once (the usual case for a
/// response head and small body) needs no timer and no clock.
async fn write_all<T: Transport>(
    conn: &RefCell<Conn<T>>,
    mut bytes: &[u8],
    limit: Duration,
    meter: Option<&mut RateMeter>,
) -> Result<(), Reason> {
    let write = |cx: &mut std::task::Context<'_>, bytes: &mut &[u8]| -> Poll<bool> {
        let mut conn = conn.borrow_mut();
        while !bytes.is_empty() {
            match Pin::new(&mut conn.io).poll_write(cx, bytes) {
                Poll::Ready(Ok(n)) if n > 0 => *bytes = &bytes[n..],
                Poll::Ready(_) => return Poll::Ready(false),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(true)
    };
    let done = |written: bool| if written { Ok(()) } else { Err(Reason::ClientAborted) };
    if let Poll::Ready(written) = poll_fn(|cx| Poll::Ready(write(cx, &mut bytes))).await {
        return done(written);
    }
    let Some(meter) = meter else {
        return match tokio::time::timeout(limit, poll_fn(|cx| write(cx, &mut bytes))).await {
            Ok(written) => done(written),
            Err(_) => Err(Reason::ClientAborted),
        };
    };
    // Metered: the rate is looked at again only when the wait's one timer fires.
    let outcome = crate::body::metered_wait(limit, meter, |cx, meter| {
        let before = bytes.len();
        let written = write(cx, &mut bytes);
        meter.count(before - bytes.len());
        written
    })
    .await;
    outcome.and_then(done)
}

/// `100 Continue`, sent before the first read of a body whose client asked for it.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
