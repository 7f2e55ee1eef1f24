//! The `concurrency_limit` plugin: at most `max` requests in flight per key (as nginx
//! `limit_conn` counts connections). A request takes a slot before the action and gives it
//! back in the log phase, after its response ended; the slot is also given back when the
//! request's filter is dropped without a log phase (an aborted request never keeps one).

use std::sync::Arc;

use http::{request, StatusCode};
use serde::Deserialize;
use strait_http::registry::{typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, Phase, Phases, Plugin, PluginError, Reason, RequestCtx};

use super::key::{Key, KeySource, LimitBy};
use super::shards::{Expiring, Shards};
use super::{refusal, refusal_status};

/// Its default chain priority: with Kong's `rate-limiting` (910), just after `limit_req`.
pub const PRIORITY: i32 = 901;

/// Settings of a `concurrency_limit` filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyLimitConfig {
    /// Requests of one key in flight at once.
    pub max: u64,
    /// Status of a refusal: 429 by default (nginx `limit_conn_status` defaults to 503).
    #[serde(default = "default_status")]
    pub status: u16,
    /// What requests share a count.
    #[serde(default = "default_limit_by")]
    pub limit_by: LimitBy,
    /// The request field counted by, with `limit_by: header`.
    pub header_name: Option<String>,
    /// The path counted, with `limit_by: path`.
    pub path: Option<String>,
}

fn default_status() -> u16 {
    429
}

fn default_limit_by() -> LimitBy {
    LimitBy::Ip
}

/// The number of requests of one key in flight; a key with none is removed.
#[derive(Debug, Default)]
struct InFlight(u64);

impl Expiring for InFlight {
    fn expires_at(&self) -> u64 {
        if self.0 == 0 {
            0
        } else {
            u64::MAX
        }
    }
}

/// The in-flight counts of one configured filter, shared by its requests.
#[derive(Debug)]
struct Counts {
    max: u64,
    keys: Shards<InFlight>,
}

impl Counts {
    /// A slot for `key`, unless `max` of its requests are in flight.
    fn acquire(self: &Arc<Self>, key: Key) -> Option<Slot> {
        let taken = self.keys.with(&key, 0, |count| {
            let free = count.0 < self.max;
            count.0 += u64::from(free);
            free
        });
        taken.then(|| Slot { counts: self.clone(), key })
    }

    /// Requests of `key` in flight.
    #[cfg(test)]
    fn in_flight(&self, key: &[u8]) -> u64 {
        let mut count = 0;
        self.keys.update(key, |c| {
            count = c.0;
            true
        });
        count
    }
}

/// One request's place among its key's in-flight requests; dropping it gives it back.
#[derive(Debug)]
struct Slot {
    counts: Arc<Counts>,
    key: Key,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counts.keys.update(&self.key, |count| {
            count.0 = count.0.saturating_sub(1);
            count.0 > 0
        });
    }
}

/// The compiled settings shared by a filter's instances.
#[derive(Debug)]
struct Settings {
    key: KeySource,
    status: StatusCode,
    counts: Arc<Counts>,
}

/// The `concurrency_limit` plugin.
pub fn concurrency_limit_plugin() -> impl Plugin {
    strait_http::registry::prioritized(
        typed("concurrency_limit", |config: ConcurrencyLimitConfig, _env: &BuildEnv<'_>| {
            Ok(Arc::new(ConcurrencyLimitFactory::new(&config)?) as Arc<dyn FilterFactory>)
        }),
        PRIORITY,
    )
}

/// Factory of one configured `concurrency_limit` filter; its instances share the counts.
#[derive(Debug)]
pub struct ConcurrencyLimitFactory(Arc<Settings>);

impl ConcurrencyLimitFactory {
    /// A factory for `config`.
    pub fn new(config: &ConcurrencyLimitConfig) -> Result<ConcurrencyLimitFactory, PluginError> {
        if config.max == 0 {
            return Err(PluginError::at("max", "must be a positive integer"));
        }
        let status = refusal_status(config.status)?;
        let key = KeySource::compile(config.limit_by, config.header_name.as_deref(), config.path.as_deref())?;
        // In-flight counts are never evicted: their number is bounded by the requests in flight.
        let counts = Arc::new(Counts { max: config.max, keys: Shards::new(usize::MAX) });
        Ok(ConcurrencyLimitFactory(Arc::new(Settings { key, status, counts })))
    }
}

impl FilterFactory for ConcurrencyLimitFactory {
    fn name(&self) -> &'static str {
        "concurrency_limit"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS | Phases::LOG
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(ConcurrencyLimit { settings: self.0.clone(), slot: None })
    }
}

/// One request's filter, holding its slot while the request is in flight.
struct ConcurrencyLimit {
    settings: Arc<Settings>,
    slot: Option<Slot>,
}

impl Filter for ConcurrencyLimit {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        let settings = &self.settings;
        let key = settings.key.key(request, ctx);
        match settings.counts.acquire(key) {
            Some(slot) => {
                self.slot = Some(slot);
                Phase::Ready(Flow::Continue)
            }
            None => Phase::Ready(Flow::respond(refusal(settings.status))),
        }
    }

    fn log<'a>(&'a mut self, _ctx: &'a RequestCtx, _error: Option<Reason>) -> Phase<'a, ()> {
        self.slot = None;
        Phase::Ready(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use strait_config::Config;

    use super::super::key::tests::{ctx_from, get};
    use super::*;

    fn factory(config: serde_json::Value) -> ConcurrencyLimitFactory {
        ConcurrencyLimitFactory::new(&serde_json::from_value(config).unwrap()).unwrap()
    }

    /// A filter that has run its request phase for a request from `ip`, and the status it answered.
    fn start(factory: &ConcurrencyLimitFactory, ip: &str) -> (Box<dyn Filter>, u16) {
        let mut filter = factory.create();
        let (mut request, mut ctx) = (get("/", &[]), ctx_from(ip));
        let status = match filter.request_headers(&mut request, &mut ctx) {
            Phase::Ready(Flow::Continue) => 200,
            Phase::Ready(Flow::Respond(answer)) => answer.status.as_u16(),
            Phase::Wait(_) => panic!("decided at once"),
        };
        (filter, status)
    }

    #[test]
    fn max_requests_in_flight_then_refused_until_one_ends() {
        let factory = factory(json!({ "max": 2 }));
        let (mut first, status) = start(&factory, "10.0.0.1");
        assert_eq!(status, 200);
        let (_second, status) = start(&factory, "10.0.0.1");
        assert_eq!(status, 200);
        assert_eq!(start(&factory, "10.0.0.1").1, 429);
        assert_eq!(start(&factory, "10.0.0.2").1, 200, "another key counts apart");
        let ctx = ctx_from("10.0.0.1");
        let Phase::Ready(()) = first.log(&ctx, None) else { panic!("logged at once") };
        assert_eq!(factory.0.counts.in_flight(b"ip:10.0.0.1"), 1);
        assert_eq!(start(&factory, "10.0.0.1").1, 200);
    }

    #[test]
    fn a_dropped_filter_gives_its_slot_back() {
        let factory = factory(json!({ "max": 1, "status": 503 }));
        let (filter, status) = start(&factory, "10.0.0.1");
        assert_eq!(status, 200);
        assert_eq!(start(&factory, "10.0.0.1").1, 503);
        drop(filter);
        assert_eq!(factory.0.counts.in_flight(b"ip:10.0.0.1"), 0);
        assert_eq!(factory.0.counts.keys.len(), 0, "an idle key is removed");
        assert_eq!(start(&factory, "10.0.0.1").1, 200);
    }

    #[test]
    fn config_is_checked() {
        let env = BuildEnv { config: &Config::default() };
        let plugin = concurrency_limit_plugin();
        assert_eq!(plugin.build(&json!({ "max": 0 }), &env).unwrap_err().path, "max");
        assert_eq!(plugin.build(&json!({}), &env).unwrap_err().message, "missing field `max`");
        assert_eq!(plugin.build(&json!({ "max": 1, "status": 302 }), &env).unwrap_err().path, "status");
        assert_eq!(plugin.build(&json!({ "max": 1, "limit_by": "header" }), &env).unwrap_err().path, "header_name");
        assert!(plugin.build(&json!({ "max": 1 }), &env).unwrap().phases().contains(Phases::LOG));
    }
}
