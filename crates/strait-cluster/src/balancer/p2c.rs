//! Power of two choices: two weighted random picks, the less loaded one wins.

use std::sync::Arc;

use crate::endpoint::EndpointState;

/// Picks two distinct eligible members at random and returns the less loaded of them.
pub(super) fn pick<F>(members: &[Arc<EndpointState>], eligible: F) -> Option<usize>
where
    F: Fn(&EndpointState) -> bool,
{
    let first = super::random::pick(members, &eligible, None)?;
    let Some(second) = super::random::pick(members, &eligible, Some(first)) else {
        return Some(first);
    };
    if super::less_loaded(&members[second], &members[first]) {
        Some(second)
    } else {
        Some(first)
    }
}
