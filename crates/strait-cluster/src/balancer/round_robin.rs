//! Smooth weighted round robin, as nginx does it.

use std::sync::{Arc, Mutex};

use crate::endpoint::EndpointState;

/// Current weights of the members, in member order.
#[derive(Debug)]
pub(super) struct RoundRobin {
    current: Mutex<Vec<i64>>,
}

// === impl RoundRobin ===

impl RoundRobin {
    /// State for `len` members.
    pub(super) fn new(len: usize) -> Self {
        RoundRobin { current: Mutex::new(vec![0; len]) }
    }

    /// Adds each eligible member's weight to its current weight, picks the largest, and takes
    /// the total off the winner.
    pub(super) fn pick<F>(&self, members: &[Arc<EndpointState>], eligible: F) -> Option<usize>
    where
        F: Fn(&EndpointState) -> bool,
    {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, member) in members.iter().enumerate() {
            if !eligible(member) {
                continue;
            }
            let weight = i64::from(member.weight);
            current[i] += weight;
            total += weight;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let best = best?;
        current[best] -= total;
        Some(best)
    }
}
