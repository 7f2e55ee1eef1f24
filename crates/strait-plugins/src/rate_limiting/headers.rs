//! The rate-limit headers clients see: Kong's `X-RateLimit-Limit-<Window>` and
//! `X-RateLimit-Remaining-<Window>`, the IETF draft's `RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset` (of the most constraining window) and `RateLimit-Policy`, and `Retry-After`.

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use strait_http::AddedFields;

use std::cmp::Reverse;

use super::window::{Limit, Usage, Window};

/// `RateLimit-Limit`: the limit of the most constraining window.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left in the most constraining window.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the most constraining window admits again or ends.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `RateLimit-Policy`: every window as `<limit>;w=<seconds>`, the most constraining first.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// `X-RateLimit-Limit-<Window>` for each window, in `Window::index` order (constants, so
/// no name is checked again per response).
const LIMIT_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("x-ratelimit-limit-second"),
    HeaderName::from_static("x-ratelimit-limit-minute"),
    HeaderName::from_static("x-ratelimit-limit-hour"),
    HeaderName::from_static("x-ratelimit-limit-day"),
];

/// `X-RateLimit-Remaining-<Window>` for each window, in `Window::index` order.
const REMAINING_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("x-ratelimit-remaining-second"),
    HeaderName::from_static("x-ratelimit-remaining-minute"),
    HeaderName::from_static("x-ratelimit-remaining-hour"),
    HeaderName::from_static("x-ratelimit-remaining-day"),
];

/// `X-RateLimit-Limit-<Window>`.
fn limit_header(window: Window) -> HeaderName {
    LIMIT_HEADERS[window.index()].clone()
}

/// `X-RateLimit-Remaining-<Window>`.
fn remaining_header(window: Window) -> HeaderName {
    REMAINING_HEADERS[window.index()].clone()
}

/// Decimal texts of 0 to 60: a `RateLimit-Reset` of a second or minute window, and most
/// `Retry-After` waits, are one of them.
const SMALL_NUMBERS: [&str; 61] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20",
    "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32", "33", "34", "35", "36", "37", "38", "39",
    "40", "41", "42", "43", "44", "45", "46", "47", "48", "49", "50", "51", "52", "53", "54", "55", "56", "57", "58",
    "59", "60",
];

/// `n` as a header value: without an allocation up to 60, else in one that its clones share
/// (`HeaderValue::from` takes two).
fn number(n: u64) -> HeaderValue {
    if let Some(text) = usize::try_from(n).ok().and_then(|i| SMALL_NUMBERS.get(i)) {
        return HeaderValue::from_static(text);
    }
    let mut digits = Digits { text: [0; 20], len: 0 };
    let mut buffer = itoa::Buffer::new();
    let text = buffer.format(n).as_bytes();
    digits.text[..text.len()].copy_from_slice(text);
    digits.len = text.len();
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(digits)).expect("decimal digits")
}

/// The decimal digits of a `u64`, owned by the `Bytes` of a header value.
struct Digits {
    text: [u8; 20],
    len: usize,
}

impl AsRef<[u8]> for Digits {
    fn as_ref(&self) -> &[u8] {
        &self.text[..self.len]
    }
}

/// Milliseconds as whole seconds, rounded up, at least 1 (a client waiting 0 s would retry at once).
pub fn seconds_up(ms: u64) -> u64 {
    ms.div_ceil(1_000).max(1)
}

/// A `Retry-After` value for a wait of `ms`.
pub fn retry_after(ms: u64) -> (HeaderName, HeaderValue) {
    (RETRY_AFTER, number(seconds_up(ms)))
}

/// The header values that depend only on the configured limits, made once: each limit, and
/// `RateLimit-Policy` for each limit being the most constraining.
#[derive(Debug, Clone)]
pub struct Fixed {
    limits: Vec<HeaderValue>,
    policies: Vec<HeaderValue>,
}

impl Fixed {
    /// The fixed values of `limits` (in the order their usage lists them).
    pub fn new(limits: &[Limit]) -> Fixed {
        let policy = |first: usize| {
            let order = std::iter::once(first).chain((0..limits.len()).filter(|i| limits[*i] != limits[first]));
            let text: Vec<String> =
                order.map(|i| format!("{};w={}", limits[i].max, limits[i].window.seconds())).collect();
            HeaderValue::from_str(&text.join(", ")).expect("digits, `;w=` and commas")
        };
        Fixed {
            limits: limits.iter().map(|l| HeaderValue::from(l.max)).collect(),
            policies: (0..limits.len()).map(policy).collect(),
        }
    }
}

/// Sets the rate-limit headers of `usage` (replacing any an upstream sent).
pub fn write(usage: &Usage, fixed: &Fixed, headers: &mut AddedFields) {
    let mut tightest: Option<(usize, HeaderValue)> = None;
    for (i, window) in usage.windows.iter().enumerate() {
        let remaining = number(window.remaining);
        if let Some(limit) = fixed.limits.get(i) {
            headers.set(limit_header(window.limit.window), limit.clone());
        }
        headers.set(remaining_header(window.limit.window), remaining.clone());
        let tighter = match &tightest {
            None => true,
            Some((t, _)) => {
                let current = &usage.windows[*t];
                (window.remaining, Reverse(window.limit.window)) < (current.remaining, Reverse(current.limit.window))
            }
        };
        if tighter {
            tightest = Some((i, remaining));
        }
    }
    let Some((t, remaining)) = tightest else { return };
    if let (Some(limit), Some(policy)) = (fixed.limits.get(t), fixed.policies.get(t)) {
        headers.set(RATELIMIT_LIMIT, limit.clone());
        headers.set(RATELIMIT_POLICY, policy.clone());
    }
    headers.set(RATELIMIT_REMAINING, remaining);
    headers.set(RATELIMIT_RESET, number(seconds_up(usage.windows[t].reset_ms)));
}

#[cfg(test)]
mod tests {
    use super::super::window::{Limit, WindowUsage};
    use super::*;
    use http::HeaderMap;

    fn window(window: Window, max: u64, remaining: u64, reset_ms: u64) -> WindowUsage {
        WindowUsage { limit: Limit { window, max }, remaining, reset_ms }
    }

    #[test]
    fn kong_and_draft_headers_name_the_tightest_window() {
        let usage = Usage {
            allowed: true,
            retry_after_ms: 0,
            windows: smallvec::smallvec![window(Window::Second, 5, 4, 300), window(Window::Hour, 100, 2, 1_800_001)],
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-limit-second", HeaderValue::from_static("999"));
        let limits: Vec<Limit> = usage.windows.iter().map(|w| w.limit).collect();
        let mut added = AddedFields::default();
        write(&usage, &Fixed::new(&limits), &mut added);
        added.move_into(&mut headers);
        assert_eq!(headers["x-ratelimit-limit-second"], "5");
        assert_eq!(headers["x-ratelimit-remaining-second"], "4");
        assert_eq!(headers["x-ratelimit-limit-hour"], "100");
        assert_eq!(headers["x-ratelimit-remaining-hour"], "2");
        assert_eq!(headers[RATELIMIT_LIMIT], "100");
        assert_eq!(headers[RATELIMIT_REMAINING], "2");
        assert_eq!(headers[RATELIMIT_RESET], "1801");
        assert_eq!(headers[RATELIMIT_POLICY], "100;w=3600, 5;w=1");
        assert!(!headers.contains_key("x-ratelimit-limit-minute"));
    }

    #[test]
    fn numbers_read_as_their_decimal_text() {
        for n in [0, 1, 9, 10, 59, 60, 61, 999_999, u64::MAX] {
            assert_eq!(number(n), n.to_string().as_str());
        }
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(seconds_up(0), 1);
        assert_eq!(seconds_up(1), 1);
        assert_eq!(seconds_up(1_000), 1);
        assert_eq!(seconds_up(1_001), 2);
        assert_eq!(retry_after(59_999).1, "60");
    }
}
