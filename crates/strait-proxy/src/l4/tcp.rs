//! One TCP session: an upstream connection to the chosen cluster, the bytes relayed both ways,
//! and the stream log line when it ends.

use std::sync::Arc;

use strait_cluster::ClusterState;
use strait_http::Reason;
use strait_observe::AccessLog;
use tokio::net::TcpStream;

use super::connect::{connect, Failed};
use super::drain::ListenerDrain;
use super::log::{Outcome, Session};
use super::relay::{relay, Ended};
use super::TcpPlan;

/// Forwards the client connection `client` of `session` to `cluster` until it ends, then logs it.
pub(crate) async fn forward(
    client: TcpStream,
    session: Session,
    cluster: &ClusterState,
    plan: &TcpPlan,
    access_log: &AccessLog,
    drain: &ListenerDrain,
) {
    let upstream = match connect(cluster, session.client, plan.connect_attempts).await {
        Ok(connected) => connected,
        Err(Failed { reason, addr, connect_time }) => {
            tracing::debug!(client = %session.client, cluster = %cluster.name, reason = reason.code(), "TCP session refused");
            let outcome = Outcome {
                cluster: Some(&cluster.name),
                upstream: addr,
                connect_time: addr.map(|_| connect_time),
                reason: Some(reason),
                ..Outcome::default()
            };
            session.log(access_log, &outcome);
            return;
        }
    };
    let super::connect::Connected { mut stream, addr, in_flight, connect_time } = upstream;
    if let Some(version) = cluster.config.proxy_protocol {
        let destination = session.local.unwrap_or_else(|| client.local_addr().unwrap_or(session.client));
        let endpoints = crate::proxy_protocol::Endpoints { source: session.client, destination };
        if let Err(error) = crate::proxy_protocol::send(&mut stream, version, endpoints).await {
            tracing::debug!(cluster = %cluster.name, endpoint = %addr, %error, "PROXY header not sent");
            drop(in_flight);
            let outcome = Outcome {
                cluster: Some(&cluster.name),
                upstream: Some(addr),
                connect_time: Some(connect_time),
                reason: Some(Reason::UpstreamReset),
                ..Outcome::default()
            };
            session.log(access_log, &outcome);
            return;
        }
    }
    let relayed = relay(client, stream, plan, drain).await;
    // The endpoint stops counting the session before its line is written.
    drop(in_flight);
    let reason = relayed.ended_by.map(|ended| match ended {
        Ended::Idle => Reason::StreamIdleTimeout,
        Ended::Client => Reason::ClientAborted,
        Ended::Upstream => Reason::UpstreamReset,
        Ended::Drained => Reason::ShuttingDown,
    });
    let outcome = Outcome {
        cluster: Some(&cluster.name),
        upstream: Some(addr),
        connect_time: Some(connect_time),
        received: relayed.up,
        sent: relayed.down,
        reason,
        carried: true,
    };
    session.log(access_log, &outcome);
}

/// Serves one connection of a TCP listener without passthrough routes: to its cluster.
pub(crate) async fn serve(
    client: TcpStream,
    session: Session,
    plan: Arc<TcpPlan>,
    access_log: AccessLog,
    drain: &ListenerDrain,
) {
    match plan.default_cluster.clone() {
        Some(cluster) => forward(client, session, &cluster, &plan, &access_log, drain).await,
        None => session.refused(&access_log, Reason::NoSniRoute),
    }
}
