//! A fast hash that is stable across runs and platforms: FNV-1a 64 with a final avalanche mix.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Stable 64-bit hash of `bytes`.
pub(super) fn hash64(bytes: &[u8]) -> u64 {
    mix(fnv(OFFSET, bytes))
}

/// Stable 64-bit hash of `bytes` followed by the little-endian bytes of `n`.
pub(super) fn hash64_with(bytes: &[u8], n: u64) -> u64 {
    mix(fnv(fnv(OFFSET, bytes), &n.to_le_bytes()))
}

/// FNV-1a over `bytes`, continuing from `state`.
fn fnv(mut state: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        state ^= u64::from(b);
        state = state.wrapping_mul(PRIME);
    }
    state
}

/// The 64-bit MurmurHash3 finaliser, so that close inputs land far apart.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable() {
        assert_eq!(fnv(OFFSET, b""), OFFSET);
        assert_eq!(fnv(OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash64(b"strait"), hash64(b"strait"));
        assert_ne!(hash64_with(b"x", 1), hash64_with(b"x", 2));
    }
}
