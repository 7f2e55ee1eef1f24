//! The drain signal of one worker thread: idle connections are woken and close when the
//! server stops, busy ones close after their current request.
//!
//! Everything here is thread-local: a connection registers its task's waker once, and a
//! check costs one `Cell` read, so the keep-alive path touches no shared cache line.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

thread_local! {
    static DRAIN: Registry = Registry::default();
}

/// This worker's flag and the wakers of its connections.
#[derive(Default)]
struct Registry {
    draining: Cell<bool>,
    wakers: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

/// Whether this worker is draining.
pub(crate) fn is_draining() -> bool {
    DRAIN.with(|d| d.draining.get())
}

/// Starts draining this worker: wakes every registered connection.
pub(crate) fn start() {
    DRAIN.with(|d| {
        d.draining.set(true);
        let wakers = std::mem::take(&mut *d.wakers.borrow_mut());
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    });
}

/// One connection's registration; unregisters on drop.
#[derive(Default)]
pub(crate) struct DrainWatch {
    slot: Option<usize>,
}

impl DrainWatch {
    /// Resolves once this worker drains.
    pub(crate) async fn wait(&mut self) {
        poll_fn(|cx| self.poll_wait(cx)).await
    }

    /// `Ready` once this worker drains; otherwise wakes the caller when it does.
    pub(crate) fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        DRAIN.with(|d| {
            if d.draining.get() {
                return Poll::Ready(());
            }
            let mut wakers = d.wakers.borrow_mut();
            match self.slot {
                Some(slot) => {
                    if let Some(Some(stored)) = wakers.get_mut(slot) {
                        if !stored.will_wake(cx.waker()) {
                            *stored = cx.waker().clone();
                        }
                    }
                }
                None => {
                    let slot = match d.free.borrow_mut().pop() {
                        Some(slot) => {
                            wakers[slot] = Some(cx.waker().clone());
                            slot
                        }
                        None => {
                            wakers.push(Some(cx.waker().clone()));
                            wakers.len() - 1
                        }
                    };
                    self.slot = Some(slot);
                }
            }
            Poll::Pending
        })
    }
}

impl Drop for DrainWatch {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let _ = DRAIN.try_with(|d| {
                if let Some(entry) = d.wakers.borrow_mut().get_mut(slot) {
                    *entry = None;
                    d.free.borrow_mut().push(slot);
                }
            });
        }
    }
}
