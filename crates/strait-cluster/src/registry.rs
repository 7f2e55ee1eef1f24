//! The registry: builds cluster states for each configuration, reusing unchanged ones.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use strait_config::Cluster;
use tokio::runtime::Handle;
use tokio::sync::Mutex;

use crate::cluster::ClusterState;
use crate::dns::{self, DnsCache};

/// Owns the cluster states of the current configuration.
#[derive(Debug)]
pub struct ClusterRegistry {
    runtime: Handle,
    cache: Arc<DnsCache>,
    /// States of the last successful update; the lock also keeps updates from interleaving.
    current: Mutex<HashMap<String, Arc<ClusterState>>>,
}

// === impl ClusterRegistry ===

impl ClusterRegistry {
    /// A registry whose background tasks (health checks, DNS refresh) run on `runtime`.
    pub fn new(runtime: Handle) -> Self {
        ClusterRegistry { runtime, cache: Arc::new(DnsCache::default()), current: Mutex::new(HashMap::new()) }
    }

    /// Builds the states for a new configuration.
    ///
    /// A cluster equal to the one already held keeps its state (the same `Arc`, so health and
    /// counters survive a reload); changed and new clusters get new states with their tasks
    /// started; removed ones are no longer held, and their tasks stop once the last `Arc` to
    /// them is dropped. Host names are resolved here: one that does not resolve (within a
    /// bounded time) and never resolved before is an error naming the cluster and address, and
    /// then nothing changes.
    pub async fn update(&self, clusters: &[Cluster]) -> Result<HashMap<String, Arc<ClusterState>>, String> {
        let mut current = self.current.lock().await;
        let mut next = HashMap::with_capacity(clusters.len());
        let mut pending = Vec::new();
        let mut names = HashSet::with_capacity(clusters.len());
        for cluster in clusters {
            if !names.insert(cluster.name.as_str()) {
                return Err(format!("cluster `{}` is defined more than once", cluster.name));
            }
            match current.get(&cluster.name) {
                Some(state) if state.config == *cluster => {
                    next.insert(cluster.name.clone(), Arc::clone(state));
                }
                _ => {
                    let (config, cache) = (cluster.clone(), Arc::clone(&self.cache));
                    let task = self.runtime.spawn(async move { dns::resolve(&config, &cache, true).await });
                    pending.push((cluster, task));
                }
            }
        }
        let mut resolved = Vec::with_capacity(pending.len());
        for (cluster, task) in pending {
            let endpoints =
                task.await.map_err(|e| format!("cluster `{}`: resolving endpoints: {e}", cluster.name))??;
            resolved.push((cluster, endpoints));
        }
        for (cluster, endpoints) in resolved {
            let state = ClusterState::start(cluster.clone(), &endpoints, self.runtime.clone(), Arc::clone(&self.cache));
            next.insert(cluster.name.clone(), state);
        }
        *current = next.clone();
        Ok(next)
    }
}
