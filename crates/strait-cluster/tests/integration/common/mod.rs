//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait_cluster::{ClusterRegistry, ClusterState, PickContext};
use strait_config::units::Dur;
use strait_config::{Balancer, Cluster, ClusterTimeouts, Endpoint, Health};

/// A cluster over `endpoints` given as `(address, weight, backup)`.
pub fn cluster(name: &str, balancer: Balancer, endpoints: &[(&str, u32, bool)]) -> Cluster {
    Cluster {
        name: name.into(),
        endpoints: endpoints
            .iter()
            .map(|&(address, weight, backup)| Endpoint { address: address.into(), weight, backup })
            .collect(),
        balancer,
        hash_on: None,
        dns_refresh: Dur::secs(30),
        host_header: "preserve".into(),
        keepalive: 64,
        timeouts: ClusterTimeouts::default(),
        health: Health::default(),
        tls: None,
        protocol: Default::default(),
        filters: Vec::new(),
        proxy_protocol: None,
    }
}

/// `n` endpoints `127.0.0.1:10001..` with weight 1.
pub fn addresses(n: u16) -> Vec<String> {
    (1..=n).map(|i| format!("127.0.0.1:{}", 10000 + i)).collect()
}

/// Builds the single cluster `config` in a fresh registry.
pub async fn build(config: Cluster) -> Arc<ClusterState> {
    let registry = ClusterRegistry::new(tokio::runtime::Handle::current());
    let mut states = registry.update(std::slice::from_ref(&config)).await.expect("cluster builds");
    states.remove(&config.name).expect("cluster present")
}

/// A pick context for the client `10.0.0.1`, optionally with a hash key.
pub fn ctx(key: Option<&[u8]>) -> PickContext<'_> {
    PickContext { client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), hash_key: key }
}

/// Picks `n` times with no tried endpoints and counts the picks per address.
pub fn count(state: &ClusterState, n: usize) -> HashMap<SocketAddr, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let ep = state.pick(&ctx(None), &[]).expect("an endpoint");
        *counts.entry(ep.addr).or_default() += 1;
    }
    counts
}

/// Parses an address.
pub fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Polls `condition` every 10ms until it holds, panicking after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
