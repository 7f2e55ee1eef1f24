//! nginx's leaky bucket (`limit_req`), in nginx's own integer units.
//!
//! Each key has an *excess* (in thousandths of a request) that drains at `rate`: a request
//! adds one request to it after draining the time since the last one, and the first request
//! of a key (or of a drained one) starts at zero. An excess above `burst` refuses the request
//! (it is not counted); otherwise it is counted and waits `(excess − delay) / rate`, where
//! `delay` is 0 by default (every excess request waits) and infinite with `nodelay`.

use super::shards::Expiring;

/// How a bucket drains and when it refuses or delays, all in thousandths of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Drain rate, in thousandths of a request per second (nginx: `10r/s` is 10 000, `1r/m` is 16).
    pub rate: u64,
    /// Excess allowed before refusing.
    pub burst: u64,
    /// Excess passed without waiting (`u64::MAX` with `nodelay`).
    pub delay: u64,
}

impl Rule {
    /// Parses nginx's `rate` syntax, `<n>r/s` or `<n>r/m`, into thousandths of a request per second.
    pub fn parse_rate(text: &str) -> Result<u64, String> {
        let problem = || format!("`{text}` is not a rate like `10r/s` or `600r/m`");
        let (count, per_second) = match text.strip_suffix("r/s") {
            Some(count) => (count, true),
            None => (text.strip_suffix("r/m").ok_or_else(problem)?, false),
        };
        let count: u64 = count.parse().map_err(|_| problem())?;
        if count == 0 {
            return Err("must be more than `0r/s`".into());
        }
        let rate = if per_second { count.checked_mul(1_000) } else { count.checked_mul(1_000).map(|r| r / 60) };
        rate.ok_or_else(|| "too large".into())
    }
}

/// What a bucket decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Let through after waiting `delay_ms` (0: at once).
    Pass {
        /// Milliseconds to wait first.
        delay_ms: u64,
    },
    /// Refused; a request would pass after `retry_ms`.
    Refuse {
        /// Milliseconds until the excess leaves room.
        retry_ms: u64,
    },
}

/// One key's bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Excess, in thousandths of a request.
    excess: u64,
    /// Time of the last counted request (ms).
    last: u64,
    /// Whether a request was counted yet.
    seen: bool,
    /// When the bucket has drained as far as a fresh one.
    expires: u64,
}

impl Bucket {
    /// Decides on one request at `now` (ms, monotonic) under `rule`.
    pub fn take(&mut self, rule: &Rule, now: u64) -> Take {
        let (excess, elapsed) = if self.seen {
            let elapsed = now.saturating_sub(self.last);
            let drained = u128::from(rule.rate) * u128::from(elapsed) / 1_000;
            let excess = u128::from(self.excess) + 1_000;
            (excess.saturating_sub(drained).min(u128::from(u64::MAX)) as u64, elapsed)
        } else {
            (0, 0)
        };
        if excess > rule.burst {
            let need = u128::from(self.excess) + 1_000 - u128::from(rule.burst);
            let at = (need * 1_000).div_ceil(u128::from(rule.rate));
            return Take::Refuse { retry_ms: (at - u128::from(elapsed).min(at)) as u64 };
        }
        self.excess = excess;
        if !self.seen || elapsed > 0 {
            self.last = now;
        }
        self.seen = true;
        let empty_after = (u128::from(excess) + 1_000) * 1_000;
        self.expires = self.last.saturating_add(empty_after.div_ceil(u128::from(rule.rate)) as u64);
        let delay_ms = excess.checked_sub(rule.delay).map_or(0, |over| over * 1_000 / rule.rate);
        Take::Pass { delay_ms }
    }
}

impl Expiring for Bucket {
    fn expires_at(&self) -> u64 {
        self.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(rate: &str, burst: u64, delay: Option<u64>) -> Rule {
        let delay = delay.map_or(u64::MAX, |d| d * 1_000);
        Rule { rate: Rule::parse_rate(rate).unwrap(), burst: burst * 1_000, delay }
    }

    fn delays(bucket: &mut Bucket, rule: &Rule, now: u64, n: usize) -> Vec<Option<u64>> {
        (0..n)
            .map(|_| match bucket.take(rule, now) {
                Take::Pass { delay_ms } => Some(delay_ms),
                Take::Refuse { .. } => None,
            })
            .collect()
    }

    #[test]
    fn rates_parse_as_nginx_does() {
        assert_eq!(Rule::parse_rate("10r/s"), Ok(10_000));
        assert_eq!(Rule::parse_rate("600r/m"), Ok(10_000));
        assert_eq!(Rule::parse_rate("1r/m"), Ok(16));
        assert!(Rule::parse_rate("0r/s").is_err());
        assert!(Rule::parse_rate("10/s").unwrap_err().contains("not a rate"));
        assert!(Rule::parse_rate("10r/h").is_err());
        assert!(Rule::parse_rate("-1r/s").is_err());
    }

    #[test]
    fn without_burst_one_request_per_interval() {
        let rule = rule("10r/s", 0, Some(0));
        let mut bucket = Bucket::default();
        assert_eq!(bucket.take(&rule, 1_000), Take::Pass { delay_ms: 0 });
        assert_eq!(bucket.take(&rule, 1_050), Take::Refuse { retry_ms: 50 });
        assert_eq!(bucket.take(&rule, 1_100), Take::Pass { delay_ms: 0 });
    }

    #[test]
    fn nodelay_passes_one_plus_burst_at_once_then_refuses() {
        let rule = rule("1r/m", 3, None);
        let mut bucket = Bucket::default();
        assert_eq!(delays(&mut bucket, &rule, 0, 5), [Some(0), Some(0), Some(0), Some(0), None]);
        // The excess is 3 of a burst of 3: room for one more after one request has drained.
        let Take::Refuse { retry_ms } = bucket.take(&rule, 0) else { panic!("refused") };
        assert_eq!(retry_ms, 62_500, "1r/m is 16 thousandths a second, as nginx rounds it");
        assert_eq!(bucket.take(&rule, retry_ms - 1), Take::Refuse { retry_ms: 1 });
        assert_eq!(bucket.take(&rule, retry_ms), Take::Pass { delay_ms: 0 });
    }

    #[test]
    fn burst_without_nodelay_spaces_requests_by_the_rate() {
        let rule = rule("10r/s", 3, Some(0));
        let mut bucket = Bucket::default();
        assert_eq!(delays(&mut bucket, &rule, 0, 5), [Some(0), Some(100), Some(200), Some(300), None]);
    }

    #[test]
    fn the_delay_parameter_passes_its_share_at_once() {
        let rule = rule("10r/s", 4, Some(2));
        let mut bucket = Bucket::default();
        assert_eq!(delays(&mut bucket, &rule, 0, 6), [Some(0), Some(0), Some(0), Some(100), Some(200), None]);
    }

    #[test]
    fn a_drained_bucket_is_as_good_as_new_when_it_expires() {
        let rule = rule("10r/s", 2, Some(0));
        let mut bucket = Bucket::default();
        delays(&mut bucket, &rule, 0, 3);
        // Excess 2 000: drained 300 ms later, down to what a fresh bucket would allow.
        assert_eq!(bucket.expires_at(), 300);
        assert_eq!(delays(&mut bucket, &rule, 300, 1), [Some(0)]);
        assert_eq!(bucket.excess, 0);
    }
}
