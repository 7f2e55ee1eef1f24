//! The compiled form of a listener's `udp` block: the cluster resolved to its live state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use strait_cluster::ClusterState;
use strait_config::UdpForward;

/// How a UDP listener forwards its datagrams.
#[derive(Debug)]
pub(crate) struct UdpPlan {
    /// Where the datagrams go.
    pub cluster: Arc<ClusterState>,
    /// A session ends after this long without a datagram either way.
    pub idle_timeout: Duration,
    /// Most sessions at once on one worker.
    pub max_sessions: usize,
    /// Replies per datagram after which a session ends; `0` for none.
    pub responses: u32,
}

impl UdpPlan {
    /// Compiles `udp` against the cluster states of the snapshot (validation made sure the
    /// cluster exists).
    pub(crate) fn compile(
        listener: &str,
        udp: &UdpForward,
        clusters: &HashMap<String, Arc<ClusterState>>,
    ) -> Result<UdpPlan, String> {
        let cluster = clusters
            .get(&udp.cluster)
            .cloned()
            .ok_or_else(|| format!("listener `{listener}`: unknown cluster `{}`", udp.cluster))?;
        Ok(UdpPlan {
            cluster,
            idle_timeout: udp.idle_timeout.0,
            max_sessions: udp.max_sessions.max(1),
            responses: udp.responses,
        })
    }

    /// Whether a session that sent `datagrams` upstream and got `replies` back is complete.
    pub(crate) fn answered(&self, datagrams: u64, replies: u64) -> bool {
        answered(self.responses, datagrams, replies)
    }
}

/// Whether `replies` answer `datagrams` when each expects `responses` (`0`: never complete).
fn answered(responses: u32, datagrams: u64, replies: u64) -> bool {
    responses != 0 && replies >= datagrams.saturating_mul(u64::from(responses))
}

#[cfg(test)]
mod tests {
    use super::answered;

    #[test]
    fn a_session_is_answered_after_responses_replies_per_datagram() {
        assert!(!answered(1, 1, 0));
        assert!(answered(1, 1, 1));
        assert!(!answered(1, 2, 1), "a second query still waits for its answer");
        assert!(!answered(2, 1, 1));
        assert!(answered(2, 1, 2));
        assert!(!answered(0, 1, 100), "`0` waits for the idle timeout");
    }
}
