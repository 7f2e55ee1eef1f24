//! Idle upstream connections kept per worker thread and endpoint (nginx `keepalive N`).
//!
//! Each worker owns its pool, so taking and returning a connection needs no lock. The most
//! recently returned connection is reused first (it is the least likely to have been closed
//! by the upstream); connections idle longer than the cluster's `timeouts.idle` are dropped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// An idle connection and when it became idle.
struct Idle {
    stream: TcpStream,
    since: Instant,
}

thread_local! {
    static POOL: RefCell<HashMap<SocketAddr, Vec<Idle>>> = RefCell::new(HashMap::new());
}

/// Takes an idle connection to `addr` that has been idle less than `max_idle`.
pub(crate) fn take(addr: SocketAddr, max_idle: Duration) -> Option<TcpStream> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.get_mut(&addr)?;
        while let Some(conn) = idle.pop() {
            if conn.since.elapsed() < max_idle {
                return Some(conn.stream);
            }
        }
        None
    })
}

/// Returns a connection for reuse, keeping at most `max_per_endpoint` idle ones.
pub(crate) fn put(addr: SocketAddr, stream: TcpStream, max_per_endpoint: usize) {
    if max_per_endpoint == 0 {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.entry(addr).or_default();
        if idle.len() >= max_per_endpoint {
            idle.remove(0);
        }
        idle.push(Idle { stream, since: Instant::now() });
    });
}

/// Whether a pooled connection still looks usable: no bytes and no EOF waiting on it.
pub(crate) fn is_reusable(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
