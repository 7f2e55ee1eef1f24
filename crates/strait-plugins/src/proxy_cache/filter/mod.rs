//! One request's pass through the cache: look-up (in memory, then on disk) and answer in the
//! request-header phase, then, for answers from the upstream, revalidation, stale answers and
//! storing.

mod body;
mod entries;

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{request, response, Method, StatusCode};
use strait_http::{BodyFilter, Filter, Flow, LocalResponse, Phase, Reason, RequestCtx};

use super::disk::{DiskStore, FileId};
use super::freshness::{self, Asked};
use super::key;
use super::store::Entry;
use super::{Settings, StaleWhen};
use body::{CaptureBody, ReplaceBody};
use entries::{answer, not_modified, refresh, serve_instead, storable};

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
    /// The word for it, in the header and the access log.
    fn word(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Expired => "EXPIRED",
            CacheStatus::Stale => "STALE",
            CacheStatus::Bypass => "BYPASS",
            CacheStatus::Revalidated => "REVALIDATED",
        }
    }
}

/// A request that goes to the upstream, and what the cache knows for it.
struct Upstream {
    /// Its primary key.
    key: String,
    /// Whether the answer may be stored.
    store: bool,
    /// The request has `Authorization`: the answer is stored only if it says it may be
    /// shared (RFC 9111 §3.5).
    authorized: bool,
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
    max_object_size: usize,
}

/// What the look-up found for a request.
enum Found {
    /// It was not looked up (the client or `bypass` asked to skip the cache).
    Skipped,
    /// Nothing is stored for it.
    Nothing,
    /// This entry.
    Entry(Arc<Entry>),
}

/// What the look-up in the request-header phase came to.
enum Lookup {
    /// Decided: the answer from the cache, or none (the request goes upstream).
    Done(Option<LocalResponse>),
    /// Not in memory, but the disk store has a variant: read it, then decide.
    Disk(Box<Upstream>, Arc<DiskStore>, FileId),
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

    /// Looks the request up in memory; a disk read when only the disk store may have it.
    fn look_up(&mut self, request: &mut request::Parts) -> Lookup {
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
            return Lookup::Done(None);
        }
        let asked = if settings.request_cache_control { Asked::parse(&request.headers) } else { Asked::default() };
        let bypass = asked.no_cache || asked.no_store || settings.bypass.iter().any(|name| wants_bypass(request, name));
        // A `HEAD` answer has no body to store; `HEAD` is answered from `GET`'s entries.
        let store = request.method != Method::HEAD && !asked.no_store;
        let upstream = Box::new(Upstream {
            key: key::primary(request, &settings.key),
            store,
            authorized: request.headers.contains_key(header::AUTHORIZATION) && !settings.cache_authorized,
            stale: None,
            revalidating: false,
            updating: false,
            request_headers: None,
            status: CacheStatus::Bypass,
        });
        if bypass {
            return Lookup::Done(self.decide(request, upstream, Found::Skipped));
        }
        if let Some(entry) = settings.cache.lookup(&upstream.key, &request.headers) {
            if let Some(disk) = &settings.disk {
                disk.touch(&upstream.key);
            }
            return Lookup::Done(self.decide(request, upstream, Found::Entry(entry)));
        }
        match &settings.disk {
            Some(disk) => match disk.find(&upstream.key, &request.headers) {
                Some(id) => Lookup::Disk(upstream, disk.clone(), id),
                None => Lookup::Done(self.decide(request, upstream, Found::Nothing)),
            },
            None => Lookup::Done(self.decide(request, upstream, Found::Nothing)),
        }
    }

    /// Answers from what was `found`, or sends the request upstream; `Some` answer when the
    /// cache serves it.
    fn decide(
        &mut self,
        request: &mut request::Parts,
        mut upstream: Box<Upstream>,
        found: Found,
    ) -> Option<LocalResponse> {
        let settings = &*self.settings;
        let now = Instant::now();
        match found {
            Found::Skipped => {}
            Found::Nothing => upstream.status = CacheStatus::Miss,
            Found::Entry(entry) if entry.is_fresh(now) => {
                self.plan = Plan::Served(CacheStatus::Hit);
                if entry.status == StatusCode::OK && freshness::not_modified(&request.headers, &entry.headers) {
                    return Some(not_modified(&entry, now));
                }
                return Some(answer(&entry, now));
            }
            Found::Entry(entry) => {
                upstream.updating = settings.cache.begin_update(&upstream.key);
                if !upstream.updating && !entry.no_stale && settings.use_stale.contains(&StaleWhen::Updating) {
                    self.plan = Plan::Served(CacheStatus::Stale);
                    return Some(answer(&entry, now));
                }
                upstream.revalidating = add_validators(request, &entry);
                upstream.status = CacheStatus::Expired;
                upstream.stale = Some(entry);
            }
        }
        // Kept for the `Vary` fields of the answer; a hit never pays for the copy.
        if upstream.store {
            upstream.request_headers = Some(request.headers.clone());
        }
        self.plan = Plan::Upstream(upstream);
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
                settings.store(&upstream.key, refreshed.clone());
                self.replacement = Some(serve_instead(response, &refreshed, now));
                return CacheStatus::Revalidated;
            }
            if !stale.no_stale && settings.stale_on_status(response.status) {
                self.replacement = Some(serve_instead(response, &stale, now));
                return CacheStatus::Stale;
            }
        }
        if upstream.store {
            if let Some(entry) = storable(settings, response, upstream.request_headers.take(), upstream.authorized) {
                let max_object_size = settings.max_object_size;
                self.pending = Some(Pending { key: upstream.key.clone(), entry, max_object_size });
            }
        }
        upstream.status
    }
}

impl Filter for ProxyCache {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, _ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        match self.look_up(request) {
            Lookup::Done(answer) => Phase::Ready(flow(answer)),
            Lookup::Disk(upstream, disk, id) => Phase::wait(async move {
                let found = match read_from_disk(disk, upstream.key.clone(), id).await {
                    Some(entry) => {
                        self.settings.cache.store(&upstream.key, entry.clone());
                        Found::Entry(entry)
                    }
                    None => Found::Nothing,
                };
                flow(self.decide(request, upstream, found))
            }),
        }
    }

    fn local_reply<'a>(&'a mut self, reply: &'a mut LocalResponse, ctx: &'a mut RequestCtx) -> Phase<'a, ()> {
        match &self.plan {
            Plan::Served(_) => {}
            Plan::Upstream(upstream) => match (&upstream.stale, reply.reason) {
                (Some(stale), Some(reason))
                    if !stale.no_stale && stale_on_failure(&self.settings.use_stale, reason) =>
                {
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

    fn response_headers<'a>(&'a mut self, response: &'a mut response::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, ()> {
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
        response.headers.insert(self.settings.header.clone(), HeaderValue::from_static(status.word()));
        ctx.cache_status = Some(status.word());
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
        settings.invalidate(resource, with_headers);
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let Some(uri) = answer.get(&name).and_then(|v| http::Uri::try_from(v.as_bytes()).ok()) else { continue };
            let same_host = uri.authority().is_none_or(|a| a.as_str().eq_ignore_ascii_case(host));
            if same_host && uri.path().starts_with('/') {
                let query = if settings.key.ignore_query { None } else { uri.query() };
                settings.invalidate(&key::resource(Method::GET.as_str(), host, uri.path(), query), with_headers);
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

/// The request-header phase's decision for `answer`.
fn flow(answer: Option<LocalResponse>) -> Flow {
    match answer {
        Some(answer) => Flow::respond(answer),
        None => Flow::Continue,
    }
}

/// Reads file `id` of `key` on the runtime's blocking pool (here, when there is no runtime).
async fn read_from_disk(disk: Arc<DiskStore>, key: String, id: FileId) -> Option<Arc<Entry>> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.spawn_blocking(move || disk.read(&key, id)).await.ok().flatten().map(Arc::new),
        Err(_) => disk.read(&key, id).map(Arc::new),
    }
}
