//! Load balancers: choose one endpoint among the eligible members of a tier.

mod hash;
mod least_request;
mod maglev;
mod p2c;
mod random;
mod ring_hash;
mod round_robin;

use std::net::IpAddr;
use std::sync::Arc;

use strait_config::Balancer;

use crate::endpoint::EndpointState;

/// What a pick may depend on: the client and the hashing key of the request.
#[derive(Debug, Clone, Copy)]
pub struct PickContext<'a> {
    /// Address of the client.
    pub client_ip: IpAddr,
    /// Header or cookie value hashed by hashing balancers; the client IP when `None`.
    pub hash_key: Option<&'a [u8]>,
}

/// The endpoints of one tier (primaries or backups) and the algorithm's state over them.
#[derive(Debug)]
pub(crate) struct Tier {
    members: Vec<Arc<EndpointState>>,
    algorithm: Algorithm,
}

/// Per-algorithm state.
#[derive(Debug)]
enum Algorithm {
    RoundRobin(round_robin::RoundRobin),
    LeastRequest,
    Random,
    P2c,
    RingHash(ring_hash::Ring),
    Maglev(maglev::Maglev),
}

// === impl PickContext ===

impl PickContext<'_> {
    /// Hash of the key hashing balancers use.
    fn key_hash(&self) -> u64 {
        match (self.hash_key, self.client_ip) {
            (Some(key), _) => hash::hash64(key),
            (None, IpAddr::V4(ip)) => hash::hash64(&ip.octets()),
            (None, IpAddr::V6(ip)) => hash::hash64(&ip.octets()),
        }
    }
}

// === impl Tier ===

impl Tier {
    /// Builds the algorithm's state for these members.
    pub(crate) fn new(kind: Balancer, members: Vec<Arc<EndpointState>>) -> Self {
        let algorithm = match kind {
            Balancer::RoundRobin => Algorithm::RoundRobin(round_robin::RoundRobin::new(members.len())),
            Balancer::LeastRequest => Algorithm::LeastRequest,
            Balancer::Random => Algorithm::Random,
            Balancer::P2c => Algorithm::P2c,
            Balancer::RingHash => Algorithm::RingHash(ring_hash::Ring::new(&members)),
            Balancer::Maglev => Algorithm::Maglev(maglev::Maglev::new(&members)),
        };
        Tier { members, algorithm }
    }

    /// Chooses a member for which `eligible` holds, or `None` when there is none.
    pub(crate) fn pick<F>(&self, ctx: &PickContext<'_>, eligible: F) -> Option<&Arc<EndpointState>>
    where
        F: Fn(&EndpointState) -> bool,
    {
        if self.members.is_empty() {
            return None;
        }
        let members = &self.members[..];
        let index = match &self.algorithm {
            Algorithm::RoundRobin(rr) => rr.pick(members, eligible),
            Algorithm::LeastRequest => least_request::pick(members, eligible),
            Algorithm::Random => random::pick(members, eligible, None),
            Algorithm::P2c => p2c::pick(members, eligible),
            Algorithm::RingHash(ring) => ring.pick(members, ctx.key_hash(), eligible),
            Algorithm::Maglev(table) => table.pick(members, ctx.key_hash(), eligible),
        }?;
        members.get(index)
    }
}

/// True when `a` carries less load per unit of weight than `b`.
#[inline]
fn less_loaded(a: &EndpointState, b: &EndpointState) -> bool {
    u64::from(a.in_flight()) * u64::from(b.weight) < u64::from(b.in_flight()) * u64::from(a.weight)
}

/// Walks `len` slots from `start` (wrapping) and returns the member of the first eligible slot.
///
/// Checks the first slot directly; otherwise evaluates eligibility once per member first, so an
/// all-ineligible tier costs one pass over the members, not over the slots.
fn walk<F>(
    members: &[Arc<EndpointState>],
    len: usize,
    start: usize,
    member_at: impl Fn(usize) -> usize,
    eligible: F,
) -> Option<usize>
where
    F: Fn(&EndpointState) -> bool,
{
    let first = member_at(start);
    if eligible(&members[first]) {
        return Some(first);
    }
    let ok: Vec<bool> = members.iter().map(|m| eligible(m)).collect();
    if !ok.contains(&true) {
        return None;
    }
    (1..len).map(|step| member_at((start + step) % len)).find(|&m| ok[m])
}
