//! One client's UDP session: its connected socket towards the endpoint chosen for it, the
//! client's datagrams sent on it, the replies sent back from the listener's socket, and the
//! end (answered, idle, refused by the endpoint, or the listener's drain deadline).

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use socket2::SockAddr;
use strait_cluster::{EndpointState, InFlight};
use strait_http::Reason;
use strait_observe::AccessLog;
use tokio::io::Interest;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::super::drain::ListenerDrain;
use super::super::log::{Outcome, Session};
use super::plan::UdpPlan;
use super::socket::{send, send_to, with_buffer};
use super::table::Table;

/// Replies relayed in one go before the session's task lets others run.
const REPLY_BATCH: usize = 64;

/// A client's session: where its datagrams go and what it carried.
pub(super) struct UdpSession {
    /// The client's address, the key of its session.
    pub client: SocketAddr,
    /// The same, in the form `sendto` takes.
    client_sockaddr: SockAddr,
    /// Connected to the endpoint.
    upstream: tokio::net::UdpSocket,
    /// The endpoint, for passive health.
    endpoint: Arc<EndpointState>,
    /// Counts the session on the endpoint (least-request balancing) while it lasts.
    _in_flight: InFlight,
    /// The listener's plan when the session started.
    plan: Arc<UdpPlan>,
    /// Who, where and when, for the log line.
    record: Session,
    /// The log the line goes to.
    access_log: AccessLog,
    /// When the last datagram went either way.
    last_active: Cell<Instant>,
    /// Datagrams sent to the endpoint, and the bytes received from the client.
    datagrams_up: Cell<u64>,
    bytes_up: Cell<u64>,
    /// Replies from the endpoint, and the bytes sent to the client.
    replies: Cell<u64>,
    bytes_down: Cell<u64>,
    /// The task relaying replies, stopped when the session ends from elsewhere.
    task: Cell<Option<AbortHandle>>,
    /// Whether the session ended (its line is written once).
    ended: Cell<bool>,
}

/// What relaying the replies waiting on the upstream socket came to.
enum Relayed {
    /// All waiting replies relayed; the session goes on.
    Waiting,
    /// A full batch relayed; more may wait.
    Busy,
    /// Every datagram got its replies (`responses`).
    Answered,
    /// The endpoint refused (ICMP port unreachable) or the socket failed.
    Failed,
}

impl UdpSession {
    /// A session of `client` towards `endpoint` over `upstream`, starting now.
    pub(super) fn new(
        client: SocketAddr,
        table: &Table,
        upstream: tokio::net::UdpSocket,
        endpoint: Arc<EndpointState>,
        plan: Arc<UdpPlan>,
        access_log: AccessLog,
    ) -> UdpSession {
        UdpSession {
            client,
            client_sockaddr: client.into(),
            upstream,
            _in_flight: endpoint.start_request(),
            endpoint,
            plan,
            record: Session::start(client, table.listener.clone()),
            access_log,
            last_active: Cell::new(Instant::now()),
            datagrams_up: Cell::new(0),
            bytes_up: Cell::new(0),
            replies: Cell::new(0),
            bytes_down: Cell::new(0),
            task: Cell::new(None),
            ended: Cell::new(false),
        }
    }

    /// Sends a datagram of the client to the endpoint. A full send buffer drops it; an error
    /// other than that (the endpoint refused an earlier one) is returned.
    pub(super) fn forward(&self, datagram: &[u8], now: Instant) -> io::Result<()> {
        self.bytes_up.set(self.bytes_up.get() + datagram.len() as u64);
        self.last_active.set(now);
        match send(&self.upstream, datagram) {
            Ok(_) => {
                self.datagrams_up.set(self.datagrams_up.get() + 1);
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => Err(error),
            Err(error) => {
                tracing::trace!(client = %self.client, %error, "UDP datagram to the endpoint dropped");
                Ok(())
            }
        }
    }

    /// Counts a refusal of the endpoint against its passive health.
    pub(super) fn report_refused(&self) {
        self.endpoint.report_failure();
    }

    /// Marks the session ended and stops its task; `false` if it had ended already.
    pub(super) fn end(&self) -> bool {
        if self.ended.replace(true) {
            return false;
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        true
    }

    /// Writes the session's stream log line.
    pub(super) fn log(&self, reason: Option<Reason>) {
        let outcome = Outcome {
            cluster: Some(&self.plan.cluster.name),
            upstream: Some(self.endpoint.addr),
            connect_time: None,
            received: self.bytes_up.get(),
            sent: self.bytes_down.get(),
            reason,
            carried: reason != Some(Reason::UpstreamConnectFailed),
        };
        self.record.log_as("UDP", &self.access_log, &outcome);
    }

    /// When the session ends without another datagram.
    fn idle_deadline(&self) -> Instant {
        self.last_active.get() + self.plan.idle_timeout
    }

    /// Relays the replies waiting on the upstream socket to the client, from the listener's
    /// socket (a reply the listener's send buffer has no room for is dropped).
    fn relay_replies(&self, table: &Table) -> Relayed {
        with_buffer(|buffer| {
            for _ in 0..REPLY_BATCH {
                let len = match self.upstream.try_recv(buffer) {
                    Ok(len) => len,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Relayed::Waiting,
                    Err(error) => {
                        tracing::debug!(client = %self.client, endpoint = %self.endpoint.addr, %error, "UDP endpoint failed");
                        self.endpoint.report_failure();
                        return Relayed::Failed;
                    }
                };
                if self.replies.get() == 0 {
                    self.endpoint.report_success();
                }
                self.replies.set(self.replies.get() + 1);
                self.last_active.set(Instant::now());
                match send_to(&table.socket, &buffer[..len], &self.client_sockaddr) {
                    Ok(_) => self.bytes_down.set(self.bytes_down.get() + len as u64),
                    Err(error) => tracing::trace!(client = %self.client, %error, "UDP reply dropped"),
                }
                if self.plan.answered(self.datagrams_up.get(), self.replies.get()) {
                    return Relayed::Answered;
                }
            }
            Relayed::Busy
        })
    }
}

/// Starts the task of `session`: replies relayed until it is answered, idle, refused, or its
/// listener's drain deadline passes; then it ends.
pub(super) fn spawn(session: Rc<UdpSession>, table: Rc<Table>) {
    let drain = ListenerDrain::of(&table.listener);
    let task = tokio::task::spawn_local(run(session.clone(), table, drain));
    session.task.set(Some(task.abort_handle()));
}

/// The task of one session.
async fn run(session: Rc<UdpSession>, table: Rc<Table>, drain: ListenerDrain) {
    let drained = drain.deadline();
    tokio::pin!(drained);
    let idle = tokio::time::sleep_until(session.idle_deadline());
    tokio::pin!(idle);
    let reason = loop {
        tokio::select! {
            // An ICMP refusal is only an error on the socket, not a readable datagram.
            ready = session.upstream.ready(Interest::READABLE | Interest::ERROR) => {
                if ready.map_or(true, |ready| ready.is_error()) {
                    let error = session.upstream.take_error().ok().flatten();
                    tracing::debug!(client = %session.client, error = ?error, "UDP endpoint refused");
                    session.report_refused();
                    break Some(Reason::UpstreamConnectFailed);
                }
                match session.relay_replies(&table) {
                    Relayed::Waiting => {}
                    Relayed::Busy => tokio::task::yield_now().await,
                    Relayed::Answered => break None,
                    Relayed::Failed => break Some(Reason::UpstreamConnectFailed),
                }
            }
            () = &mut idle => {
                let due = session.idle_deadline();
                if due <= Instant::now() {
                    break Some(Reason::StreamIdleTimeout);
                }
                idle.as_mut().reset(due);
            }
            () = &mut drained => break Some(Reason::ShuttingDown),
        }
    };
    // The session ends from its own task: nothing to stop.
    session.task.take();
    table.finish(&session, reason);
}
