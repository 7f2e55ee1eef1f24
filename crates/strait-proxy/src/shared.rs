//! The state every worker thread reads: the live snapshot and the open-connection count.

use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;

use crate::snapshot::Snapshot;

/// State every worker thread reads: the live snapshot and the open-connection count.
#[derive(Debug)]
pub struct Shared {
    /// The configuration snapshot new requests use.
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Open client connections, across all workers.
    connections: AtomicUsize,
}

impl Shared {
    /// Shared state serving `snapshot`.
    pub(crate) fn new(snapshot: Snapshot) -> Shared {
        Shared { snapshot: ArcSwap::from_pointee(snapshot), connections: AtomicUsize::new(0) }
    }

    /// Counts a connection as open until the guard drops.
    pub(crate) fn track_connection(&self) -> ConnectionGuard<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(&self.connections)
    }

    /// Open client connections.
    pub(crate) fn open_connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Decrements the open-connection count when dropped.
pub(crate) struct ConnectionGuard<'a>(&'a AtomicUsize);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
