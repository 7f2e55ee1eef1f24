//! Freshness rules of RFC 9111: what `Cache-Control`, `Expires` and `Age` say about how long
//! a response may be served from the cache, and what a request's `Cache-Control` asks for.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap};

/// The `Cache-Control` directives a shared cache acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Directives {
    /// `no-store`: never stored.
    pub no_store: bool,
    /// `no-cache`: stored, but revalidated before every use (on a request: skip the cache).
    pub no_cache: bool,
    /// `private`: for the user's own cache only, never a shared one.
    pub private: bool,
    /// `public`: storable even for a request with `Authorization`.
    pub public: bool,
    /// `must-revalidate`: storable for a request with `Authorization`.
    pub must_revalidate: bool,
    /// `max-age=N` seconds.
    pub max_age: Option<u64>,
    /// `s-maxage=N` seconds, for shared caches (takes precedence over `max-age`).
    pub s_maxage: Option<u64>,
}

impl Directives {
    /// The directives of every `Cache-Control` field in `headers`; unknown ones are ignored.
    pub fn parse(headers: &HeaderMap) -> Directives {
        let mut directives = Directives::default();
        for value in headers.get_all(header::CACHE_CONTROL) {
            let Ok(text) = value.to_str() else { continue };
            for item in text.split(',') {
                let (name, argument) = match item.split_once('=') {
                    Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                    None => (item.trim(), None),
                };
                let seconds = || argument.and_then(|a| a.parse::<u64>().ok());
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => directives.no_store = true,
                    // `no-cache="field"` and `private="field"` are read as the whole response.
                    "no-cache" => directives.no_cache = true,
                    "private" => directives.private = true,
                    "public" => directives.public = true,
                    "must-revalidate" | "proxy-revalidate" => directives.must_revalidate = true,
                    "max-age" => directives.max_age = Some(seconds().unwrap_or(0)),
                    "s-maxage" => directives.s_maxage = Some(seconds().unwrap_or(0)),
                    _ => {}
                }
            }
        }
        directives
    }
}

/// What a request's `Cache-Control` (and `Pragma`) asks of the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked {
    /// Do not answer from the cache (`no-cache`, `max-age=0`, `Pragma: no-cache`).
    pub no_cache: bool,
    /// Do not store the answer either (`no-store`).
    pub no_store: bool,
}

impl Asked {
    /// What the request headers ask.
    pub fn parse(headers: &HeaderMap) -> Asked {
        let directives = Directives::parse(headers);
        let pragma = headers
            .get_all(header::PRAGMA)
            .iter()
            .any(|v| v.to_str().is_ok_and(|t| t.to_ascii_lowercase().contains("no-cache")));
        let no_cache = directives.no_cache
            || directives.max_age == Some(0)
            || (pragma && !headers.contains_key(header::CACHE_CONTROL));
        Asked { no_cache, no_store: directives.no_store }
    }
}

/// How long the response may be served without revalidation, when it says so itself:
/// `s-maxage`, then `max-age`, then `Expires` minus `Date` (an unreadable `Expires` is in the
/// past). `None` when it says nothing.
pub fn explicit_lifetime(directives: &Directives, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(seconds) = directives.s_maxage.or(directives.max_age) {
        return Some(Duration::from_secs(seconds));
    }
    let expires = headers.get(header::EXPIRES)?;
    let Some(expires) = http_date(expires) else { return Some(Duration::ZERO) };
    let date = headers.get(header::DATE).and_then(http_date).unwrap_or(now);
    Some(expires.duration_since(date).unwrap_or(Duration::ZERO))
}

/// The response's `Age` when it arrived (time it spent in caches before this one).
pub fn initial_age(headers: &HeaderMap) -> Duration {
    let seconds = headers.get(header::AGE).and_then(|v| v.to_str().ok()).and_then(|t| t.trim().parse::<u64>().ok());
    Duration::from_secs(seconds.unwrap_or(0))
}

/// An HTTP date field value.
fn http_date(value: &http::HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn cache_control_directives_are_read_from_every_field() {
        let map = headers(&[("cache-control", "public, Max-Age=60"), ("cache-control", "s-maxage=\"30\", no-cache")]);
        let directives = Directives::parse(&map);
        assert!(directives.public && directives.no_cache && !directives.no_store && !directives.private);
        assert_eq!((directives.max_age, directives.s_maxage), (Some(60), Some(30)));
    }

    #[test]
    fn s_maxage_wins_over_max_age_and_expires() {
        let map = headers(&[("cache-control", "max-age=60, s-maxage=5"), ("expires", "Thu, 01 Dec 2094 16:00:00 GMT")]);
        let lifetime = explicit_lifetime(&Directives::parse(&map), &map, SystemTime::now());
        assert_eq!(lifetime, Some(Duration::from_secs(5)));
    }

    #[test]
    fn expires_counts_from_date_and_garbage_is_in_the_past() {
        let map = headers(&[("date", "Tue, 01 Dec 2026 16:00:00 GMT"), ("expires", "Tue, 01 Dec 2026 16:10:00 GMT")]);
        let lifetime = explicit_lifetime(&Directives::parse(&map), &map, SystemTime::UNIX_EPOCH);
        assert_eq!(lifetime, Some(Duration::from_secs(600)));
        let map = headers(&[("expires", "0")]);
        assert_eq!(explicit_lifetime(&Directives::parse(&map), &map, SystemTime::now()), Some(Duration::ZERO));
        assert_eq!(explicit_lifetime(&Directives::default(), &HeaderMap::new(), SystemTime::now()), None);
    }

    #[test]
    fn request_no_cache_forms() {
        assert!(Asked::parse(&headers(&[("cache-control", "no-cache")])).no_cache);
        assert!(Asked::parse(&headers(&[("cache-control", "max-age=0")])).no_cache);
        assert!(Asked::parse(&headers(&[("pragma", "no-cache")])).no_cache);
        assert!(Asked::parse(&headers(&[("cache-control", "no-store")])).no_store);
        assert_eq!(Asked::parse(&headers(&[("cache-control", "max-age=10")])), Asked::default());
    }

    #[test]
    fn age_is_read_in_seconds() {
        assert_eq!(initial_age(&headers(&[("age", "42")])), Duration::from_secs(42));
        assert_eq!(initial_age(&headers(&[("age", "x")])), Duration::ZERO);
    }
}
