//! Reloads through the registry, and endpoint addresses resolved through DNS.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{addr, cluster, eventually};
use strait_cluster::ClusterRegistry;
use strait_config::units::Dur;
use strait_config::{ActiveHealth, Balancer, HealthKind};
use tokio::net::TcpListener;
use tokio::runtime::Handle;

#[tokio::test]
async fn unchanged_clusters_keep_their_state() {
    let registry = ClusterRegistry::new(Handle::current());
    let a = cluster("a", Balancer::RoundRobin, &[("127.0.0.1:1", 1, false)]);
    let b = cluster("b", Balancer::RoundRobin, &[("127.0.0.1:2", 1, false)]);
    let c = cluster("c", Balancer::RoundRobin, &[("127.0.0.1:3", 1, false)]);
    let first = registry.update(&[a.clone(), b.clone(), c.clone()]).await.unwrap();
    let guard = first["a"].endpoints()[0].start_request();

    let mut b2 = b.clone();
    b2.balancer = Balancer::Random;
    let second = registry.update(&[a.clone(), b2.clone()]).await.unwrap();
    assert!(Arc::ptr_eq(&first["a"], &second["a"]));
    assert_eq!(second["a"].endpoints()[0].in_flight(), 1, "counters survive");
    assert!(!Arc::ptr_eq(&first["b"], &second["b"]));
    assert_eq!(second["b"].config.balancer, Balancer::Random);
    assert!(!second.contains_key("c"));
    drop(guard);

    // Unchanged again relative to the latest update.
    let third = registry.update(&[a, b2]).await.unwrap();
    assert!(Arc::ptr_eq(&second["b"], &third["b"]));

    let duplicate = registry.update(&[c.clone(), c]).await.unwrap_err();
    assert!(duplicate.contains("`c`"), "{duplicate}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_clusters_stop_probing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });

    let registry = ClusterRegistry::new(Handle::current());
    let mut probed = cluster("probed", Balancer::RoundRobin, &[(&target, 1, false)]);
    probed.health.active = Some(ActiveHealth {
        kind: HealthKind::Tcp,
        interval: Dur(Duration::from_millis(10)),
        ..ActiveHealth::default()
    });
    let states = registry.update(&[probed]).await.unwrap();
    eventually(Duration::from_secs(10), "probes", || async { accepted.load(Ordering::SeqCst) >= 3 }).await;

    let weak = Arc::downgrade(&states["probed"]);
    drop(states);
    let states = registry.update(&[]).await.unwrap();
    assert!(states.is_empty());
    assert!(weak.upgrade().is_none(), "the registry no longer holds the state");

    // Let an in-progress probe finish, then no more arrive.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let settled = accepted.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), settled);
}

#[tokio::test]
async fn localhost_resolves() {
    let registry = ClusterRegistry::new(Handle::current());
    let config = cluster("local", Balancer::RoundRobin, &[("localhost:8081", 2, false), ("127.0.0.1:8082", 1, true)]);
    let states = registry.update(&[config]).await.unwrap();
    let endpoints = states["local"].endpoints();
    let resolved: Vec<_> = endpoints.iter().filter(|ep| ep.addr.port() == 8081).collect();
    assert!(resolved.iter().any(|ep| ep.addr == addr("127.0.0.1:8081")), "{endpoints:?}");
    assert!(resolved.iter().all(|ep| ep.addr.ip().is_loopback() && ep.weight == 2 && !ep.backup));
    assert!(endpoints.iter().any(|ep| ep.addr == addr("127.0.0.1:8082") && ep.backup));
}

#[tokio::test]
async fn unresolvable_names_are_errors() {
    let registry = ClusterRegistry::new(Handle::current());
    let config = cluster("ghost", Balancer::RoundRobin, &[("no-such-host.invalid:80", 1, false)]);
    let error = registry.update(&[config]).await.unwrap_err();
    assert!(error.contains("`ghost`") && error.contains("no-such-host.invalid:80"), "{error}");

    let bad = cluster("bad", Balancer::RoundRobin, &[("just-a-name", 1, false)]);
    let error = registry.update(&[bad]).await.unwrap_err();
    assert!(error.contains("`bad`") && error.contains("just-a-name"), "{error}");
}
