//! A UDP listener's socket on one worker: each datagram goes to its client's session, a new
//! session is opened for a new client (endpoint picked, socket connected), or the datagram is
//! dropped with a log line (session limit, no healthy endpoint).

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use strait_cluster::PickContext;
use strait_http::Reason;
use tokio::time::Instant;

use super::super::log::{Outcome, Session};
use super::session::{self, UdpSession};
use super::socket::{connect_upstream, with_buffer};
use super::table::Table;
use crate::shared::Shared;

/// Datagrams read in one go before the listener's task lets others run.
const DATAGRAM_BATCH: usize = 64;

/// Serves the socket of UDP listener `listener` on this worker until the task is stopped.
pub(crate) async fn serve(socket: std::net::UdpSocket, listener: Arc<str>, shared: Arc<Shared>) {
    let table = match tokio::net::UdpSocket::from_std(socket) {
        Ok(socket) => Table::new(socket, listener.clone()),
        Err(error) => {
            tracing::error!(%listener, %error, "cannot register UDP listener");
            return;
        }
    };
    loop {
        if let Err(error) = table.socket.readable().await {
            tracing::warn!(%listener, %error, "UDP listener failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let now = Instant::now();
        let busy = with_buffer(|buffer| {
            for _ in 0..DATAGRAM_BATCH {
                match table.socket.try_recv_from(buffer) {
                    Ok((len, client)) => on_datagram(&table, &shared, &buffer[..len], client, now),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Some(false),
                    Err(error) => {
                        tracing::debug!(%listener, %error, "UDP receive failed");
                        return None;
                    }
                }
            }
            Some(true)
        });
        match busy {
            Some(true) => tokio::task::yield_now().await,
            Some(false) => {}
            // The socket stays readable with an error pending: pause rather than spin on it.
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Sends `datagram` of `client` on its session, opening one first for a new client.
fn on_datagram(table: &Rc<Table>, shared: &Shared, datagram: &[u8], client: SocketAddr, now: Instant) {
    let session = match table.get(&client) {
        Some(session) => session,
        None => match open(table, shared, client, datagram.len()) {
            Some(session) => session,
            None => return,
        },
    };
    if let Err(error) = session.forward(datagram, now) {
        tracing::debug!(%client, %error, "UDP endpoint refused");
        session.report_refused();
        table.finish(&session, Some(Reason::UpstreamConnectFailed));
    }
}

/// Opens the session of a new client with the listener's current plan; `None` when the
/// datagram is dropped instead (logged with its reason).
fn open(table: &Rc<Table>, shared: &Shared, client: SocketAddr, len: usize) -> Option<Rc<UdpSession>> {
    let snapshot = shared.snapshot.load();
    let plan = snapshot.listener(&table.listener).and_then(|l| l.udp.clone())?;
    let access_log = &snapshot.access_log;
    let dropped = |reason: Reason, upstream: Option<SocketAddr>| {
        tracing::debug!(%client, listener = %table.listener, reason = reason.code(), "UDP datagram dropped");
        let Some(unlogged) = table.log_drop() else { return };
        if unlogged > 0 {
            tracing::warn!(listener = %table.listener, unlogged, "UDP datagrams dropped without a log line of their own");
        }
        let outcome = Outcome {
            cluster: Some(&plan.cluster.name),
            upstream,
            received: len as u64,
            reason: Some(reason),
            ..Outcome::default()
        };
        Session::start(client, table.listener.clone()).log_as("UDP", access_log, &outcome);
    };
    if table.len() >= plan.max_sessions {
        dropped(Reason::UdpSessionLimit, None);
        return None;
    }
    let Some(endpoint) = plan.cluster.pick(&PickContext { client_ip: client.ip(), hash_key: None }, &[]) else {
        dropped(Reason::NoHealthyUpstream, None);
        return None;
    };
    let upstream = match connect_upstream(endpoint.addr) {
        Ok(upstream) => upstream,
        Err(error) => {
            tracing::debug!(%client, endpoint = %endpoint.addr, %error, "UDP endpoint unreachable");
            if !crate::l4::connect::is_local(&error) {
                endpoint.report_failure();
            }
            dropped(Reason::UpstreamConnectFailed, Some(endpoint.addr));
            return None;
        }
    };
    let session = Rc::new(UdpSession::new(client, table, upstream, endpoint, plan.clone(), access_log.clone()));
    table.insert(session.clone());
    session::spawn(session.clone(), table.clone());
    Some(session)
}
