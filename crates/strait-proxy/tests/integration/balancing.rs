//! Load balancing end to end: every balancer, hashing stickiness, backups and weighted splits.

use crate::support;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use support::{Backend, Proxy, RawConn, RawResponse, Reply};

// === helpers ===

/// A proxy config with listener `web` forwarding everything to cluster `app`.
///
/// `cluster` is the rest of the cluster definition (balancer, hash_on, health...), indented by
/// four spaces; `endpoints` comes from [`endpoints`].
fn config(cluster: &str, endpoints: &str) -> String {
    format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: {{ cluster: app }}\n\
         clusters:\n  - name: app\n{cluster}    endpoints:\n{endpoints}"
    )
}

/// Endpoint list lines: `(address, weight, backup)`.
fn endpoints(list: &[(SocketAddr, u32, bool)]) -> String {
    list.iter()
        .map(|(addr, weight, backup)| {
            format!("      - {{ address: \"{addr}\", weight: {weight}, backup: {backup} }}\n")
        })
        .collect()
}

/// Equal-weight primaries on these backends.
fn plain(backends: &[&Backend]) -> String {
    endpoints(&backends.iter().map(|b| (b.addr, 1, false)).collect::<Vec<_>>())
}

/// Sends a GET with extra header lines on a keep-alive connection and reads the answer.
fn send_get(conn: &mut RawConn, extra_headers: &str) -> RawResponse {
    conn.send(format!("GET /x HTTP/1.1\r\nHost: test.local\r\n{extra_headers}\r\n").as_bytes());
    conn.read_response().expect("response")
}

/// The `x-backend` header of a successful answer.
fn served_by(response: &RawResponse) -> String {
    assert_eq!(response.status, 200, "unexpected answer: {response:?}");
    response.header("x-backend").expect("x-backend header").to_owned()
}

/// Sends `n` sequential GETs on one connection; returns how many each backend served.
fn tally(addr: SocketAddr, n: usize) -> HashMap<String, usize> {
    let mut conn = RawConn::connect(addr);
    let mut counts = HashMap::new();
    for _ in 0..n {
        *counts.entry(served_by(&send_get(&mut conn, ""))).or_insert(0) += 1;
    }
    counts
}

/// Asserts `observed` is within `sigmas` standard deviations of a binomial(n, p) mean.
fn assert_binomial(name: &str, observed: usize, n: usize, p: f64, sigmas: f64) {
    let mean = n as f64 * p;
    let tolerance = sigmas * (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (observed as f64 - mean).abs() <= tolerance,
        "{name}: {observed} of {n}, expected {mean:.0} ± {tolerance:.0}"
    );
}

/// A raw connection whose source address is `source` (any 127.0.0.0/8 address on loopback).
fn connect_from(source: IpAddr, to: SocketAddr) -> RawConn {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).expect("bind client source address");
    socket.connect_timeout(&to.into(), support::WAIT).expect("connect");
    RawConn::from_stream(socket.into())
}

// === round robin, random, p2c ===

#[test]
fn round_robin_follows_weights_3_2_1() {
    let (a, b, c) = (Backend::named("a"), Backend::named("b"), Backend::named("c"));
    let proxy = Proxy::start(&config(
        "    balancer: round_robin\n",
        &endpoints(&[(a.addr, 3, false), (b.addr, 2, false), (c.addr, 1, false)]),
    ));
    let counts = tally(proxy.addr("web"), 600);
    // ±2% of 600 requests.
    for (name, expected) in [("a", 300), ("b", 200), ("c", 100)] {
        let got = counts.get(name).copied().unwrap_or(0);
        assert!(got.abs_diff(expected) <= 12, "{name}: {got}, expected {expected} ± 12 ({counts:?})");
    }
    assert_eq!(a.count() + b.count() + c.count(), 600);
}

#[test]
fn round_robin_is_smooth_rather_than_bursty() {
    let (a, b) = (Backend::named("a"), Backend::named("b"));
    let proxy = Proxy::start(&config("", &endpoints(&[(a.addr, 2, false), (b.addr, 1, false)])));
    let mut conn = RawConn::connect(proxy.addr("web"));
    let picks: Vec<String> = (0..30).map(|_| served_by(&send_get(&mut conn, ""))).collect();
    // Smooth weighted round robin interleaves: `b` never twice in a row, `a` never three times.
    for window in picks.windows(3) {
        assert!(window.iter().any(|p| p != "a"), "three `a` in a row: {picks:?}");
    }
    for window in picks.windows(2) {
        assert!(window.iter().any(|p| p != "b"), "two `b` in a row: {picks:?}");
    }
}

#[test]
fn random_balancer_follows_weights_within_tolerance() {
    let (a, b, c) = (Backend::named("a"), Backend::named("b"), Backend::named("c"));
    let proxy = Proxy::start(&config(
        "    balancer: random\n",
        &endpoints(&[(a.addr, 2, false), (b.addr, 1, false), (c.addr, 1, false)]),
    ));
    let n = 1200;
    let counts = tally(proxy.addr("web"), n);
    for (name, p) in [("a", 0.5), ("b", 0.25), ("c", 0.25)] {
        assert_binomial(name, counts.get(name).copied().unwrap_or(0), n, p, 5.0);
    }
}

#[test]
fn p2c_balancer_spreads_sequential_requests_evenly() {
    let backends: Vec<Backend> = ["a", "b", "c", "d"].into_iter().map(Backend::named).collect();
    let proxy = Proxy::start(&config("    balancer: p2c\n", &plain(&backends.iter().collect::<Vec<_>>())));
    let n = 1200;
    let counts = tally(proxy.addr("web"), n);
    for name in ["a", "b", "c", "d"] {
        assert_binomial(name, counts.get(name).copied().unwrap_or(0), n, 0.25, 5.0);
    }
}

/// Runs 4 client threads × 25 requests against a fast and a slow backend; returns the number of
/// requests each served.
fn load_fast_and_slow(balancer: &str) -> (usize, usize) {
    let fast = Backend::named("fast");
    let slow = Backend::start(|_| Reply::text("slow").header("x-backend", "slow").delayed(Duration::from_millis(200)));
    let proxy = Proxy::start(&config(&format!("    balancer: {balancer}\n"), &plain(&[&fast, &slow])));
    let addr = proxy.addr("web");
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut conn = RawConn::connect(addr);
                for _ in 0..25 {
                    served_by(&send_get(&mut conn, ""));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    assert_eq!(fast.count() + slow.count(), 100);
    (fast.count(), slow.count())
}

#[test]
fn least_request_sends_most_traffic_to_the_idle_endpoint() {
    let (fast, slow) = load_fast_and_slow("least_request");
    // Round robin would give each 50; least request only picks `slow` while it is not busier.
    assert!(slow * 2 <= fast, "least_request: fast {fast}, slow {slow}");
}

#[test]
fn p2c_sends_most_traffic_to_the_idle_endpoint() {
    let (fast, slow) = load_fast_and_slow("p2c");
    assert!(slow * 2 <= fast, "p2c: fast {fast}, slow {slow}");
}

// === hashing ===

#[test]
fn ring_hash_on_source_ip_is_sticky() {
    hashing_on_source_ip_is_sticky("ring_hash");
}

#[test]
fn maglev_on_source_ip_is_sticky() {
    hashing_on_source_ip_is_sticky("maglev");
}

/// All requests from one client address go to one backend, over fresh connections too; other
/// client addresses spread over the backends.
fn hashing_on_source_ip_is_sticky(balancer: &str) {
    let backends: Vec<Backend> = ["a", "b", "c", "d"].into_iter().map(Backend::named).collect();
    let proxy = Proxy::start(&config(
        &format!("    balancer: {balancer}\n    hash_on: source_ip\n"),
        &plain(&backends.iter().collect::<Vec<_>>()),
    ));
    let addr = proxy.addr("web");
    let mut conn = RawConn::connect(addr);
    let first = served_by(&send_get(&mut conn, ""));
    for _ in 0..30 {
        assert_eq!(served_by(&send_get(&mut conn, "")), first);
    }
    for _ in 0..10 {
        assert_eq!(served_by(&send_get(&mut RawConn::connect(addr), "Connection: close\r\n")), first);
    }
    let only = backends.iter().find(|b| b.count() > 0).expect("some backend served");
    assert_eq!(only.count(), 41, "all 41 requests from 127.0.0.1 went to one backend");

    // Other loopback source addresses: each sticky, together spread over the backends.
    let mut used = std::collections::HashSet::new();
    for host in 2..42u8 {
        let source = IpAddr::from([127, 0, 0, host]);
        let mut conn = connect_from(source, addr);
        let picked = served_by(&send_get(&mut conn, ""));
        for _ in 0..2 {
            assert_eq!(served_by(&send_get(&mut conn, "")), picked, "{source} moved");
        }
        used.insert(picked);
    }
    assert!(used.len() >= 3, "40 client addresses used only {used:?}");
}

#[test]
fn ring_hash_on_header_is_stable_per_user_and_spreads_users() {
    hashing_on_header_is_stable_and_spreads("ring_hash");
}

#[test]
fn maglev_on_header_is_stable_per_user_and_spreads_users() {
    hashing_on_header_is_stable_and_spreads("maglev");
}

/// Maps each of `users` to the backend serving `x-user: <user>`.
fn map_users(addr: SocketAddr, users: &[String]) -> HashMap<String, String> {
    let mut conn = RawConn::connect(addr);
    users.iter().map(|u| (u.clone(), served_by(&send_get(&mut conn, &format!("x-user: {u}\r\n"))))).collect()
}

fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

fn hashing_on_header_is_stable_and_spreads(balancer: &str) {
    let backends: Vec<Backend> = ["a", "b", "c", "d"].into_iter().map(Backend::named).collect();
    let proxy = Proxy::start(&config(
        &format!("    balancer: {balancer}\n    hash_on: {{ header: x-user }}\n"),
        &plain(&backends.iter().collect::<Vec<_>>()),
    ));
    let addr = proxy.addr("web");
    let users = users(200);
    let first = map_users(addr, &users);
    let again = map_users(addr, &users);
    assert_eq!(first, again, "the same user went to a different backend");
    for name in ["a", "b", "c", "d"] {
        let share = first.values().filter(|b| *b == name).count();
        // 50 expected for each of 4 backends.
        assert!(share >= 20, "{balancer}: backend {name} got {share} of 200 users");
    }
}

#[test]
fn ring_hash_removing_an_endpoint_moves_only_its_users() {
    let moved_elsewhere = removing_an_endpoint_moves_its_users("ring_hash");
    assert_eq!(moved_elsewhere, 0, "ring_hash moved users of endpoints that stayed");
}

#[test]
fn maglev_removing_an_endpoint_moves_its_users_and_few_others() {
    // Maglev's table refill is near-minimal, not exact: allow a few percent of other users.
    let moved_elsewhere = removing_an_endpoint_moves_its_users("maglev");
    assert!(moved_elsewhere <= 15, "maglev moved {moved_elsewhere} of ~300 users of endpoints that stayed");
}

/// Maps 400 users over 4 endpoints, removes one by reload, and maps them again. Asserts the
/// removed endpoint's users all moved to the others; returns how many other users moved.
fn removing_an_endpoint_moves_its_users(balancer: &str) -> usize {
    let backends: Vec<Backend> = ["a", "b", "c", "d"].into_iter().map(Backend::named).collect();
    let all: Vec<&Backend> = backends.iter().collect();
    let cluster = format!("    balancer: {balancer}\n    hash_on: {{ header: x-user }}\n");
    let proxy = Proxy::start(&config(&cluster, &plain(&all)));
    let addr = proxy.addr("web");
    let users = users(400);
    let before = map_users(addr, &users);
    let on_d = before.values().filter(|b| *b == "d").count();
    assert!(on_d >= 40, "d got only {on_d} of 400 users");

    proxy.reload(&config(&cluster, &plain(&all[..3]))).expect("reload");
    let after = map_users(addr, &users);
    let mut moved_elsewhere = 0;
    for user in &users {
        let (was, now) = (&before[user], &after[user]);
        assert_ne!(now, "d", "{user} still sent to the removed endpoint");
        if was != "d" && was != now {
            moved_elsewhere += 1;
        }
    }
    // `d` keeps running: any request it got after the reload would show up here.
    assert_eq!(backends[3].count(), on_d);
    moved_elsewhere
}

// === backups and splits ===

#[test]
fn backup_endpoint_serves_only_when_all_primaries_are_down() {
    let (p1, p2, backup) = (Backend::named("p1"), Backend::named("p2"), Backend::named("backup"));
    let proxy = Proxy::start(&config(
        "    health:\n      active: { kind: tcp, interval: 100ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1 }\n",
        &endpoints(&[(p1.addr, 1, false), (p2.addr, 1, false), (backup.addr, 1, true)]),
    ));
    let addr = proxy.addr("web");
    let counts = tally(addr, 60);
    assert_eq!(counts.get("p1"), Some(&30), "{counts:?}");
    assert_eq!(counts.get("p2"), Some(&30), "{counts:?}");
    assert_eq!(backup.count(), 0, "backup served while primaries were up");

    // One primary down: the other primary takes everything, still not the backup.
    p1.stop();
    support::wait_until("p2 to serve alone", || {
        let mut conn = RawConn::connect(addr);
        (0..4).all(|_| send_get(&mut conn, "").header("x-backend") == Some("p2"))
    });
    assert_eq!(tally(addr, 20).get("p2"), Some(&20));
    assert_eq!(backup.count(), 0, "backup served while a primary was up");

    p2.stop();
    support::wait_until("the backup to serve", || {
        send_get(&mut RawConn::connect(addr), "").header("x-backend") == Some("backup")
    });
    let counts = tally(addr, 20);
    assert_eq!(counts.get("backup"), Some(&20), "{counts:?}");
}

#[test]
fn weighted_split_sends_about_10_percent_to_the_canary() {
    let (main, canary) = (Backend::named("main"), Backend::named("canary"));
    let proxy = Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - split:\n\
         \x20         - {{ cluster: main, weight: 90 }}\n          - {{ cluster: canary, weight: 10 }}\n\
         clusters:\n  - name: main\n    endpoints: [{{ address: \"{}\" }}]\n\
         \x20 - name: canary\n    endpoints: [{{ address: \"{}\" }}]\n",
        main.addr, canary.addr
    ));
    let n = 1000;
    let counts = tally(proxy.addr("web"), n);
    let to_canary = counts.get("canary").copied().unwrap_or(0);
    assert_eq!(to_canary + counts.get("main").copied().unwrap_or(0), n);
    assert_binomial("canary", to_canary, n, 0.1, 5.0);
}
