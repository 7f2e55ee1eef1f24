//! Draining the TCP sessions of one listener: when the listener is removed (or the server
//! stops), its sessions keep going until the drain deadline, then close.
//!
//! State is per worker thread and per listener name; a listener added again under the same
//! name starts with a fresh state, so its new sessions do not inherit the old deadline.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

thread_local! {
    /// The drain state of every listener with sessions on this worker, by name.
    static LISTENERS: RefCell<HashMap<Arc<str>, Rc<State>>> = RefCell::new(HashMap::new());
}

/// One listener's drain deadline, once set, and the sessions waiting for it.
#[derive(Debug, Default)]
struct State {
    deadline: Cell<Option<Instant>>,
    set: Notify,
}

/// A session's handle on its listener's drain state.
#[derive(Debug, Clone)]
pub(crate) struct ListenerDrain(Rc<State>);

impl ListenerDrain {
    /// The current drain state of `listener` on this worker.
    pub(crate) fn of(listener: &Arc<str>) -> ListenerDrain {
        LISTENERS.with(|all| ListenerDrain(all.borrow_mut().entry(listener.clone()).or_default().clone()))
    }

    /// Resolves at the drain deadline, once one is set.
    pub(crate) async fn deadline(&self) {
        loop {
            // Created before the check, so a deadline set after it still wakes this wait.
            let set = self.0.set.notified();
            if let Some(deadline) = self.0.deadline.get() {
                tokio::time::sleep_until(deadline).await;
                return;
            }
            set.await;
        }
    }
}

/// Gives the sessions of `listener` on this worker until `deadline`; new sessions of a listener
/// of the same name start afresh.
pub(crate) fn start(listener: &str, deadline: Instant) {
    if let Some(state) = LISTENERS.with(|all| all.borrow_mut().remove(listener)) {
        state.deadline.set(Some(deadline));
        state.set.notify_waiters();
    }
}

/// Gives the sessions of every listener on this worker until `deadline` (the server stops).
pub(crate) fn start_all(deadline: Instant) {
    let all: Vec<Rc<State>> = LISTENERS.with(|all| all.borrow_mut().drain().map(|(_, state)| state).collect());
    for state in all {
        state.deadline.set(Some(deadline));
        state.set.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sessions_end_at_the_deadline_of_their_listener_only() {
        let old: Arc<str> = Arc::from("db");
        let other: Arc<str> = Arc::from("cache");
        let session = ListenerDrain::of(&old);
        let unrelated = ListenerDrain::of(&other);
        let started = Instant::now();
        // The session waits before the deadline is set, as a relay does.
        let set_later = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            start("db", Instant::now() + Duration::from_secs(5));
        };
        tokio::join!(session.deadline(), set_later);
        assert_eq!(Instant::now() - started, Duration::from_secs(6));
        let renewed = ListenerDrain::of(&old);
        assert!(!Rc::ptr_eq(&renewed.0, &session.0), "a listener added again starts afresh");
        let unrelated_ended = tokio::time::timeout(Duration::from_secs(60), unrelated.deadline()).await;
        assert!(unrelated_ended.is_err(), "another listener's sessions keep going");
        start_all(Instant::now());
        tokio::time::timeout(Duration::from_secs(1), unrelated.deadline()).await.expect("the server stops");
    }
}
