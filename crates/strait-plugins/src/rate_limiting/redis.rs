//! `policy: redis`: counters in a Redis server, shared by every Strait process that uses it.
//!
//! Each request is one atomic round trip: a Lua script ([`script`]) runs the same
//! sliding-window test as the local store on the counters of the request's key, counts the
//! request when every window admits it, and answers the counts, from which the usage (and so
//! every rate-limit header) is computed exactly as for `policy: local`. The connection is one
//! multiplexed connection per worker thread ([`link`]), whose concurrent commands are
//! pipelined; the requests a thread has at once share one script call ([`batch`]).
//!
//! When Redis cannot be reached or does not answer within `redis_timeout`, the request is
//! decided by `fault_tolerant` (in the plugin): let through without headers, or refused. A
//! warning is logged at most once per [`WARN_EVERY`], with the number of failures since the
//! last one.

pub mod batch;
pub mod config;
pub mod link;
pub mod script;

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use strait_http::Phase;

use super::key::KeySource;
use super::store::{CounterStore, Hit, StoreError};
use super::window::{Limit, Usage};
use batch::Filter;
use config::RedisServer;
use link::{Link, Target};
use script::Request;

/// Shortest time between two warnings about Redis failures.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Counters in Redis (`policy: redis`).
pub struct RedisStore {
    server: Target,
    /// The counters' names and limits, shared with the batches' flush tasks.
    filter: Arc<Filter>,
    warnings: Warnings,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore").field("server", &self.server).field("prefix", &self.filter.prefix).finish()
    }
}

impl RedisStore {
    /// A store on `server` for the filter counting by `key` against `limits`; connects on
    /// first use, on each worker thread.
    pub fn new(server: RedisServer, limits: &[Limit], key: &KeySource) -> RedisStore {
        static SHA: OnceLock<String> = OnceLock::new();
        let filter = Filter {
            prefix: format!("strait:rl:{}", filter_identity(limits, key)),
            limits: limits.to_vec(),
            sha: SHA.get_or_init(script::sha),
        };
        RedisStore { server: Arc::new(server), filter: Arc::new(filter), warnings: Warnings::default() }
    }

    /// The start of every counter's key (`strait:rl:<filter>`).
    pub fn prefix(&self) -> &str {
        &self.filter.prefix
    }

    /// One request: the connection, then its batch's script call, within the timeout.
    async fn decide(&self, key: &[u8], now: u64) -> Result<Usage, StoreError> {
        let link = Link::of(&self.server);
        let generation = Cell::new(None);
        let work = async {
            let connected = link.connection(&self.server).await?;
            generation.set(Some(connected.generation));
            let request = Request { key: key.to_vec(), now };
            let answer = link.queue.submit(request, &self.filter, &connected.connection);
            match answer.await {
                Ok(Ok(usage)) => Ok(usage),
                Ok(Err(failure)) => {
                    if failure.connection_lost {
                        link.failed(connected.generation, &failure.message);
                    }
                    Err(failure.message)
                }
                Err(_) => Err("the Redis batch was dropped".to_owned()),
            }
        };
        let result = match tokio::time::timeout(self.server.timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                let error = format!("Redis did not answer within {:?}", self.server.timeout);
                // A connection that stopped answering is dropped (a new one waits for the pause).
                if let Some(generation) = generation.get() {
                    link.failed(generation, &error);
                }
                Err(error)
            }
        };
        result.map_err(|error| {
            self.warnings.failed(&self.server, &error);
            StoreError(error)
        })
    }
}

impl CounterStore for RedisStore {
    /// `limits` are those the store was made for (its counters' names depend on them).
    fn hit<'a>(&'a self, key: &'a [u8], _limits: &'a [Limit], now: u64) -> Hit<'a> {
        Phase::wait(self.decide(key, now))
    }
}

/// What tells one filter's counters from another's: a digest of what it counts by and its
/// limits, the same in every process with the same configuration.
fn filter_identity(limits: &[Limit], key: &KeySource) -> String {
    let mut text = key.describe();
    for limit in limits {
        text.push_str(&format!(";{}={}", limit.window.field(), limit.max));
    }
    let digest = Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Failures since the last warning, and when it was logged.
#[derive(Debug, Default)]
struct Warnings {
    /// Milliseconds since [`epoch`] of the last warning, plus one (0: never warned).
    last: AtomicU64,
    /// Failures not reported yet.
    since: AtomicU64,
}

impl Warnings {
    /// Counts a failure and logs it unless a warning was logged less than [`WARN_EVERY`] ago.
    fn failed(&self, server: &RedisServer, error: &str) {
        let now = epoch().elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if !due || self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            self.since.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let earlier = self.since.swap(0, Ordering::Relaxed);
        tracing::warn!(
            redis = ?server,
            failures_since_last_warning = earlier,
            "rate_limiting: {error}; requests are decided by `fault_tolerant` until Redis answers"
        );
    }
}

/// The process's reference instant for [`Warnings`].
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::super::key::LimitBy;
    use super::super::window::Window;
    use super::*;

    fn prefix(limits: &[Limit], limit_by: LimitBy, header: Option<&str>) -> String {
        let key = KeySource::compile(limit_by, header, None).unwrap();
        let server = RedisServer::resolve(
            config::FlatFields {
                host: &None,
                port: None,
                username: &None,
                password: &None,
                database: None,
                timeout: None,
            },
            None,
        )
        .unwrap();
        RedisStore::new(server, limits, &key).prefix().to_owned()
    }

    #[test]
    fn filters_share_counters_only_when_configured_alike() {
        let minute = [Limit { window: Window::Minute, max: 300 }];
        let same = prefix(&minute, LimitBy::Header, Some("x-tenant"));
        assert!(same.starts_with("strait:rl:") && same.len() == "strait:rl:".len() + 16, "{same}");
        assert_eq!(same, prefix(&minute, LimitBy::Header, Some("X-Tenant")), "header names are case-insensitive");
        assert_ne!(same, prefix(&minute, LimitBy::Header, Some("x-other")));
        assert_ne!(same, prefix(&minute, LimitBy::Consumer, None));
        assert_ne!(same, prefix(&[Limit { window: Window::Minute, max: 301 }], LimitBy::Header, Some("x-tenant")));
    }

    #[test]
    fn failures_are_warned_about_once_per_interval() {
        let server = RedisServer::resolve(
            config::FlatFields {
                host: &None,
                port: None,
                username: &None,
                password: &None,
                database: None,
                timeout: None,
            },
            None,
        )
        .unwrap();
        let warnings = Warnings::default();
        warnings.failed(&server, "down");
        let first = warnings.last.load(Ordering::Relaxed);
        assert_ne!(first, 0, "the first failure is logged");
        for _ in 0..100 {
            warnings.failed(&server, "down");
        }
        assert_eq!(warnings.last.load(Ordering::Relaxed), first, "no second warning within the interval");
        assert_eq!(warnings.since.load(Ordering::Relaxed), 100, "the failures are counted for the next one");
    }
}
