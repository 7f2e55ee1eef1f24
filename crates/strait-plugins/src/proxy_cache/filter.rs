//! One request's pass through the cache: look-up and answer in the request-header phase,
//! then, for answers from the upstream, revalidation, stale answers and storing.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{request, response, Method, StatusCode};
use strait_http::context::ResponseLength;
use strait_http::{BodyFilter, BodyStep, Filter, Flow, LocalResponse, Phase, Reason, RequestCtx};

use super::freshness::{self, Asked, Directives};
use super::key::{self, VaryKey};
use super::store::Entry;
use super::{Settings, StaleWhen};

/// What the cache did for a response, as `X-Cache-Status` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache.
    Hit,
    /// Not in the cache: from the upstream.
    Miss,
    /// In the cache but expired: from the upstream.
    Expired,
    /// Expired, served from the cache because the upstream failed or is being asked.
    Stale,
    /// The cache was not used for this request.
    Bypass,
    /// Expired, confirmed by the upstream (`304`) and served from the cache.
    Revalidated,
}

impl CacheStatus {
    /// The header value.
    fn value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Expired => "EXPIRED",
            CacheStatus::Stale => "STALE",
            CacheStatus::Bypass => "BYPASS",
            CacheStatus::Revalidated => "REVALIDATED",
        })
    }
}

/// A request that goes to the upstream, and what the cache knows for it.
struct Upstream {
    /// Its primary key.
    key: String,
    /// Whether the answer may be stored.
    store: bool,
    /// The expired entry it refreshes, if any.
    stale: Option<Arc<Entry>>,
    /// Validators of `stale` were added to the upstream request.
    revalidating: bool,
    /// This request holds the key's "updating" mark.
    updating: bool,
    /// The request headers, for the `Vary` fields of the answer (when it may be stored).
    request_headers: Option<HeaderMap>,
    /// What the header says if the upstream's answer passes.
    status: CacheStatus,
}

/// Where the request stands.
enum Plan {
    /// The request-header phase did not run (an earlier filter answered).
    Unseen,
    /// Not a request the cache takes part in.
    Pass,
    /// Answered by this filter from the cache.
    Served(CacheStatus),
    /// Sent to the upstream.
    Upstream(Box<Upstream>),
    /// An unsafe request (`POST`, `PUT`, `DELETE`...): a success invalidates what is stored
    /// for its target (RFC 9111 §4.4).
    Invalidate {
        /// The request's host, for `Location` and `Content-Location` on the same host.
        host: String,
        /// The key of a `GET` of the target.
        resource: String,
    },
}

/// An upstream answer to store once its body is complete.
struct Pending {
    key: String,
    entry: Entry,
    max_body: usize,
}

/// The `proxy_cache` filter of one request.
pub struct ProxyCache {
    settings: Arc<Settings>,
    plan: Plan,
    /// A local reply not made by this filter: never stored.
    foreign_local: bool,
    /// The body to send in place of the upstream's (a revalidated or stale entry).
    replacement: Option<Bytes>,
    /// The answer being captured for the store.
    pending: Option<Pending>,
}

impl ProxyCache {
    /// A fresh instance sharing `settings` and its store.
    pub(super) fn new(settings: Arc<Settings>) -> ProxyCache {
        ProxyCache { settings, plan: Plan::Unseen, foreign_local: false, replacement: None, pending: None }
    }

    /// Looks the request up; `Some` answer when the cache serves it.
    fn look_up(&mut self, request: &mut request::Parts) -> Option<LocalResponse> {
        let settings = &*self.settings;
        if !settings.methods.contains(&request.method) {
            self.plan = if request.method.is_safe() {
                Plan::Pass
            } else {
                let host = key::host(request).to_ascii_lowercase();
                let query = if settings.key.ignore_query { None } else { request.uri.query() };
                let resource = key::resource(Method::GET.as_str(), &host, request.uri.path(), query);
                Plan::Invalidate { host, resource }
            };
            return None;
        }
        if request.headers.contains_key(header::AUTHORIZATION) && !settings.cache_authorized {
            self.plan = Plan::Pass;
            return None;
        }
        let asked = if settings.request_cache_control { Asked::parse(&request.headers) } else { Asked::default() };
        let bypass = asked.no_cache || asked.no_store || settings.bypass.iter().any(|name| wants_bypass(request, name));
        // A `HEAD` answer has no body to store; `HEAD` is answered from `GET`'s entries.
        let store = request.method != Method::HEAD && !asked.no_store;
        let mut upstream = Upstream {
            key: key::primary(request, &settings.key),
            store,
            stale: None,
            revalidating: false,
            updating: false,
            request_headers: None,
            status: CacheStatus::Bypass,
        };
        if !bypass {
            let now = Instant::now();
            match settings.cache.lookup(&upstream.key, &request.headers) {
                None => upstream.status = CacheStatus::Miss,
                Some(entry) if entry.is_fresh(now) => {
                    self.plan = Plan::Served(CacheStatus::Hit);
                    if entry.status == StatusCode::OK && freshness::not_modified(&request.headers, &entry.headers) {
                        return Some(not_modified(&entry, now));
                    }
                    return Some(answer(&entry, now));
                }
                Some(entry) => {
                    upstream.updating = settings.cache.begin_update(&upstream.key);
                    if !upstream.updating && settings.use_stale.contains(&StaleWhen::Updating) {
                        self.plan = Plan::Served(CacheStatus::Stale);
                        return Some(answer(&entry, now));
                    }
                    upstream.revalidating = add_validators(request, &entry);
                    upstream.status = CacheStatus::Expired;
                    upstream.stale = Some(entry);
                }
            }
        }
        // Kept for the `Vary` fields of the answer; a hit never pays for the copy.
        if store {
            upstream.request_headers = Some(request.headers.clone());
        }
        self.plan = Plan::Upstream(Box::new(upstream));
        None
    }

    /// An upstream answer: refresh on `304`, a stale entry on failure, or note it for the store.
    fn upstream_answer(&mut self, response: &mut response::Parts) -> CacheStatus {
        let Plan::Upstream(upstream) = &mut self.plan else { return CacheStatus::Bypass };
        let settings = &*self.settings;
        let now = Instant::now();
        if let Some(stale) = upstream.stale.clone() {
            if upstream.revalidating && response.status == StatusCode::NOT_MODIFIED {
                let refreshed = Arc::new(refresh(settings, &stale, &response.headers, now));
                settings.cache.store(&upstream.key, refreshed.clone());
                self.replacement = Some(serve_instead(response, &refreshed, now));
                return CacheStatus::Revalidated;
            }
            if settings.stale_on_status(response.status) {
                self.replacement = Some(serve_instead(response, &stale, now));
                return CacheStatus::Stale;
            }
        }
        if upstream.store {
            if let Some(entry) = storable(settings, response, upstream.request_headers.take()) {
                self.pending = Some(Pending { key: upstream.key.clone(), entry, max_body: settings.max_body });
            }
        }
        upstream.status
    }
}

impl Filter for ProxyCache {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, _ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        Phase::Ready(match self.look_up(request) {
            Some(answer) => Flow::Respond(answer),
            None => Flow::Continue,
        })
    }

    fn local_reply<'a>(&'a mut self, reply: &'a mut LocalResponse, ctx: &'a mut RequestCtx) -> Phase<'a, ()> {
        match &self.plan {
            Plan::Served(_) => {}
            Plan::Upstream(upstream) => match (&upstream.stale, reply.reason) {
                (Some(stale), Some(reason)) if stale_on_failure(&self.settings.use_stale, reason) => {
                    // The failure stays in the log; the client gets the stored answer.
                    ctx.reason = Some(reason);
                    *reply = answer(stale, Instant::now());
                    self.release();
                    self.plan = Plan::Served(CacheStatus::Stale);
                }
                _ => self.foreign_local = true,
            },
            _ => self.foreign_local = true,
        }
        Phase::Ready(())
    }

    fn response_headers<'a>(
        &'a mut self,
        response: &'a mut response::Parts,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, ()> {
        let status = match &self.plan {
            Plan::Unseen | Plan::Pass => CacheStatus::Bypass,
            Plan::Invalidate { host, resource } => {
                if !self.foreign_local && (response.status.is_success() || response.status.is_redirection()) {
                    self.invalidate(host, resource, &response.headers);
                }
                CacheStatus::Bypass
            }
            Plan::Served(status) => *status,
            Plan::Upstream(upstream) if self.foreign_local => upstream.status,
            Plan::Upstream(_) => self.upstream_answer(response),
        };
        response.headers.insert(self.settings.header.clone(), status.value());
        Phase::Ready(())
    }

    fn response_body(&mut self, _response: &response::Parts, _ctx: &RequestCtx) -> Option<Box<dyn BodyFilter>> {
        if let Some(body) = self.replacement.take() {
            return Some(Box::new(ReplaceBody { body: Some(body) }));
        }
        let pending = self.pending.take()?;
        Some(Box::new(CaptureBody { settings: self.settings.clone(), body: BytesMut::new(), pending: Some(pending) }))
    }
}

impl ProxyCache {
    /// Drops what is stored for `resource`, and for the `Location` and `Content-Location` of
    /// the answer when they are on the same `host`.
    fn invalidate(&self, host: &str, resource: &str, answer: &HeaderMap) {
        let settings = &*self.settings;
        let with_headers = !settings.key.headers.is_empty();
        settings.cache.invalidate(resource, with_headers);
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let Some(uri) = answer.get(&name).and_then(|v| http::Uri::try_from(v.as_bytes()).ok()) else { continue };
            let same_host = uri.authority().is_none_or(|a| a.as_str().eq_ignore_ascii_case(host));
            if same_host && uri.path().starts_with('/') {
                let query = if settings.key.ignore_query { None } else { uri.query() };
                settings.cache.invalidate(&key::resource(Method::GET.as_str(), host, uri.path(), query), with_headers);
            }
        }
    }

    /// Gives the key's "updating" mark back, if this request holds it.
    fn release(&mut self) {
        if let Plan::Upstream(upstream) = &mut self.plan {
            if std::mem::take(&mut upstream.updating) {
                self.settings.cache.end_update(&upstream.key);
            }
        }
    }
}

impl Drop for ProxyCache {
    fn drop(&mut self) {
        // The refresh is over (stored, passed, or failed) once the request is.
        if let Plan::Upstream(upstream) = &self.plan {
            if upstream.updating {
                self.settings.cache.end_update(&upstream.key);
            }
        }
    }
}

/// Whether the request header `name` asks to skip the cache: present, not empty, not `0`.
fn wants_bypass(request: &request::Parts, name: &http::HeaderName) -> bool {
    request.headers.get(name).is_some_and(|v| !v.is_empty() && v.as_bytes() != b"0")
}

/// Adds `If-None-Match` / `If-Modified-Since` from `entry` to a request that has no
/// conditions of its own; whether it did.
fn add_validators(request: &mut request::Parts, entry: &Entry) -> bool {
    if request.headers.contains_key(header::IF_NONE_MATCH) || request.headers.contains_key(header::IF_MODIFIED_SINCE) {
        return false;
    }
    let mut added = false;
    if let Some(etag) = entry.etag() {
        request.headers.insert(header::IF_NONE_MATCH, etag.clone());
        added = true;
    }
    if let Some(modified) = entry.last_modified() {
        request.headers.insert(header::IF_MODIFIED_SINCE, modified.clone());
        added = true;
    }
    added
}

/// Whether a stale entry answers for Strait's own upstream failure `reason`.
fn stale_on_failure(use_stale: &[StaleWhen], reason: Reason) -> bool {
    let when = match reason {
        Reason::UpstreamTimeout | Reason::UpstreamConnectTimeout => StaleWhen::Timeout,
        Reason::UpstreamConnectFailed
        | Reason::UpstreamReset
        | Reason::UpstreamBadResponse
        | Reason::UpstreamTlsFailed
        | Reason::NoHealthyUpstream => StaleWhen::Error,
        _ => return false,
    };
    use_stale.contains(&when)
}

/// The stored answer as a local response, with its `Age`: the body is shared, not copied.
fn answer(entry: &Entry, now: Instant) -> LocalResponse {
    let mut headers = entry.headers.clone();
    headers.insert(header::AGE, HeaderValue::from(entry.age(now).as_secs()));
    LocalResponse { status: entry.status, headers, body: entry.body.clone(), reason: None }
}

/// A `304` for a client whose conditions the fresh `entry` meets: the fields RFC 9110 §15.4.5
/// asks for, no body.
fn not_modified(entry: &Entry, now: Instant) -> LocalResponse {
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
fn serve_instead(response: &mut response::Parts, entry: &Entry, now: Instant) -> Bytes {
    response.status = entry.status;
    response.headers = entry.headers.clone();
    response.headers.insert(header::AGE, HeaderValue::from(entry.age(now).as_secs()));
    response.extensions.insert(ResponseLength(entry.body.len() as u64));
    entry.body.clone()
}

/// `stale` updated by a `304`'s headers (RFC 9111 §4.3.4), fresh again from now.
fn refresh(settings: &Settings, stale: &Entry, not_modified: &HeaderMap, now: Instant) -> Entry {
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
    let fresh_for = freshness::explicit_lifetime(&directives, &headers, SystemTime::now())
        .unwrap_or_else(|| settings.default_lifetime(stale.status));
    Entry {
        status: stale.status,
        headers,
        body: stale.body.clone(),
        vary: stale.vary.clone(),
        stored_at: now,
        initial_age: freshness::initial_age(not_modified),
        fresh_for,
        revalidate: directives.no_cache,
    }
}

/// The entry an upstream answer would make, when it may be stored.
fn storable(settings: &Settings, response: &response::Parts, request_headers: Option<HeaderMap>) -> Option<Entry> {
    if !settings.statuses.contains(&response.status) {
        return None;
    }
    let headers = &response.headers;
    let directives = Directives::parse(headers);
    if directives.no_store || directives.private {
        return None;
    }
    if headers.contains_key(header::SET_COOKIE) && !settings.cache_cookies {
        return None;
    }
    if response.extensions.get::<ResponseLength>().is_some_and(|l| l.0 > settings.max_body as u64) {
        return None;
    }
    let vary = VaryKey::capture(headers, &request_headers?)?;
    let fresh_for = freshness::explicit_lifetime(&directives, headers, SystemTime::now())
        .unwrap_or_else(|| settings.default_lifetime(response.status));
    let validators = headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
    if fresh_for.is_zero() && !validators {
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
    })
}

/// Fields never stored with an entry: framing, hop-by-hop, and `Age` (recomputed).
fn is_unstored(name: &http::HeaderName) -> bool {
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

/// Copies a response body on its way to the client, and stores the answer when it ends
/// within `max_body`.
struct CaptureBody {
    settings: Arc<Settings>,
    body: BytesMut,
    /// `None` once the body grew too large.
    pending: Option<Pending>,
}

impl BodyFilter for CaptureBody {
    fn chunk(mut self: Box<Self>, chunk: Bytes, end: bool) -> BodyStep {
        if let Some(pending) = &self.pending {
            if self.body.len() + chunk.len() > pending.max_body {
                self.pending = None;
                self.body = BytesMut::new();
            } else {
                self.body.extend_from_slice(&chunk);
            }
        }
        if end {
            if let Some(mut pending) = self.pending.take() {
                pending.entry.body = std::mem::take(&mut self.body).freeze();
                self.settings.cache.store(&pending.key, Arc::new(pending.entry));
            }
        }
        Phase::Ready((self as Box<dyn BodyFilter>, Ok(chunk)))
    }
}

/// Sends a stored body in place of the upstream's (which is dropped).
struct ReplaceBody {
    body: Option<Bytes>,
}

impl BodyFilter for ReplaceBody {
    fn chunk(mut self: Box<Self>, _chunk: Bytes, _end: bool) -> BodyStep {
        let out = self.body.take().unwrap_or_default();
        Phase::Ready((self as Box<dyn BodyFilter>, Ok(out)))
    }
}
