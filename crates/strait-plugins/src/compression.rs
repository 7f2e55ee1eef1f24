//! Response compression with gzip, brotli or zstd, as nginx `gzip on` (and ngx_brotli, and the
//! zstd module): the client's `Accept-Encoding` picks the coding, the response's type, length
//! and headers decide whether it is worth it.
//!
//! ```yaml
//! filters:
//!   - name: compression
//!     config: { algorithms: [br, gzip], gzip_level: 5, content_types: [text/*, application/json] }
//! ```
//!
//! A response is compressed when all hold:
//!
//! * the request is not `HEAD`, is HTTP/1.1 or later (nginx `gzip_http_version 1.1`), has no
//!   `Range`, and its `Accept-Encoding` accepts one of `algorithms`;
//! * the response's status has a body (not 1xx, 204 or 304) and is not a range answer (206 or
//!   `Content-Range`), it has no `Content-Encoding` yet, its `Cache-Control` has no
//!   `no-transform`, its media type is in `content_types`, and its length, when known, is at
//!   least `min_length`.
//!
//! A compressed response gets `Content-Encoding`, loses `Content-Length` and `Accept-Ranges`
//! (ranges of the encoded body are not served), and a strong `ETag` becomes weak, as nginx
//! does. `Vary: Accept-Encoding` is added to every response of a compressible type that is
//! not already encoded, also when this client gets it uncompressed, so caches keep the
//! variants apart. The request is left as it is: the upstream still sees `Accept-Encoding`, and
//! an upstream that compresses itself is passed through.
//!
//! The length is known from a `Content-Length` field, when a response still carries one, or
//! from a [`ResponseLength`] in the response's extensions, for the proxy to set when the body's
//! size is known; without either, `min_length` does not apply (as nginx `gzip_min_length`).

mod accept;
mod encoder;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use http::header::{
    HeaderMap, HeaderValue, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, RANGE, VARY,
};
use http::{request, response, Method, StatusCode, Version};
use serde::Deserialize;
use strait_http::registry::{typed, BuildEnv};
use strait_http::{BodyFilter, Filter, FilterFactory, Flow, Phase, Phases, Plugin, PluginError, RequestCtx};

use self::accept::Accepted;
use self::encoder::Encoder;

// === config ===

/// A content coding the filter can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// `zstd` (RFC 8878).
    Zstd,
    /// `br`, brotli (RFC 7932); `brotli` is accepted as another spelling.
    #[serde(alias = "brotli")]
    Br,
    /// `gzip` (RFC 1952).
    Gzip,
}

impl Algorithm {
    /// The `Content-Encoding` token.
    pub const fn token(self) -> &'static str {
        match self {
            Algorithm::Zstd => "zstd",
            Algorithm::Br => "br",
            Algorithm::Gzip => "gzip",
        }
    }
}

/// The `config:` block of the `compression` filter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionConfig {
    /// Codings offered, in the server's order of preference, which breaks ties between equal client q-values.
    pub algorithms: Vec<Algorithm>,
    /// gzip level, 1 (fastest) to 9 (smallest); 1 as nginx `gzip_comp_level`.
    pub gzip_level: u32,
    /// brotli quality, 0 (fastest) to 11 (smallest); 4, quick enough to compress on the fly.
    pub brotli_level: u32,
    /// zstd level, 1 (fastest) to 19 (smallest); 3, zstd's own default.
    pub zstd_level: u32,
    /// Smallest response body compressed, in bytes, when its length is known (nginx `gzip_min_length`).
    pub min_length: u64,
    /// Media types compressed: `text/html`, `text/*` (every subtype) or `*` (every type), case-insensitive.
    pub content_types: Vec<String>,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig {
            algorithms: vec![Algorithm::Zstd, Algorithm::Br, Algorithm::Gzip],
            gzip_level: 1,
            brotli_level: 4,
            zstd_level: 3,
            min_length: 20,
            content_types: [
                "text/html",
                "text/plain",
                "text/css",
                "text/xml",
                "text/javascript",
                "application/javascript",
                "application/json",
                "application/xml",
                "image/svg+xml",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

// === compiled settings ===

/// Levels per algorithm, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Levels {
    pub(crate) gzip: u32,
    pub(crate) brotli: u32,
    pub(crate) zstd: u32,
}

/// One `content_types` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TypePattern {
    /// `*`: every response that has a type.
    Any,
    /// `text/*`, stored as `text/`.
    Prefix(String),
    /// `text/html`.
    Exact(String),
}

impl TypePattern {
    /// Parses an entry, or says what is wrong with it.
    fn parse(entry: &str) -> Result<TypePattern, String> {
        let entry = entry.trim().to_ascii_lowercase();
        if entry == "*" {
            return Ok(TypePattern::Any);
        }
        let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"*/;,\"".contains(&b));
        match entry.split_once('/') {
            Some((kind, "*")) if token(kind) => Ok(TypePattern::Prefix(format!("{kind}/"))),
            Some((kind, subtype)) if token(kind) && token(subtype) => Ok(TypePattern::Exact(entry)),
            _ => Err(format!(
                "`{entry}` is not a media type: write `type/subtype` (`text/html`), `type/*` (`text/*`) or `*`"
            )),
        }
    }

    /// Whether `media_type` (lower- or mixed-case, without parameters) matches.
    fn matches(&self, media_type: &str) -> bool {
        match self {
            TypePattern::Any => true,
            TypePattern::Prefix(prefix) => {
                media_type.len() > prefix.len()
                    && media_type.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
            }
            TypePattern::Exact(exact) => media_type.eq_ignore_ascii_case(exact),
        }
    }
}

/// A validated configuration, shared by every request of one configured filter.
#[derive(Debug)]
struct Settings {
    algorithms: Vec<Algorithm>,
    levels: Levels,
    min_length: u64,
    content_types: Vec<TypePattern>,
}

impl Settings {
    /// Checks `config`; errors name the offending field.
    fn compile(config: &CompressionConfig) -> Result<Settings, PluginError> {
        if config.algorithms.is_empty() {
            return Err(PluginError::at("algorithms", "list at least one of `zstd`, `br`, `gzip`"));
        }
        for (i, algorithm) in config.algorithms.iter().enumerate() {
            if config.algorithms[..i].contains(algorithm) {
                return Err(PluginError::at(
                    format!("algorithms[{i}]"),
                    format!("`{}` is listed twice", algorithm.token()),
                ));
            }
        }
        let level = |field: &str, value: u32, range: std::ops::RangeInclusive<u32>| {
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(PluginError::at(field, format!("must be between {} and {}", range.start(), range.end())))
            }
        };
        let levels = Levels {
            gzip: level("gzip_level", config.gzip_level, 1..=9)?,
            brotli: level("brotli_level", config.brotli_level, 0..=11)?,
            // Levels 20 to 22 need windows beyond the 8 MiB HTTP clients must accept (RFC 9659).
            zstd: level("zstd_level", config.zstd_level, 1..=19)?,
        };
        let content_types = config
            .content_types
            .iter()
            .enumerate()
            .map(|(i, entry)| TypePattern::parse(entry).map_err(|e| PluginError::at(format!("content_types[{i}]"), e)))
            .collect::<Result<_, _>>()?;
        Ok(Settings { algorithms: config.algorithms.clone(), levels, min_length: config.min_length, content_types })
    }

    /// The coding this request may get, if any: the request-side rules.
    fn offer(&self, request: &request::Parts) -> Option<Algorithm> {
        if request.method == Method::HEAD || request.version < Version::HTTP_11 || request.headers.contains_key(RANGE) {
            return None;
        }
        Accepted::parse(&request.headers).choose(&self.algorithms)
    }

    /// Whether the response's media type is one to compress.
    fn compressible_type(&self, headers: &HeaderMap) -> bool {
        let Some(media_type) = headers.get(CONTENT_TYPE).and_then(media_type) else { return false };
        self.content_types.iter().any(|pattern| pattern.matches(media_type))
    }

    /// The response-side rules: adds `Vary` where the answer depends on `Accept-Encoding`,
    /// and when `offer` is to be used, rewrites the headers for it and returns it.
    fn decide(&self, offer: Option<Algorithm>, response: &mut response::Parts) -> Option<Algorithm> {
        let headers = &mut response.headers;
        if headers.contains_key(CONTENT_ENCODING) || has_token(headers, &CACHE_CONTROL, "no-transform") {
            return None;
        }
        if !self.compressible_type(headers) {
            return None;
        }
        add_vary(headers);
        let algorithm = offer?;
        let status = response.status;
        if status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            return None;
        }
        if status == StatusCode::PARTIAL_CONTENT || headers.contains_key(CONTENT_RANGE) {
            return None;
        }
        let length = content_length(headers).or_else(|| response.extensions.get::<ResponseLength>().map(|l| l.0));
        if length.is_some_and(|length| length < self.min_length) {
            return None;
        }
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(algorithm.token()));
        headers.remove(CONTENT_LENGTH);
        headers.remove(ACCEPT_RANGES);
        weaken_etag(headers);
        Some(algorithm)
    }
}

// === header helpers ===

/// The media type of a `Content-Type` value: what comes before `;`, trimmed; `None` if empty.
fn media_type(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?;
    let media_type = value.split(';').next().unwrap_or("").trim();
    (!media_type.is_empty()).then_some(media_type)
}

/// Whether a comma-separated field lists `token` (case-insensitive, ignoring `=value`).
fn has_token(headers: &HeaderMap, name: &http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
        let item = item.split('=').next().unwrap_or("").trim();
        item.eq_ignore_ascii_case(token)
    })
}

/// Appends `Vary: Accept-Encoding` unless `Vary` names it already or is `*`.
fn add_vary(headers: &mut HeaderMap) {
    if !has_token(headers, &VARY, "accept-encoding") && !has_token(headers, &VARY, "*") {
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// A single valid `Content-Length`, if there is one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()?.trim().parse().ok()
}

/// Makes a strong `ETag` weak (`"x"` becomes `W/"x"`): the encoded body is not byte-identical
/// to the representation the upstream tagged.
fn weaken_etag(headers: &mut HeaderMap) {
    let Some(etag) = headers.get(ETAG) else { return };
    if etag.as_bytes().first() != Some(&b'"') {
        return;
    }
    let weak = [b"W/".as_slice(), etag.as_bytes()].concat();
    if let Ok(weak) = HeaderValue::from_bytes(&weak) {
        headers.insert(ETAG, weak);
    }
}

// === impl Filter ===

pub use strait_http::context::ResponseLength;

/// Factory of one configured `compression` filter.
#[derive(Debug)]
pub struct CompressionFactory {
    settings: Arc<Settings>,
}

impl CompressionFactory {
    /// Validates `config` into a factory.
    pub fn new(config: &CompressionConfig) -> Result<CompressionFactory, PluginError> {
        Ok(CompressionFactory { settings: Arc::new(Settings::compile(config)?) })
    }
}

impl FilterFactory for CompressionFactory {
    fn name(&self) -> &'static str {
        "compression"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS | Phases::RESPONSE_HEADERS | Phases::RESPONSE_BODY
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(Compression { settings: self.settings.clone(), offer: None, chosen: None })
    }
}

/// One request's state: the coding its request allows, then the one its response gets.
struct Compression {
    settings: Arc<Settings>,
    offer: Option<Algorithm>,
    chosen: Option<Algorithm>,
}

impl Filter for Compression {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, _ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        self.offer = self.settings.offer(request);
        Phase::Ready(Flow::Continue)
    }

    fn response_headers<'a>(
        &'a mut self,
        response: &'a mut response::Parts,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, ()> {
        self.chosen = self.settings.decide(self.offer, response);
        Phase::Ready(())
    }

    fn response_body(&mut self, _response: &response::Parts, _ctx: &RequestCtx) -> Option<Box<dyn BodyFilter>> {
        let algorithm = self.chosen.take()?;
        Some(Box::new(Encoder::new(algorithm, &self.settings.levels)))
    }
}

/// The `compression` plugin.
pub fn compression_plugin() -> impl Plugin {
    typed("compression", |config: CompressionConfig, _env: &BuildEnv<'_>| {
        Ok(Arc::new(CompressionFactory::new(&config)?) as Arc<dyn FilterFactory>)
    })
}
