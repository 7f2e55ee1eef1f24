//! A deadline timer kept across requests whose deadline can move later without touching the
//! runtime's timer wheel each time.
//!
//! Registering a Tokio timer costs a lock, a wheel insertion and a removal; a connection that
//! serves a request every millisecond and re-arms a 60 s timeout each time pays that for
//! nothing. Here, moving the deadline later only records it; when the registered (earlier)
//! timer fires, it is re-armed to the recorded deadline, so a busy connection registers its
//! timer about once per timeout period (the lazy timer updates of NGINX's event loop work the
//! same way). Moving it earlier re-arms at once, so expiry is never late.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// A timer that expires at its latest [`set`](LazyDeadline::set) deadline.
pub(crate) struct LazyDeadline {
    sleep: Pin<Box<Sleep>>,
    target: Instant,
}

impl LazyDeadline {
    /// A timer expiring at `target`.
    pub(crate) fn new(target: Instant) -> LazyDeadline {
        LazyDeadline { sleep: Box::pin(tokio::time::sleep_until(target)), target }
    }

    /// Moves the deadline to `target`.
    pub(crate) fn set(&mut self, target: Instant) {
        if target < self.sleep.deadline() {
            self.sleep.as_mut().reset(target);
        }
        self.target = target;
    }

    /// When the timer expires.
    pub(crate) fn deadline(&self) -> Instant {
        self.target
    }

    /// `Ready` once the deadline has passed; otherwise wakes the caller when it does.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.sleep.deadline() >= self.target {
                return Poll::Ready(());
            }
            let target = self.target;
            self.sleep.as_mut().reset(target);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expires_at_the_latest_deadline_set() {
        let start = Instant::now();
        let mut timer = LazyDeadline::new(start + Duration::from_secs(1));
        timer.set(start + Duration::from_secs(5));
        poll_fn(|cx| timer.poll_expired(cx)).await;
        assert_eq!(Instant::now().duration_since(start), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_takes_effect_at_once() {
        let start = Instant::now();
        let mut timer = LazyDeadline::new(start + Duration::from_secs(60));
        timer.set(start + Duration::from_millis(200));
        poll_fn(|cx| timer.poll_expired(cx)).await;
        assert_eq!(Instant::now().duration_since(start), Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fired_timer_can_be_set_again() {
        let start = Instant::now();
        let mut timer = LazyDeadline::new(start + Duration::from_secs(1));
        poll_fn(|cx| timer.poll_expired(cx)).await;
        timer.set(start + Duration::from_secs(3));
        assert!(poll_fn(|cx| Poll::Ready(timer.poll_expired(cx))).await.is_pending());
        poll_fn(|cx| timer.poll_expired(cx)).await;
        assert_eq!(Instant::now().duration_since(start), Duration::from_secs(3));
    }
}
