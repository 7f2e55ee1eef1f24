//! Maglev consistent hashing: a prime-sized lookup table filled by per-member permutations.

use std::sync::Arc;

use super::hash;
use crate::endpoint::EndpointState;

/// Size of the lookup table (a prime, as Maglev requires).
const TABLE_SIZE: u64 = 65537;

/// The lookup table: slot → member index.
#[derive(Debug)]
pub(super) struct Maglev {
    table: Vec<u32>,
}

// === impl Maglev ===

impl Maglev {
    /// Fills the table in rounds; a member takes a turn in a round in proportion to its weight
    /// relative to the heaviest member.
    pub(super) fn new(members: &[Arc<EndpointState>]) -> Self {
        if members.is_empty() {
            return Maglev { table: Vec::new() };
        }
        let (offsets, skips): (Vec<u64>, Vec<u64>) = members
            .iter()
            .map(|m| {
                let name = m.addr.to_string();
                let offset = hash::hash64_with(name.as_bytes(), 0) % TABLE_SIZE;
                let skip = hash::hash64_with(name.as_bytes(), 1) % (TABLE_SIZE - 1) + 1;
                (offset, skip)
            })
            .unzip();
        let max_weight = members.iter().map(|m| u64::from(m.weight)).max().unwrap_or(1);
        let mut credit = vec![0u64; members.len()];
        let mut next = vec![0u64; members.len()];
        let mut table = vec![u32::MAX; TABLE_SIZE as usize];
        let mut filled = 0u64;
        'fill: loop {
            for (i, member) in members.iter().enumerate() {
                credit[i] += u64::from(member.weight);
                if credit[i] < max_weight {
                    continue;
                }
                credit[i] -= max_weight;
                loop {
                    let slot = ((offsets[i] + next[i] * skips[i]) % TABLE_SIZE) as usize;
                    next[i] += 1;
                    if table[slot] == u32::MAX {
                        table[slot] = u32::try_from(i).unwrap_or(u32::MAX);
                        filled += 1;
                        break;
                    }
                }
                if filled == TABLE_SIZE {
                    break 'fill;
                }
            }
        }
        Maglev { table }
    }

    /// The member of `key`'s slot, or of the next slot holding an eligible member.
    pub(super) fn pick<F>(&self, members: &[Arc<EndpointState>], key: u64, eligible: F) -> Option<usize>
    where
        F: Fn(&EndpointState) -> bool,
    {
        if self.table.is_empty() {
            return None;
        }
        let start = (key % TABLE_SIZE) as usize;
        super::walk(members, self.table.len(), start, |slot| self.table[slot] as usize, eligible)
    }
}
