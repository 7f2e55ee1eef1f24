//! Idle upstream connections kept per worker thread and endpoint (nginx `keepalive N`).
//!
//! Each worker owns its pool, so taking and returning a connection needs no lock. The most
//! recently returned connection is reused first (it is the least likely to have been closed
//! by the upstream); connections idle longer than the cluster's `timeouts.idle` are dropped,
//! and a per-worker sweep ([`sweep`]) closes expired and upstream-closed ones even when no
//! request asks for them, so they do not linger in CLOSE_WAIT.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// An idle connection and when it stops being reusable.
struct Idle {
    stream: TcpStream,
    expires: Instant,
}

thread_local! {
    static POOL: RefCell<HashMap<SocketAddr, Vec<Idle>, BuildAddrHasher>> = RefCell::new(HashMap::default());
}

/// A fast hasher for endpoint addresses: the keys come from configuration and DNS, not from
/// clients, so flooding resistance (SipHash) buys nothing on this per-request lookup.
#[derive(Default, Clone, Copy)]
struct BuildAddrHasher;

impl std::hash::BuildHasher for BuildAddrHasher {
    type Hasher = AddrHasher;

    fn build_hasher(&self) -> AddrHasher {
        AddrHasher(0xcbf2_9ce4_8422_2325)
    }
}

/// Multiply-rotate mixing over the address bytes.
struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Takes the most recently returned idle connection to `addr` that has not expired.
pub(crate) fn take(addr: SocketAddr) -> Option<TcpStream> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.get_mut(&addr)?;
        let now = Instant::now();
        while let Some(conn) = idle.pop() {
            if now < conn.expires {
                return Some(conn.stream);
            }
        }
        None
    })
}

/// Closes expired connections and those the upstream closed; forgets emptied endpoints.
pub(crate) fn sweep() {
    POOL.with(|pool| {
        let now = Instant::now();
        pool.borrow_mut().retain(|_, idle| {
            idle.retain(|conn| now < conn.expires && is_reusable(&conn.stream));
            !idle.is_empty()
        });
    });
}

/// Returns a connection for reuse for at most `max_idle`, keeping at most `max_per_endpoint`.
pub(crate) fn put(addr: SocketAddr, stream: TcpStream, max_per_endpoint: usize, max_idle: Duration) {
    if max_per_endpoint == 0 {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.entry(addr).or_default();
        if idle.len() >= max_per_endpoint {
            idle.remove(0);
        }
        idle.push(Idle { stream, expires: Instant::now() + max_idle });
    });
}

/// Whether a pooled connection still looks usable: no bytes and no EOF waiting on it.
pub(crate) fn is_reusable(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
