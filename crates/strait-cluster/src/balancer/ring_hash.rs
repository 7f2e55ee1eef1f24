//! Consistent hash ring with virtual nodes, as in Envoy's `RING_HASH`.

use std::sync::Arc;

use super::hash;
use crate::endpoint::EndpointState;

/// Virtual nodes placed on the ring per unit of weight.
const VNODES_PER_WEIGHT: u64 = 128;
/// Upper bound on the ring size; weights are scaled down above it.
const MAX_RING: u64 = 1 << 20;

/// Sorted ring of virtual nodes: `(position, member index)`.
#[derive(Debug)]
pub(super) struct Ring {
    nodes: Vec<(u64, u32)>,
}

// === impl Ring ===

impl Ring {
    /// Places every member's virtual nodes at positions derived from its address only, so that
    /// removing a member moves only the keys it owned.
    pub(super) fn new(members: &[Arc<EndpointState>]) -> Self {
        let total_weight: u64 = members.iter().map(|m| u64::from(m.weight)).sum();
        let per_weight = if total_weight.saturating_mul(VNODES_PER_WEIGHT) > MAX_RING {
            (MAX_RING / total_weight.max(1)).max(1)
        } else {
            VNODES_PER_WEIGHT
        };
        let mut nodes = Vec::with_capacity(usize::try_from(total_weight * per_weight).unwrap_or(0));
        for (i, member) in members.iter().enumerate() {
            let name = member.addr.to_string();
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            for v in 0..u64::from(member.weight) * per_weight {
                nodes.push((hash::hash64_with(name.as_bytes(), v), index));
            }
        }
        nodes.sort_unstable();
        Ring { nodes }
    }

    /// The first eligible member clockwise from `key`.
    pub(super) fn pick<F>(&self, members: &[Arc<EndpointState>], key: u64, eligible: F) -> Option<usize>
    where
        F: Fn(&EndpointState) -> bool,
    {
        if self.nodes.is_empty() {
            return None;
        }
        let start = self.nodes.partition_point(|&(position, _)| position < key) % self.nodes.len();
        super::walk(members, self.nodes.len(), start, |slot| self.nodes[slot].1 as usize, eligible)
    }
}
