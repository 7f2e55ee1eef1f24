//! Distribution and selection behaviour of the load balancers.

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::{addr, addresses, build, cluster, count, ctx};
use strait_config::{Balancer, PassiveHealth};

#[tokio::test]
async fn round_robin_follows_weights_exactly() {
    let state = build(cluster(
        "rr",
        Balancer::RoundRobin,
        &[("127.0.0.1:1", 3, false), ("127.0.0.1:2", 2, false), ("127.0.0.1:3", 1, false)],
    ))
    .await;
    let counts = count(&state, 600);
    assert_eq!(counts[&addr("127.0.0.1:1")], 300);
    assert_eq!(counts[&addr("127.0.0.1:2")], 200);
    assert_eq!(counts[&addr("127.0.0.1:3")], 100);

    // Smooth: the heaviest endpoint never gets three picks in a row out of six.
    let order: Vec<u16> = (0..6).map(|_| state.pick(&ctx(None), &[]).unwrap().addr.port()).collect();
    assert!(order.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])), "{order:?}");
}

#[tokio::test]
async fn least_request_prefers_the_less_loaded() {
    let state = build(cluster(
        "lr",
        Balancer::LeastRequest,
        &[("127.0.0.1:1", 1, false), ("127.0.0.1:2", 1, false), ("127.0.0.1:3", 2, false)],
    ))
    .await;
    let eps = state.endpoints();
    // Loads per weight: 3/1, 1/1, 4/2.
    let mut guards: Vec<_> = (0..3).map(|_| eps[0].start_request()).collect();
    guards.push(eps[1].start_request());
    guards.extend((0..4).map(|_| eps[2].start_request()));
    for _ in 0..50 {
        assert_eq!(state.pick(&ctx(None), &[]).unwrap().addr, addr("127.0.0.1:2"));
    }
    guards.push(eps[1].start_request());
    guards.push(eps[1].start_request());
    // Now 3/1, 3/1, 4/2: the weighted one wins.
    assert_eq!(state.pick(&ctx(None), &[]).unwrap().addr, addr("127.0.0.1:3"));
    drop(guards);
    assert!(eps.iter().all(|ep| ep.in_flight() == 0));

    // Equal loads share the traffic.
    let counts = count(&state, 4000);
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|&n| n > 500), "{counts:?}");
}

#[tokio::test]
async fn random_follows_weights() {
    let state =
        build(cluster("random", Balancer::Random, &[("127.0.0.1:1", 3, false), ("127.0.0.1:2", 1, false)])).await;
    let counts = count(&state, 20_000);
    let heavy = counts[&addr("127.0.0.1:1")] as f64 / 20_000.0;
    assert!((heavy - 0.75).abs() < 0.03, "{counts:?}");
}

#[tokio::test]
async fn p2c_avoids_loaded_endpoints_and_spreads_otherwise() {
    let endpoints: Vec<(String, u32, bool)> = addresses(4).into_iter().map(|a| (a, 1, false)).collect();
    let list: Vec<(&str, u32, bool)> = endpoints.iter().map(|(a, w, b)| (a.as_str(), *w, *b)).collect();
    let state = build(cluster("p2c", Balancer::P2c, &list)).await;

    let counts = count(&state, 20_000);
    assert_eq!(counts.len(), 4);
    assert!(counts.values().all(|&n| (n as f64 / 20_000.0 - 0.25).abs() < 0.03), "{counts:?}");

    // With one endpoint busy, it is chosen only when drawn twice, which never happens: the two
    // draws are distinct.
    let eps = state.endpoints();
    let _busy: Vec<_> = (0..10).map(|_| eps[0].start_request()).collect();
    let counts = count(&state, 4000);
    assert!(!counts.contains_key(&eps[0].addr), "{counts:?}");
}

/// The endpoint each of `keys` maps to.
fn owners(state: &strait_cluster::ClusterState, keys: &[String]) -> HashMap<String, SocketAddr> {
    keys.iter().map(|k| (k.clone(), state.pick(&ctx(Some(k.as_bytes())), &[]).unwrap().addr)).collect()
}

/// Checks stability, spread and movement on removal of a hashing balancer; returns the share of
/// keys that moved although their endpoint stayed.
async fn hashing_movement(balancer: Balancer) -> f64 {
    let all = addresses(5);
    let five: Vec<(&str, u32, bool)> = all.iter().map(|a| (a.as_str(), 1, false)).collect();
    let state = build(cluster("hash", balancer, &five)).await;
    let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    let before = owners(&state, &keys);
    assert_eq!(before, owners(&state, &keys), "stable");

    let mut per_endpoint: HashMap<SocketAddr, usize> = HashMap::new();
    for owner in before.values() {
        *per_endpoint.entry(*owner).or_default() += 1;
    }
    assert_eq!(per_endpoint.len(), 5);
    assert!(per_endpoint.values().all(|&n| n > 1200 && n < 2800), "{per_endpoint:?}");

    // The same cluster built again maps keys the same way.
    let again = build(cluster("hash", balancer, &five)).await;
    assert_eq!(before, owners(&again, &keys));

    let removed = addr(&all[2]);
    let four: Vec<(&str, u32, bool)> = five.iter().copied().filter(|(a, _, _)| addr(a) != removed).collect();
    let smaller = build(cluster("hash", balancer, &four)).await;
    let after = owners(&smaller, &keys);
    let mut moved_elsewhere = 0;
    for key in &keys {
        if before[key] == removed {
            assert_ne!(after[key], removed);
        } else if before[key] != after[key] {
            moved_elsewhere += 1;
        }
    }
    moved_elsewhere as f64 / keys.len() as f64
}

#[tokio::test]
async fn ring_hash_moves_only_the_removed_endpoints_keys() {
    assert_eq!(hashing_movement(Balancer::RingHash).await, 0.0);
}

#[tokio::test]
async fn maglev_moves_little_more_than_the_removed_endpoints_keys() {
    let moved = hashing_movement(Balancer::Maglev).await;
    assert!(moved < 0.03, "{moved}");
}

/// A hashing balancer skips tried and unhealthy endpoints deterministically.
async fn hashing_skips(balancer: Balancer) {
    let all = addresses(5);
    let five: Vec<(&str, u32, bool)> = all.iter().map(|a| (a.as_str(), 1, false)).collect();
    let mut config = cluster("hash", balancer, &five);
    config.health.passive = Some(PassiveHealth { max_fails: 1, ..PassiveHealth::default() });
    let state = build(config).await;
    let key = ctx(Some(b"session-42"));
    let first = state.pick(&key, &[]).unwrap();
    let second = state.pick(&key, &[first.addr]).unwrap();
    assert_ne!(first.addr, second.addr);
    assert_eq!(second.addr, state.pick(&key, &[first.addr]).unwrap().addr);

    // An unhealthy owner sends its keys to the same endpoint a retry would go to.
    first.report_failure();
    assert!(!first.is_healthy());
    assert_eq!(state.pick(&key, &[]).unwrap().addr, second.addr);

    // The client address is hashed without a key.
    let by_ip = state.pick(&ctx(None), &[]).unwrap().addr;
    assert_eq!(by_ip, state.pick(&ctx(None), &[]).unwrap().addr);
}

#[tokio::test]
async fn ring_hash_skips_tried_and_unhealthy() {
    hashing_skips(Balancer::RingHash).await;
}

#[tokio::test]
async fn maglev_skips_tried_and_unhealthy() {
    hashing_skips(Balancer::Maglev).await;
}

#[tokio::test]
async fn weighted_maglev_follows_weights() {
    let state =
        build(cluster("maglev", Balancer::Maglev, &[("127.0.0.1:1", 2, false), ("127.0.0.1:2", 1, false)])).await;
    let mut heavy = 0;
    for i in 0..9000 {
        let key = format!("k{i}");
        if state.pick(&ctx(Some(key.as_bytes())), &[]).unwrap().addr == addr("127.0.0.1:1") {
            heavy += 1;
        }
    }
    assert!((heavy as f64 / 9000.0 - 2.0 / 3.0).abs() < 0.03, "{heavy}");
}

#[tokio::test]
async fn backups_serve_only_when_no_primary_is_healthy() {
    for balancer in [
        Balancer::RoundRobin,
        Balancer::LeastRequest,
        Balancer::Random,
        Balancer::P2c,
        Balancer::RingHash,
        Balancer::Maglev,
    ] {
        let mut config = cluster(
            "backup",
            balancer,
            &[("127.0.0.1:1", 1, false), ("127.0.0.1:2", 1, false), ("127.0.0.1:9", 1, true)],
        );
        config.health.passive = Some(PassiveHealth { max_fails: 1, ..PassiveHealth::default() });
        let state = build(config).await;
        let backup = addr("127.0.0.1:9");
        let counts = count(&state, 200);
        assert!(!counts.contains_key(&backup), "{balancer:?}: {counts:?}");

        let eps = state.endpoints();
        eps[0].report_failure();
        let counts = count(&state, 200);
        assert_eq!(counts.keys().copied().collect::<Vec<_>>(), vec![addr("127.0.0.1:2")], "{balancer:?}");

        eps[1].report_failure();
        let counts = count(&state, 50);
        assert_eq!(counts.keys().copied().collect::<Vec<_>>(), vec![backup], "{balancer:?}");

        eps[2].report_failure();
        assert!(state.pick(&ctx(None), &[]).is_none(), "{balancer:?}");
    }
}

#[tokio::test]
async fn tried_endpoints_are_avoided_while_others_are_left() {
    for balancer in [Balancer::RoundRobin, Balancer::LeastRequest, Balancer::Random, Balancer::P2c] {
        let state = build(cluster(
            "tried",
            balancer,
            &[("127.0.0.1:1", 1, false), ("127.0.0.1:2", 5, false), ("127.0.0.1:9", 1, true)],
        ))
        .await;
        let (a, b, backup) = (addr("127.0.0.1:1"), addr("127.0.0.1:2"), addr("127.0.0.1:9"));
        for _ in 0..50 {
            assert_eq!(state.pick(&ctx(None), &[b]).unwrap().addr, a, "{balancer:?}");
        }
        // Every primary tried: the untried backup comes next, then tried endpoints again.
        assert_eq!(state.pick(&ctx(None), &[a, b]).unwrap().addr, backup, "{balancer:?}");
        let again = state.pick(&ctx(None), &[a, b, backup]).unwrap().addr;
        assert!(again == a || again == b, "{balancer:?}");
    }
}
