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
    sessions: RefCell<Sessions>,
}

impl Table {
    /// A table for `socket` of `listener`, known to [`end_all`].
    pub(super) fn new(socket: tokio::net::UdpSocket, listener: Arc<str>) -> Rc<Table> {
        let table = Rc::new(Table { socket, listener, sessions: RefCell::default() });
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
