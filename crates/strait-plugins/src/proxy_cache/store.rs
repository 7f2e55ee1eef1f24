//! The in-memory store every worker shares: stored responses by primary key (each key with
//! its `Vary` variants), bounded in bytes, the least recently used key evicted first; and the
//! keys some request is refreshing right now.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use super::key::VaryKey;

/// Bytes counted for each stored item besides its own bytes (map slots, pointers).
const OVERHEAD: usize = 32;

/// One stored response.
#[derive(Debug)]
pub struct Entry {
    /// Status.
    pub status: StatusCode,
    /// Headers as the upstream sent them, without framing fields and `Age`.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The secondary key (request fields named by `Vary`).
    pub vary: VaryKey,
    /// When it was stored (or last revalidated).
    pub stored_at: Instant,
    /// Its `Age` when it arrived.
    pub initial_age: Duration,
    /// How long it is fresh from arrival.
    pub fresh_for: Duration,
    /// `no-cache`: revalidate before every use.
    pub revalidate: bool,
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage`: never served stale (RFC 9111
    /// §5.2.2.2).
    pub no_stale: bool,
}

impl Entry {
    /// Its current age (RFC 9111 §4.2.3, without the clock of the origin).
    pub fn age(&self, now: Instant) -> Duration {
        self.initial_age + now.saturating_duration_since(self.stored_at)
    }

    /// Whether it may be served without asking the upstream.
    pub fn is_fresh(&self, now: Instant) -> bool {
        !self.revalidate && self.age(now) < self.fresh_for
    }

    /// Its `ETag`, for `If-None-Match`.
    pub fn etag(&self) -> Option<&HeaderValue> {
        self.headers.get(header::ETAG)
    }

    /// Its `Last-Modified`, for `If-Modified-Since`.
    pub fn last_modified(&self) -> Option<&HeaderValue> {
        self.headers.get(header::LAST_MODIFIED)
    }

    /// Bytes it takes in the store: body, headers and secondary key.
    pub fn size(&self) -> usize {
        let headers: usize =
            self.headers.iter().map(|(name, value)| name.as_str().len() + value.len() + OVERHEAD).sum();
        self.body.len() + headers + self.vary.size() + OVERHEAD * 4
    }
}

/// A map bounded by the sum of its values' sizes; inserting past the bound evicts the least
/// recently used keys.
#[derive(Debug)]
pub struct Lru<V> {
    slots: HashMap<Arc<str>, Slot<V>>,
    /// Keys by last use, oldest first.
    order: BTreeMap<u64, Arc<str>>,
    clock: u64,
    used: usize,
    max: usize,
}

/// One key's value, its size and when it was last used.
#[derive(Debug)]
struct Slot<V> {
    value: V,
    size: usize,
    used_at: u64,
}

impl<V> Lru<V> {
    /// An empty map holding at most `max` bytes.
    pub fn new(max: usize) -> Lru<V> {
        Lru { slots: HashMap::new(), order: BTreeMap::new(), clock: 0, used: 0, max }
    }

    /// The value of `key`, now the most recently used.
    pub fn get(&mut self, key: &str) -> Option<&V> {
        let slot = self.slots.get_mut(key)?;
        self.clock += 1;
        if let Some(name) = self.order.remove(&slot.used_at) {
            self.order.insert(self.clock, name);
        }
        slot.used_at = self.clock;
        Some(&slot.value)
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let slot = self.slots.remove(key)?;
        self.order.remove(&slot.used_at);
        self.used -= slot.size;
        Some(slot.value)
    }

    /// Puts `value` of `size` bytes under `key` (replacing its old value), then evicts the
    /// least recently used other keys until the bound holds; returns the evicted values. A
    /// value larger than the whole bound is not kept (and is returned).
    pub fn insert(&mut self, key: Arc<str>, value: V, size: usize) -> Vec<V> {
        self.remove(&key);
        if size > self.max {
            return vec![value];
        }
        let mut evicted = Vec::new();
        while self.used + size > self.max {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(slot) = self.slots.remove(&oldest) {
                self.used -= slot.size;
                evicted.push(slot.value);
            }
        }
        self.clock += 1;
        self.order.insert(self.clock, key.clone());
        self.used += size;
        self.slots.insert(key, Slot { value, size, used_at: self.clock });
        evicted
    }

    /// Removes every key for which `doomed` holds (a scan of all keys); returns their values.
    pub fn remove_where(&mut self, doomed: impl Fn(&str) -> bool) -> Vec<V> {
        let keys: Vec<Arc<str>> = self.slots.keys().filter(|key| doomed(key)).cloned().collect();
        keys.iter().filter_map(|key| self.remove(key)).collect()
    }

    /// Bytes in use.
    pub fn used(&self) -> usize {
        self.used
    }
}

/// The variants stored under one primary key.
type Variants = Vec<Arc<Entry>>;

/// The shared cache of one configured `proxy_cache` filter.
#[derive(Debug)]
pub struct Cache {
    inner: Mutex<Inner>,
}

/// What the lock guards.
#[derive(Debug)]
struct Inner {
    entries: Lru<Variants>,
    /// Primary keys a request is refreshing.
    updating: HashSet<String>,
}

impl Cache {
    /// An empty cache of at most `max_size` bytes.
    pub fn new(max_size: usize) -> Cache {
        Cache { inner: Mutex::new(Inner { entries: Lru::new(max_size), updating: HashSet::new() }) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stored variant of `key` whose `Vary` fields match `request`.
    pub fn lookup(&self, key: &str, request: &HeaderMap) -> Option<Arc<Entry>> {
        let mut inner = self.lock();
        inner.entries.get(key)?.iter().find(|entry| entry.vary.matches(request)).cloned()
    }

    /// Stores `entry` under `key`, in place of the variant with the same `Vary` values.
    pub fn store(&self, key: &str, entry: Arc<Entry>) {
        let mut inner = self.lock();
        let mut variants = inner.entries.remove(key).unwrap_or_default();
        variants.retain(|old| old.vary != entry.vary);
        variants.push(entry);
        let size = key.len() + variants.iter().map(|v| v.size()).sum::<usize>();
        inner.entries.insert(Arc::from(key), variants, size);
    }

    /// Drops every variant stored for the resource whose key (before request-header values)
    /// is `resource`; `with_headers` when keys also hold request-header values (all keys are
    /// then scanned for those of the resource).
    pub fn invalidate(&self, resource: &str, with_headers: bool) {
        let mut inner = self.lock();
        if with_headers {
            inner.entries.remove_where(|key| is_variant_of(key, resource));
        } else {
            inner.entries.remove(resource);
        }
    }

    /// Marks `key` as being refreshed; `false` when another request already is.
    pub fn begin_update(&self, key: &str) -> bool {
        let mut inner = self.lock();
        if inner.updating.contains(key) {
            return false;
        }
        inner.updating.insert(key.to_owned())
    }

    /// The refresh of `key` is over.
    pub fn end_update(&self, key: &str) {
        self.lock().updating.remove(key);
    }
}

/// Whether `key` is the key of `resource` with request-header values after it.
pub fn is_variant_of(key: &str, resource: &str) -> bool {
    key.strip_prefix(resource).is_some_and(|rest| rest.starts_with('\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_key_goes_first() {
        let mut lru = Lru::new(30);
        lru.insert(Arc::from("a"), 1, 10);
        lru.insert(Arc::from("b"), 2, 10);
        lru.insert(Arc::from("c"), 3, 10);
        assert_eq!(lru.get("a"), Some(&1));
        lru.insert(Arc::from("d"), 4, 10);
        assert_eq!(lru.get("b"), None, "b was least recently used");
        assert_eq!([lru.get("a").copied(), lru.get("c").copied(), lru.get("d").copied()], [Some(1), Some(3), Some(4)]);
        assert_eq!(lru.used(), 30);
    }

    #[test]
    fn a_value_larger_than_the_bound_is_not_kept_and_replacing_recounts() {
        let mut lru = Lru::new(30);
        lru.insert(Arc::from("a"), 1, 10);
        lru.insert(Arc::from("big"), 2, 31);
        assert_eq!([lru.get("big").copied(), lru.get("a").copied()], [None, Some(1)]);
        lru.insert(Arc::from("a"), 5, 25);
        assert_eq!(lru.get("a"), Some(&5));
        assert_eq!(lru.used(), 25);
    }

    fn entry(vary: VaryKey) -> Arc<Entry> {
        Arc::new(Entry {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"body"),
            vary,
            stored_at: Instant::now(),
            initial_age: Duration::ZERO,
            fresh_for: Duration::from_secs(10),
            revalidate: false,
            no_stale: false,
        })
    }

    #[test]
    fn variants_are_found_by_their_vary_values() {
        let cache = Cache::new(1 << 20);
        let mut response = HeaderMap::new();
        response.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        let mut gzip = HeaderMap::new();
        gzip.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let plain = HeaderMap::new();
        cache.store("k", entry(VaryKey::capture(&response, &gzip).unwrap()));
        assert!(cache.lookup("k", &plain).is_none());
        cache.store("k", entry(VaryKey::capture(&response, &plain).unwrap()));
        assert!(cache.lookup("k", &gzip).is_some() && cache.lookup("k", &plain).is_some());
        cache.store("k", entry(VaryKey::capture(&response, &plain).unwrap()));
        assert_eq!(cache.lock().entries.get("k").map(Vec::len), Some(2), "same variant replaced");
    }

    #[test]
    fn one_request_updates_a_key_at_a_time() {
        let cache = Cache::new(100);
        assert!(cache.begin_update("k"));
        assert!(!cache.begin_update("k"));
        cache.end_update("k");
        assert!(cache.begin_update("k"));
    }
}
