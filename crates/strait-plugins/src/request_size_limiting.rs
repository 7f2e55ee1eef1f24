//! Request body size limits per route, as Kong's `request-size-limiting` plugin.
//!
//! ```yaml
//! filters:
//!   - name: request_size_limiting
//!     config: { allowed_payload_size: 10, size_unit: megabytes, require_content_length: false }
//! ```
//!
//! A body whose declared length ([`RequestLength`]) is over the limit is refused before
//! anything goes upstream: 413 `body_too_large`, or 417 `expectation_failed` when the client
//! waits for `100 Continue` (which it then never gets, so the body is never sent). A body
//! without a declared length (chunked) is counted as it streams and refused with 413 on the
//! chunk that crosses the limit; that chunk is not passed on, so the upstream never receives a
//! complete oversized body (its request ends unfinished). With `require_content_length`, a
//! body without a declared length is refused at once with 411 `length_required`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderMap, EXPECT};
use http::request;
use serde::Deserialize;
use strait_http::context::{ExpectContinue, RequestLength};
use strait_http::registry::{typed, BuildEnv};
use strait_http::{
    BodyFilter, BodyStep, Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Plugin, PluginError, Reason,
    RequestCtx,
};

/// Kong's priority for `request-size-limiting`.
pub const PRIORITY: i32 = 951;

// === config ===

/// The unit of `allowed_payload_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeUnit {
    /// Bytes.
    Bytes,
    /// Kilobytes of 1024 bytes, as Kong counts them.
    Kilobytes,
    /// Megabytes of 1024 × 1024 bytes, as Kong counts them.
    Megabytes,
}

impl SizeUnit {
    /// Bytes in one unit.
    pub const fn bytes(self) -> u64 {
        match self {
            SizeUnit::Bytes => 1,
            SizeUnit::Kilobytes => 1 << 10,
            SizeUnit::Megabytes => 1 << 20,
        }
    }
}

/// The `config:` block of the `request_size_limiting` filter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestSizeLimitingConfig {
    /// Largest body allowed, in `size_unit`s.
    pub allowed_payload_size: u64,
    /// The unit of `allowed_payload_size`.
    pub size_unit: SizeUnit,
    /// Refuse bodies without a declared length (411) instead of counting them as they stream.
    pub require_content_length: bool,
}

impl Default for RequestSizeLimitingConfig {
    fn default() -> Self {
        RequestSizeLimitingConfig {
            allowed_payload_size: 128,
            size_unit: SizeUnit::Megabytes,
            require_content_length: false,
        }
    }
}

// === impl Filter ===

/// Factory of one configured `request_size_limiting` filter.
#[derive(Debug)]
pub struct RequestSizeLimitingFactory {
    /// Largest body allowed, in bytes.
    limit: u64,
    require_content_length: bool,
}

impl RequestSizeLimitingFactory {
    /// Validates `config` into a factory.
    pub fn new(config: &RequestSizeLimitingConfig) -> Result<RequestSizeLimitingFactory, PluginError> {
        let limit = config
            .allowed_payload_size
            .checked_mul(config.size_unit.bytes())
            .ok_or_else(|| PluginError::at("allowed_payload_size", "is too large"))?;
        Ok(RequestSizeLimitingFactory { limit, require_content_length: config.require_content_length })
    }
}

impl FilterFactory for RequestSizeLimitingFactory {
    fn name(&self) -> &'static str {
        "request_size_limiting"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS | Phases::REQUEST_BODY
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(SizeLimit { limit: self.limit, require_content_length: self.require_content_length, counted: false })
    }
}

/// One request's limit: whether its body needs counting as it streams.
struct SizeLimit {
    limit: u64,
    require_content_length: bool,
    /// The body has no declared length: count it.
    counted: bool,
}

impl SizeLimit {
    /// The request-header decision: refuse now, or go on (counting the body if its length is unknown).
    fn check(&mut self, request: &request::Parts) -> Flow {
        match request.extensions.get::<RequestLength>() {
            Some(RequestLength(length)) if *length > self.limit => {
                let reason = if expects_continue(request) { Reason::ExpectationFailed } else { Reason::BodyTooLarge };
                Flow::respond(LocalResponse::for_reason(reason))
            }
            Some(_) => Flow::Continue,
            None if self.require_content_length => Flow::respond(LocalResponse::for_reason(Reason::LengthRequired)),
            None => {
                self.counted = true;
                Flow::Continue
            }
        }
    }
}

/// Whether the client waits for `100 Continue`: the HTTP/1 driver's marker, or (over HTTP/2,
/// where the field is passed on) an `Expect` field naming it.
fn expects_continue(request: &request::Parts) -> bool {
    request.extensions.get::<ExpectContinue>().is_some() || expect_field(&request.headers)
}

/// Whether an `Expect` field says `100-continue` (case-insensitive, spaces around ignored).
fn expect_field(headers: &HeaderMap) -> bool {
    headers.get_all(EXPECT).iter().any(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"100-continue"))
}

impl Filter for SizeLimit {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, _ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        Phase::Ready(self.check(request))
    }

    fn request_body(&mut self, _ctx: &RequestCtx) -> Option<Box<dyn BodyFilter>> {
        // A declared length is enforced by the framing itself: the body stays as it is (and
        // keeps its length upstream).
        self.counted.then(|| Box::new(ByteCounter { left: self.limit }) as Box<dyn BodyFilter>)
    }
}

/// Counts a body of unknown length and refuses the chunk that takes it over the limit.
struct ByteCounter {
    /// Bytes still allowed.
    left: u64,
}

impl BodyFilter for ByteCounter {
    fn chunk(mut self: Box<Self>, chunk: Bytes, _end: bool) -> BodyStep {
        let result = match self.left.checked_sub(chunk.len() as u64) {
            Some(left) => {
                self.left = left;
                Ok(chunk)
            }
            None => Err(Reason::BodyTooLarge),
        };
        Phase::Ready((self as Box<dyn BodyFilter>, result))
    }
}

/// The `request_size_limiting` plugin.
pub fn request_size_limiting_plugin() -> impl Plugin {
    typed("request_size_limiting", |config: RequestSizeLimitingConfig, _env: &BuildEnv<'_>| {
        Ok(Arc::new(RequestSizeLimitingFactory::new(&config)?) as Arc<dyn FilterFactory>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(bytes: u64, require_content_length: bool) -> SizeLimit {
        SizeLimit { limit: bytes, require_content_length, counted: false }
    }

    fn request(length: Option<u64>, expect: bool) -> request::Parts {
        let mut parts = http::Request::post("/up").body(()).unwrap().into_parts().0;
        if let Some(length) = length {
            parts.extensions.insert(RequestLength(length));
        }
        if expect {
            parts.extensions.insert(ExpectContinue);
        }
        parts
    }

    fn refusal(flow: Flow) -> Option<Reason> {
        match flow {
            Flow::Respond(answer) => answer.reason,
            Flow::Continue => None,
        }
    }

    #[test]
    fn kong_defaults_allow_128_megabytes() {
        let factory = RequestSizeLimitingFactory::new(&RequestSizeLimitingConfig::default()).unwrap();
        assert_eq!(factory.limit, 128 << 20);
        assert!(!factory.require_content_length);
        let config =
            RequestSizeLimitingConfig { allowed_payload_size: 3, size_unit: SizeUnit::Kilobytes, ..Default::default() };
        assert_eq!(RequestSizeLimitingFactory::new(&config).unwrap().limit, 3072);
    }

    #[test]
    fn a_size_that_overflows_is_a_config_error() {
        let config = RequestSizeLimitingConfig { allowed_payload_size: u64::MAX, ..Default::default() };
        assert_eq!(RequestSizeLimitingFactory::new(&config).unwrap_err().path, "allowed_payload_size");
    }

    #[test]
    fn declared_lengths_are_judged_before_the_body() {
        assert_eq!(refusal(limit(10, false).check(&request(Some(10), false))), None);
        assert_eq!(refusal(limit(10, false).check(&request(Some(11), false))), Some(Reason::BodyTooLarge));
        assert_eq!(refusal(limit(10, false).check(&request(Some(11), true))), Some(Reason::ExpectationFailed));
        let mut over_h2 = request(Some(11), false);
        over_h2.headers.insert(EXPECT, http::HeaderValue::from_static(" 100-Continue"));
        assert_eq!(refusal(limit(10, false).check(&over_h2)), Some(Reason::ExpectationFailed));
        let mut within = limit(10, false);
        assert_eq!(refusal(within.check(&request(Some(5), true))), None);
        assert!(within.request_body(&ctx()).is_none(), "a declared length needs no counting");
    }

    #[test]
    fn bodies_without_a_length_are_counted_or_refused() {
        assert_eq!(refusal(limit(10, true).check(&request(None, false))), Some(Reason::LengthRequired));
        assert_eq!(refusal(limit(10, true).check(&request(Some(0), false))), None, "no body at all is fine");
        let mut counted = limit(10, false);
        assert_eq!(refusal(counted.check(&request(None, false))), None);
        let counter = counted.request_body(&ctx()).expect("a counter");
        let (counter, first) = resolve(counter.chunk(Bytes::from_static(b"123456"), false));
        assert_eq!(first.unwrap(), "123456");
        let (counter, second) = resolve(counter.chunk(Bytes::from_static(b"7890"), false));
        assert_eq!(second.unwrap(), "7890", "exactly the limit passes");
        let (_, third) = resolve(counter.chunk(Bytes::from_static(b"x"), true));
        assert_eq!(third.unwrap_err(), Reason::BodyTooLarge);
    }

    #[test]
    fn reference_example_loads_with_its_priority() {
        let doc = include_str!("../../../docs/CONFIG.md");
        let section = &doc[doc.find("### `request_size_limiting`").expect("docs/CONFIG.md documents the filter")..];
        let start = section.find("```yaml\n").expect("with an example") + "```yaml\n".len();
        let example = &section[start..start + section[start..].find("```").unwrap()];
        let config =
            strait_config::load_str_with_env(example, "CONFIG.md", &|_| None).unwrap_or_else(|e| panic!("{e}"));
        let spec = &config.listeners[0].routes[0].filters[0];
        let env = BuildEnv { config: &config };
        let path = "listeners[0].routes[0].filters[0]";
        let factory = crate::builtin().build(spec, path, &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(factory.name(), "request_size_limiting");
        assert_eq!(crate::builtin().priority(spec), PRIORITY);
        let mut wrong = spec.clone();
        wrong.config["size_unit"] = serde_json::json!("gigabytes");
        let error = crate::builtin().build(&wrong, path, &env).unwrap_err();
        assert_eq!(error.path, "listeners[0].routes[0].filters[0].config.size_unit");
    }

    fn resolve(step: BodyStep) -> (Box<dyn BodyFilter>, Result<Bytes, Reason>) {
        match step {
            Phase::Ready(done) => done,
            Phase::Wait(_) => panic!("the counter never waits"),
        }
    }

    fn ctx() -> RequestCtx {
        let conn = strait_http::context::ConnInfo {
            peer: "127.0.0.1:1".parse().unwrap(),
            listener: "web".into(),
            scheme: "http",
            version: http::Version::HTTP_11,
            tls: None,
        };
        RequestCtx::new(std::rc::Rc::new(conn), "127.0.0.1".parse().unwrap())
    }
}
