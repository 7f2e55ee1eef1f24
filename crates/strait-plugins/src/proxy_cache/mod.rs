//! A shared HTTP cache (RFC 9111), as nginx `proxy_cache`, Kong's `proxy-cache` and Squid's
//! cache: responses to `GET` (and `HEAD`) are stored by method, host, path and query (and the
//! fields their `Vary` names), served from the cache while fresh, revalidated with
//! `If-None-Match` / `If-Modified-Since` once expired, and served stale when the upstream
//! fails, if allowed. The store is in memory, with an optional disk store behind it (Squid
//! `cache_dir`) that outlives restarts.
//!
//! ```yaml
//! routes:
//!   - filters:
//!       - name: proxy_cache
//!         config:
//!           max_size: 64MiB
//!           max_object_size: 4MiB
//!           disk: { path: /var/cache/strait, max_size: 10GiB }
//!           valid: [{ statuses: [200, 302], ttl: 10m }, { statuses: [404], ttl: 1m }]
//!           use_stale: [error, timeout, updating, http_500, http_502, http_503, http_504]
//!     forward: { cluster: app }
//! ```
//!
//! Every response of the route says what the cache did in `X-Cache-Status` (`HIT`, `MISS`,
//! `EXPIRED`, `STALE`, `BYPASS` or `REVALIDATED`), and `RequestCtx::cache_status` has the
//! same word for the access log. The memory store belongs to the `filters:` entry and is
//! shared by every worker; a reload starts it empty. The disk store is one per directory in
//! the process and survives reloads.

mod disk;
mod filter;
mod freshness;
mod key;
mod store;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::HeaderName;
use http::{Method, StatusCode};
use serde::Deserialize;
use strait_config::units::{ByteSize, Dur};
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Phases, Plugin, PluginError};

use disk::DiskStore;
use freshness::Directives;
use key::KeyOptions;
use store::{Cache, Entry};

/// Settings of a `proxy_cache` filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyCacheConfig {
    /// Request methods whose responses are cached (`HEAD` is answered from `GET`'s entry).
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Response statuses that are stored.
    #[serde(default = "default_statuses")]
    pub statuses: Vec<u16>,
    /// Freshness per status when the response gives none (nginx `proxy_cache_valid`).
    #[serde(default)]
    pub valid: Vec<Validity>,
    /// Freshness of other responses that give none (Kong `cache_ttl`).
    #[serde(default = "default_ttl")]
    pub ttl: Dur,
    /// Bytes the memory store may hold (bodies, headers and keys); in front of `disk`, the
    /// memory tier's bound.
    #[serde(default = "default_max_size")]
    pub max_size: ByteSize,
    /// Largest body stored (Squid `maximum_object_size`); larger responses pass through.
    #[serde(default = "default_max_object_size", alias = "max_body")]
    pub max_object_size: ByteSize,
    /// A disk store behind the memory one (Squid `cache_dir`).
    #[serde(default)]
    pub disk: Option<DiskConfig>,
    /// What the key is made of.
    #[serde(default)]
    pub cache_key: CacheKeyConfig,
    /// Request headers that skip the cache when present and not empty or `0` (nginx
    /// `proxy_cache_bypass`); the answer is still stored.
    #[serde(default)]
    pub bypass: Vec<String>,
    /// Honour the client's `Cache-Control: no-cache` (skip the cache) and `no-store` (also
    /// do not store).
    #[serde(default = "yes")]
    pub request_cache_control: bool,
    /// Store responses that set cookies.
    #[serde(default)]
    pub cache_cookies: bool,
    /// Cache answers to requests with `Authorization` (put it in `cache_key.headers` to keep
    /// users apart).
    #[serde(default)]
    pub cache_authorized: bool,
    /// When a stored but expired response is served instead (nginx `proxy_cache_use_stale`).
    #[serde(default)]
    pub use_stale: Vec<StaleWhen>,
    /// The response header telling what the cache did.
    #[serde(default = "default_header")]
    pub header: String,
}

/// Where and how large the disk store is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskConfig {
    /// The directory (made if missing); entries written there before are served after a restart.
    pub path: String,
    /// Bytes the files may take in all; the least recently used key is evicted first.
    #[serde(default = "default_disk_size")]
    pub max_size: ByteSize,
}

/// Freshness of responses with some statuses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validity {
    /// The statuses.
    pub statuses: Vec<u16>,
    /// How long they stay fresh.
    pub ttl: Dur,
}

/// What the primary key is made of besides method, host and path.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheKeyConfig {
    /// Leave the query string out of the key.
    #[serde(default)]
    pub ignore_query: bool,
    /// Request headers whose values are part of the key.
    #[serde(default)]
    pub headers: Vec<String>,
}

/// A case in which a stale response is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaleWhen {
    /// The upstream could not be reached or answered badly.
    Error,
    /// The upstream did not answer in time.
    Timeout,
    /// Another request is refreshing the entry.
    Updating,
    /// The upstream answered 500.
    #[serde(rename = "http_500")]
    Http500,
    /// The upstream answered 502.
    #[serde(rename = "http_502")]
    Http502,
    /// The upstream answered 503.
    #[serde(rename = "http_503")]
    Http503,
    /// The upstream answered 504.
    #[serde(rename = "http_504")]
    Http504,
    /// The upstream answered 403.
    #[serde(rename = "http_403")]
    Http403,
    /// The upstream answered 404.
    #[serde(rename = "http_404")]
    Http404,
    /// The upstream answered 429.
    #[serde(rename = "http_429")]
    Http429,
}

fn default_methods() -> Vec<String> {
    vec!["GET".into(), "HEAD".into()]
}
fn default_statuses() -> Vec<u16> {
    vec![200, 301, 404]
}
fn default_ttl() -> Dur {
    Dur::secs(300)
}
fn default_max_size() -> ByteSize {
    ByteSize(64 << 20)
}
fn default_max_object_size() -> ByteSize {
    ByteSize(4 << 20)
}
fn default_disk_size() -> ByteSize {
    ByteSize(1 << 30)
}
fn default_header() -> String {
    "X-Cache-Status".into()
}
fn yes() -> bool {
    true
}

/// The `proxy_cache` plugin (Kong priority 100: after authentication and rate limiting).
pub fn proxy_cache_plugin() -> impl Plugin {
    prioritized(
        typed("proxy_cache", |config: ProxyCacheConfig, _env: &BuildEnv<'_>| {
            Ok(Arc::new(ProxyCacheFactory(Arc::new(Settings::new(config)?))) as Arc<dyn FilterFactory>)
        }),
        100,
    )
}

/// A configured cache: its checked settings and its store.
#[derive(Debug)]
pub(crate) struct Settings {
    methods: Vec<Method>,
    statuses: Vec<StatusCode>,
    valid: Vec<(StatusCode, Duration)>,
    ttl: Duration,
    max_object_size: usize,
    key: KeyOptions,
    bypass: Vec<HeaderName>,
    request_cache_control: bool,
    cache_cookies: bool,
    cache_authorized: bool,
    use_stale: Vec<StaleWhen>,
    header: HeaderName,
    cache: Cache,
    disk: Option<Arc<DiskStore>>,
}

impl Settings {
    fn new(config: ProxyCacheConfig) -> Result<Settings, PluginError> {
        let mut methods = Vec::with_capacity(config.methods.len());
        for (i, method) in config.methods.iter().enumerate() {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .map_err(|_| PluginError::at(format!("methods[{i}]"), "not a method name"))?;
            methods.push(method);
        }
        let statuses = statuses_at(&config.statuses, "statuses")?;
        let mut valid = Vec::new();
        for (i, validity) in config.valid.iter().enumerate() {
            for status in statuses_at(&validity.statuses, &format!("valid[{i}].statuses"))? {
                valid.push((status, validity.ttl.0));
            }
        }
        let header_names = |names: &[String], field: &str| -> Result<Vec<HeaderName>, PluginError> {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    HeaderName::try_from(name.as_str())
                        .map_err(|_| PluginError::at(format!("{field}[{i}]"), "not a header name"))
                })
                .collect()
        };
        let header =
            HeaderName::try_from(config.header.as_str()).map_err(|_| PluginError::at("header", "not a header name"))?;
        if config.max_size.0 == 0 && config.disk.is_none() {
            return Err(PluginError::at("max_size", "must be greater than zero (or `0` with `disk`: no memory tier)"));
        }
        let disk = match &config.disk {
            None => None,
            Some(disk) if disk.max_size.0 == 0 => {
                return Err(PluginError::at("disk.max_size", "must be greater than zero"));
            }
            Some(disk) if disk.path.is_empty() => return Err(PluginError::at("disk.path", "must not be empty")),
            Some(disk) => Some(
                DiskStore::shared(Path::new(&disk.path), disk.max_size.0)
                    .map_err(|e| PluginError::at("disk.path", format!("cannot open `{}`: {e}", disk.path)))?,
            ),
        };
        Ok(Settings {
            methods,
            statuses,
            valid,
            ttl: config.ttl.0,
            max_object_size: usize::try_from(config.max_object_size.0).unwrap_or(usize::MAX),
            key: KeyOptions {
                ignore_query: config.cache_key.ignore_query,
                headers: header_names(&config.cache_key.headers, "cache_key.headers")?,
            },
            bypass: header_names(&config.bypass, "bypass")?,
            request_cache_control: config.request_cache_control,
            cache_cookies: config.cache_cookies,
            cache_authorized: config.cache_authorized,
            use_stale: config.use_stale,
            header,
            cache: Cache::new(usize::try_from(config.max_size.0).unwrap_or(usize::MAX)),
            disk,
        })
    }

    /// How long a response with `status`, `directives` and `headers` stays fresh: what it
    /// says itself (`s-maxage`, `max-age`, `Expires`); else the `valid` entry for its status
    /// (the operator's choice); else `ttl` where RFC 9111 §4.2.2 allows a heuristic; else none.
    fn lifetime(&self, status: StatusCode, directives: &Directives, headers: &http::HeaderMap) -> Duration {
        if let Some(lifetime) = freshness::explicit_lifetime(directives, headers, SystemTime::now()) {
            return lifetime;
        }
        if let Some((_, ttl)) = self.valid.iter().find(|(s, _)| *s == status) {
            return *ttl;
        }
        if freshness::heuristic_allowed(status, directives) {
            self.ttl
        } else {
            Duration::ZERO
        }
    }

    /// Stores `entry` under `key`: in memory, and written to the disk store off the worker thread.
    fn store(&self, key: &str, entry: Arc<Entry>) {
        self.cache.store(key, entry.clone());
        if let Some(disk) = &self.disk {
            let (disk, key) = (disk.clone(), key.to_owned());
            disk::in_background(move || disk.write(&key, &entry));
        }
    }

    /// Drops what is stored for `resource` (see [`Cache::invalidate`]) in memory and on disk.
    fn invalidate(&self, resource: &str, with_headers: bool) {
        self.cache.invalidate(resource, with_headers);
        if let Some(disk) = &self.disk {
            let files = if with_headers {
                disk.remove_where(|key| store::is_variant_of(key, resource))
            } else {
                disk.remove(resource)
            };
            if !files.is_empty() {
                let disk = disk.clone();
                disk::in_background(move || disk.delete(files));
            }
        }
    }

    /// Whether a stale entry is served in place of an upstream answer with `status`.
    fn stale_on_status(&self, status: StatusCode) -> bool {
        let when = match status.as_u16() {
            500 => StaleWhen::Http500,
            502 => StaleWhen::Http502,
            503 => StaleWhen::Http503,
            504 => StaleWhen::Http504,
            403 => StaleWhen::Http403,
            404 => StaleWhen::Http404,
            429 => StaleWhen::Http429,
            _ => return false,
        };
        self.use_stale.contains(&when)
    }
}

/// The statuses of `list` at `field`, each a final status.
fn statuses_at(list: &[u16], field: &str) -> Result<Vec<StatusCode>, PluginError> {
    list.iter()
        .enumerate()
        .map(|(i, status)| match StatusCode::from_u16(*status) {
            Ok(status) if (200..600).contains(&status.as_u16()) => Ok(status),
            _ => Err(PluginError::at(format!("{field}[{i}]"), "not a final status (200 to 599)")),
        })
        .collect()
}

/// Factory of one configured cache.
#[derive(Debug)]
struct ProxyCacheFactory(Arc<Settings>);

impl FilterFactory for ProxyCacheFactory {
    fn name(&self) -> &'static str {
        "proxy_cache"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS | Phases::RESPONSE_HEADERS | Phases::RESPONSE_BODY | Phases::LOCAL_REPLY
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(filter::ProxyCache::new(self.0.clone()))
    }
}

#[cfg(test)]
mod tests;
