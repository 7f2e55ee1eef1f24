//! The state every worker thread reads: the live snapshot, and the open connections (in all
//! and per client address) that the connection limits count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use arc_swap::ArcSwap;

use crate::snapshot::Snapshot;

/// State every worker thread reads.
#[derive(Debug)]
pub struct Shared {
    /// The configuration snapshot new requests use.
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Open client connections, across all workers.
    connections: AtomicUsize,
    /// Open connections per client address, counted only while a per-address limit is set.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Shared {
    /// Shared state serving `snapshot`.
    pub(crate) fn new(snapshot: Snapshot) -> Shared {
        Shared { snapshot: ArcSwap::from_pointee(snapshot), connections: AtomicUsize::new(0), per_ip: Mutex::default() }
    }

    /// Counts a connection from `client` as open until the guard drops; `None` when it is
    /// over `max` in all or `max_per_ip` for its address (`0` means no limit).
    pub(crate) fn admit(&self, client: IpAddr, max: usize, max_per_ip: usize) -> Option<ConnectionGuard<'_>> {
        let open = self.connections.fetch_add(1, Ordering::Relaxed);
        let mut guard = ConnectionGuard { shared: self, client: None };
        if max != 0 && open >= max {
            return None;
        }
        if max_per_ip != 0 {
            let mut per_ip = self.per_ip.lock().expect("per-address counts");
            let count = per_ip.entry(client).or_insert(0);
            if *count >= max_per_ip {
                return None;
            }
            *count += 1;
            guard.client = Some(client);
        }
        Some(guard)
    }

    /// Open client connections.
    pub(crate) fn open_connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Counts one open connection until dropped.
pub(crate) struct ConnectionGuard<'a> {
    shared: &'a Shared,
    /// The address counted per client, when a per-address limit applied.
    client: Option<IpAddr>,
}

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(client) = self.client {
            let mut per_ip = self.shared.per_ip.lock().expect("per-address counts");
            if let Some(count) = per_ip.get_mut(&client) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&client);
                }
            }
        }
    }
}
