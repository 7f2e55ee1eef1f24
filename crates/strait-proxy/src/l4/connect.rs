//! The upstream side of a TCP session: an endpoint chosen by the cluster's balancer, connected
//! within the cluster's connect timeout, the next endpoint tried after a failure, and each
//! outcome reported to passive health.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use strait_cluster::{ClusterState, InFlight, PickContext};
use strait_http::Reason;
use tokio::net::TcpStream;

/// A connected upstream and what the log says about it.
pub(super) struct Connected {
    /// The connection.
    pub stream: TcpStream,
    /// The endpoint's address.
    pub addr: SocketAddr,
    /// Counts the session on the endpoint (least-connection balancing) while it lasts.
    pub in_flight: InFlight,
    /// Time spent connecting, all attempts.
    pub connect_time: Duration,
}

/// Why no upstream connection could be made, and the last endpoint tried.
pub(super) struct Failed {
    /// `no_healthy_upstream`, `upstream_connect_failed` or `upstream_connect_timeout`.
    pub reason: Reason,
    /// The last endpoint tried, if any.
    pub addr: Option<SocketAddr>,
    /// Time spent trying.
    pub connect_time: Duration,
}

/// Connects to an endpoint of `cluster` for `client`, trying up to `attempts` endpoints.
pub(super) async fn connect(cluster: &ClusterState, client: SocketAddr, attempts: u32) -> Result<Connected, Failed> {
    let started = Instant::now();
    let timeout = cluster.config.timeouts.connect.0;
    let ctx = PickContext { client_ip: client.ip(), hash_key: None };
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut last = Failed { reason: Reason::NoHealthyUpstream, addr: None, connect_time: Duration::ZERO };
    for _ in 0..attempts.max(1) {
        let Some(endpoint) = cluster.pick(&ctx, &tried) else { break };
        // A healthy endpoint already tried comes back only when none is left untried.
        if tried.contains(&endpoint.addr) {
            break;
        }
        tried.push(endpoint.addr);
        let in_flight = endpoint.start_request();
        let reason = match tokio::time::timeout(timeout, TcpStream::connect(endpoint.addr)).await {
            Ok(Ok(stream)) => {
                endpoint.report_success();
                let _ = stream.set_nodelay(true);
                return Ok(Connected { stream, addr: endpoint.addr, in_flight, connect_time: started.elapsed() });
            }
            Ok(Err(error)) if is_local(&error) => {
                // Out of descriptors or ports: this process's trouble, not the endpoint's. The
                // next endpoint would fail the same way.
                tracing::warn!(cluster = %cluster.name, endpoint = %endpoint.addr, %error, "TCP connect failed locally");
                last = Failed {
                    reason: Reason::UpstreamConnectFailed,
                    addr: Some(endpoint.addr),
                    connect_time: started.elapsed(),
                };
                break;
            }
            Ok(Err(error)) => {
                tracing::debug!(cluster = %cluster.name, endpoint = %endpoint.addr, %error, "TCP connect failed");
                Reason::UpstreamConnectFailed
            }
            Err(_) => Reason::UpstreamConnectTimeout,
        };
        endpoint.report_failure();
        last = Failed { reason, addr: Some(endpoint.addr), connect_time: started.elapsed() };
    }
    last.connect_time = started.elapsed();
    Err(last)
}

/// Whether a failed connect says nothing about the endpoint: the process is out of file
/// descriptors, memory or local ports (EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL).
pub(super) fn is_local(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if [
        rustix::io::Errno::MFILE.raw_os_error(),
        rustix::io::Errno::NFILE.raw_os_error(),
        rustix::io::Errno::NOBUFS.raw_os_error(),
        rustix::io::Errno::NOMEM.raw_os_error(),
        rustix::io::Errno::ADDRNOTAVAIL.raw_os_error(),
    ].contains(&code))
}
