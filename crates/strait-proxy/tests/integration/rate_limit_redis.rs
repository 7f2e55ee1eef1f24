//! `rate_limiting` with `policy: redis` end to end, against real `redis-server` processes:
//! several Strait instances sharing one count, the same decisions and headers as the local
//! store, `fault_tolerant` open and closed while Redis is down and after it is back, a
//! password from a vault reference, and configuration errors with file, line and field.
//!
//! Windows are hours where exact counts matter, so no window rolls over mid-test.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use strait_http::Phase;
use strait_plugins::rate_limiting::key::{KeySource, LimitBy};
use strait_plugins::rate_limiting::redis::config::{FlatFields, RedisServer};
use strait_plugins::rate_limiting::redis::RedisStore;
use strait_plugins::rate_limiting::store::{CounterStore, LocalStore};
use strait_plugins::rate_limiting::window::{Limit, Window};
use support::redis::Redis;
use support::{Backend, Proxy, RawResponse};

/// A configuration with one route per `(path prefix, rate_limiting config)`, forwarding to `backend`.
fn yaml(backend: SocketAddr, routes: &[(&str, &str)]) -> String {
    with_workers(0, backend, routes)
}

/// [`yaml`] with `workers` worker threads (0: one per core). Each worker has its own Redis
/// connection and recovers on its own; tests of recovery use one, so that the first request
/// counted again tells that every later one is.
fn with_workers(workers: usize, backend: SocketAddr, routes: &[(&str, &str)]) -> String {
    let routes: String = routes
        .iter()
        .map(|(prefix, config)| {
            format!(
                "      - match: {{ path: {{ prefix: {prefix} }} }}\n        filters:\n          - name: rate_limiting\n            config: {{ {config} }}\n        forward: {{ cluster: app }}\n"
            )
        })
        .collect();
    format!(
        "workers: {workers}\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n{routes}clusters:\n  - name: app\n    endpoints: [{{ address: \"{backend}\" }}]\n"
    )
}

/// The `rate_limiting` settings of a tenant-keyed limit on `redis`.
fn redis_limit(redis: &Redis, extra: &str) -> String {
    format!("limit_by: header, header_name: x-tenant, policy: redis, redis_port: {}, {extra}", redis.port())
}

/// A GET of `path` for tenant `tenant`.
fn get(addr: SocketAddr, path: &str, tenant: &str) -> RawResponse {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test.local\r\nx-tenant: {tenant}\r\nConnection: close\r\n\r\n");
    support::raw_request(addr, request.as_bytes()).expect("a response")
}

/// Sends requests until one is refused (at most `most`), returning how many were admitted
/// and the refusal.
fn until_refused(addr: SocketAddr, tenant: &str, most: usize) -> (usize, RawResponse) {
    for admitted in 0..most {
        let response = get(addr, "/", tenant);
        match response.status {
            200 => continue,
            429 => return (admitted, response),
            other => panic!("status {other}: {response:?}"),
        }
    }
    panic!("no request of {most} was refused");
}

#[test]
fn three_instances_share_one_count_under_concurrent_load() {
    let redis = Redis::start();
    let backend = Backend::named("app");
    let config = yaml(backend.addr, &[("/", &redis_limit(&redis, "hour: 300"))]);
    let proxies: Vec<Proxy> = (0..3).map(|_| Proxy::start(&config)).collect();
    let addrs: Vec<SocketAddr> = proxies.iter().map(|p| p.addr("web")).collect();
    // 20 clients, 30 requests each, spread over the three instances.
    let clients: Vec<_> = (0..20)
        .map(|client| {
            let addrs = addrs.clone();
            std::thread::spawn(move || {
                (0..30).map(|i| get(addrs[(client + i) % addrs.len()], "/", "burst")).collect::<Vec<_>>()
            })
        })
        .collect();
    let responses: Vec<RawResponse> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let admitted = responses.iter().filter(|r| r.status == 200).count();
    let refused: Vec<&RawResponse> = responses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(admitted + refused.len(), 600, "only 200s and 429s");
    assert!((291..=309).contains(&admitted), "admitted {admitted} of 600 with a limit of 300");
    for refusal in &refused {
        let retry: u64 = refusal.header("retry-after").expect("Retry-After").parse().unwrap();
        assert!((1..=7_200).contains(&retry), "retry after {retry}");
        assert_eq!(refusal.header("x-ratelimit-remaining-hour"), Some("0"));
    }
    assert_eq!(backend.count(), admitted, "refused requests never reach the backend");
}

#[test]
fn identical_filters_share_counters_and_different_ones_do_not() {
    let redis = Redis::start();
    let backend = Backend::named("app");
    let routes = [("/a", redis_limit(&redis, "hour: 2")), ("/b", redis_limit(&redis, "hour: 3"))];
    let routes: Vec<(&str, &str)> = routes.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let (one, two) = (Proxy::start(&yaml(backend.addr, &routes)), Proxy::start(&yaml(backend.addr, &routes)));
    let first = get(one.addr("web"), "/a", "t1");
    assert_eq!((first.status, first.header("x-ratelimit-remaining-hour")), (200, Some("1")));
    let second = get(two.addr("web"), "/a", "t1");
    assert_eq!((second.status, second.header("x-ratelimit-remaining-hour")), (200, Some("0")), "the same count");
    assert_eq!(second.header("ratelimit-policy"), Some("2;w=3600"));
    let third = get(one.addr("web"), "/a", "t1");
    assert_eq!(third.status, 429);
    // Another limit is another filter: its own counters, though the key is the same.
    let other = get(one.addr("web"), "/b", "t1");
    assert_eq!((other.status, other.header("x-ratelimit-remaining-hour")), (200, Some("2")));
    assert_eq!(get(two.addr("web"), "/a", "t2").status, 200, "another tenant counts apart");
    // Only the current hour's counters exist: one key per filter and tenant.
    assert_eq!(redis.command(&["EVAL", "return #redis.call('KEYS', 'strait:rl:*:hour:*')", "0"]), ":3");
}

/// A store counting by client address in `redis`, with default settings but its port.
fn store_at(redis: &Redis, limits: &[Limit]) -> RedisStore {
    let key = KeySource::compile(LimitBy::Ip, None, None).unwrap();
    let flat = FlatFields {
        host: &None,
        port: Some(redis.port()),
        username: &None,
        password: &None,
        database: None,
        timeout: None,
    };
    RedisStore::new(RedisServer::resolve(flat, None).unwrap(), limits, &key)
}

#[test]
fn the_script_decides_as_the_local_store_does() {
    let redis = Redis::start();
    let limits = [
        Limit { window: Window::Second, max: 4 },
        Limit { window: Window::Minute, max: 30 },
        Limit { window: Window::Hour, max: 200 },
        Limit { window: Window::Day, max: 300 },
    ];
    let shared = store_at(&redis, &limits);
    let local = LocalStore::new(1_000);
    // 90 s before a UTC midnight: seconds, minutes, the hour and the day all roll over.
    let day = 86_400_000;
    let mut now: u64 = 1_800_000_000_000 - 1_800_000_000_000 % day + day - 90_000;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (mut admitted, mut refused) = (0, 0);
        for step in 0..1_500 {
            now += random(250);
            let key = ["ip:10.0.0.1", "ip:10.0.0.2", "ip:10.0.0.3"][random(3) as usize];
            let expected = match local.hit(key.as_bytes(), &limits, now) {
                Phase::Ready(usage) => usage.unwrap(),
                Phase::Wait(_) => panic!("the local store answers at once"),
            };
            let usage = shared.hit(key.as_bytes(), &limits, now).resolve().await.expect("Redis answers");
            assert_eq!(usage, expected, "step {step}, {key} at {now}");
            if usage.allowed {
                admitted += 1;
            } else {
                refused += 1;
            }
        }
        assert!(admitted > 300 && refused > 300, "both decisions were compared: {admitted} and {refused}");
    });
}

#[test]
fn requests_waiting_together_are_decided_in_one_call_each_in_turn() {
    let redis = Redis::start();
    let limits = [Limit { window: Window::Hour, max: 10 }];
    let shared = store_at(&redis, &limits);
    let now = 1_800_000_000_000;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // The first request connects; the next 15 wait for Redis together.
    runtime.block_on(shared.hit(b"ip:10.0.0.1", &limits, now).resolve()).unwrap();
    let calls = || redis.command(&["EVAL", EVALSHA_CALLS, "0"]).parse::<u64>().unwrap();
    let before = calls();
    let usages = runtime
        .block_on(futures_util::future::join_all((0..15).map(|_| shared.hit(b"ip:10.0.0.1", &limits, now).resolve())));
    let mut remaining: Vec<u64> = usages.iter().map(|u| u.as_ref().unwrap().windows[0].remaining).collect();
    let admitted = usages.iter().filter(|u| u.as_ref().unwrap().allowed).count();
    assert_eq!(admitted, 9, "one hit before, nine now: the limit of ten");
    remaining.sort_unstable();
    assert_eq!(remaining, [0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], "each counted in turn");
    assert_eq!(calls() - before, 1, "one script call for the fifteen");
}

/// A script reading how many `EVALSHA` calls the server has run.
const EVALSHA_CALLS: &str =
    "return string.match(redis.call('INFO', 'commandstats'), 'cmdstat_evalsha:calls=(%d+)') or '0'";

#[test]
fn fault_tolerant_lets_requests_through_while_redis_is_down_then_counts_again() {
    let mut redis = Redis::start();
    let backend = Backend::named("app");
    let limit = redis_limit(&redis, "hour: 5, redis_timeout: 500");
    let proxy = Proxy::start(&with_workers(1, backend.addr, &[("/", &limit)]));
    let addr = proxy.addr("web");
    let counted = get(addr, "/", "t1");
    assert_eq!((counted.status, counted.header("x-ratelimit-remaining-hour")), (200, Some("4")));
    redis.stop();
    for _ in 0..10 {
        let started = Instant::now();
        let response = get(addr, "/", "t1");
        assert_eq!(response.status, 200, "let through while Redis is down");
        assert_eq!(response.header("x-ratelimit-remaining-hour"), None, "uncounted: no headers");
        assert!(started.elapsed() < Duration::from_secs(3), "answered within about redis_timeout");
    }
    redis.restart();
    support::wait_until("counting to resume", || get(addr, "/", "t1").header("x-ratelimit-limit-hour").is_some());
    // The restarted Redis kept nothing: the count started over, with one request counted.
    let (admitted, refusal) = until_refused(addr, "t1", 10);
    assert_eq!(admitted, 4, "the limit holds again");
    assert!(refusal.header("retry-after").is_some());
}

#[test]
fn a_silent_redis_costs_one_timeout_per_pause_not_a_connection_per_request() {
    // A server that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    let backend = Backend::named("app");
    let limit = format!(
        "hour: 5, limit_by: header, header_name: x-tenant, policy: redis, redis_port: {port}, redis_timeout: 300"
    );
    let proxy = Proxy::start(&with_workers(1, backend.addr, &[("/", &limit)]));
    let addr = proxy.addr("web");
    // For 1.5 s: each attempt waits its 300 ms and fails; the pause after it (100 ms,
    // doubling) fails requests at once, without a connection.
    let (started, mut sent, mut waited) = (Instant::now(), 0, 0);
    while started.elapsed() < Duration::from_millis(1_500) {
        let before = Instant::now();
        let response = get(addr, "/", "t1");
        assert_eq!(response.status, 200, "let through (fault_tolerant)");
        assert_eq!(response.header("x-ratelimit-limit-hour"), None, "uncounted");
        assert!(before.elapsed() < Duration::from_secs(3), "bounded by redis_timeout");
        sent += 1;
        if before.elapsed() >= Duration::from_millis(250) {
            waited += 1;
        }
    }
    let connections = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(sent >= 20, "most requests were answered at once: {sent} in 1.5 s");
    assert!((1..=6).contains(&waited), "{waited} requests waited for the timeout");
    assert!((1..=6).contains(&connections), "{connections} connections for {sent} requests");
}

#[test]
fn without_fault_tolerance_requests_are_refused_while_redis_is_down() {
    let mut redis = Redis::start();
    let backend = Backend::named("app");
    let limit = redis_limit(&redis, "hour: 3, redis_timeout: 500ms, fault_tolerant: false");
    let proxy = Proxy::start(&with_workers(1, backend.addr, &[("/", &limit)]));
    let addr = proxy.addr("web");
    assert_eq!(get(addr, "/", "t1").status, 200);
    redis.stop();
    let before = backend.count();
    for _ in 0..5 {
        let started = Instant::now();
        let refused = get(addr, "/", "t1");
        assert_eq!(refused.status, 503);
        assert_eq!(refused.header("x-strait-reason"), Some("rate_limit_store_unavailable"));
        assert!(started.elapsed() < Duration::from_secs(3), "refused within about redis_timeout");
    }
    assert_eq!(backend.count(), before, "refused requests never reach the backend");
    redis.restart();
    support::wait_until("counting to resume", || get(addr, "/", "t1").status == 200);
    let (admitted, refusal) = until_refused(addr, "t1", 10);
    assert_eq!(admitted, 2, "three in the new count, one of them while waiting");
    assert_eq!(refusal.header("x-strait-reason"), Some("rate_limited"));
}

#[test]
fn the_password_can_come_from_a_vault_reference() {
    let redis = Redis::start_with(Some("s3cret-pass"));
    let backend = Backend::named("app");
    let lookup = |name: &str| (name == "RL_REDIS_PASSWORD").then(|| "s3cret-pass".to_owned());
    let limit =
        redis_limit(&redis, "hour: 2, fault_tolerant: false, redis_password: \"{vault://env/RL_REDIS_PASSWORD}\"");
    let config = strait_config::load_str_with_env(&yaml(backend.addr, &[("/", &limit)]), "test.yaml", &lookup).unwrap();
    let proxy = Proxy::start_config(config);
    let response = get(proxy.addr("web"), "/", "t1");
    assert_eq!((response.status, response.header("x-ratelimit-remaining-hour")), (200, Some("1")));
    // With a wrong password Redis refuses the connection: the request is refused, not counted.
    let wrong = redis_limit(&redis, "hour: 2, fault_tolerant: false, redis: { password: wrong }");
    let proxy = Proxy::start(&yaml(backend.addr, &[("/", &wrong)]));
    let refused = get(proxy.addr("web"), "/", "t1");
    assert_eq!((refused.status, refused.header("x-strait-reason")), (503, Some("rate_limit_store_unavailable")));
}

#[test]
fn redis_settings_errors_name_file_line_and_field() {
    let check = |config: &str| {
        let text = yaml("127.0.0.1:9".parse().unwrap(), &[("/", config)]);
        let config = strait_config::load_str(&text, "limits.yaml").expect("valid YAML");
        strait_proxy::check(&config).expect_err("refused").to_string()
    };
    let field = "listeners[0].routes[0].filters[0].config";
    let errors = check("hour: 5, policy: redis, redis_port: six");
    assert!(errors.contains(&format!("limits.yaml:9:59: {field}.redis_port: invalid type")), "{errors}");
    let errors = check("hour: 5, policy: redis, redis_hots: r");
    assert!(errors.contains(&format!("limits.yaml:9:47: {field}.redis_hots: unknown field `redis_hots`")), "{errors}");
    let errors = check("hour: 5, policy: redis, redis: { hots: r }");
    assert!(errors.contains(&format!("{field}.redis.hots: unknown field `hots`")), "{errors}");
    let errors = check("hour: 5, policy: local, redis_timeout: fast");
    assert!(errors.contains(&format!("{field}.redis_timeout:")), "{errors}");
}
