//! UTC timestamp rendering for log lines, cached per thread for the current second.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// The rendered forms of one second.
struct Cached {
    secs: u64,
    /// `10/Oct/2000:13:55:36 +0000`.
    clf: String,
    /// `2000-10-10T13:55:36`.
    iso: String,
}

thread_local! {
    static CACHE: RefCell<Cached> = RefCell::new(Cached::render(0));
}

impl Cached {
    fn render(secs: u64) -> Cached {
        let (year, month, day) = civil_from_days(secs / 86_400);
        let rem = secs % 86_400;
        let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
        let mut clf = String::with_capacity(26);
        let mut iso = String::with_capacity(19);
        let name = MONTHS[month as usize - 1];
        let _ = write!(clf, "{day:02}/{name}/{year:04}:{h:02}:{m:02}:{s:02} +0000");
        let _ = write!(iso, "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
        Cached { secs, clf, iso }
    }
}

/// Seconds and milliseconds since the Unix epoch; times before it are clamped to it.
fn split(time: SystemTime) -> (u64, u32) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs(), d.subsec_millis()),
        Err(_) => (0, 0),
    }
}

/// Runs `f` with the cached rendering of `secs`, refreshing the cache when the second changed.
fn with_second<R>(secs: u64, f: impl FnOnce(&Cached) -> R) -> R {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.secs != secs {
            *cache = Cached::render(secs);
        }
        f(&cache)
    })
}

/// Appends `time` as nginx `$time_local` in UTC: `10/Oct/2000:13:55:36 +0000`.
pub(crate) fn push_clf(out: &mut Vec<u8>, time: SystemTime) {
    let (secs, _) = split(time);
    with_second(secs, |c| out.extend_from_slice(c.clf.as_bytes()));
}

/// Appends `time` as RFC 3339 UTC with milliseconds: `2000-10-10T13:55:36.123Z`.
pub(crate) fn push_rfc3339(out: &mut Vec<u8>, time: SystemTime) {
    let (secs, millis) = split(time);
    with_second(secs, |c| out.extend_from_slice(c.iso.as_bytes()));
    out.push(b'.');
    push_padded3(out, millis);
    out.push(b'Z');
}

/// Appends a number below 1000 as exactly three digits.
pub(crate) fn push_padded3(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&[b'0' + (n / 100 % 10) as u8, b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn clf(secs: u64) -> String {
        let mut out = Vec::new();
        push_clf(&mut out, UNIX_EPOCH + Duration::from_secs(secs));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn known_dates() {
        assert_eq!(clf(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf(971_186_136), "10/Oct/2000:13:55:36 +0000");
        assert_eq!(clf(951_782_400), "29/Feb/2000:00:00:00 +0000");
        let mut out = Vec::new();
        push_rfc3339(&mut out, UNIX_EPOCH + Duration::from_millis(971_186_136_007));
        assert_eq!(out, b"2000-10-10T13:55:36.007Z");
    }

    #[test]
    fn agrees_with_httpdate() {
        // Every ~7.3 days from 1970 to past 2100, plus odd offsets inside the day.
        for i in 0..9000u64 {
            let secs = i * 631_139 + i % 86_400;
            let time = UNIX_EPOCH + Duration::from_secs(secs);
            // "Tue, 10 Oct 2000 13:55:36 GMT"
            let http = httpdate::fmt_http_date(time);
            let parts: Vec<&str> = http.split(' ').collect();
            let expected = format!("{}/{}/{}:{} +0000", parts[1], parts[2], parts[3], parts[4]);
            assert_eq!(clf(secs), expected);
        }
    }
}
