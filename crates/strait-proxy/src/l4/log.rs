//! The stream log line of a TCP or UDP session, written when it ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use strait_http::Reason;
use strait_observe::{AccessLog, StreamRecord};

/// What is known about a TCP session as it goes, for its log line.
#[derive(Debug)]
pub(crate) struct Session {
    /// The client: the peer, or the source a trusted PROXY header named.
    pub client: SocketAddr,
    /// The address the client connected to, when a received PROXY header named it (the
    /// destination of a header sent upstream; otherwise read from the socket when needed).
    pub local: Option<SocketAddr>,
    /// The listener that accepted it.
    pub listener: Arc<str>,
    /// When it was accepted, on the wall clock (for the log) and the process clock.
    pub started: (SystemTime, Instant),
    /// The TLS server name the ClientHello carried (passthrough).
    pub server_name: Option<String>,
}

/// How a session ended, for its log line.
#[derive(Debug, Default)]
pub(super) struct Outcome<'a> {
    /// Cluster it went to.
    pub cluster: Option<&'a str>,
    /// Endpoint it was connected to (or the last one tried).
    pub upstream: Option<SocketAddr>,
    /// Time spent connecting.
    pub connect_time: Option<Duration>,
    /// Bytes from the client.
    pub received: u64,
    /// Bytes to the client.
    pub sent: u64,
    /// Why it was refused or ended early.
    pub reason: Option<Reason>,
    /// Whether it was carried (status 200) rather than refused (the reason's status).
    pub carried: bool,
}

impl Session {
    /// A session of `client` on `listener`, starting now.
    pub(crate) fn start(client: SocketAddr, listener: Arc<str>) -> Session {
        Session { client, local: None, listener, started: (SystemTime::now(), Instant::now()), server_name: None }
    }

    /// Writes the session's line to `log`.
    pub(super) fn log(&self, log: &AccessLog, outcome: &Outcome<'_>) {
        self.log_as("TCP", log, outcome);
    }

    /// Writes the line of a session of `protocol` (`TCP` or `UDP`) to `log`.
    pub(super) fn log_as(&self, protocol: &str, log: &AccessLog, outcome: &Outcome<'_>) {
        if !log.is_enabled() {
            return;
        }
        let status = match (outcome.carried, outcome.reason) {
            (true, _) | (false, None) => 200,
            (false, Some(reason)) => reason.status().as_u16(),
        };
        log.log_stream(&StreamRecord {
            client_addr: self.client,
            time: self.started.0,
            protocol,
            listener: &self.listener,
            status,
            bytes_sent: outcome.sent,
            bytes_received: outcome.received,
            session_time: self.started.1.elapsed(),
            cluster: outcome.cluster,
            upstream_addr: outcome.upstream,
            connect_time: outcome.connect_time,
            server_name: self.server_name.as_deref(),
            reason: outcome.reason.map(Reason::code),
        });
    }

    /// Logs a session refused before any upstream was chosen (bad hello, no route).
    pub(crate) fn refused(&self, log: &AccessLog, reason: Reason) {
        self.log(log, &Outcome { reason: Some(reason), ..Outcome::default() });
    }
}
