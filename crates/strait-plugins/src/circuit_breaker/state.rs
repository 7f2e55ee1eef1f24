//! The breaker's state machine, apart from requests and clocks: closed, open until a time,
//! half-open with a number of trial requests in flight.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When the breaker opens.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Open after this many failures in a row (0: not by count).
    pub consecutive_failures: u32,
    /// Open when at least this share of the outcomes in `window` are failures (0: not by rate).
    pub failure_rate: f64,
    /// Outcomes needed in the window before the rate counts.
    pub minimum_requests: u32,
    /// How far back the rate looks.
    pub window: Duration,
    /// How long the breaker stays open before letting trial requests through.
    pub cool_down: Duration,
    /// Trial requests let through at once while half-open.
    pub half_open_requests: u32,
}

/// Where the breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Requests pass; outcomes are counted.
    Closed,
    /// Requests are answered with the fallback until the instant.
    Open(Instant),
    /// This many trial requests are in flight.
    HalfOpen(u32),
}

/// What the breaker decides for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it upstream.
    Pass,
    /// Send it upstream as a trial of a half-open breaker.
    Trial,
    /// Answer with the fallback.
    Refuse,
}

/// One breaker's counters.
#[derive(Debug)]
pub struct Breaker {
    thresholds: Thresholds,
    mode: Mode,
    consecutive: u32,
    /// Recent outcomes (when, failed), oldest first, within the rate window.
    outcomes: VecDeque<(Instant, bool)>,
}

/// Most outcomes kept for the rate (a bound on memory at any request rate).
const MAX_OUTCOMES: usize = 4096;

impl Breaker {
    /// A closed breaker.
    pub fn new(thresholds: Thresholds) -> Breaker {
        Breaker { thresholds, mode: Mode::Closed, consecutive: 0, outcomes: VecDeque::new() }
    }

    /// The current mode.
    #[cfg(test)]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Decides for a request arriving at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.mode {
            Mode::Closed => Admission::Pass,
            Mode::Open(until) if now < until => Admission::Refuse,
            Mode::Open(_) => {
                self.mode = Mode::HalfOpen(1);
                Admission::Trial
            }
            Mode::HalfOpen(trials) if trials < self.thresholds.half_open_requests => {
                self.mode = Mode::HalfOpen(trials + 1);
                Admission::Trial
            }
            Mode::HalfOpen(_) => Admission::Refuse,
        }
    }

    /// Records the outcome of a request admitted as `admission`.
    pub fn record(&mut self, admission: Admission, failed: bool, now: Instant) {
        match admission {
            Admission::Refuse => {}
            Admission::Trial => {
                if failed {
                    self.open(now);
                } else if matches!(self.mode, Mode::HalfOpen(_)) {
                    self.close();
                }
            }
            Admission::Pass => {
                if self.mode != Mode::Closed {
                    return;
                }
                self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                self.remember(now, failed);
                if self.should_open() {
                    self.open(now);
                }
            }
        }
    }

    /// A trial that ended without an outcome (the client went away): its place is free again.
    pub fn abandon(&mut self, admission: Admission) {
        if let (Admission::Trial, Mode::HalfOpen(trials)) = (admission, self.mode) {
            self.mode = Mode::HalfOpen(trials.saturating_sub(1));
        }
    }

    fn remember(&mut self, now: Instant, failed: bool) {
        if self.thresholds.failure_rate <= 0.0 {
            return;
        }
        self.outcomes.push_back((now, failed));
        while self.outcomes.len() > MAX_OUTCOMES
            || self.outcomes.front().is_some_and(|(at, _)| now.duration_since(*at) > self.thresholds.window)
        {
            self.outcomes.pop_front();
        }
    }

    fn should_open(&self) -> bool {
        let t = &self.thresholds;
        if t.consecutive_failures > 0 && self.consecutive >= t.consecutive_failures {
            return true;
        }
        let total = self.outcomes.len();
        if t.failure_rate <= 0.0 || total == 0 || total < t.minimum_requests as usize {
            return false;
        }
        let failures = self.outcomes.iter().filter(|(_, failed)| *failed).count();
        failures as f64 / total as f64 >= t.failure_rate
    }

    fn open(&mut self, now: Instant) {
        self.mode = Mode::Open(now + self.thresholds.cool_down);
        self.consecutive = 0;
        self.outcomes.clear();
    }

    fn close(&mut self) {
        self.mode = Mode::Closed;
        self.consecutive = 0;
        self.outcomes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds() -> Thresholds {
        Thresholds {
            consecutive_failures: 3,
            failure_rate: 0.0,
            minimum_requests: 0,
            window: Duration::from_secs(10),
            cool_down: Duration::from_secs(30),
            half_open_requests: 1,
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_half_opens_after_the_cool_down() {
        let start = Instant::now();
        let mut breaker = Breaker::new(thresholds());
        for _ in 0..2 {
            let admission = breaker.admit(start);
            breaker.record(admission, true, start);
        }
        breaker.record(Admission::Pass, false, start);
        assert_eq!(breaker.mode(), Mode::Closed, "a success resets the count");
        for _ in 0..3 {
            breaker.record(Admission::Pass, true, start);
        }
        assert_eq!(breaker.admit(start + Duration::from_secs(29)), Admission::Refuse);
        let later = start + Duration::from_secs(31);
        assert_eq!(breaker.admit(later), Admission::Trial);
        assert_eq!(breaker.admit(later), Admission::Refuse, "one trial at a time");
        breaker.record(Admission::Trial, true, later);
        assert_eq!(breaker.admit(later + Duration::from_secs(1)), Admission::Refuse, "a failed trial reopens");
        let again = later + Duration::from_secs(31);
        assert_eq!(breaker.admit(again), Admission::Trial);
        breaker.record(Admission::Trial, false, again);
        assert_eq!(breaker.mode(), Mode::Closed);
    }

    #[test]
    fn opens_on_the_failure_rate_once_enough_requests_were_seen() {
        let start = Instant::now();
        let mut breaker = Breaker::new(Thresholds {
            consecutive_failures: 0,
            failure_rate: 0.5,
            minimum_requests: 10,
            ..thresholds()
        });
        for i in 0..9 {
            breaker.record(Admission::Pass, i % 2 == 0, start);
        }
        assert_eq!(breaker.mode(), Mode::Closed, "9 outcomes are below the minimum");
        breaker.record(Admission::Pass, true, start);
        assert!(matches!(breaker.mode(), Mode::Open(_)), "6 of 10 failed");
    }

    #[test]
    fn an_abandoned_trial_frees_its_place() {
        let start = Instant::now();
        let mut breaker = Breaker::new(thresholds());
        for _ in 0..3 {
            breaker.record(Admission::Pass, true, start);
        }
        let later = start + Duration::from_secs(31);
        assert_eq!(breaker.admit(later), Admission::Trial);
        breaker.abandon(Admission::Trial);
        assert_eq!(breaker.admit(later), Admission::Trial);
    }
}
