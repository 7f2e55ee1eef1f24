//! The `rate_limiting` plugin (Kong's): requests per second, minute, hour and day for each
//! key, counted with the sliding-window estimate of [`super::window`] in a [`CounterStore`].

use std::sync::Arc;

use http::{request, response};
use serde::Deserialize;
use strait_http::registry::{typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Plugin, PluginError, Reason, RequestCtx};

use super::headers;
use super::key::{KeySource, LimitBy};
use super::store::{CounterStore, LocalStore, StoreError};
use super::window::{Limit, Usage, Window};
use super::Clock;

/// Kong's priority of `rate-limiting`: after authentication (1000+), before transformations.
pub const PRIORITY: i32 = 910;

/// Where the counters are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// In this process, shared by its worker threads.
    #[default]
    Local,
    /// In Redis, shared by several processes (not available yet).
    Redis,
}

/// Settings of a `rate_limiting` filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitingConfig {
    /// Requests per second.
    pub second: Option<u64>,
    /// Requests per minute.
    pub minute: Option<u64>,
    /// Requests per hour.
    pub hour: Option<u64>,
    /// Requests per day.
    pub day: Option<u64>,
    /// What requests share a counter.
    #[serde(default = "default_limit_by")]
    pub limit_by: LimitBy,
    /// The request field counted by, with `limit_by: header`.
    pub header_name: Option<String>,
    /// The path counted, with `limit_by: path`.
    pub path: Option<String>,
    /// Where the counters are kept.
    #[serde(default)]
    pub policy: Policy,
    /// Leave the rate-limit headers out of responses (`Retry-After` is always sent with 429).
    #[serde(default)]
    pub hide_client_headers: bool,
    /// Most keys kept by the `local` policy; beyond it, the entries closest to expiry go first.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
}

fn default_limit_by() -> LimitBy {
    LimitBy::Consumer
}

/// Default of `max_keys` (shared by `limit_req`): at most some 20 MB of counters per filter.
pub(crate) fn default_max_keys() -> usize {
    100_000
}

impl RateLimitingConfig {
    /// The configured limits, shortest window first; refuses zero, none at all, and a longer
    /// window allowing fewer requests than a shorter one (as Kong does).
    fn limits(&self) -> Result<Vec<Limit>, PluginError> {
        let configured = [self.second, self.minute, self.hour, self.day];
        let mut limits: Vec<Limit> = Vec::new();
        for (window, max) in Window::ALL.into_iter().zip(configured) {
            let Some(max) = max else { continue };
            if max == 0 {
                return Err(PluginError::at(window.field(), "must be a positive integer"));
            }
            if let Some(shorter) = limits.iter().find(|l| l.max > max) {
                let message = format!(
                    "the limit per {} ({max}) cannot be lower than the limit per {} ({})",
                    window.field(),
                    shorter.window.field(),
                    shorter.max
                );
                return Err(PluginError::at(window.field(), message));
            }
            limits.push(Limit { window, max });
        }
        if limits.is_empty() {
            return Err(PluginError::at("", "set at least one limit: `second`, `minute`, `hour` or `day`"));
        }
        Ok(limits)
    }
}

/// The compiled settings shared by a filter's instances.
#[derive(Debug)]
struct Settings {
    limits: Vec<Limit>,
    /// The limits' header values, made once.
    fixed: headers::Fixed,
    key: KeySource,
    store: Arc<dyn CounterStore>,
    hide_client_headers: bool,
    clock: Clock,
}

impl Settings {
    /// Checks a configuration and creates its store.
    fn compile(config: &RateLimitingConfig, clock: Clock) -> Result<Settings, PluginError> {
        let limits = config.limits()?;
        let key = KeySource::compile(config.limit_by, config.header_name.as_deref(), config.path.as_deref())?;
        if config.max_keys == 0 {
            return Err(PluginError::at("max_keys", "must be a positive integer"));
        }
        let store: Arc<dyn CounterStore> = match config.policy {
            Policy::Local => Arc::new(LocalStore::new(config.max_keys)),
            Policy::Redis => {
                return Err(PluginError::at(
                    "policy",
                    "the `redis` policy is not available yet; use `local` (counters in this process)",
                ))
            }
        };
        let fixed = headers::Fixed::new(&limits);
        Ok(Settings { limits, fixed, key, store, hide_client_headers: config.hide_client_headers, clock })
    }
}

/// The `rate_limiting` plugin, with Kong's priority.
pub fn rate_limiting_plugin() -> impl Plugin {
    strait_http::registry::prioritized(
        typed("rate_limiting", |config: RateLimitingConfig, _env: &BuildEnv<'_>| {
            Ok(Arc::new(RateLimitingFactory::new(&config, Clock::wall())?) as Arc<dyn FilterFactory>)
        }),
        PRIORITY,
    )
}

/// Factory of one configured `rate_limiting` filter; its instances share one store.
#[derive(Debug)]
pub struct RateLimitingFactory(Arc<Settings>);

impl RateLimitingFactory {
    /// A factory for `config`, reading time from `clock`.
    pub fn new(config: &RateLimitingConfig, clock: Clock) -> Result<RateLimitingFactory, PluginError> {
        Ok(RateLimitingFactory(Arc::new(Settings::compile(config, clock)?)))
    }

    /// A factory for `config` whose counters are in `store` instead of its policy's.
    pub fn with_store(
        config: &RateLimitingConfig,
        clock: Clock,
        store: Arc<dyn CounterStore>,
    ) -> Result<RateLimitingFactory, PluginError> {
        let settings = Settings { store, ..Settings::compile(config, clock)? };
        Ok(RateLimitingFactory(Arc::new(settings)))
    }
}

impl FilterFactory for RateLimitingFactory {
    fn name(&self) -> &'static str {
        "rate_limiting"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS | Phases::RESPONSE_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(RateLimit { settings: self.0.clone(), key: String::new(), usage: None })
    }
}

/// One request's filter: its key, and the usage its response reports.
struct RateLimit {
    settings: Arc<Settings>,
    key: String,
    usage: Option<Usage>,
}

impl Filter for RateLimit {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        let RateLimit { settings, key, usage } = self;
        *key = settings.key.key(request, ctx);
        let key: &'a String = key;
        match settings.store.hit(key, &settings.limits, settings.clock.now()) {
            Phase::Ready(result) => Phase::Ready(decide(result, usage)),
            Phase::Wait(future) => Phase::wait(async move { decide(future.await, usage) }),
        }
    }

    fn response_headers<'a>(
        &'a mut self,
        response: &'a mut response::Parts,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, ()> {
        if let Some(usage) = &self.usage {
            if !self.settings.hide_client_headers {
                headers::write(usage, &self.settings.fixed, &mut response.headers);
            }
        }
        Phase::Ready(())
    }
}

/// Lets the request through or refuses it with 429 and `Retry-After`; keeps the usage for the
/// response's headers. A store that cannot answer lets the request through (Kong's
/// `fault_tolerant`), without headers.
fn decide(result: Result<Usage, StoreError>, kept: &mut Option<Usage>) -> Flow {
    let Ok(usage) = result else { return Flow::Continue };
    let flow = if usage.allowed {
        Flow::Continue
    } else {
        let mut refusal = LocalResponse::for_reason(Reason::RateLimited);
        let (name, value) = headers::retry_after(usage.retry_after_ms);
        refusal.headers.insert(name, value);
        Flow::Respond(refusal)
    };
    *kept = Some(usage);
    flow
}

#[cfg(test)]
mod tests;
