//! The sessions of one UDP listener on one worker, by client address, and the end of a
//! session (taken out of the table, its task stopped, its log line written).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use strait_http::Reason;

use super::session::UdpSession;

thread_local! {
    /// Every session table of this worker, for the end of all sessions when the server stops.
    static TABLES: RefCell<Vec<Weak<Table>>> = const { RefCell::new(Vec::new()) };
}

/// Sessions by client address; clients choose their ports, so the hash is seeded.
type Sessions = HashMap<SocketAddr, Rc<UdpSession>, foldhash::fast::RandomState>;

/// One listener's socket on this worker and its sessions.
pub(super) struct Table {
    /// The listener's socket: datagrams arrive on it and replies leave from it.
    pub socket: tokio::net::UdpSocket,
    /// The listener's name.
    pub listener: Arc<str>,
    /// The sessions, by client address.
    sessions: RefCell<Sessions>,
    /// When the last dropped datagram was logged, and the drops not logged since.
    drop_log: std::cell::Cell<(Option<std::time::Instant>, u64)>,
}

impl Table {
    /// Whether a dropped datagram gets a log line: at most one a second per listener and
    /// worker, so a flood of new (or spoofed) clients is not a flood of lines. `Some` with the
    /// drops left unlogged since the last line, `None` to count this one silently.
    pub(super) fn log_drop(&self) -> Option<u64> {
        let now = std::time::Instant::now();
        let (last, unlogged) = self.drop_log.get();
        if last.is_some_and(|last| now.duration_since(last) < std::time::Duration::from_secs(1)) {
            self.drop_log.set((last, unlogged + 1));
            return None;
        }
        self.drop_log.set((Some(now), 0));
        Some(unlogged)
    }

    /// A table for `socket` of `listener`, known to [`end_all`].
    pub(super) fn new(socket: tokio::net::UdpSocket, listener: Arc<str>) -> Rc<Table> {
        let table = Rc::new(Table { socket, listener, sessions: RefCell::default(), drop_log: Default::default() });
        TABLES.with_borrow_mut(|tables| {
            tables.retain(|t| t.strong_count() > 0);
            tables.push(Rc::downgrade(&table));
        });
        table
    }

    /// The session of `client`, if it has one.
    pub(super) fn get(&self, client: &SocketAddr) -> Option<Rc<UdpSession>> {
        self.sessions.borrow().get(client).cloned()
    }

    /// Sessions open.
    pub(super) fn len(&self) -> usize {
        self.sessions.borrow().len()
    }

    /// Adds the session of its client.
    pub(super) fn insert(&self, session: Rc<UdpSession>) {
        self.sessions.borrow_mut().insert(session.client, session);
    }

    /// Ends `session` for `reason` (`None`: it was answered): out of the table, its task
    /// stopped, its line logged. Ending it again does nothing.
    pub(super) fn finish(&self, session: &Rc<UdpSession>, reason: Option<Reason>) {
        if !session.end() {
            return;
        }
        let mut sessions = self.sessions.borrow_mut();
        if sessions.get(&session.client).is_some_and(|current| Rc::ptr_eq(current, session)) {
            sessions.remove(&session.client);
        }
        drop(sessions);
        session.log(reason);
    }

    /// Ends every session of this table for `reason`.
    fn finish_all(&self, reason: Reason) {
        let sessions: Vec<Rc<UdpSession>> = self.sessions.borrow_mut().drain().map(|(_, s)| s).collect();
        for session in sessions {
            self.finish(&session, Some(reason));
        }
    }
}

/// Ends the UDP sessions of `listener` on this worker now (it was removed or rebound): its
/// socket closes with them, so no datagram waits, unread, in a socket nothing serves, and
/// clients reach the new listener at once.
pub(crate) fn end_listener(listener: &str) {
    let tables: Vec<Rc<Table>> = TABLES.with_borrow_mut(|tables| {
        tables.retain(|t| t.strong_count() > 0);
        tables.iter().filter_map(|t| t.upgrade()).filter(|t| &*t.listener == listener).collect()
    });
    for table in tables {
        table.finish_all(Reason::ShuttingDown);
    }
}

/// Ends every UDP session of this worker now (the server stops: no datagram of theirs could
/// be relayed any more), each logged with `shutting_down`.
pub(crate) fn end_all() {
    let tables: Vec<Rc<Table>> =
        TABLES.with_borrow_mut(|tables| tables.drain(..).filter_map(|t| t.upgrade()).collect());
    for table in tables {
        table.finish_all(Reason::ShuttingDown);
    }
}
