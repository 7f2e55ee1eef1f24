//! The entries the cache makes from upstream answers (what is stored, how long it is fresh,
//! what a `304` refreshes) and the answers it makes from entries.

use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{response, StatusCode};
use strait_http::context::ResponseLength;
use strait_http::LocalResponse;

use super::super::freshness::{self, Directives};
use super::super::key::VaryKey;
use super::super::store::Entry;
use super::super::Settings;

/// The stored answer as a local response, with its `Age`: the body is shared, not copied.
pub(super) fn answer(entry: &Entry, now: Instant) -> LocalResponse {
    let mut headers = entry.headers.clone();
    headers.insert(header::AGE, HeaderValue::from(entry.age(now).as_secs()));
    LocalResponse { status: entry.status, headers, body: entry.body.clone(), reason: None }
}

/// A `304` for a client whose conditions the fresh `entry` meets: the fields RFC 9110 §15.4.5
/// asks for, no body.
pub(super) fn not_modified(entry: &Entry, now: Instant) -> LocalResponse {
    let mut headers = HeaderMap::new();
    for name in [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::ETAG,
        header::EXPIRES,
        header::VARY,
        header::LAST_MODIFIED,
    ] {
        for value in entry.headers.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(header::AGE, HeaderValue::from(entry.age(now).as_secs()));
    LocalResponse { status: StatusCode::NOT_MODIFIED, headers, body: Bytes::new(), reason: None }
}

/// Turns the upstream's response head into `entry`'s; returns the body to send instead.
pub(super) fn serve_instead(response: &mut response::Parts, entry: &Entry, now: Instant) -> Bytes {
    response.status = entry.status;
    response.headers = entry.headers.clone();
    response.headers.insert(header::AGE, HeaderValue::from(entry.age(now).as_secs()));
    response.extensions.insert(ResponseLength(entry.body.len() as u64));
    entry.body.clone()
}

/// `stale` updated by a `304`'s headers (RFC 9111 §4.3.4), fresh again from now.
pub(super) fn refresh(settings: &Settings, stale: &Entry, not_modified: &HeaderMap, now: Instant) -> Entry {
    let mut headers = stale.headers.clone();
    for name in not_modified.keys() {
        if is_unstored(name) || *name == settings.header {
            continue;
        }
        headers.remove(name);
        for value in not_modified.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let directives = Directives::parse(&headers);
    let fresh_for = settings.lifetime(stale.status, &directives, &headers);
    Entry {
        status: stale.status,
        headers,
        body: stale.body.clone(),
        vary: stale.vary.clone(),
        stored_at: now,
        initial_age: freshness::initial_age(not_modified),
        fresh_for,
        revalidate: directives.no_cache,
        no_stale: directives.no_stale(),
    }
}

/// The entry an upstream answer would make, when it may be stored; `authorized` when the
/// request had `Authorization` (then only answers that say they may be shared are).
pub(super) fn storable(
    settings: &Settings,
    response: &response::Parts,
    request_headers: Option<HeaderMap>,
    authorized: bool,
) -> Option<Entry> {
    if !settings.statuses.contains(&response.status) {
        return None;
    }
    let headers = &response.headers;
    let directives = Directives::parse(headers);
    if directives.no_store || directives.private || (authorized && !directives.shared_with_authorization()) {
        return None;
    }
    if headers.contains_key(header::SET_COOKIE) && !settings.cache_cookies {
        return None;
    }
    if response.extensions.get::<ResponseLength>().is_some_and(|l| l.0 > settings.max_object_size as u64) {
        return None;
    }
    let vary = VaryKey::capture(headers, &request_headers?)?;
    let fresh_for = settings.lifetime(response.status, &directives, headers);
    let validators = headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
    // Never usable without asking, and nothing to ask with: not worth a place.
    if (fresh_for.is_zero() || directives.no_cache) && !validators {
        return None;
    }
    let mut kept = headers.clone();
    for name in headers.keys() {
        if is_unstored(name) || *name == settings.header {
            kept.remove(name);
        }
    }
    Some(Entry {
        status: response.status,
        headers: kept,
        body: Bytes::new(),
        vary,
        stored_at: Instant::now(),
        initial_age: freshness::initial_age(headers),
        fresh_for,
        revalidate: directives.no_cache,
        no_stale: directives.no_stale(),
    })
}

/// Fields never stored with an entry: framing, hop-by-hop, and `Age` (recomputed).
pub(super) fn is_unstored(name: &http::HeaderName) -> bool {
    matches!(
        *name,
        header::CONTENT_LENGTH
            | header::TRANSFER_ENCODING
            | header::CONNECTION
            | header::TE
            | header::TRAILER
            | header::UPGRADE
            | header::AGE
    ) || name.as_str() == "keep-alive"
}
