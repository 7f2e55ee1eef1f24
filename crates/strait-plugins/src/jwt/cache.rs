//! A bounded cache of verified tokens, so a token seen again skips its signature check (an
//! RS256 verification costs tens of microseconds, an HMAC about one).
//!
//! Entries are keyed by the token's SHA-256 and keep what verification concluded: the
//! consumer, the claims and the times, which are checked again on every hit. The cache holds
//! two generations of at most `capacity / 2` entries each: a full current generation becomes
//! the previous one (the older previous is dropped) and a hit in the previous generation moves
//! the entry back, so recently used tokens stay and memory stays bounded without bookkeeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest;
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

/// A token's cache key.
pub type TokenDigest = [u8; 32];

/// The SHA-256 of a token.
pub fn digest_of(token: &str) -> TokenDigest {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// The two generations.
#[derive(Debug, Default)]
struct Generations {
    current: HashMap<TokenDigest, Arc<Verified>>,
    previous: HashMap<TokenDigest, Arc<Verified>>,
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

    /// The verification remembered for `digest`.
    pub fn get(&self, digest: &TokenDigest) -> Option<Arc<Verified>> {
        if self.generation_size == 0 {
            return None;
        }
        let mut generations = self.generations.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = generations.current.get(digest) {
            return Some(found.clone());
        }
        let found = generations.previous.remove(digest)?;
        self.insert_locked(&mut generations, *digest, found.clone());
        Some(found)
    }

    /// Remembers a verification.
    pub fn insert(&self, digest: TokenDigest, verified: Arc<Verified>) {
        if self.generation_size == 0 {
            return;
        }
        let mut generations = self.generations.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.insert_locked(&mut generations, digest, verified);
    }

    fn insert_locked(&self, generations: &mut Generations, digest: TokenDigest, verified: Arc<Verified>) {
        if generations.current.len() >= self.generation_size {
            generations.previous = std::mem::take(&mut generations.current);
        }
        generations.current.insert(digest, verified);
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
        let hot = digest_of("hot");
        cache.insert(hot, verified());
        for i in 0..100 {
            cache.insert(digest_of(&i.to_string()), verified());
            assert!(cache.get(&hot).is_some(), "hot token evicted after {i}");
            assert!(cache.len() <= 4);
        }
        assert!(cache.get(&digest_of("0")).is_none());
        assert!(cache.get(&digest_of("99")).is_some());
    }

    #[test]
    fn a_zero_capacity_cache_remembers_nothing() {
        let cache = TokenCache::new(0);
        cache.insert(digest_of("t"), verified());
        assert!(cache.get(&digest_of("t")).is_none());
    }
}
