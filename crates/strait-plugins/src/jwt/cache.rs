//! A bounded cache of verified tokens, so a token seen again skips its signature check (an
//! RS256 verification costs tens of microseconds, an HMAC about one).
//!
//! Entries are keyed by the token itself (a hit compares it whole, so nothing but the same
//! token can find an entry) and hashed with foldhash, seeded per process, over the token's
//! length and last 48 bytes only: a token is hundreds of bytes, and its end is its signature,
//! which differs between any two tokens. Only verified tokens are inserted, so a client cannot
//! fill the map with keys of its choosing to make them collide (a forged token with a real
//! one's tail finds that one entry and fails the whole comparison). Entries keep what
//! verification concluded: the consumer, the claims and the times, which are checked again
//! on every hit. The cache holds
//! two generations of at most `capacity / 2` entries each: a full current generation becomes
//! the previous one (the older previous is dropped) and a hit in the previous generation moves
//! the entry back, so recently used tokens stay and memory stays bounded without bookkeeping.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use strait_http::consumer::Consumer;

use super::claims::Times;
use super::VerifiedClaims;

/// What a verified token established.
#[derive(Debug)]
pub struct Verified {
    /// The consumer its key belongs to (none for a JWKS key without `jwks.consumer`).
    pub consumer: Option<Consumer>,
    /// Its claims.
    pub claims: VerifiedClaims,
    /// Its `exp` and `nbf`, checked on each use.
    pub times: Times,
}

/// Verified tokens by token.
type TokenMap = HashMap<Box<[u8]>, Arc<Verified>, TailHash>;

/// How many bytes at a token's end are hashed.
const HASHED_TAIL: usize = 48;

/// Hashes of tokens by their length and last [`HASHED_TAIL`] bytes.
#[derive(Debug, Clone, Default)]
struct TailHash(foldhash::fast::RandomState);

impl BuildHasher for TailHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

/// A foldhash hasher that takes only the tail of each byte string written to it.
struct TailHasher(foldhash::fast::FoldHasher);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write_usize(bytes.len());
        self.0.write(&bytes[bytes.len().saturating_sub(HASHED_TAIL)..]);
    }

    fn write_u8(&mut self, byte: u8) {
        self.0.write_u8(byte);
    }

    fn write_usize(&mut self, n: usize) {
        self.0.write_usize(n);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// The two generations.
#[derive(Debug, Default)]
struct Generations {
    current: TokenMap,
    previous: TokenMap,
}

/// A cache of at most `capacity` verified tokens, shared by a filter's instances.
#[derive(Debug)]
pub struct TokenCache {
    generation_size: usize,
    generations: Mutex<Generations>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens; 0 turns it off.
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache { generation_size: capacity / 2 + capacity % 2, generations: Mutex::default() }
    }

    /// The verification remembered for `token`.
    pub fn get(&self, token: &[u8]) -> Option<Arc<Verified>> {
        if self.generation_size == 0 {
            return None;
        }
        let mut generations = self.generations.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = generations.current.get(token) {
            return Some(found.clone());
        }
        let (key, found) = generations.previous.remove_entry(token)?;
        self.insert_locked(&mut generations, key, found.clone());
        Some(found)
    }

    /// Remembers a verification.
    pub fn insert(&self, token: &[u8], verified: Arc<Verified>) {
        if self.generation_size == 0 {
            return;
        }
        let mut generations = self.generations.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.insert_locked(&mut generations, token.into(), verified);
    }

    fn insert_locked(&self, generations: &mut Generations, token: Box<[u8]>, verified: Arc<Verified>) {
        if generations.current.len() >= self.generation_size {
            generations.previous = std::mem::take(&mut generations.current);
        }
        generations.current.insert(token, verified);
    }

    /// Forgets every token (the keys changed).
    pub fn clear(&self) {
        let mut generations = self.generations.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        generations.current.clear();
        generations.previous.clear();
    }

    /// How many tokens are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let generations = self.generations.lock().unwrap();
        generations.current.len() + generations.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified() -> Arc<Verified> {
        let spec = strait_config::Consumer { username: "u".into(), ..Default::default() };
        Arc::new(Verified {
            consumer: Some(Consumer::from_config(&spec, None)),
            claims: VerifiedClaims { key: "k".into(), claims: Arc::default() },
            times: Times::default(),
        })
    }

    #[test]
    fn the_cache_stays_bounded_and_keeps_recently_used_tokens() {
        let cache = TokenCache::new(4);
        cache.insert(b"hot", verified());
        for i in 0..100 {
            cache.insert(i.to_string().as_bytes(), verified());
            assert!(cache.get(b"hot").is_some(), "hot token evicted after {i}");
            assert!(cache.len() <= 4);
        }
        assert!(cache.get(b"0").is_none());
        assert!(cache.get(b"99").is_some());
        assert!(cache.get(b"99 ").is_none() && cache.get(b"9").is_none(), "only the same token finds an entry");
    }

    #[test]
    fn tokens_sharing_a_tail_are_told_apart() {
        let cache = TokenCache::new(16);
        let tail = "s".repeat(HASHED_TAIL);
        cache.insert(format!("a.{tail}").as_bytes(), verified());
        assert!(cache.get(format!("a.{tail}").as_bytes()).is_some());
        assert!(cache.get(format!("b.{tail}").as_bytes()).is_none());
        assert!(cache.get(tail.as_bytes()).is_none());
    }

    #[test]
    fn a_zero_capacity_cache_remembers_nothing() {
        let cache = TokenCache::new(0);
        cache.insert(b"t", verified());
        assert!(cache.get(b"t").is_none());
    }
}
