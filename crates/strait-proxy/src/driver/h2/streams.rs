//! The streams of one HTTP/2 connection, run by the connection's own task rather than a task
//! each: starting a stream spawns nothing, and once the connection has run as many streams at
//! once before, allocates nothing either.
//!
//! Every stream future has a slot with a waker of its own; a wake queues the slot and wakes the
//! connection task, which polls only the queued slots. A finished stream's slot (its box and
//! waker) serves the next stream; the connection frees the slots once it has been without
//! streams for a while.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Wake, Waker};

/// Slots kept once the connection has no stream (none: a slot holds a whole exchange's
/// future, about 5 KiB, and an idle connection keeps no stream state).
const SPARE_WHEN_IDLE: usize = 0;

/// The running streams of one connection, all futures of type `F`.
pub(super) struct Streams<F> {
    slots: Vec<Slot<F>>,
    /// Slots without a stream.
    free: Vec<usize>,
    /// Streams running.
    running: usize,
    ready: Arc<Ready>,
    /// The slots being polled (kept to reuse its allocation).
    polling: Vec<usize>,
}

/// One stream's future and its waker.
struct Slot<F> {
    future: Pin<Box<Option<F>>>,
    waker: Arc<SlotWaker>,
    /// `waker` as a `Waker`.
    handle: Waker,
}

/// The queue of woken slots and the connection task to wake.
#[derive(Default)]
struct Ready(Mutex<Queue>);

/// What [`Ready`] guards.
#[derive(Default)]
struct Queue {
    slots: Vec<usize>,
    task: Option<Waker>,
}

impl Ready {
    /// The queue, locked.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Wakes one slot: queues it (once until it is polled) and wakes the connection task.
struct SlotWaker {
    index: usize,
    queued: AtomicBool,
    ready: Arc<Ready>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut queue = self.ready.lock();
        queue.slots.push(self.index);
        if let Some(task) = &queue.task {
            task.wake_by_ref();
        }
    }
}

impl<F: Future<Output = ()>> Streams<F> {
    /// No streams yet.
    pub(super) fn new() -> Streams<F> {
        Streams { slots: Vec::new(), free: Vec::new(), running: 0, ready: Arc::default(), polling: Vec::new() }
    }

    /// Whether no stream is running.
    pub(super) fn is_empty(&self) -> bool {
        self.running == 0
    }

    /// Starts the future `make` returns; it is first polled by the next [`poll`](Streams::poll).
    /// Made here, the future can be written straight into its slot instead of being moved
    /// there (a stream's future is about 5 KiB).
    #[inline]
    pub(super) fn start(&mut self, make: impl FnOnce() -> F) {
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index].future.as_mut().set(Some(make()));
                index
            }
            None => {
                let index = self.slots.len();
                let waker = Arc::new(SlotWaker { index, queued: AtomicBool::new(false), ready: self.ready.clone() });
                let handle = Waker::from(waker.clone());
                self.slots.push(Slot { future: Box::pin(Some(make())), waker, handle });
                index
            }
        };
        self.running += 1;
        // Queued without waking the task: the caller polls next.
        if !self.slots[index].waker.queued.swap(true, Ordering::AcqRel) {
            self.ready.lock().slots.push(index);
        }
    }

    /// Polls the streams woken since the last call; `cx` is the connection task's, woken when
    /// a stream is.
    pub(super) fn poll(&mut self, cx: &mut Context<'_>) {
        {
            let mut queue = self.ready.lock();
            if !queue.task.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
                queue.task = Some(cx.waker().clone());
            }
            if queue.slots.is_empty() {
                return;
            }
            std::mem::swap(&mut queue.slots, &mut self.polling);
        }
        for index in self.polling.drain(..) {
            // A wake may outlive its stream (and its slot, once spares are dropped).
            let Some(slot) = self.slots.get_mut(index) else { continue };
            slot.waker.queued.store(false, Ordering::Release);
            let Some(future) = slot.future.as_mut().as_pin_mut() else { continue };
            if future.poll(&mut Context::from_waker(&slot.handle)).is_ready() {
                slot.future.as_mut().set(None);
                self.free.push(index);
                self.running -= 1;
            }
        }
    }

    /// Whether slots beyond [`SPARE_WHEN_IDLE`] are kept.
    pub(super) fn has_spares(&self) -> bool {
        self.slots.len() > SPARE_WHEN_IDLE
    }

    /// Drops the spare slots beyond [`SPARE_WHEN_IDLE`] once no stream runs.
    pub(super) fn release_spares(&mut self) {
        if self.running == 0 && self.slots.len() > SPARE_WHEN_IDLE {
            self.slots.truncate(SPARE_WHEN_IDLE);
            self.free.clear();
            self.free.extend(0..self.slots.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::future::poll_fn;
    use std::rc::Rc;
    use std::task::Poll;

    use super::*;

    /// A future pending until `open` is set, counting its polls.
    fn gate(open: Rc<Cell<bool>>, polls: Rc<Cell<u32>>, waker: Rc<Cell<Option<Waker>>>) -> impl Future<Output = ()> {
        poll_fn(move |cx| {
            polls.set(polls.get() + 1);
            if open.get() {
                return Poll::Ready(());
            }
            waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
    }

    #[test]
    fn only_woken_streams_are_polled_and_slots_are_reused() {
        let (task_wakes, task) = counting_waker();
        let mut cx = Context::from_waker(&task);
        let mut streams = Streams::new();
        let gates: Vec<_> = (0..3)
            .map(|_| (Rc::new(Cell::new(false)), Rc::new(Cell::new(0)), Rc::new(Cell::new(None::<Waker>))))
            .collect();
        for (open, polls, waker) in &gates {
            streams.start(|| gate(open.clone(), polls.clone(), waker.clone()));
        }
        streams.poll(&mut cx);
        assert!(gates.iter().all(|(_, polls, _)| polls.get() == 1));
        assert_eq!(task_wakes.load(Ordering::SeqCst), 0);
        // Waking the second stream polls it alone, and wakes the connection task.
        gates[1].0.set(true);
        gates[1].2.take().expect("registered").wake();
        assert_eq!(task_wakes.load(Ordering::SeqCst), 1);
        streams.poll(&mut cx);
        assert_eq!(gates.iter().map(|(_, polls, _)| polls.get()).collect::<Vec<_>>(), [1, 2, 1]);
        assert_eq!(streams.running, 2);
        // Its slot serves the next stream.
        let next = (Rc::new(Cell::new(true)), Rc::new(Cell::new(0)), Rc::new(Cell::new(None)));
        streams.start(|| gate(next.0.clone(), next.1.clone(), next.2.clone()));
        assert_eq!(streams.slots.len(), 3);
        streams.poll(&mut cx);
        assert_eq!(next.1.get(), 1);
        for (open, _, waker) in &gates {
            open.set(true);
            if let Some(waker) = waker.take() {
                waker.wake();
            }
        }
        streams.poll(&mut cx);
        assert!(streams.is_empty());
        assert_eq!(streams.slots.len(), 3);
        streams.release_spares();
        assert_eq!(streams.slots.len(), SPARE_WHEN_IDLE);
    }

    /// A waker counting its wakes.
    fn counting_waker() -> (Arc<std::sync::atomic::AtomicUsize>, Waker) {
        struct Count(Arc<std::sync::atomic::AtomicUsize>);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        (count.clone(), Waker::from(Arc::new(Count(count))))
    }
}
