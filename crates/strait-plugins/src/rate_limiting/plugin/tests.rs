use serde_json::json;
use strait_config::Config;

use super::super::key::tests::{ctx_from, get, with_consumer};
use super::super::test_clock::{advance, manual};
use super::*;

fn build_error(config: serde_json::Value) -> PluginError {
    let env = BuildEnv { config: &Config::default() };
    rate_limiting_plugin().build(&config, &env).expect_err("config is refused")
}

/// A factory for `config` on a hand-moved clock starting at `start`.
fn factory(config: serde_json::Value, start: u64) -> (Arc<std::sync::atomic::AtomicU64>, RateLimitingFactory) {
    let config: RateLimitingConfig = serde_json::from_value(config).unwrap();
    let (time, clock) = manual(start);
    (time, RateLimitingFactory::new(&config, clock).unwrap())
}

/// Runs one request from `ctx` through a new filter: its flow and the response headers it adds.
fn run(factory: &RateLimitingFactory, request: &mut request::Parts, ctx: &mut RequestCtx) -> (u16, http::HeaderMap) {
    let mut filter = factory.create();
    let flow = match filter.request_headers(request, ctx) {
        Phase::Ready(flow) => flow,
        Phase::Wait(_) => panic!("the local store answers at once"),
    };
    let mut response = match flow {
        Flow::Continue => http::Response::new(()).into_parts().0,
        Flow::Respond(local) => {
            let mut response = http::Response::new(()).into_parts().0;
            response.status = local.status;
            response.headers = local.headers;
            response
        }
    };
    let Phase::Ready(()) = filter.response_headers(&mut response, ctx) else { panic!("headers are ready") };
    // As the exchange does before the response is written.
    ctx.response_fields.move_into(&mut response.headers);
    (response.status.as_u16(), response.headers)
}

fn run_from(factory: &RateLimitingFactory, ip: &str) -> (u16, http::HeaderMap) {
    run(factory, &mut get("/", &[]), &mut ctx_from(ip))
}

// === config ===

#[test]
fn limits_must_be_positive_and_at_least_one() {
    let error = build_error(json!({}));
    assert_eq!(error.path, "");
    assert!(error.message.contains("at least one limit"), "{}", error.message);
    let error = build_error(json!({ "minute": 0 }));
    assert_eq!((error.path.as_str(), error.message.as_str()), ("minute", "must be a positive integer"));
    let error = build_error(json!({ "hour": -5 }));
    assert_eq!(error.path, "hour");
    let error = build_error(json!({ "second": 1.5 }));
    assert_eq!(error.path, "second");
}

#[test]
fn a_longer_window_cannot_allow_fewer_requests() {
    let error = build_error(json!({ "second": 10, "hour": 5 }));
    assert_eq!(error.path, "hour");
    assert!(error.message.contains("per hour (5) cannot be lower than the limit per second (10)"), "{}", error.message);
}

#[test]
fn unknown_policies_and_fields_are_refused() {
    let error = build_error(json!({ "minute": 5, "policy": "cluster" }));
    assert_eq!(error.path, "policy");
    assert!(error.message.contains("unknown variant `cluster`"), "{}", error.message);
    let error = build_error(json!({ "minute": 5, "month": 100 }));
    assert!(error.message.contains("unknown field `month`"), "{}", error.message);
    let error = build_error(json!({ "minute": 5, "limit_by": "header" }));
    assert_eq!(error.path, "header_name");
}

#[test]
fn redis_settings_are_checked_with_any_policy() {
    let env = BuildEnv { config: &Config::default() };
    let plugin = rate_limiting_plugin();
    let built = |config: serde_json::Value| plugin.build(&config, &env).map(|_| ());
    // Kong ignores them with `policy: local`; their types are still checked.
    assert!(built(json!({ "minute": 5, "redis_host": "redis.internal", "redis_port": 6380 })).is_ok());
    assert!(built(json!({ "minute": 5, "policy": "redis", "redis": { "host": "r", "timeout": "50ms" } })).is_ok());
    let error = build_error(json!({ "minute": 5, "redis_port": "six" }));
    assert_eq!(error.path, "redis_port");
    let error = build_error(json!({ "minute": 5, "redis_port": 70000 }));
    assert_eq!(error.path, "redis_port");
    let error = build_error(json!({ "minute": 5, "policy": "redis", "redis": { "hots": "r" } }));
    assert_eq!(error.path, "redis.hots");
    assert!(error.message.contains("unknown field `hots`"), "{}", error.message);
    let error = build_error(json!({ "minute": 5, "redis_timeout": 0 }));
    assert_eq!(error.path, "redis_timeout");
    let error = build_error(json!({ "minute": 5, "redis_host": "a", "redis": { "host": "b" } }));
    assert_eq!(error.path, "redis.host");
    let error = build_error(json!({ "day": 200_000_000, "policy": "redis" }));
    assert_eq!(error.path, "day");
    assert!(error.message.contains("with `policy: redis`, at most"), "{}", error.message);
}

#[test]
fn defaults_follow_kong() {
    let config: RateLimitingConfig = serde_json::from_value(json!({ "minute": 5 })).unwrap();
    assert_eq!(config.limit_by, LimitBy::Consumer);
    assert_eq!(config.policy, Policy::Local);
    assert!(!config.hide_client_headers);
    assert!(config.fault_tolerant);
    let env = BuildEnv { config: &Config::default() };
    let plugin = rate_limiting_plugin();
    assert_eq!(plugin.priority(), 910);
    let factory = plugin.build(&json!({ "minute": 5 }), &env).unwrap();
    assert_eq!(factory.name(), "rate_limiting");
    assert!(factory.phases().contains(Phases::REQUEST_HEADERS | Phases::RESPONSE_HEADERS));
}

// === requests ===

#[test]
fn n_requests_pass_then_429_with_retry_after_and_counting_down_headers() {
    // 250 ms into a second.
    let (_time, factory) = factory(json!({ "second": 3, "limit_by": "ip" }), 1_000_000_250);
    let (mut remaining, mut resets) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (status, headers) = run_from(&factory, "10.0.0.1");
        assert_eq!(status, 200);
        assert_eq!(headers["x-ratelimit-limit-second"], "3");
        assert_eq!(headers["ratelimit-limit"], "3");
        assert_eq!(headers["ratelimit-policy"], "3;w=1");
        remaining.push(headers["x-ratelimit-remaining-second"].to_str().unwrap().to_owned());
        resets.push(headers["ratelimit-reset"].to_str().unwrap().to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    // The window ends in 750 ms; once it is used up, the reset is the wait (below).
    assert_eq!(resets, ["1", "1", "2"]);
    let (status, headers) = run_from(&factory, "10.0.0.1");
    assert_eq!(status, 429);
    // 750 ms to the next second, then 334 ms until 3 × (1 − d) ≤ 2: 1.084 s, rounded up.
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(headers["x-ratelimit-remaining-second"], "0");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(headers["ratelimit-reset"], "2");
}

#[test]
fn after_retry_after_a_request_passes_again() {
    let (time, factory) = factory(json!({ "minute": 2, "limit_by": "ip" }), 1_000_000_000);
    assert_eq!(run_from(&factory, "10.0.0.1").0, 200);
    assert_eq!(run_from(&factory, "10.0.0.1").0, 200);
    let (status, headers) = run_from(&factory, "10.0.0.1");
    assert_eq!(status, 429);
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    advance(&time, wait * 1_000 - 1_000);
    assert_eq!(run_from(&factory, "10.0.0.1").0, 429, "a second early is still too early");
    advance(&time, 1_000);
    assert_eq!(run_from(&factory, "10.0.0.1").0, 200);
}

#[test]
fn keys_are_separate_per_client_and_per_consumer() {
    let (_time, factory) = factory(json!({ "hour": 1 }), 1_000_000_000);
    assert_eq!(run_from(&factory, "10.0.0.1").0, 200);
    assert_eq!(run_from(&factory, "10.0.0.1").0, 429);
    assert_eq!(run_from(&factory, "10.0.0.2").0, 200, "another address has its own counter");
    let mut alice = with_consumer(ctx_from("10.0.0.1"), "alice");
    assert_eq!(run(&factory, &mut get("/", &[]), &mut alice).0, 200, "a consumer counts apart from its address");
    assert_eq!(run(&factory, &mut get("/", &[]), &mut alice).0, 429);
}

#[test]
fn hidden_headers_leave_only_retry_after() {
    let (_time, factory) = factory(json!({ "day": 1, "limit_by": "ip", "hide_client_headers": true }), 1_000_000_000);
    let (status, headers) = run_from(&factory, "10.0.0.1");
    assert_eq!(status, 200);
    assert!(headers.is_empty(), "{headers:?}");
    let (status, headers) = run_from(&factory, "10.0.0.1");
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));
    assert!(!headers.contains_key("ratelimit-limit") && !headers.contains_key("x-ratelimit-limit-day"));
}

// === stores that answer later ===

/// A store that answers after yielding once (as a network round trip would): with `usage`,
/// or with an error when it has none.
#[derive(Debug)]
struct LaterStore(Option<Usage>);

impl CounterStore for LaterStore {
    fn hit<'a>(&'a self, _key: &'a [u8], _limits: &'a [Limit], _now: u64) -> super::super::store::Hit<'a> {
        Phase::wait(async move {
            tokio::task::yield_now().await;
            self.0.clone().ok_or_else(|| StoreError("unreachable".into()))
        })
    }
}

/// The status and response headers of one request through a factory whose store is `store`.
async fn run_later(store: LaterStore) -> (u16, http::HeaderMap) {
    run_later_with(store, json!({ "minute": 2 })).await
}

/// [`run_later`] with the filter's configuration `config`.
async fn run_later_with(store: LaterStore, config: serde_json::Value) -> (u16, http::HeaderMap) {
    let config: RateLimitingConfig = serde_json::from_value(config).unwrap();
    let factory = RateLimitingFactory::with_store(&config, manual(0).1, Arc::new(store)).unwrap();
    let mut filter = factory.create();
    let (mut request, mut ctx) = (get("/", &[]), ctx_from("10.0.0.1"));
    let flow = filter.request_headers(&mut request, &mut ctx).resolve().await;
    let mut response = http::Response::new(()).into_parts().0;
    if let Flow::Respond(local) = flow {
        response.status = local.status;
        response.headers = local.headers;
    }
    filter.response_headers(&mut response, &mut ctx).resolve().await;
    ctx.response_fields.move_into(&mut response.headers);
    (response.status.as_u16(), response.headers)
}

#[tokio::test]
async fn an_async_store_decides_after_its_wait() {
    let window = super::super::window::WindowUsage {
        limit: Limit { window: Window::Minute, max: 2 },
        remaining: 0,
        reset_ms: 30_000,
    };
    let refused = Usage { allowed: false, retry_after_ms: 30_000, windows: smallvec::smallvec![window] };
    let (status, headers) = run_later(LaterStore(Some(refused))).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "30");
    assert_eq!(headers["x-ratelimit-remaining-minute"], "0");
}

#[tokio::test]
async fn a_failing_store_lets_requests_through_without_headers() {
    let (status, headers) = run_later(LaterStore(None)).await;
    assert_eq!(status, 200);
    assert!(headers.is_empty(), "{headers:?}");
}

#[tokio::test]
async fn a_failing_store_refuses_requests_when_not_fault_tolerant() {
    let (status, headers) = run_later_with(LaterStore(None), json!({ "minute": 2, "fault_tolerant": false })).await;
    assert_eq!(status, 503);
    assert!(!headers.contains_key("retry-after") && !headers.contains_key("ratelimit-limit"), "{headers:?}");
}
