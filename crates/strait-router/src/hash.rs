//! A fast unkeyed hasher for maps whose keys all come from configuration.
//!
//! Requests only look keys up, they never insert, so an unkeyed hash cannot be used to
//! flood a table; what matters is speed on short strings and mixing every input byte.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A hash map keyed by configuration strings, hashed with [`FoldHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FoldHasher>>;

const SEED: u64 = 0x243f_6a88_85a3_08d3;
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// Folded-multiply hasher: each 8-byte word is mixed in with a 64×64→128-bit product whose
/// halves are folded together, so every input bit reaches every output bit.
#[derive(Clone, Copy)]
pub(crate) struct FoldHasher {
    state: u64,
}

impl Default for FoldHasher {
    fn default() -> Self {
        FoldHasher { state: SEED }
    }
}

impl FoldHasher {
    fn mix(&mut self, word: u64) {
        let product = u128::from(self.state ^ word) * u128::from(MULTIPLIER);
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(word);
            self.mix(u64::from_le_bytes(buf));
        }
        let tail = words.remainder();
        let mut buf = [0u8; 8];
        buf[..tail.len()].copy_from_slice(tail);
        self.mix(u64::from_le_bytes(buf) ^ ((bytes.len() as u64) << 56));
    }

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte) | 0x100);
    }

    fn finish(&self) -> u64 {
        let product = u128::from(self.state) * u128::from(MULTIPLIER.rotate_left(32));
        (product as u64) ^ ((product >> 64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn similar_keys_spread_over_buckets() {
        let build = BuildHasherDefault::<FoldHasher>::default();
        let mask = (1u64 << 14) - 1;
        let buckets: HashSet<u64> = (0..10_000).map(|i| build.hash_one(format!("/service/{i:05}")) & mask).collect();
        // A uniform hash fills about 45% of 16384 buckets with 10000 keys.
        assert!(buckets.len() > 6_000, "only {} buckets used", buckets.len());
    }

    #[test]
    fn equal_keys_hash_equal_and_lengths_differ() {
        let build = BuildHasherDefault::<FoldHasher>::default();
        assert_eq!(build.hash_one("/api"), build.hash_one("/api"));
        assert_ne!(build.hash_one("/api"), build.hash_one("/api\0"));
        assert_ne!(build.hash_one(""), build.hash_one("\0"));
    }
}
