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
    /// `max-age=N` seconds.
    pub max_age: Option<u64>,
    /// `s-maxage=N` seconds, for shared caches (takes precedence over `max-age`).
    pub s_maxage: Option<u64>,
    /// `public`: storable by a shared cache even when it would not be otherwise (an answer
    /// to a request with `Authorization`, a status without heuristic freshness).
    pub public: bool,
    /// `must-revalidate` or `proxy-revalidate`: never served stale.
    pub must_revalidate: bool,
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
                let is = |directive: &str| name.eq_ignore_ascii_case(directive);
                if is("no-store") {
                    directives.no_store = true;
                } else if is("no-cache") {
                    // `no-cache="field"` and `private="field"` are read as the whole response.
                    directives.no_cache = true;
                } else if is("private") {
                    directives.private = true;
                } else if is("max-age") {
                    directives.max_age = Some(seconds().unwrap_or(0));
                } else if is("s-maxage") {
                    directives.s_maxage = Some(seconds().unwrap_or(0));
                } else if is("public") {
                    directives.public = true;
                } else if is("must-revalidate") || is("proxy-revalidate") {
                    directives.must_revalidate = true;
                }
            }
        }
        directives
    }
}

impl Directives {
    /// Whether a stale copy must never be served (RFC 9111 §5.2.2.2, §5.2.2.8; `s-maxage`
    /// implies `proxy-revalidate`, §5.2.2.10).
    pub fn no_stale(&self) -> bool {
        self.must_revalidate || self.s_maxage.is_some()
    }

    /// Whether a shared cache may store the answer to a request with `Authorization`
    /// (RFC 9111 §3.5).
    pub fn shared_with_authorization(&self) -> bool {
        self.public || self.must_revalidate || self.s_maxage.is_some()
    }
}

/// Whether a response with `status` and no explicit lifetime may be given a heuristic one
/// (RFC 9111 §4.2.2): statuses "heuristically cacheable" by RFC 9110 §15.1, or `public`.
pub fn heuristic_allowed(status: http::StatusCode, directives: &Directives) -> bool {
    directives.public
        || matches!(status.as_u16(), 200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501)
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
        let pragma = headers.get_all(header::PRAGMA).iter().any(|v| {
            v.as_bytes().split(|b| *b == b',').any(|item| item.trim_ascii().eq_ignore_ascii_case(b"no-cache"))
        });
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

/// Whether a client's conditional request is answered `304` by a stored response with
/// `stored` headers (RFC 9110 §13.1): `If-None-Match` names its `ETag` (weakly) or is `*`;
/// without it, `If-Modified-Since` is not before its `Last-Modified`.
pub fn not_modified(request: &HeaderMap, stored: &HeaderMap) -> bool {
    if request.contains_key(header::IF_NONE_MATCH) {
        let Some(etag) = stored.get(header::ETAG) else { return false };
        let opaque = |tag: &[u8]| -> Vec<u8> { tag.strip_prefix(b"W/").unwrap_or(tag).to_vec() };
        let stored_tag = opaque(etag.as_bytes().trim_ascii());
        return request.get_all(header::IF_NONE_MATCH).iter().any(|value| {
            value.as_bytes().split(|b| *b == b',').map(|t| t.trim_ascii()).any(|t| t == b"*" || opaque(t) == stored_tag)
        });
    }
    let since = request.get(header::IF_MODIFIED_SINCE).and_then(http_date);
    let modified = stored.get(header::LAST_MODIFIED).and_then(http_date);
    matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
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
        assert!(directives.no_cache && !directives.no_store && !directives.private);
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
    fn revalidation_and_sharing_directives() {
        let read = |value: &'static str| Directives::parse(&headers(&[("cache-control", value)]));
        assert!(read("must-revalidate").no_stale() && read("proxy-revalidate").no_stale());
        assert!(read("s-maxage=10").no_stale(), "s-maxage implies proxy-revalidate");
        assert!(!read("max-age=10, public").no_stale());
        for shared in ["public", "s-maxage=0", "must-revalidate"] {
            assert!(read(shared).shared_with_authorization(), "{shared}");
        }
        assert!(!read("max-age=60").shared_with_authorization());
    }

    #[test]
    fn heuristics_only_for_heuristically_cacheable_statuses_or_public() {
        let plain = Directives::default();
        let public = Directives { public: true, ..Directives::default() };
        for status in [200, 301, 404, 410] {
            assert!(heuristic_allowed(http::StatusCode::from_u16(status).unwrap(), &plain), "{status}");
        }
        for status in [302, 307, 403, 500, 503] {
            assert!(!heuristic_allowed(http::StatusCode::from_u16(status).unwrap(), &plain), "{status}");
        }
        assert!(heuristic_allowed(http::StatusCode::FOUND, &public));
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
    fn conditional_requests_match_the_stored_validators() {
        let stored = headers(&[("etag", "\"v1\""), ("last-modified", "Tue, 01 Dec 2026 16:00:00 GMT")]);
        assert!(not_modified(&headers(&[("if-none-match", "\"v0\", W/\"v1\"")]), &stored));
        assert!(not_modified(&headers(&[("if-none-match", "*")]), &stored));
        assert!(!not_modified(&headers(&[("if-none-match", "\"v2\"")]), &stored));
        assert!(not_modified(&headers(&[("if-modified-since", "Tue, 01 Dec 2026 16:00:00 GMT")]), &stored));
        assert!(!not_modified(&headers(&[("if-modified-since", "Tue, 01 Dec 2026 15:59:59 GMT")]), &stored));
        let both = headers(&[("if-none-match", "\"v2\""), ("if-modified-since", "Tue, 01 Dec 2026 17:00:00 GMT")]);
        assert!(!not_modified(&both, &stored), "If-None-Match decides when present");
        assert!(!not_modified(&HeaderMap::new(), &stored));
    }

    #[test]
    fn age_is_read_in_seconds() {
        assert_eq!(initial_age(&headers(&[("age", "42")])), Duration::from_secs(42));
        assert_eq!(initial_age(&headers(&[("age", "x")])), Duration::ZERO);
    }
}
