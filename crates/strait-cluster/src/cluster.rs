//! A cluster's live state: its endpoints, balancer and background tasks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

use arc_swap::ArcSwap;
use strait_config::{ActiveHealth, Cluster};
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::balancer::{PickContext, Tier};
use crate::dns::{self, DnsCache, Resolved};
use crate::endpoint::EndpointState;
use crate::health::active;

/// A cluster shared by all worker threads; its background tasks stop when it is dropped.
#[derive(Debug)]
pub struct ClusterState {
    /// Name of the cluster.
    pub name: String,
    /// Configuration the state was built from.
    pub config: Cluster,
    /// `name`, shared with the endpoints for their logs.
    shared_name: Arc<str>,
    /// Current endpoints and balancer state, replaced when DNS answers change.
    snapshot: ArcSwap<Snapshot>,
    /// Active health settings, shared with the probe tasks.
    active: Option<Arc<ActiveHealth>>,
    /// Runtime the background tasks run on.
    runtime: Handle,
    /// Background tasks, aborted on drop.
    tasks: Mutex<Tasks>,
}

/// Endpoints and the balancer state built over them.
#[derive(Debug)]
struct Snapshot {
    endpoints: Arc<Vec<Arc<EndpointState>>>,
    primary: Tier,
    backup: Tier,
}

/// Handles of a cluster's background tasks.
#[derive(Debug, Default)]
struct Tasks {
    probes: HashMap<SocketAddr, AbortHandle>,
    dns: Option<AbortHandle>,
}

// === impl ClusterState ===

impl ClusterState {
    /// Builds the state over already resolved endpoints and starts its background tasks.
    pub(crate) fn start(config: Cluster, resolved: &[Resolved], runtime: Handle, cache: Arc<DnsCache>) -> Arc<Self> {
        let shared_name: Arc<str> = Arc::from(config.name.as_str());
        let active = config.health.active.clone().map(Arc::new);
        let state = Arc::new(ClusterState {
            name: config.name.clone(),
            shared_name,
            snapshot: ArcSwap::from_pointee(Snapshot::empty(&config)),
            active,
            runtime,
            tasks: Mutex::new(Tasks::default()),
            config,
        });
        state.set_endpoints(resolved);
        if dns::has_host_names(&state.config) {
            let task = state.runtime.spawn(refresh(Arc::downgrade(&state), cache));
            state.tasks().dns = Some(task.abort_handle());
        }
        state
    }

    /// The cluster's name as a shared string (for logs and request contexts, without copying).
    pub fn shared_name(&self) -> &Arc<str> {
        &self.shared_name
    }

    /// Chooses an endpoint for a request.
    ///
    /// Healthy endpoints not in `tried` come first: primaries, or backups when no such primary
    /// is left. After that, healthy endpoints already tried, in the same order. `None` when no
    /// endpoint is healthy.
    pub fn pick(&self, ctx: &PickContext<'_>, tried: &[SocketAddr]) -> Option<Arc<EndpointState>> {
        let snapshot = self.snapshot.load();
        let fresh = |ep: &EndpointState| ep.is_healthy() && !tried.contains(&ep.addr);
        if let Some(ep) = snapshot.primary.pick(ctx, fresh).or_else(|| snapshot.backup.pick(ctx, fresh)) {
            return Some(Arc::clone(ep));
        }
        if tried.is_empty() {
            return None;
        }
        let healthy = |ep: &EndpointState| ep.is_healthy();
        snapshot.primary.pick(ctx, healthy).or_else(|| snapshot.backup.pick(ctx, healthy)).cloned()
    }

    /// The current resolved endpoints, primaries and backups, in configuration order.
    pub fn endpoints(&self) -> Arc<Vec<Arc<EndpointState>>> {
        Arc::clone(&self.snapshot.load().endpoints)
    }

    /// Replaces the endpoint list, keeping the state of addresses still present, and starts
    /// or stops health probes accordingly. Does nothing when the addresses did not change.
    fn set_endpoints(&self, resolved: &[Resolved]) {
        let current = self.snapshot.load_full();
        let same = current.endpoints.len() == resolved.len()
            && current.endpoints.iter().zip(resolved).all(|(ep, r)| ep.addr == r.addr && ep.backup == r.backup);
        if same {
            return;
        }
        let existing: HashMap<SocketAddr, &Arc<EndpointState>> =
            current.endpoints.iter().map(|ep| (ep.addr, ep)).collect();
        let endpoints: Vec<Arc<EndpointState>> = resolved
            .iter()
            .map(|r| match existing.get(&r.addr) {
                Some(ep) if ep.backup == r.backup => Arc::clone(ep),
                _ => Arc::new(EndpointState::new(
                    Arc::clone(&self.shared_name),
                    r.addr,
                    r.weight,
                    r.backup,
                    self.config.health.passive.as_ref(),
                )),
            })
            .collect();
        self.snapshot.store(Arc::new(Snapshot::new(&self.config, endpoints.clone())));
        tracing::debug!(cluster = %self.name, endpoints = endpoints.len(), "endpoints updated");

        let Some(active) = &self.active else { return };
        let mut tasks = self.tasks();
        let mut probes = std::mem::take(&mut tasks.probes);
        for ep in &endpoints {
            let task = match probes.remove(&ep.addr) {
                Some(task) if existing.get(&ep.addr).is_some_and(|old| Arc::ptr_eq(old, ep)) => task,
                Some(stale) => {
                    stale.abort();
                    active::spawn(&self.runtime, Arc::clone(active), Arc::clone(ep))
                }
                None => active::spawn(&self.runtime, Arc::clone(active), Arc::clone(ep)),
            };
            tasks.probes.insert(ep.addr, task);
        }
        for (_, gone) in probes {
            gone.abort();
        }
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ClusterState {
    fn drop(&mut self) {
        let tasks = self.tasks.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, task) in tasks.probes.drain() {
            task.abort();
        }
        if let Some(task) = tasks.dns.take() {
            task.abort();
        }
    }
}

/// Resolves the cluster's host names again every `dns_refresh` until the cluster is dropped.
async fn refresh(cluster: Weak<ClusterState>, cache: Arc<DnsCache>) {
    let Some(period) = cluster.upgrade().map(|c| c.config.dns_refresh.0) else {
        return;
    };
    let period = period.max(std::time::Duration::from_millis(100));
    loop {
        tokio::time::sleep(period).await;
        let Some(config) = cluster.upgrade().map(|c| c.config.clone()) else {
            return;
        };
        let Ok(resolved) = dns::resolve(&config, &cache, false).await else {
            continue;
        };
        let Some(state) = cluster.upgrade() else {
            return;
        };
        state.set_endpoints(&resolved);
    }
}

// === impl Snapshot ===

impl Snapshot {
    fn empty(config: &Cluster) -> Self {
        Snapshot::new(config, Vec::new())
    }

    fn new(config: &Cluster, endpoints: Vec<Arc<EndpointState>>) -> Self {
        let (backups, primaries): (Vec<_>, Vec<_>) = endpoints.iter().cloned().partition(|ep| ep.backup);
        Snapshot {
            primary: Tier::new(config.balancer, primaries),
            backup: Tier::new(config.balancer, backups),
            endpoints: Arc::new(endpoints),
        }
    }
}

#[cfg(test)]
mod tests {
    use strait_config::units::Dur;
    use strait_config::{Balancer, ClusterTimeouts, Endpoint, Health};

    use super::*;

    fn resolved(ports: &[u16]) -> Vec<Resolved> {
        ports
            .iter()
            .map(|&port| Resolved { addr: SocketAddr::from(([127, 0, 0, 1], port)), weight: 1, backup: false })
            .collect()
    }

    #[tokio::test]
    async fn new_answers_keep_the_state_of_remaining_addresses() {
        let config = Cluster {
            name: "dns".into(),
            endpoints: vec![Endpoint { address: "127.0.0.1:1".into(), weight: 1, backup: false }],
            balancer: Balancer::RoundRobin,
            hash_on: None,
            dns_refresh: Dur::secs(30),
            host_header: "preserve".into(),
            keepalive: 0,
            timeouts: ClusterTimeouts::default(),
            health: Health::default(),
            tls: None,
            protocol: Default::default(),
            filters: Vec::new(),
            proxy_protocol: None,
        };
        let state = ClusterState::start(config, &resolved(&[1, 2]), Handle::current(), Arc::default());
        let before = state.endpoints();
        let _busy = before[1].start_request();

        state.set_endpoints(&resolved(&[1, 2]));
        assert!(Arc::ptr_eq(&before, &state.endpoints()), "same answer, same list");

        state.set_endpoints(&resolved(&[2, 3]));
        let after = state.endpoints();
        assert_eq!(after.len(), 2);
        assert!(Arc::ptr_eq(&before[1], &after[0]));
        assert_eq!(after[0].in_flight(), 1);
        assert_eq!(after[1].addr.port(), 3);
        let ctx = PickContext { client_ip: [10, 0, 0, 1].into(), hash_key: None };
        let picked: Vec<u16> = (0..4).map(|_| state.pick(&ctx, &[]).unwrap().addr.port()).collect();
        assert!(picked.contains(&2) && picked.contains(&3) && !picked.contains(&1));
    }
}
