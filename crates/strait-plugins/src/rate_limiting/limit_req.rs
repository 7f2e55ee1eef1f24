//! The `limit_req` plugin, as nginx `limit_req`: a leaky bucket per key (see
//! [`super::leaky_bucket`]); excess within `burst` waits (asynchronously, before the action)
//! unless `nodelay`, excess beyond it is refused with `status` (429) and `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use http::{request, StatusCode};
use serde::Deserialize;
use strait_http::registry::{typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Plugin, PluginError, RequestCtx};

use super::headers::retry_after;
use super::key::{KeySource, LimitBy};
use super::leaky_bucket::{Bucket, Rule, Take};
use super::plugin::default_max_keys;
use super::shards::Shards;
use super::{refusal, refusal_status, Clock};

/// Its default chain priority: with Kong's `rate-limiting` (910), just after it.
pub const PRIORITY: i32 = 905;

/// Settings of a `limit_req` filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitReqConfig {
    /// The drain rate: `<n>r/s` or `<n>r/m`.
    pub rate: String,
    /// Requests of excess allowed (delayed, or passed with `nodelay`) before refusing.
    #[serde(default)]
    pub burst: u64,
    /// Pass the burst at once instead of spacing it out at `rate`.
    #[serde(default)]
    pub nodelay: bool,
    /// Requests of excess passed at once before the rest of the burst waits (nginx `delay=`).
    pub delay: Option<u64>,
    /// Status of a refusal: 429 by default; nginx's default is 503.
    #[serde(default = "default_status")]
    pub status: u16,
    /// What requests share a bucket.
    #[serde(default = "default_limit_by")]
    pub limit_by: LimitBy,
    /// The request field counted by, with `limit_by: header`.
    pub header_name: Option<String>,
    /// The path counted, with `limit_by: path`.
    pub path: Option<String>,
    /// Most keys kept; beyond it, the buckets closest to drained go first.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
}

fn default_status() -> u16 {
    429
}

fn default_limit_by() -> LimitBy {
    LimitBy::Ip
}

/// The compiled settings shared by a filter's instances.
#[derive(Debug)]
struct Settings {
    rule: Rule,
    status: StatusCode,
    key: KeySource,
    buckets: Shards<Bucket>,
    clock: Clock,
}

impl Settings {
    /// Checks a configuration.
    fn compile(config: &LimitReqConfig, clock: Clock) -> Result<Settings, PluginError> {
        let rate = Rule::parse_rate(&config.rate).map_err(|message| PluginError::at("rate", message))?;
        let thousandths = |field: &str, n: u64| n.checked_mul(1_000).ok_or_else(|| PluginError::at(field, "too large"));
        let delay = match (config.nodelay, config.delay) {
            (true, Some(_)) => return Err(PluginError::at("delay", "cannot be combined with `nodelay: true`")),
            (true, None) => u64::MAX,
            (false, delay) => thousandths("delay", delay.unwrap_or(0))?,
        };
        let rule = Rule { rate, burst: thousandths("burst", config.burst)?, delay };
        let status = refusal_status(config.status)?;
        let key = KeySource::compile(config.limit_by, config.header_name.as_deref(), config.path.as_deref())?;
        if config.max_keys == 0 {
            return Err(PluginError::at("max_keys", "must be a positive integer"));
        }
        Ok(Settings { rule, status, key, buckets: Shards::new(config.max_keys), clock })
    }

    /// The refusal: `status`, reason `rate_limited`, and when to retry.
    fn refusal(&self, retry_ms: u64) -> LocalResponse {
        let mut refusal = refusal(self.status);
        let (name, value) = retry_after(retry_ms);
        refusal.headers.insert(name, value);
        refusal
    }
}

/// The `limit_req` plugin.
pub fn limit_req_plugin() -> impl Plugin {
    strait_http::registry::prioritized(
        typed("limit_req", |config: LimitReqConfig, _env: &BuildEnv<'_>| {
            Ok(Arc::new(LimitReqFactory::new(&config, Clock::monotonic())?) as Arc<dyn FilterFactory>)
        }),
        PRIORITY,
    )
}

/// Factory of one configured `limit_req` filter; its instances share the buckets.
#[derive(Debug)]
pub struct LimitReqFactory(Arc<Settings>);

impl LimitReqFactory {
    /// A factory for `config`, reading time from `clock`.
    pub fn new(config: &LimitReqConfig, clock: Clock) -> Result<LimitReqFactory, PluginError> {
        Ok(LimitReqFactory(Arc::new(Settings::compile(config, clock)?)))
    }
}

impl FilterFactory for LimitReqFactory {
    fn name(&self) -> &'static str {
        "limit_req"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(LimitReq(self.0.clone()))
    }
}

/// One request's filter.
struct LimitReq(Arc<Settings>);

impl Filter for LimitReq {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        let settings = &self.0;
        let key = settings.key.key(request, ctx);
        let now = settings.clock.now();
        match settings.buckets.with(&key, now, |bucket| bucket.take(&settings.rule, now)) {
            Take::Pass { delay_ms: 0 } => Phase::Ready(Flow::Continue),
            Take::Pass { delay_ms } => Phase::wait(async move {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                Flow::Continue
            }),
            Take::Refuse { retry_ms } => Phase::Ready(Flow::respond(settings.refusal(retry_ms))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use strait_config::Config;

    use super::super::key::tests::{ctx_from, get};
    use super::super::test_clock::{advance, manual};
    use super::*;
    use strait_http::Reason;

    fn build_error(config: serde_json::Value) -> PluginError {
        let env = BuildEnv { config: &Config::default() };
        limit_req_plugin().build(&config, &env).expect_err("config is refused")
    }

    /// What became of one request.
    #[derive(Debug)]
    enum Outcome {
        /// Let through at once.
        Now,
        /// Let through after a wait.
        Waits,
        /// Refused with this answer.
        Refused(Box<LocalResponse>),
    }

    /// One request from `ip`.
    fn request(factory: &LimitReqFactory, ip: &str) -> Outcome {
        let mut filter = factory.create();
        let (mut request, mut ctx) = (get("/", &[]), ctx_from(ip));
        let outcome = match filter.request_headers(&mut request, &mut ctx) {
            Phase::Ready(Flow::Continue) => Outcome::Now,
            Phase::Ready(Flow::Respond(answer)) => Outcome::Refused(answer),
            Phase::Wait(_) => Outcome::Waits,
        };
        outcome
    }

    fn refused(outcome: Outcome) -> LocalResponse {
        match outcome {
            Outcome::Refused(answer) => *answer,
            other => panic!("let through: {other:?}"),
        }
    }

    #[test]
    fn config_is_checked_field_by_field() {
        assert_eq!(build_error(json!({})).message, "missing field `rate`");
        assert_eq!(build_error(json!({ "rate": "10r/h" })).path, "rate");
        let error = build_error(json!({ "rate": "1r/s", "nodelay": true, "delay": 2 }));
        assert_eq!(error.path, "delay");
        let error = build_error(json!({ "rate": "1r/s", "status": 200 }));
        assert_eq!(error.path, "status");
        let error = build_error(json!({ "rate": "1r/s", "limit_by": "path" }));
        assert_eq!(error.path, "path");
        let error = build_error(json!({ "rate": "1r/s", "zone": "one" }));
        assert!(error.message.contains("unknown field `zone`"), "{}", error.message);
        let env = BuildEnv { config: &Config::default() };
        assert_eq!(limit_req_plugin().priority(), PRIORITY);
        assert!(limit_req_plugin().build(&json!({ "rate": "5r/s", "status": 503 }), &env).is_ok());
    }

    #[test]
    fn excess_waits_within_burst_and_is_refused_beyond_it() {
        let config: LimitReqConfig = serde_json::from_value(json!({ "rate": "10r/s", "burst": 2 })).unwrap();
        let (time, clock) = manual(0);
        let factory = LimitReqFactory::new(&config, clock).unwrap();
        assert!(matches!(request(&factory, "10.0.0.1"), Outcome::Now), "the first passes at once");
        assert!(matches!(request(&factory, "10.0.0.1"), Outcome::Waits), "the burst waits");
        assert!(matches!(request(&factory, "10.0.0.1"), Outcome::Waits));
        let refused = refused(request(&factory, "10.0.0.1"));
        assert_eq!(refused.status, 429);
        assert_eq!(refused.reason, Some(Reason::RateLimited));
        assert_eq!(refused.headers["retry-after"], "1");
        assert!(matches!(request(&factory, "10.0.0.2"), Outcome::Now), "another client has its own bucket");
        advance(&time, 300);
        assert!(matches!(request(&factory, "10.0.0.1"), Outcome::Now), "drained");
    }

    #[test]
    fn a_refusal_may_be_503_as_nginx() {
        let config: LimitReqConfig = serde_json::from_value(json!({ "rate": "1r/m", "status": 503 })).unwrap();
        let factory = LimitReqFactory::new(&config, manual(0).1).unwrap();
        assert!(matches!(request(&factory, "10.0.0.1"), Outcome::Now));
        let refused = refused(request(&factory, "10.0.0.1"));
        assert_eq!(refused.status, 503);
        assert_eq!(refused.body, "503 Service Unavailable: rate_limited\n");
        assert_eq!(refused.headers["retry-after"], "63");
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_lasts_the_excess_over_the_rate() {
        let config: LimitReqConfig = serde_json::from_value(json!({ "rate": "4r/s", "burst": 1 })).unwrap();
        let factory = LimitReqFactory::new(&config, manual(0).1).unwrap();
        assert!(matches!(request(&factory, "10.0.0.1"), Outcome::Now));
        let mut filter = factory.create();
        let (mut request, mut ctx) = (get("/", &[]), ctx_from("10.0.0.1"));
        let started = tokio::time::Instant::now();
        let flow = filter.request_headers(&mut request, &mut ctx).resolve().await;
        assert!(matches!(flow, Flow::Continue));
        assert_eq!(started.elapsed(), Duration::from_millis(250));
    }
}
