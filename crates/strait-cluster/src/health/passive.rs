//! Passive health: nginx `max_fails` failures within `fail_timeout` eject for `fail_timeout`.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use strait_config::PassiveHealth;

/// Failure accounting of one endpoint.
#[derive(Debug)]
pub(crate) struct Passive {
    max_fails: u32,
    fail_timeout: u64,
    window: Mutex<FailWindow>,
}

/// Failures counted in the current window.
#[derive(Debug, Default)]
struct FailWindow {
    start: u64,
    fails: u32,
}

/// Nanoseconds on a monotonic process-wide clock.
pub(crate) fn now_nanos() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

// === impl Passive ===

impl Passive {
    /// Accounting for `config`; `None` when `max_fails` is 0 (disabled, as in nginx).
    pub(crate) fn new(config: &PassiveHealth) -> Option<Self> {
        (config.max_fails > 0).then(|| Passive {
            max_fails: config.max_fails,
            fail_timeout: nanos(config.fail_timeout.0).max(1),
            window: Mutex::new(FailWindow::default()),
        })
    }

    /// Failures that eject.
    pub(crate) fn max_fails(&self) -> u32 {
        self.max_fails
    }

    /// Counts a failure at `now`; returns the end of the ejection when it reaches `max_fails`.
    pub(crate) fn failure(&self, now: u64) -> Option<u64> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if window.fails == 0 || now.saturating_sub(window.start) > self.fail_timeout {
            *window = FailWindow { start: now, fails: 0 };
        }
        window.fails += 1;
        if window.fails < self.max_fails {
            return None;
        }
        *window = FailWindow::default();
        Some(now.saturating_add(self.fail_timeout).max(1))
    }
}

#[cfg(test)]
mod tests {
    use strait_config::units::Dur;

    use super::*;

    #[test]
    fn failures_count_within_the_window() {
        let config = PassiveHealth { max_fails: 3, fail_timeout: Dur(Duration::from_nanos(100)) };
        let passive = Passive::new(&config).unwrap();
        assert_eq!(passive.failure(1000), None);
        assert_eq!(passive.failure(1050), None);
        // The window started at 1000 and is over: counting starts again.
        assert_eq!(passive.failure(1200), None);
        assert_eq!(passive.failure(1210), None);
        assert_eq!(passive.failure(1220), Some(1320));
        assert!(Passive::new(&PassiveHealth { max_fails: 0, ..config }).is_none());
    }
}
