//! Cross-origin resource sharing, as Kong's `cors` plugin and the CORS protocol of the Fetch
//! standard: Strait answers preflights itself and adds the CORS fields to responses.
//!
//! ```yaml
//! filters:
//!   - name: cors
//!     config: { origins: ["https://app.example.com", "~https://[a-z]+\\.example\\.com"], credentials: true }
//! ```
//!
//! * A **preflight** (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
//!   by Strait with 204 and the `Access-Control-Allow-*` fields, unless `preflight_continue`
//!   passes it to the upstream untouched. An origin, method or requested header that is not
//!   allowed is refused with 403 `cors_rejected` (Kong answers 200 without CORS fields: the
//!   browser fails either way, and a refusal with a reason shows in the access log and to
//!   whoever debugs it with curl).
//! * An **actual request** from an allowed origin goes on unchanged; its response, upstream or
//!   Strait's own, gets `Access-Control-Allow-Origin` (the request's origin, or `*` when every
//!   origin is allowed without credentials), `Access-Control-Allow-Credentials` and
//!   `Access-Control-Expose-Headers`. A request from another origin goes on too: the browser
//!   keeps its response from the page, which is what CORS protects.
//! * Every response but a preflight's gets `Vary: Origin` appended (an upstream's `Vary` is
//!   kept), also to requests without `Origin`, which otherwise pass untouched: the answer
//!   depends on the origin, so a cache must not give one origin's answer to another.

mod origin;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{request, response, Method, StatusCode};
use serde::Deserialize;
use strait_http::registry::{typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Plugin, PluginError, Reason, RequestCtx};

use self::origin::Origins;

/// Kong's priority for `cors`: before authentication, so preflights need no credentials.
pub const PRIORITY: i32 = 2000;

/// The preflight's question about private network access (Private Network Access draft).
const REQUEST_PRIVATE_NETWORK: HeaderName = HeaderName::from_static("access-control-request-private-network");
/// The answer to [`REQUEST_PRIVATE_NETWORK`].
const ALLOW_PRIVATE_NETWORK: HeaderName = HeaderName::from_static("access-control-allow-private-network");

// === config ===

/// The `config:` block of the `cors` filter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed: `*` (alone), origins (`https://app.example.com`), or `~` and a regular
    /// expression the whole `Origin` must match.
    pub origins: Vec<String>,
    /// Methods a preflight may ask for (`Access-Control-Allow-Methods`).
    pub methods: Vec<String>,
    /// Request headers a preflight may ask for; empty echoes what it asks.
    pub headers: Vec<String>,
    /// Response headers the page may read (`Access-Control-Expose-Headers`).
    pub exposed_headers: Vec<String>,
    /// Allow credentials (`Access-Control-Allow-Credentials: true`).
    pub credentials: bool,
    /// How long, in seconds, a browser may keep a preflight's answer (`Access-Control-Max-Age`).
    pub max_age: Option<u64>,
    /// Pass preflights to the upstream instead of answering them.
    pub preflight_continue: bool,
    /// Answer `Access-Control-Request-Private-Network: true` with `Access-Control-Allow-Private-Network: true`.
    pub private_network: bool,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            origins: vec!["*".to_owned()],
            methods: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
                .map(String::from)
                .to_vec(),
            headers: Vec::new(),
            exposed_headers: Vec::new(),
            credentials: false,
            max_age: None,
            preflight_continue: false,
            private_network: false,
        }
    }
}

// === compiled policy ===

/// A validated configuration, shared by every request of one configured filter.
#[derive(Debug)]
struct Policy {
    origins: Origins,
    methods: Vec<Method>,
    /// `Access-Control-Allow-Methods`.
    allow_methods: HeaderValue,
    /// The allowed request headers and their `Access-Control-Allow-Headers`; `None` echoes.
    headers: Option<(Vec<HeaderName>, HeaderValue)>,
    /// `Access-Control-Expose-Headers`, when there are any.
    exposed_headers: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
    preflight_continue: bool,
    private_network: bool,
}

impl Policy {
    /// Checks `config`; errors name the offending field.
    fn compile(config: &CorsConfig) -> Result<Policy, PluginError> {
        let origins = Origins::compile(&config.origins).map_err(|(i, message)| {
            PluginError::at(
                if config.origins.is_empty() { "origins".to_owned() } else { format!("origins[{i}]") },
                message,
            )
        })?;
        if config.methods.is_empty() {
            return Err(PluginError::at("methods", "list at least one method"));
        }
        let methods = config
            .methods
            .iter()
            .enumerate()
            .map(|(i, m)| match Method::from_bytes(m.as_bytes()) {
                Ok(method) if m != "*" => Ok(method),
                _ => Err(PluginError::at(format!("methods[{i}]"), format!("`{m}` is not a method name"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let names = header_names("headers", &config.headers)?;
        let headers = (!names.is_empty()).then(|| {
            let value = joined(&names);
            (names, value)
        });
        let exposed = header_names("exposed_headers", &config.exposed_headers)?;
        Ok(Policy {
            origins,
            allow_methods: joined(&methods),
            methods,
            headers,
            exposed_headers: (!exposed.is_empty()).then(|| joined(&exposed)),
            credentials: config.credentials,
            max_age: config.max_age.map(HeaderValue::from),
            preflight_continue: config.preflight_continue,
            private_network: config.private_network,
        })
    }

    /// The `Access-Control-Allow-Origin` for an allowed `origin`: `*` only without credentials.
    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        match self.origins {
            Origins::Any if !self.credentials => HeaderValue::from_static("*"),
            _ => origin.clone(),
        }
    }

    /// The answer to a preflight: 204 with the `Access-Control-Allow-*` fields, or 403.
    fn preflight(&self, origin: &HeaderValue, request: &request::Parts) -> LocalResponse {
        let asked = &request.headers;
        let method = asked.get(ACCESS_CONTROL_REQUEST_METHOD).map(HeaderValue::as_bytes).unwrap_or_default();
        let method_allowed = self.methods.iter().any(|m| m.as_str().as_bytes() == method);
        if !self.origin_allowed(origin) || !method_allowed || !self.headers_allowed(asked) {
            return LocalResponse::for_reason(Reason::CorsRejected);
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin(origin));
        add_vary_origin(&mut headers);
        if self.credentials {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
        let allow_headers = match &self.headers {
            Some((_, value)) => Some(value.clone()),
            None => asked.get(ACCESS_CONTROL_REQUEST_HEADERS).cloned(),
        };
        if let Some(value) = allow_headers {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
        if let Some(max_age) = &self.max_age {
            headers.insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        let private = asked.get(REQUEST_PRIVATE_NETWORK).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        if self.private_network && private {
            headers.insert(ALLOW_PRIVATE_NETWORK, HeaderValue::from_static("true"));
        }
        LocalResponse { status: StatusCode::NO_CONTENT, headers, body: Bytes::new(), reason: None }
    }

    /// Whether the `Origin` value is one allowed.
    fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        origin.to_str().is_ok_and(|origin| self.origins.allows(origin))
    }

    /// Whether every header a preflight asks for (`Access-Control-Request-Headers`) is allowed.
    fn headers_allowed(&self, asked: &HeaderMap) -> bool {
        let Some((allowed, _)) = &self.headers else { return true };
        asked.get_all(ACCESS_CONTROL_REQUEST_HEADERS).iter().all(|value| {
            let Ok(value) = value.to_str() else { return false };
            value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .all(|name| allowed.iter().any(|allowed| allowed.as_str().eq_ignore_ascii_case(name)))
        })
    }

    /// Adds the fields of an actual request's response.
    fn decorate(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin(origin));
        if self.credentials {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        if let Some(exposed) = &self.exposed_headers {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
        }
    }
}

/// Validated header names of the list `field`.
fn header_names(field: &str, names: &[String]) -> Result<Vec<HeaderName>, PluginError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| match HeaderName::from_bytes(name.trim().as_bytes()) {
            Ok(parsed) if name.trim() != "*" => Ok(parsed),
            Ok(_) => Err(PluginError::at(format!("{field}[{i}]"), "`*` is not supported: list the header names")),
            Err(_) => Err(PluginError::at(format!("{field}[{i}]"), format!("`{name}` is not a header name"))),
        })
        .collect()
}

/// Names joined with `,`, as one field value.
fn joined<T: AsRef<str>>(names: &[T]) -> HeaderValue {
    let text = names.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(",");
    HeaderValue::from_str(&text).expect("tokens joined by commas are a valid header value")
}

/// Appends `Vary: Origin` unless a `Vary` field names it already or is `*`.
fn add_vary_origin(headers: &mut HeaderMap) {
    let listed = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case("origin") || item.trim() == "*");
    if !listed {
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
}

// === impl Filter ===

/// Factory of one configured `cors` filter.
#[derive(Debug)]
pub struct CorsFactory {
    policy: Arc<Policy>,
}

impl CorsFactory {
    /// Validates `config` into a factory.
    pub fn new(config: &CorsConfig) -> Result<CorsFactory, PluginError> {
        Ok(CorsFactory { policy: Arc::new(Policy::compile(config)?) })
    }
}

impl FilterFactory for CorsFactory {
    fn name(&self) -> &'static str {
        "cors"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS | Phases::RESPONSE_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(Cors { policy: self.policy.clone(), request: Seen::Nothing })
    }
}

/// What the request-header phase learned about one request.
#[derive(Debug)]
enum Seen {
    /// No request phase ran (a refused head), or the request has no `Origin`.
    Nothing,
    /// A request from an allowed origin: its `Origin` value.
    Allowed(HeaderValue),
    /// A request from an origin not allowed.
    Refused,
    /// A preflight: answered here, or passed to the upstream; its response is left alone.
    Preflight,
}

/// One request's `cors` filter.
struct Cors {
    policy: Arc<Policy>,
    request: Seen,
}

impl Filter for Cors {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, _ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        let mut origins = request.headers.get_all(ORIGIN).iter();
        let (Some(origin), None) = (origins.next(), origins.next()) else { return Phase::Ready(Flow::Continue) };
        let origin = origin.clone();
        if request.method == Method::OPTIONS && request.headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
            self.request = Seen::Preflight;
            if self.policy.preflight_continue {
                return Phase::Ready(Flow::Continue);
            }
            return Phase::Ready(Flow::respond(self.policy.preflight(&origin, request)));
        }
        self.request = if self.policy.origin_allowed(&origin) { Seen::Allowed(origin) } else { Seen::Refused };
        Phase::Ready(Flow::Continue)
    }

    fn response_headers<'a>(
        &'a mut self,
        response: &'a mut response::Parts,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, ()> {
        match &self.request {
            Seen::Preflight => {}
            Seen::Allowed(origin) => {
                self.policy.decorate(origin, &mut response.headers);
                add_vary_origin(&mut response.headers);
            }
            Seen::Nothing | Seen::Refused => add_vary_origin(&mut response.headers),
        }
        Phase::Ready(())
    }
}

/// The `cors` plugin.
pub fn cors_plugin() -> impl Plugin {
    typed("cors", |config: CorsConfig, _env: &BuildEnv<'_>| {
        Ok(Arc::new(CorsFactory::new(&config)?) as Arc<dyn FilterFactory>)
    })
}
