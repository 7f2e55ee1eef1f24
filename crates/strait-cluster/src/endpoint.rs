//! One upstream endpoint's shared state: address, weight, health and in-flight requests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use strait_config::PassiveHealth;

use crate::health::passive::{now_nanos, Passive};

/// An endpoint of a cluster, shared by all worker threads.
#[derive(Debug)]
pub struct EndpointState {
    /// Resolved socket address.
    pub addr: SocketAddr,
    /// Relative weight (at least 1).
    pub weight: u32,
    /// Used only when no primary endpoint is healthy.
    pub backup: bool,
    /// Name of the cluster, for logs.
    cluster: Arc<str>,
    /// Verdict of the active health checks; endpoints start healthy.
    healthy: AtomicBool,
    /// Requests currently sent to this endpoint.
    in_flight: AtomicU32,
    /// Passive health bookkeeping, when configured.
    passive: Option<Passive>,
    /// End of the current passive ejection (process clock nanoseconds), `0` when not ejected.
    ejected_until: AtomicU64,
}

/// Counts an in-flight request on an endpoint until dropped.
#[derive(Debug)]
#[must_use = "the request stops counting as in flight when this guard is dropped"]
pub struct InFlight {
    endpoint: Arc<EndpointState>,
}

// === impl EndpointState ===

impl EndpointState {
    /// A healthy endpoint with no request in flight.
    pub(crate) fn new(
        cluster: Arc<str>,
        addr: SocketAddr,
        weight: u32,
        backup: bool,
        passive: Option<&PassiveHealth>,
    ) -> Self {
        let passive = passive.and_then(Passive::new);
        EndpointState {
            addr,
            weight: weight.max(1),
            backup,
            cluster,
            healthy: AtomicBool::new(true),
            in_flight: AtomicU32::new(0),
            passive,
            ejected_until: AtomicU64::new(0),
        }
    }

    /// True when active checks pass and the endpoint is not passively ejected.
    #[inline]
    pub fn is_healthy(&self) -> bool {
        if !self.healthy.load(Ordering::Relaxed) {
            return false;
        }
        let until = self.ejected_until.load(Ordering::Relaxed);
        until == 0 || now_nanos() >= until
    }

    /// Requests currently in flight to this endpoint.
    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { endpoint: Arc::clone(self) }
    }

    /// Records a failed request: `max_fails` within `fail_timeout` eject it for `fail_timeout`.
    pub fn report_failure(&self) {
        let Some(passive) = &self.passive else { return };
        let now = now_nanos();
        let Some(until) = passive.failure(now) else {
            return;
        };
        let previous = self.ejected_until.swap(until, Ordering::Relaxed);
        if previous == 0 || previous <= now {
            tracing::info!(
                cluster = %self.cluster,
                endpoint = %self.addr,
                max_fails = passive.max_fails(),
                "endpoint ejected by passive health",
            );
        }
    }

    /// Records a successful request; clears an ejection whose time is over.
    pub fn report_success(&self) {
        if self.passive.is_none() {
            return;
        }
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until != 0
            && now_nanos() >= until
            && self.ejected_until.compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::info!(
                cluster = %self.cluster,
                endpoint = %self.addr,
                "endpoint recovered from passive ejection",
            );
        }
    }

    /// Sets the active health verdict; returns whether it changed.
    pub(crate) fn set_active_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::Relaxed) != healthy
    }

    /// Name of the cluster this endpoint belongs to.
    pub(crate) fn cluster(&self) -> &Arc<str> {
        &self.cluster
    }
}

// === impl InFlight ===

impl InFlight {
    /// The endpoint the request was sent to.
    pub fn endpoint(&self) -> &Arc<EndpointState> {
        &self.endpoint
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
