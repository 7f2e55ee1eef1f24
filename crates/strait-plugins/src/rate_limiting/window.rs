//! The sliding-window estimate of `rate_limiting`: per key and window, the count of the
//! current fixed window and of the one before, the earlier weighted by how much of it the
//! sliding window still covers (as Cloudflare's and Kong's sliding windows do).
//!
//! With `P` the window's length, `e` the time since the current fixed window began, `c` and
//! `p` the counts of the current and previous fixed windows, the requests of the last `P` are
//! estimated as `c + p × (P − e) / P`. A request is admitted when the estimate plus one is at
//! most the limit, and then counted in every window; refused requests are not counted.
//! Arithmetic is exact on integers (milliseconds, scaled by `P`).
//!
//! The estimate assumes the previous window's requests were spread evenly. Bounds: no fixed
//! window ever admits more than the limit; a sliding interval of length `P` may admit up to
//! twice the limit in the worst case (every request of one window bunched at its very end);
//! for traffic that was steady through the previous window the estimate is exact. It can
//! also refuse a little early, when the previous window's requests came early in it.

use std::cmp::Reverse;

use smallvec::SmallVec;

/// A rate-limit window, as Kong names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Window {
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day (UTC days, as every window is aligned on the Unix epoch).
    Day,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 4] = [Window::Second, Window::Minute, Window::Hour, Window::Day];

    /// Its length in seconds.
    pub const fn seconds(self) -> u64 {
        match self {
            Window::Second => 1,
            Window::Minute => 60,
            Window::Hour => 3_600,
            Window::Day => 86_400,
        }
    }

    /// Its length in milliseconds.
    pub const fn millis(self) -> u64 {
        self.seconds() * 1_000
    }

    /// Its configuration field (`minute`).
    pub const fn field(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    /// Its position in [`Window::ALL`].
    pub(super) const fn index(self) -> usize {
        self as usize
    }
}

/// At most `max` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The window.
    pub window: Window,
    /// The number of requests it admits.
    pub max: u64,
}

/// What one window says after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUsage {
    /// The limit.
    pub limit: Limit,
    /// Requests it would still admit now.
    pub remaining: u64,
    /// Milliseconds until it admits again when `remaining` is 0, else until its fixed window ends.
    pub reset_ms: u64,
}

/// Each limit's [`WindowUsage`], held without an allocation.
pub type Windows = SmallVec<[WindowUsage; Window::ALL.len()]>;

/// The outcome of one request against every limit of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// Whether the request is admitted (and was counted).
    pub allowed: bool,
    /// When refused, milliseconds until a request would be admitted; 0 when admitted.
    pub retry_after_ms: u64,
    /// Each limit's state, in the order of the limits (inline: one per window at most).
    pub windows: Windows,
}

impl Usage {
    /// The most constraining window: fewest remaining, the longer window on a tie (Kong's choice).
    pub fn tightest(&self) -> Option<&WindowUsage> {
        self.windows.iter().min_by_key(|w| (w.remaining, Reverse(w.limit.window)))
    }
}

/// One key's counts in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counter {
    /// Start of the current fixed window (ms since the epoch).
    start: u64,
    /// Requests counted in the current fixed window.
    current: u64,
    /// Requests counted in the fixed window before it.
    previous: u64,
}

impl Counter {
    /// Moves to the fixed window of `now` (a clock that went back stays in the current one)
    /// and returns `now` clamped to it.
    fn roll(&mut self, period: u64, now: u64) -> u64 {
        let now = now.max(self.start);
        let start = now - now % period;
        if start != self.start {
            self.previous = if start == self.start + period { self.current } else { 0 };
            self.current = 0;
            self.start = start;
        }
        now
    }

    /// The estimate at `now`, scaled by the period: `c × P + p × (P − e)`.
    fn scaled(&self, period: u64, now: u64) -> u128 {
        let left = u128::from(period - (now - self.start));
        u128::from(self.current) * u128::from(period) + u128::from(self.previous) * left
    }

    /// Whether a request at `now` (already rolled) is admitted under `max`.
    fn admits(&self, max: u64, period: u64, now: u64) -> bool {
        self.scaled(period, now) + u128::from(period) <= u128::from(max) * u128::from(period)
    }

    /// Requests admitted at `now` before the estimate reaches `max`.
    fn remaining(&self, max: u64, period: u64, now: u64) -> u64 {
        let room = (u128::from(max) * u128::from(period)).saturating_sub(self.scaled(period, now));
        (room / u128::from(period)) as u64
    }

    /// Milliseconds from `now` until a request is admitted, if no other arrives meanwhile.
    fn wait(&self, max: u64, period: u64, now: u64) -> u64 {
        if self.admits(max, period, now) {
            return 0;
        }
        let (max, p, c) = (u128::from(max), u128::from(period), u128::from(self.current));
        let rest = u128::from(period - (now - self.start));
        // Still in this fixed window: the previous window's weight must fall far enough.
        if c < max && self.previous > 0 {
            let allowed_left = (max - c - 1) * p / u128::from(self.previous);
            let wait = rest.saturating_sub(allowed_left);
            if wait < rest {
                return wait as u64;
            }
        }
        // In the next one, this window's count becomes the weighted one.
        let next = ((max - 1) * p).checked_div(c).map_or(0, |allowed_left| p.saturating_sub(allowed_left));
        (rest + next) as u64
    }

    /// What this window says to a request at `now` (already rolled and counted): its usage,
    /// and the wait until it admits again.
    #[inline]
    fn report(&self, limit: Limit, now: u64) -> (WindowUsage, u64) {
        let period = limit.window.millis();
        let wait = self.wait(limit.max, period, now);
        let remaining = self.remaining(limit.max, period, now);
        let reset_ms = if remaining == 0 { wait } else { period - (now - self.start) };
        (WindowUsage { limit, remaining, reset_ms }, wait)
    }
}

/// The counters of one key: one per window (only those of configured limits are used).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    counters: [Counter; 4],
    /// When every counter used so far reads zero again.
    expires: u64,
}

impl Counters {
    /// Decides on one request at `now` (ms since the epoch) against `limits`: admitted, and
    /// counted in every window, when every window admits it.
    pub fn hit(&mut self, limits: &[Limit], now: u64) -> Usage {
        let mut allowed = true;
        for limit in limits {
            let period = limit.window.millis();
            let counter = &mut self.counters[limit.window.index()];
            let now = counter.roll(period, now);
            allowed &= counter.admits(limit.max, period, now);
        }
        let mut retry_after_ms = 0;
        let mut windows = Windows::new();
        for limit in limits {
            let period = limit.window.millis();
            let counter = &mut self.counters[limit.window.index()];
            let now = now.max(counter.start);
            if allowed {
                counter.current += 1;
                self.expires = self.expires.max(counter.start + 2 * period);
            }
            let (usage, wait) = counter.report(*limit, now);
            retry_after_ms = retry_after_ms.max(wait);
            windows.push(usage);
        }
        Usage { allowed, retry_after_ms: if allowed { 0 } else { retry_after_ms }, windows }
    }
}

/// One window's counts as a store shared by several processes read them for one request
/// (after counting it, when admitted): the same numbers [`Counters`] keeps in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Start of the current fixed window (ms since the epoch).
    pub start: u64,
    /// Requests counted in the current fixed window.
    pub current: u64,
    /// Requests counted in the fixed window before it.
    pub previous: u64,
}

impl WindowCounts {
    /// Start of the fixed window of `window` that `now` falls in.
    pub const fn window_start(window: Window, now: u64) -> u64 {
        now - now % window.millis()
    }

    /// Whether a request at `now` is admitted by `limit` with these counts (before counting
    /// it): the same test the local store makes.
    pub fn admits(&self, limit: Limit, now: u64) -> bool {
        let counter = Counter { start: self.start, current: self.current, previous: self.previous };
        counter.admits(limit.max, limit.window.millis(), now.max(self.start))
    }
}

impl Usage {
    /// The usage a store reports that decided (`allowed`) at `now` and read `counts`, one per
    /// limit in the order of `limits`: remaining requests, resets and `Retry-After` exactly as
    /// the local store computes them.
    pub fn from_counts(limits: &[Limit], now: u64, allowed: bool, counts: &[WindowCounts]) -> Usage {
        let mut retry_after_ms = 0;
        let mut windows = Windows::new();
        for (limit, counts) in limits.iter().zip(counts) {
            let counter = Counter { start: counts.start, current: counts.current, previous: counts.previous };
            let (usage, wait) = counter.report(*limit, now.max(counts.start));
            retry_after_ms = retry_after_ms.max(wait);
            windows.push(usage);
        }
        Usage { allowed, retry_after_ms: if allowed { 0 } else { retry_after_ms }, windows }
    }
}

impl super::shards::Expiring for Counters {
    fn expires_at(&self) -> u64 {
        self.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of a minute in November 2023.
    const MINUTE_START: u64 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000;

    fn limit(window: Window, max: u64) -> Limit {
        Limit { window, max }
    }

    /// Hits `n` times at `now`, returning how many were admitted.
    fn admitted(counters: &mut Counters, limits: &[Limit], now: u64, n: usize) -> usize {
        (0..n).filter(|_| counters.hit(limits, now).allowed).count()
    }

    #[test]
    fn a_fresh_key_gets_exactly_the_limit_and_the_remaining_counts_down() {
        let limits = [limit(Window::Minute, 3)];
        let mut counters = Counters::default();
        let now = MINUTE_START + 15_000;
        let remaining: Vec<u64> = (0..3).map(|_| counters.hit(&limits, now).windows[0].remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = counters.hit(&limits, now);
        assert!(!refused.allowed);
        assert_eq!(refused.windows[0].remaining, 0);
        // 45 s to the next minute, where these 3 weigh 3 × (60 − e)/60 ≤ 2 from e = 20 s.
        assert_eq!(refused.retry_after_ms, 65_000);
        assert_eq!(refused.windows[0].reset_ms, 65_000);
    }

    #[test]
    fn the_previous_window_weighs_by_its_overlap() {
        let limits = [limit(Window::Minute, 10)];
        let mut counters = Counters::default();
        assert_eq!(admitted(&mut counters, &limits, MINUTE_START + 30_000, 10), 10);
        // A quarter into the next minute, the previous 10 weigh 7.5: two more fit (a third
        // would make 10.5).
        let next = MINUTE_START + 60_000 + 15_000;
        assert_eq!(admitted(&mut counters, &limits, next, 5), 2);
        // Refused at 9.5: admitted again once 10 × (60 − e)/60 + 2 + 1 ≤ 10, at e = 18 s.
        let refused = counters.hit(&limits, next);
        assert_eq!(refused.retry_after_ms, 3_000);
        assert!(!counters.hit(&limits, next + 2_999).allowed);
        assert!(counters.hit(&limits, next + 3_000).allowed);
    }

    #[test]
    fn retry_after_crosses_into_the_next_window_when_this_one_is_full() {
        let limits = [limit(Window::Second, 4)];
        let mut counters = Counters::default();
        let now = 10_000 + 250;
        assert_eq!(admitted(&mut counters, &limits, now, 4), 4);
        let refused = counters.hit(&limits, now);
        // 750 ms to the next second, then 4 × (1 − d) ≤ 3 at d = 250 ms.
        assert_eq!(refused.retry_after_ms, 1_000);
        assert!(!counters.hit(&limits, now + 999).allowed);
        assert!(counters.hit(&limits, now + 1_000).allowed);
    }

    #[test]
    fn a_request_must_pass_every_window_and_refusals_count_nowhere() {
        let limits = [limit(Window::Second, 2), limit(Window::Minute, 3)];
        let mut counters = Counters::default();
        let now = MINUTE_START + 100;
        assert_eq!(admitted(&mut counters, &limits, now, 5), 2, "the second limit stops it");
        let later = now + 5_000;
        assert_eq!(admitted(&mut counters, &limits, later, 5), 1, "the minute limit stops it now");
        let usage = counters.hit(&limits, later);
        assert!(!usage.allowed);
        let tightest = usage.tightest().unwrap();
        assert_eq!(tightest.limit.window, Window::Minute, "0 left in the minute; the second has 1");
        assert_eq!(usage.windows[0].remaining, 1);
        // 54.9 s to the next minute, then 20 s until its 3 weigh 2.
        assert_eq!(usage.retry_after_ms, 54_900 + 20_000);
    }

    #[test]
    fn old_windows_are_forgotten_and_the_entry_expires() {
        let limits = [limit(Window::Second, 1)];
        let mut counters = Counters::default();
        assert!(counters.hit(&limits, 5_500).allowed);
        assert_eq!(super::super::shards::Expiring::expires_at(&counters), 7_000);
        // Two windows later nothing weighs any more.
        assert!(counters.hit(&limits, 7_000).allowed);
        assert!(!counters.hit(&limits, 7_001).allowed);
    }

    #[test]
    fn a_clock_that_goes_back_stays_in_the_current_window() {
        let limits = [limit(Window::Second, 1)];
        let mut counters = Counters::default();
        assert!(counters.hit(&limits, 5_500).allowed);
        // Read as 5 000, the start of the current second: a full second, then one more.
        let refused = counters.hit(&limits, 4_000);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_ms, 2_000);
    }
}
