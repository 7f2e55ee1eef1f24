//! Recently verified Basic credentials, so a client that sends the same user name and
//! password on every request pays bcrypt once, not per request.
//!
//! Entries are SHA-256 digests of the stored hash, the user name and the password (never the
//! password itself); only successful checks are kept, the oldest forgotten first. The set
//! belongs to one configured filter, so a reload that changes a password starts afresh.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use crate::consumer_auth::{sha256, SecretDigest};

/// A bounded set of verified credentials, shared by the filter's instances on every worker.
#[derive(Debug)]
pub(crate) struct Verified {
    capacity: usize,
    recent: Mutex<Recent>,
}

/// The entries and the order they came in.
#[derive(Debug, Default)]
struct Recent {
    known: HashSet<SecretDigest>,
    order: VecDeque<SecretDigest>,
}

impl Verified {
    /// An empty set holding at most `capacity` credentials.
    pub(crate) fn new(capacity: usize) -> Verified {
        Verified { capacity, recent: Mutex::default() }
    }

    /// The entry for `user` presenting `password` against the stored `hash` (the hash's salt
    /// makes the digest useless for guessing the password offline).
    pub(crate) fn entry(hash: &str, user: &str, password: &[u8]) -> SecretDigest {
        sha256(&[hash.as_bytes(), b"\n", user.as_bytes(), b":", password])
    }

    /// Whether `entry` was verified recently.
    pub(crate) fn contains(&self, entry: &SecretDigest) -> bool {
        self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).known.contains(entry)
    }

    /// Remembers a verified `entry`, forgetting the oldest when full.
    pub(crate) fn insert(&self, entry: SecretDigest) {
        let mut recent = self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.capacity == 0 || !recent.known.insert(entry) {
            return;
        }
        recent.order.push_back(entry);
        while recent.order.len() > self.capacity {
            if let Some(oldest) = recent.order.pop_front() {
                recent.known.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_capacity_and_forgets_the_oldest() {
        let verified = Verified::new(2);
        let [a, b, c] = ["a", "b", "c"].map(|user| Verified::entry("$2b$04$x", user, b"pw"));
        verified.insert(a);
        verified.insert(b);
        verified.insert(a);
        assert!(verified.contains(&a) && verified.contains(&b));
        verified.insert(c);
        assert!(!verified.contains(&a), "the oldest is forgotten");
        assert!(verified.contains(&b) && verified.contains(&c));
    }

    #[test]
    fn entries_differ_by_hash_user_and_password() {
        let entry = Verified::entry("h1", "alice", b"pw");
        assert_ne!(entry, Verified::entry("h2", "alice", b"pw"));
        assert_ne!(entry, Verified::entry("h1", "alicf", b"pw"));
        assert_ne!(entry, Verified::entry("h1", "alice", b"pW"));
    }
}
