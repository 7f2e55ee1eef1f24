//! Per-key state shared by the worker threads of one process: a hash map split into shards,
//! each behind its own mutex, with a bound on the number of keys and expiry of idle ones.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Picks a key's shard: seeded, and a few times cheaper than SipHash on short keys. Keys are
/// the clients' (header values, addresses), so the map inside each shard keeps SipHash, made
/// to resist collisions chosen by a client who can time its requests; a shard chosen this
/// way costs a client who aims at one nothing it could not have by chance (one in 16).
type ShardPicker = foldhash::quality::RandomState;

/// Number of shards: enough that worker threads rarely wait for one another.
const SHARDS: usize = 16;

/// How often (in the store's clock unit, milliseconds) a shard drops its expired entries.
const SWEEP_EVERY: u64 = 1_000;

/// How many entries a full shard compares to choose the one it evicts.
const EVICTION_SAMPLE: usize = 8;

/// State that becomes useless after a while: once expired, a fresh `Default` value would
/// behave the same, so the entry can be dropped.
pub trait Expiring: Default {
    /// The time from which the entry is the same as a fresh one.
    fn expires_at(&self) -> u64;
}

/// Keys to values `V`, sharded; at most about `max_keys` keys.
#[derive(Debug)]
pub struct Shards<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    picker: ShardPicker,
    shard_capacity: usize,
}

/// One shard: its entries and when it next sweeps.
#[derive(Debug)]
struct Shard<V> {
    entries: HashMap<Box<[u8]>, V>,
    next_sweep: u64,
}

impl<V: Expiring> Shards<V> {
    /// A map for at most `max_keys` keys (rounded up to a multiple of the shard count).
    pub fn new(max_keys: usize) -> Shards<V> {
        let shard_capacity = max_keys.div_ceil(SHARDS).max(1);
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(Shard { entries: HashMap::with_hasher(RandomState::new()), next_sweep: 0 }))
            .collect();
        Shards { shards, picker: ShardPicker::default(), shard_capacity }
    }

    /// Runs `f` on the value of `key`, created fresh when absent. Each shard drops its expired
    /// entries at most once a second; a full one makes room by evicting the entry that
    /// expires first among a few (that key starts over), so a flood of new keys costs a
    /// constant time each.
    pub fn with<R>(&self, key: &[u8], now: u64, f: impl FnOnce(&mut V) -> R) -> R {
        let mut shard = self.shard(key);
        if now >= shard.next_sweep {
            shard.sweep(now);
        }
        if shard.entries.len() >= self.shard_capacity && !shard.entries.contains_key(key) {
            shard.evict_one();
        }
        match shard.entries.get_mut(key) {
            Some(value) => f(value),
            None => f(shard.entries.entry(key.into()).or_default()),
        }
    }

    /// Runs `f` on the value of `key` if there is one, and removes it when `f` says it is no
    /// longer needed (returns `false`).
    pub fn update(&self, key: &[u8], f: impl FnOnce(&mut V) -> bool) {
        let mut shard = self.shard(key);
        if let Some(value) = shard.entries.get_mut(key) {
            if !f(value) {
                shard.entries.remove(key);
            }
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    /// The shard of `key`, locked.
    fn shard(&self, key: &[u8]) -> MutexGuard<'_, Shard<V>> {
        let index = (self.picker.hash_one(key) % SHARDS as u64) as usize;
        lock(&self.shards[index])
    }
}

impl<V: Expiring> Shard<V> {
    /// Drops the entries expired at `now`.
    fn sweep(&mut self, now: u64) {
        self.entries.retain(|_, value| value.expires_at() > now);
        self.next_sweep = now.saturating_add(SWEEP_EVERY);
    }

    /// Removes the entry that expires first among the first few the map yields.
    fn evict_one(&mut self) {
        let oldest = self
            .entries
            .iter()
            .take(EVICTION_SAMPLE)
            .min_by_key(|(_, value)| value.expires_at())
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.entries.remove(&key);
        }
    }
}

/// Locks a shard; a panic while it was held leaves only counters behind, still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter that expires at a set time.
    #[derive(Debug, Default)]
    struct Entry {
        hits: u32,
        expires: u64,
    }

    impl Expiring for Entry {
        fn expires_at(&self) -> u64 {
            self.expires
        }
    }

    fn hit(shards: &Shards<Entry>, key: &str, now: u64, expires: u64) -> u32 {
        shards.with(key.as_bytes(), now, |e| {
            e.hits += 1;
            e.expires = expires;
            e.hits
        })
    }

    #[test]
    fn values_persist_per_key_until_they_expire() {
        let shards = Shards::new(100);
        assert_eq!(hit(&shards, "a", 0, 5_000), 1);
        assert_eq!(hit(&shards, "a", 10, 5_000), 2);
        assert_eq!(hit(&shards, "b", 10, 1_500), 1);
        assert_eq!(shards.len(), 2);
        // A sweep at 2 000 drops `b` (expired at 1 500) from whichever shard is touched; touch
        // both keys' shards by hitting them, then `b` starts over.
        assert_eq!(hit(&shards, "b", 2_000, 9_000), 1);
        assert_eq!(hit(&shards, "a", 2_000, 9_000), 3);
    }

    #[test]
    fn the_number_of_keys_stays_bounded() {
        let shards = Shards::new(32);
        for i in 0..10_000u64 {
            hit(&shards, &format!("k{i}"), 0, 1_000_000 + i);
        }
        assert!(shards.len() <= 32, "{} keys held", shards.len());
    }

    #[test]
    fn update_removes_what_is_no_longer_needed() {
        let shards = Shards::new(10);
        hit(&shards, "a", 0, u64::MAX);
        shards.update(b"a", |e| {
            e.hits -= 1;
            e.hits > 0
        });
        assert_eq!(shards.len(), 0);
        shards.update(b"missing", |_| panic!("not called for an absent key"));
    }
}
