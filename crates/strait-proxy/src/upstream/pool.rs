//! Idle upstream connections kept per worker thread and per [`PoolKey`] (nginx `keepalive N`).
//!
//! Each worker owns its pool, so taking and returning a connection needs no lock. A connection
//! is reusable only for requests that would have opened the same one: same address, same TLS
//! server name and client identity, same protocol; that is the key. The most recently returned
//! connection is reused first (the least likely to have been closed by the upstream);
//! connections idle longer than the cluster's `timeouts.idle` are dropped, and a per-worker
//! sweep ([`sweep`]) closes expired and upstream-closed ones even when no request asks.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;

use super::stream::UpstreamStream;
use crate::deadline::LazyDeadline;

/// The wire protocol of a pooled connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Protocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 (one connection carries many requests).
    Http2,
}

/// What makes two upstream connections interchangeable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    /// The endpoint address.
    pub addr: SocketAddr,
    /// The TLS settings the connection was made with (server name, client identity); 0 for
    /// plain TCP.
    pub tls: u64,
    /// The protocol spoken on it.
    pub protocol: Protocol,
}

/// What an HTTP/1.1 upstream connection keeps for its next exchange besides its socket, so
/// reusing it allocates nothing and registers no new timer.
#[derive(Default)]
pub(crate) struct Kept {
    /// The read buffer (nothing else points into it once its exchange is over).
    pub read: BytesMut,
    /// The buffer request heads are written into.
    pub write: BytesMut,
    /// The response-head timer.
    pub timer: Option<LazyDeadline>,
}

/// An idle connection and when it stops being reusable.
struct Idle {
    stream: UpstreamStream,
    kept: Kept,
    expires: Instant,
}

thread_local! {
    static POOL: RefCell<HashMap<PoolKey, Vec<Idle>, BuildKeyHasher>> = RefCell::new(HashMap::default());
}

/// A fast hasher for pool keys: they come from configuration and DNS, not from clients, so
/// flooding resistance (SipHash) buys nothing on this per-request lookup.
#[derive(Default, Clone, Copy)]
struct BuildKeyHasher;

impl std::hash::BuildHasher for BuildKeyHasher {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0xcbf2_9ce4_8422_2325)
    }
}

/// Multiply-rotate mixing over the key's bytes.
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl KeyHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
}

/// Takes the most recently returned idle connection for `key` that has not expired by `now`.
pub(crate) fn take(key: &PoolKey, now: Instant) -> Option<(UpstreamStream, Kept)> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.get_mut(key)?;
        while let Some(conn) = idle.pop() {
            if now < conn.expires {
                return Some((conn.stream, conn.kept));
            }
        }
        None
    })
}

/// Closes expired connections and those the upstream closed; forgets emptied keys.
pub(crate) fn sweep() {
    POOL.with(|pool| {
        let now = Instant::now();
        pool.borrow_mut().retain(|_, idle| {
            idle.retain(|conn| now < conn.expires && conn.stream.is_reusable());
            !idle.is_empty()
        });
    });
}

/// Returns a connection for reuse for at most `max_idle`, keeping at most `max_per_key`.
pub(crate) fn put(key: PoolKey, stream: UpstreamStream, kept: Kept, max_per_key: usize, max_idle: Duration) {
    if max_per_key == 0 {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.entry(key).or_default();
        if idle.len() >= max_per_key {
            idle.remove(0);
        }
        idle.push(Idle { stream, kept, expires: Instant::now() + max_idle });
    });
}
