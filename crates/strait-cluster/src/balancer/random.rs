//! Weighted random choice.

use std::sync::Arc;

use crate::endpoint::EndpointState;

/// Picks an eligible member other than `except` with probability proportional to its weight.
pub(super) fn pick<F>(members: &[Arc<EndpointState>], eligible: F, except: Option<usize>) -> Option<usize>
where
    F: Fn(&EndpointState) -> bool,
{
    let mut chosen = None;
    let mut total = 0u64;
    for (i, member) in members.iter().enumerate() {
        if Some(i) == except || !eligible(member) {
            continue;
        }
        let weight = u64::from(member.weight);
        total += weight;
        if fastrand::u64(..total) < weight {
            chosen = Some(i);
        }
    }
    chosen
}
