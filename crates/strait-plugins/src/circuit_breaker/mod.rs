//! A circuit breaker: after too many upstream failures (in a row, or as a share of recent
//! requests), requests are answered with a fallback instead of reaching the upstream, until a
//! cool-down has passed; then a few trial requests decide whether it closes again.
//!
//! ```yaml
//! clusters:
//!   - name: orders
//!     filters:
//!       - name: circuit_breaker
//!         config:
//!           consecutive_failures: 5
//!           cool_down: 30s
//!           fallback: { last_response: true, status: 503, body: '{"orders": []}', content_type: application/json }
//! ```
//!
//! The state belongs to the `filters:` entry: on a route, that route has a breaker of its own;
//! on a cluster, every route forwarding there shares one. It is kept per configuration: a
//! reload starts closed.

mod state;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{response, StatusCode};
use serde::Deserialize;
use strait_config::units::{ByteSize, Dur};
use strait_http::context::ResponseLength;
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{
    BodyFilter, BodyStep, Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Plugin, PluginError, Reason,
    RequestCtx,
};

use state::{Admission, Breaker, Thresholds};

/// `x-strait-fallback`: which fallback answered while the breaker is open.
const FALLBACK: HeaderName = HeaderName::from_static("x-strait-fallback");

/// Settings of a `circuit_breaker` filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Open after this many failed requests in a row; 0 turns counting off.
    #[serde(default = "default_consecutive")]
    pub consecutive_failures: u32,
    /// Open on the share of failed requests in a recent window.
    #[serde(default)]
    pub failure_rate: Option<FailureRate>,
    /// How long the breaker stays open.
    #[serde(default = "default_cool_down")]
    pub cool_down: Dur,
    /// Trial requests let through at once after the cool-down.
    #[serde(default = "default_trials")]
    pub half_open_requests: u32,
    /// Upstream statuses that count as failures (connection failures and timeouts always do).
    #[serde(default = "default_statuses")]
    pub failure_statuses: Vec<u16>,
    /// The answer while open; without it, 503 `circuit_open`.
    #[serde(default)]
    pub fallback: Option<Fallback>,
}

/// Opening on a failure rate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRate {
    /// Share of failures, above 0 and at most 1 (`0.5`).
    pub threshold: f64,
    /// Requests seen in the window before the rate counts.
    #[serde(default = "default_minimum")]
    pub minimum_requests: u32,
    /// How far back the rate looks.
    #[serde(default = "default_window")]
    pub window: Dur,
}

/// What an open breaker answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// Status of the fixed answer.
    #[serde(default = "default_fallback_status")]
    pub status: u16,
    /// Body of the fixed answer.
    #[serde(default)]
    pub body: String,
    /// Its content type.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// Answer with the last successful upstream response instead, once there was one.
    #[serde(default)]
    pub last_response: bool,
    /// Largest response body kept for `last_response`.
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
}

fn default_consecutive() -> u32 {
    5
}
fn default_cool_down() -> Dur {
    Dur::secs(30)
}
fn default_trials() -> u32 {
    1
}
fn default_statuses() -> Vec<u16> {
    vec![500, 502, 503, 504]
}
fn default_minimum() -> u32 {
    20
}
fn default_window() -> Dur {
    Dur::secs(10)
}
fn default_fallback_status() -> u16 {
    503
}
fn default_content_type() -> String {
    "text/plain; charset=utf-8".into()
}
fn default_max_body() -> ByteSize {
    ByteSize(64 * 1024)
}

/// The `circuit_breaker` plugin (priority 10: after authentication and limits, so refused
/// requests never count as the upstream's failures).
pub fn circuit_breaker_plugin() -> impl Plugin {
    prioritized(
        typed("circuit_breaker", |config: CircuitBreakerConfig, _env: &BuildEnv<'_>| {
            Ok(Arc::new(CircuitBreakerFactory::new(config)?) as Arc<dyn FilterFactory>)
        }),
        10,
    )
}

/// A successful upstream response kept for the `last_response` fallback.
#[derive(Debug, Clone)]
struct Kept {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// What a breaker's requests share.
#[derive(Debug)]
struct Shared {
    breaker: Mutex<Breaker>,
    failure_statuses: Vec<StatusCode>,
    fixed: LocalResponse,
    last_response: Option<usize>,
    kept: Mutex<Option<Kept>>,
}

impl Shared {
    fn breaker(&self) -> MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer while open.
    fn fallback(&self) -> LocalResponse {
        if self.last_response.is_some() {
            if let Some(kept) = self.kept.lock().unwrap_or_else(PoisonError::into_inner).clone() {
                let mut answer =
                    LocalResponse { status: kept.status, headers: kept.headers, body: kept.body, reason: None };
                answer.headers.insert(FALLBACK, HeaderValue::from_static("last_response"));
                return answer;
            }
        }
        self.fixed.clone()
    }
}

/// Factory of one configured breaker.
#[derive(Debug)]
struct CircuitBreakerFactory(Arc<Shared>);

impl CircuitBreakerFactory {
    fn new(config: CircuitBreakerConfig) -> Result<CircuitBreakerFactory, PluginError> {
        let rate = config.failure_rate.as_ref();
        if let Some(rate) = rate {
            if !(rate.threshold > 0.0 && rate.threshold <= 1.0) {
                return Err(PluginError::at("failure_rate.threshold", "must be above 0 and at most 1"));
            }
            if rate.window.0.is_zero() {
                return Err(PluginError::at("failure_rate.window", "must be greater than zero"));
            }
        }
        if config.consecutive_failures == 0 && rate.is_none() {
            return Err(PluginError::at(
                "consecutive_failures",
                "0 and no `failure_rate`: the breaker would never open",
            ));
        }
        if config.cool_down.0.is_zero() {
            return Err(PluginError::at("cool_down", "must be greater than zero"));
        }
        if config.half_open_requests == 0 {
            return Err(PluginError::at("half_open_requests", "at least one trial request is needed to close again"));
        }
        let mut failure_statuses = Vec::with_capacity(config.failure_statuses.len());
        for (i, status) in config.failure_statuses.iter().enumerate() {
            match StatusCode::from_u16(*status) {
                Ok(status) if status.as_u16() >= 200 => failure_statuses.push(status),
                _ => return Err(PluginError::at(format!("failure_statuses[{i}]"), "not a final status (200 to 599)")),
            }
        }
        let fixed = match &config.fallback {
            None => LocalResponse::for_reason(Reason::CircuitOpen),
            Some(fallback) => {
                let status = StatusCode::from_u16(fallback.status)
                    .ok()
                    .filter(|s| s.as_u16() >= 200)
                    .ok_or_else(|| PluginError::at("fallback.status", "not a final status (200 to 599)"))?;
                let content_type = HeaderValue::from_str(&fallback.content_type)
                    .map_err(|_| PluginError::at("fallback.content_type", "not a valid header value"))?;
                let mut answer = LocalResponse::for_reason(Reason::CircuitOpen);
                answer.status = status;
                answer.body = Bytes::from(fallback.body.clone());
                answer.headers.insert(header::CONTENT_TYPE, content_type);
                answer.headers.insert(FALLBACK, HeaderValue::from_static("fixed"));
                answer
            }
        };
        let thresholds = Thresholds {
            consecutive_failures: config.consecutive_failures,
            failure_rate: rate.map_or(0.0, |r| r.threshold),
            minimum_requests: rate.map_or(0, |r| r.minimum_requests),
            window: rate.map_or(std::time::Duration::ZERO, |r| r.window.0),
            cool_down: config.cool_down.0,
            half_open_requests: config.half_open_requests,
        };
        let last_response = config.fallback.as_ref().filter(|f| f.last_response).map(|f| f.max_body.0 as usize);
        Ok(CircuitBreakerFactory(Arc::new(Shared {
            breaker: Mutex::new(Breaker::new(thresholds)),
            failure_statuses,
            fixed,
            last_response,
            kept: Mutex::new(None),
        })))
    }
}

impl FilterFactory for CircuitBreakerFactory {
    fn name(&self) -> &'static str {
        "circuit_breaker"
    }

    fn phases(&self) -> Phases {
        let keep = if self.0.last_response.is_some() { Phases::RESPONSE_BODY } else { Phases::NONE };
        Phases::REQUEST_HEADERS | Phases::RESPONSE_HEADERS | Phases::LOG | keep
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(CircuitBreaker { shared: self.0.clone(), admission: None, plain_get: false, keep: None })
    }
}

/// One request's view of the breaker.
struct CircuitBreaker {
    shared: Arc<Shared>,
    /// What the breaker decided, until the outcome is recorded.
    admission: Option<Admission>,
    /// The request is a GET without `Range`, whose answer may serve as `last_response`.
    plain_get: bool,
    /// A successful upstream head (and its body's length, when known), while its body may be kept.
    keep: Option<(StatusCode, HeaderMap, Option<u64>)>,
}

impl Filter for CircuitBreaker {
    fn request_headers<'a>(
        &'a mut self,
        request: &'a mut http::request::Parts,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, Flow> {
        self.plain_get = request.method == http::Method::GET && !request.headers.contains_key(header::RANGE);
        let admission = self.shared.breaker().admit(Instant::now());
        self.admission = Some(admission);
        Phase::Ready(match admission {
            Admission::Refuse => Flow::respond(self.shared.fallback()),
            Admission::Pass | Admission::Trial => Flow::Continue,
        })
    }

    fn response_headers<'a>(&'a mut self, response: &'a mut response::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, ()> {
        let from_upstream = ctx.reason.is_none() && !matches!(self.admission, Some(Admission::Refuse) | None);
        // Recorded before the answer goes out, so the client's next request sees the outcome.
        if let Some(admission) = self.admission.take() {
            match outcome(ctx.reason, response.status, ctx.upstream_addr.is_some(), &self.shared.failure_statuses) {
                Some(failed) => self.shared.breaker().record(admission, failed, Instant::now()),
                None => self.shared.breaker().abandon(admission),
            }
        }
        if self.shared.last_response.is_none() {
            return Phase::Ready(());
        }
        // Only an answer fit for every client: a whole 200 to a GET, not personal, not a range.
        let shareable = response.status == StatusCode::OK
            && self.plain_get
            && !response.headers.contains_key(header::SET_COOKIE)
            && !response.headers.get_all(header::CACHE_CONTROL).iter().any(|v| {
                v.to_str().is_ok_and(|v| {
                    let v = v.to_ascii_lowercase();
                    v.contains("private") || v.contains("no-store")
                })
            });
        if from_upstream && shareable && ctx.upstream_addr.is_some() {
            let mut headers = response.headers.clone();
            headers.remove(header::DATE);
            headers.remove(FALLBACK);
            let length = response.extensions.get::<ResponseLength>().map(|l| l.0);
            self.keep = Some((response.status, headers, length));
        }
        Phase::Ready(())
    }

    fn response_body(&mut self, _response: &response::Parts, _ctx: &RequestCtx) -> Option<Box<dyn BodyFilter>> {
        let (status, headers, length) = self.keep.take()?;
        let max = self.shared.last_response?;
        let body = BytesMut::new();
        Some(Box::new(KeepBody { shared: self.shared.clone(), status, headers, body, length, max, done: false }))
    }

    fn log<'a>(&'a mut self, ctx: &'a RequestCtx, error: Option<Reason>) -> Phase<'a, ()> {
        // Only when no response was made (the exchange failed before one).
        if let Some(admission) = self.admission.take() {
            match outcome(error.or(ctx.reason), ctx.status, ctx.upstream_addr.is_some(), &self.shared.failure_statuses)
            {
                Some(failed) => self.shared.breaker().record(admission, failed, Instant::now()),
                None => self.shared.breaker().abandon(admission),
            }
        }
        Phase::Ready(())
    }
}

impl Drop for CircuitBreaker {
    fn drop(&mut self) {
        // A request that ended before its log phase: a trial's place is given back.
        if let Some(admission) = self.admission.take() {
            self.shared.breaker().abandon(admission);
        }
    }
}

/// Whether the request failed the upstream's way (`Some(true)`), succeeded (`Some(false)`),
/// or says nothing about the upstream (`None`: the client left, a filter answered).
fn outcome(
    reason: Option<Reason>,
    status: StatusCode,
    reached_upstream: bool,
    failure_statuses: &[StatusCode],
) -> Option<bool> {
    match reason {
        Some(
            Reason::UpstreamConnectFailed
            | Reason::UpstreamConnectTimeout
            | Reason::UpstreamTimeout
            | Reason::UpstreamReset
            | Reason::UpstreamBadResponse
            | Reason::UpstreamTlsFailed
            | Reason::NoHealthyUpstream,
        ) => Some(true),
        Some(_) => None,
        None if !reached_upstream => None,
        None => Some(failure_statuses.contains(&status)),
    }
}

/// Keeps a copy of a successful response body (up to `max` bytes) for the fallback.
struct KeepBody {
    shared: Arc<Shared>,
    status: StatusCode,
    headers: HeaderMap,
    body: BytesMut,
    /// The body's length, when the response declared it: the copy is kept as soon as it is
    /// complete, before the end of the body is signalled.
    length: Option<u64>,
    max: usize,
    /// Kept already, or too large to keep.
    done: bool,
}

impl KeepBody {
    fn keep(&mut self) {
        let kept = Kept { status: self.status, headers: self.headers.clone(), body: self.body.split().freeze() };
        *self.shared.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(kept);
        self.done = true;
    }
}

impl BodyFilter for KeepBody {
    fn chunk(mut self: Box<Self>, chunk: Bytes, end: bool) -> BodyStep {
        if !self.done {
            if self.body.len() + chunk.len() > self.max {
                self.done = true;
                self.body = BytesMut::new();
            } else {
                self.body.extend_from_slice(&chunk);
                if end || self.length == Some(self.body.len() as u64) {
                    self.keep();
                }
            }
        }
        Phase::Ready((self as Box<dyn BodyFilter>, Ok(chunk)))
    }
}
