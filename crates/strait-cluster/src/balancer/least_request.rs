//! Least request: the fewest in-flight requests per unit of weight.

use std::sync::Arc;

use crate::endpoint::EndpointState;

/// Picks the least loaded eligible member; ties go to a weighted random one of them.
pub(super) fn pick<F>(members: &[Arc<EndpointState>], eligible: F) -> Option<usize>
where
    F: Fn(&EndpointState) -> bool,
{
    let mut best: Option<usize> = None;
    let mut tied_weight = 0u64;
    for (i, member) in members.iter().enumerate() {
        if !eligible(member) {
            continue;
        }
        let weight = u64::from(member.weight);
        match best {
            Some(b) if super::less_loaded(&members[b], member) => continue,
            Some(b) if !super::less_loaded(member, &members[b]) => {
                tied_weight += weight;
                if fastrand::u64(..tied_weight) < weight {
                    best = Some(i);
                }
            }
            _ => {
                best = Some(i);
                tied_weight = weight;
            }
        }
    }
    best
}
