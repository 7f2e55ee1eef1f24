//! Rate and concurrency limits per key (consumer, credential, client address, header, path,
//! route or cluster):
//!
//! * `rate_limiting`, as Kong's plugin: at most N requests per second, minute, hour and day,
//!   counted with a **sliding window** — two fixed windows, the previous one weighted by how
//!   much of it the sliding window still covers (see [`window`] for the estimate and its
//!   error bound). Over the limit: 429 `rate_limited` with `Retry-After`; every response
//!   carries Kong's `X-RateLimit-*` headers and the IETF draft's `RateLimit-*`.
//! * `limit_req`, as nginx `limit_req`: a leaky bucket draining at `rate`, `burst` requests of
//!   excess delayed (or passed at once with `nodelay`), beyond that refused.
//! * `concurrency_limit`: at most `max` requests in flight per key.
//!
//! ```yaml
//! filters:
//!   - name: rate_limiting
//!     config: { minute: 60, hour: 1000, limit_by: consumer }
//!   - name: limit_req
//!     config: { rate: 10r/s, burst: 20, nodelay: true, limit_by: ip }
//!   - name: concurrency_limit
//!     config: { max: 4, limit_by: header, header_name: x-api-key }
//! ```
//!
//! Counters live in this process (`policy: local`), shared by its worker threads, bounded in
//! number and dropped once idle. They belong to one configured filter: two filters never
//! share counts, and a configuration reload starts them over. `rate_limiting` reaches its
//! counters through the [`store::CounterStore`] trait; `policy: redis` ([`redis`]) keeps them
//! in a Redis server shared by several Strait instances, decided by one atomic script per
//! request with the same arithmetic.

pub mod concurrency_limit;
pub mod headers;
pub mod key;
pub mod leaky_bucket;
pub mod limit_req;
pub mod plugin;
pub mod redis;
mod shards;
pub mod store;
pub mod window;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::StatusCode;
use strait_http::{LocalResponse, PluginError, Reason, RequestCtx};

pub use concurrency_limit::concurrency_limit_plugin;
pub use limit_req::limit_req_plugin;
pub use plugin::rate_limiting_plugin;

/// A clock in milliseconds, injectable so tests control time.
#[derive(Clone)]
pub struct Clock(Source);

/// Where a [`Clock`] reads its time.
#[derive(Clone)]
enum Source {
    /// The wall clock, which a request reads once for all its filters.
    Wall,
    /// A function.
    Read(Arc<dyn Fn() -> u64 + Send + Sync>),
}

impl Clock {
    /// Milliseconds since the Unix epoch: windows align on wall-clock seconds, minutes, hours
    /// and days, the same in every process.
    pub fn wall() -> Clock {
        Clock(Source::Wall)
    }

    /// Milliseconds since the process first asked: never goes back, for rates.
    pub fn monotonic() -> Clock {
        static BASE: OnceLock<Instant> = OnceLock::new();
        Clock::from_fn(|| BASE.get_or_init(Instant::now).elapsed().as_millis() as u64)
    }

    /// A clock that reads `read`.
    pub fn from_fn(read: impl Fn() -> u64 + Send + Sync + 'static) -> Clock {
        Clock(Source::Read(Arc::new(read)))
    }

    /// The time now; a request's filters ask [`Clock::at`] instead.
    pub fn now(&self) -> u64 {
        match &self.0 {
            Source::Wall => millis(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()),
            Source::Read(read) => read(),
        }
    }

    /// The time of the request `ctx`: the wall clock's reading the request shares with its
    /// other filters and its log line.
    pub fn at(&self, ctx: &RequestCtx) -> u64 {
        match &self.0 {
            Source::Wall => millis(ctx.unix_time()),
            Source::Read(read) => read(),
        }
    }
}

/// `time` in whole milliseconds.
fn millis(time: Duration) -> u64 {
    time.as_secs() * 1_000 + u64::from(time.subsec_millis())
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// A configured refusal status (`status:`): 400 to 599, as nginx `limit_req_status`.
fn refusal_status(status: u16) -> Result<StatusCode, PluginError> {
    match StatusCode::from_u16(status) {
        Ok(code) if (400..=599).contains(&status) => Ok(code),
        _ => Err(PluginError::at("status", "must be between 400 and 599")),
    }
}

/// The answer to a refused request: reason `rate_limited`, with `status` instead of 429.
fn refusal(status: StatusCode) -> LocalResponse {
    let mut refusal = LocalResponse::for_reason(Reason::RateLimited);
    if refusal.status != status {
        refusal.status = status;
        let text = status.canonical_reason().unwrap_or("");
        refusal.body = Bytes::from(format!("{} {text}: rate_limited\n", status.as_str()));
    }
    refusal
}

#[cfg(test)]
pub(crate) mod test_clock {
    //! A clock tests move by hand.

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::Clock;

    /// A hand-moved time and the [`Clock`] reading it.
    pub(crate) fn manual(start: u64) -> (Arc<AtomicU64>, Clock) {
        let time = Arc::new(AtomicU64::new(start));
        let read = time.clone();
        (time, Clock::from_fn(move || read.load(Ordering::SeqCst)))
    }

    /// Moves `time` on by `ms`.
    pub(crate) fn advance(time: &AtomicU64, ms: u64) {
        time.fetch_add(ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_of_a_request_is_its_arrival_in_milliseconds() {
        let ctx = key::tests::ctx_from("10.0.0.1");
        let clock = Clock::wall();
        let at = clock.at(&ctx);
        assert_eq!(at, millis(ctx.unix_time()));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.at(&ctx), at, "the same for every filter of the request");
        assert!(clock.now() >= at + 20, "while the time moves on");
        let (_, manual) = test_clock::manual(7);
        assert_eq!(manual.at(&ctx), 7, "a test's clock is read as it is");
    }
}
