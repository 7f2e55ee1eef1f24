//! Where `rate_limiting` counters live: the [`CounterStore`] interface, and its `local`
//! implementation (in this process, shared by its worker threads).
//!
//! The store shared by several Strait processes (`policy: redis`) is
//! [`super::redis::RedisStore`]: its `hit` returns [`Phase::wait`] for the round trip.

use std::fmt;

use strait_http::Phase;

use super::shards::Shards;
use super::window::{Counters, Limit, Usage};

/// Why a store could not count a request (the filter then lets it through, unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

/// What [`CounterStore::hit`] gives: the usage, now or after a wait.
pub type Hit<'a> = Phase<'a, Result<Usage, StoreError>>;

/// Counters of request keys against limits.
pub trait CounterStore: Send + Sync + fmt::Debug {
    /// Decides on one request of `key` at `now` (milliseconds since the Unix epoch): counts it
    /// in every window of `limits` unless one of them is reached, and reports each window.
    fn hit<'a>(&'a self, key: &'a [u8], limits: &'a [Limit], now: u64) -> Hit<'a>;
}

/// Counters in this process's memory (`policy: local`): bounded to `max_keys` keys, and a
/// key's entry is dropped once all its windows have passed.
#[derive(Debug)]
pub struct LocalStore {
    counters: Shards<Counters>,
}

impl LocalStore {
    /// A store for at most about `max_keys` keys.
    pub fn new(max_keys: usize) -> LocalStore {
        LocalStore { counters: Shards::new(max_keys) }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CounterStore for LocalStore {
    fn hit<'a>(&'a self, key: &'a [u8], limits: &'a [Limit], now: u64) -> Hit<'a> {
        Phase::Ready(Ok(self.counters.with(key, now, |counters| counters.hit(limits, now))))
    }
}

#[cfg(test)]
mod tests {
    use super::super::window::Window;
    use super::*;

    fn hit(store: &LocalStore, key: &str, limits: &[Limit], now: u64) -> Usage {
        match store.hit(key.as_bytes(), limits, now) {
            Phase::Ready(result) => result.unwrap(),
            Phase::Wait(_) => panic!("the local store answers at once"),
        }
    }

    #[test]
    fn keys_count_separately_and_expire() {
        let store = LocalStore::new(10_000);
        let limits = [Limit { window: Window::Second, max: 1 }];
        assert!(hit(&store, "a", &limits, 1_000).allowed);
        assert!(hit(&store, "b", &limits, 1_000).allowed);
        assert!(!hit(&store, "a", &limits, 1_500).allowed);
        assert_eq!(store.len(), 2);
        // Both keys expire two seconds after their window began: the sweeps of later hits (a
        // thousand keys touch every shard) drop them.
        for i in 0..1_000 {
            hit(&store, &format!("k{i}"), &limits, 10_000);
        }
        assert_eq!(store.len(), 1_000, "a and b are gone");
    }

    #[test]
    fn the_store_is_shared_by_threads() {
        let store = std::sync::Arc::new(LocalStore::new(1_000));
        let limits = [Limit { window: Window::Minute, max: 100 }];
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || (0..50).filter(|_| hit(&store, "k", &limits, 60_000).allowed).count())
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 100);
    }
}
