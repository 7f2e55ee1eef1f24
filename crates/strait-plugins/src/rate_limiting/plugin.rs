//! The `rate_limiting` plugin (Kong's): requests per second, minute, hour and day for each
//! key, counted with the sliding-window estimate of [`super::window`] in a [`CounterStore`].

use std::sync::Arc;

use http::{request, response};
use serde::Deserialize;
use strait_http::registry::{typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Plugin, PluginError, Reason, RequestCtx};

use super::headers;
use super::key::{Key, KeySource, LimitBy};
use super::redis::config::{FlatFields, RedisFields, RedisServer, Secret, Timeout};
use super::redis::{script, RedisStore};
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
    /// In Redis, shared by every process that uses the same server (see [`super::redis`]).
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
    /// When the store cannot answer (Redis unreachable or too slow): let requests through
    /// without headers (`true`, Kong's default) or refuse them with 503
    /// `rate_limit_store_unavailable`.
    #[serde(default = "default_fault_tolerant")]
    pub fault_tolerant: bool,
    /// `policy: redis`: the server's host (default `127.0.0.1`).
    pub redis_host: Option<String>,
    /// `policy: redis`: its port (default 6379).
    pub redis_port: Option<u16>,
    /// `policy: redis`: the user name for `AUTH`.
    pub redis_username: Option<String>,
    /// `policy: redis`: the password for `AUTH`.
    pub redis_password: Option<Secret>,
    /// `policy: redis`: the database number (default 0).
    pub redis_database: Option<u32>,
    /// `policy: redis`: longest wait per request, in milliseconds or with a unit (default 2000).
    pub redis_timeout: Option<Timeout>,
    /// `policy: redis`: the same settings as one object (Kong 3.6's `redis:`).
    pub redis: Option<RedisFields>,
}

fn default_fault_tolerant() -> bool {
    true
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
    fault_tolerant: bool,
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
        // As Kong, the Redis settings are checked with any policy and used only by `redis`.
        let flat = FlatFields {
            host: &config.redis_host,
            port: config.redis_port,
            username: &config.redis_username,
            password: &config.redis_password,
            database: config.redis_database,
            timeout: config.redis_timeout,
        };
        let server = RedisServer::resolve(flat, config.redis.as_ref())?;
        let store: Arc<dyn CounterStore> = match config.policy {
            Policy::Local => Arc::new(LocalStore::new(config.max_keys)),
            Policy::Redis => {
                for limit in &limits {
                    script::check_limit(*limit).map_err(|message| PluginError::at(limit.window.field(), message))?;
                }
                Arc::new(RedisStore::new(server, &limits, &key))
            }
        };
        let fixed = headers::Fixed::new(&limits);
        Ok(Settings {
            limits,
            fixed,
            key,
            store,
            hide_client_headers: config.hide_client_headers,
            fault_tolerant: config.fault_tolerant,
            clock,
        })
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
        Box::new(RateLimit { settings: self.0.clone(), key: Key::default(), usage: None })
    }
}

/// One request's filter: its key, and the usage its response reports.
struct RateLimit {
    settings: Arc<Settings>,
    key: Key,
    usage: Option<Usage>,
}

impl Filter for RateLimit {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        let RateLimit { settings, key, usage } = self;
        *key = settings.key.key(request, ctx);
        let key: &'a [u8] = key.as_bytes();
        let fault_tolerant = settings.fault_tolerant;
        match settings.store.hit(key, &settings.limits, settings.clock.at(ctx)) {
            Phase::Ready(result) => Phase::Ready(decide(result, usage, fault_tolerant)),
            Phase::Wait(future) => Phase::wait(async move { decide(future.await, usage, fault_tolerant) }),
        }
    }

    fn response_headers<'a>(
        &'a mut self,
        _response: &'a mut response::Parts,
        ctx: &'a mut RequestCtx,
    ) -> Phase<'a, ()> {
        if let Some(usage) = &self.usage {
            if !self.settings.hide_client_headers {
                headers::write(usage, &self.settings.fixed, &mut ctx.response_fields);
            }
        }
        Phase::Ready(())
    }
}

/// Lets the request through or refuses it with 429 and `Retry-After`; keeps the usage for the
/// response's headers. A store that cannot answer lets the request through without headers
/// when `fault_tolerant` (Kong's default), and refuses it with 503 otherwise.
fn decide(result: Result<Usage, StoreError>, kept: &mut Option<Usage>, fault_tolerant: bool) -> Flow {
    let usage = match result {
        Ok(usage) => usage,
        Err(_) if fault_tolerant => return Flow::Continue,
        Err(_) => return Flow::respond(LocalResponse::for_reason(Reason::RateLimitStoreUnavailable)),
    };
    let flow = if usage.allowed {
        Flow::Continue
    } else {
        let mut refusal = LocalResponse::for_reason(Reason::RateLimited);
        let (name, value) = headers::retry_after(usage.retry_after_ms);
        refusal.headers.insert(name, value);
        Flow::respond(refusal)
    };
    *kept = Some(usage);
    flow
}

#[cfg(test)]
mod tests;
