//! One client connection: read request heads, hand each to the exchange, keep alive.
//!
//! While a connection is idle it holds no buffer: the read buffer is released after every
//! request and allocated again when the next bytes arrive, so thousands of idle keep-alive
//! connections cost little memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::drain::{self, DrainWatch};
use super::exchange;
use super::Shared;
use crate::h1::{parse_request_head, RequestHead};
use crate::readiness;
use crate::reason::Reason;
use crate::snapshot::ServerPlan;

/// How long a closing connection keeps reading what the client still sends (nginx `lingering_time`).
const LINGER_TIME: Duration = Duration::from_secs(10);
/// Longest wait for more bytes while closing (nginx `lingering_timeout`).
const LINGER_READ: Duration = Duration::from_secs(2);
/// Most bytes discarded while closing.
const LINGER_BYTES: usize = 64 << 20;
/// Bytes reserved for reading a request head.
const HEAD_READ: usize = 4096;

/// The client side of a connection.
pub(crate) struct ClientConn {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read but not consumed yet (empty and unallocated while idle).
    pub buf: BytesMut,
    /// The TCP peer.
    pub peer: SocketAddr,
}

/// Serves one accepted connection until it closes, idles out or the server drains.
pub(crate) async fn serve_connection(stream: TcpStream, peer: SocketAddr, listener: Arc<str>, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut conn = ClientConn { stream, buf: BytesMut::new(), peer };
    let mut drain = DrainWatch::default();
    loop {
        if conn.buf.is_empty() {
            let idle = shared.snapshot.load().server.idle_timeout;
            if !wait_for_bytes(&mut conn, idle, &mut drain).await {
                return;
            }
        }
        let snapshot = shared.snapshot.load_full();
        let Some(listener_plan) = snapshot.listener(&listener) else { return };
        let head = match read_head(&mut conn, &snapshot.server).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(reason) => {
                exchange::reject_head(&mut conn, &snapshot, reason).await;
                break;
            }
        };
        let keep_alive = Box::pin(exchange::handle(&mut conn, head, &snapshot, listener_plan, &listener)).await;
        if !keep_alive || drain::is_draining() {
            break;
        }
    }
    // An answer was just written and the client may still be sending (an unread body, a
    // pipelined request): close gently so the answer is not lost to a reset.
    Box::pin(linger_close(conn.stream)).await;
}

/// Closes the way nginx's lingering close does: send FIN, then read and discard what the client
/// still sends, for a bounded time and size. Closing a socket with unread data makes the kernel
/// send a reset, which can destroy the response the client has not read yet.
async fn linger_close(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_TIME;
    let mut sink = vec![0u8; 16 * 1024];
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        let wait = deadline.min(Instant::now() + LINGER_READ);
        match timeout_at(wait, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => return,
        }
    }
}

/// Waits, at most `idle`, until the client sends its first bytes, and reads them into `conn.buf`.
///
/// Returns `false` when the connection is to close: idle too long, closed by the peer, or the
/// server drains. `readable()` may wake up without data (it always does once on a fresh
/// connection), so readiness is confirmed by a read; the header timer starts only after it.
async fn wait_for_bytes(conn: &mut ClientConn, idle: Duration, drain: &mut DrainWatch) -> bool {
    let deadline = Instant::now() + idle;
    loop {
        conn.buf = BytesMut::new();
        tokio::select! {
            ready = timeout_at(deadline, conn.stream.readable()) => {
                if !matches!(ready, Ok(Ok(()))) {
                    return false;
                }
            }
            _ = drain.wait() => return false,
        }
        conn.buf.reserve(HEAD_READ);
        let room = conn.buf.capacity() - conn.buf.len();
        match conn.stream.try_read_buf(&mut conn.buf) {
            Ok(0) => return false,
            Ok(n) => {
                readiness::note_read(&conn.stream, n, room);
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
async fn read_head(conn: &mut ClientConn, server: &ServerPlan) -> Result<Option<RequestHead>, Reason> {
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
            conn.buf.reserve(HEAD_READ);
        }
        let room = conn.buf.capacity() - conn.buf.len();
        match timeout_at(deadline, conn.stream.read_buf(&mut conn.buf)).await {
            Err(_) => return Err(Reason::HeaderTimeout),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
            Ok(Ok(n)) => readiness::note_read(&conn.stream, n, room),
        }
    }
}
