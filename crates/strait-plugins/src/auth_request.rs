//! Authorization by sub-request, as nginx `auth_request`: before the action, ask an auth
//! service (a configured cluster) about the request; 2xx lets it through, 401 and 403 answer
//! the client with that status, anything else (or no answer in time) is a 500.
//!
//! ```yaml
//! filters:
//!   - name: auth_request
//!     config: { cluster: auth, path: /check, copy_headers: [x-user] }
//! ```
//!
//! The auth request is a `GET` of `path` with the client's `authorization` and `cookie` (or
//! the headers listed in `forward_headers`), and `x-original-uri` / `x-original-method`
//! telling what is asked for. Headers named in `copy_headers` are copied from a 2xx answer
//! into the request the upstream receives (the authenticated user, say); the client's own
//! fields of those names are removed first, so they cannot be forged.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{request, Method, StatusCode};
use serde::Deserialize;
use strait_config::units::Dur;
use strait_http::registry::{typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Plugin, PluginError, Reason, RequestCtx};

/// Settings of an `auth_request` filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRequestConfig {
    /// The cluster that answers auth requests.
    pub cluster: String,
    /// The path asked (`/auth`); the query of the client's request is not passed on.
    pub path: String,
    /// Time allowed for the whole auth exchange.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Request headers passed to the auth service.
    #[serde(default = "default_forward")]
    pub forward_headers: Vec<String>,
    /// Headers of a 2xx answer copied into the request sent upstream.
    #[serde(default)]
    pub copy_headers: Vec<String>,
}

fn default_timeout() -> Dur {
    Dur::secs(5)
}

fn default_forward() -> Vec<String> {
    vec!["authorization".into(), "cookie".into()]
}

/// The compiled settings shared by a filter's instances.
#[derive(Debug)]
struct Settings {
    cluster: String,
    path: http::uri::PathAndQuery,
    timeout: Duration,
    forward: Vec<HeaderName>,
    copy: Vec<HeaderName>,
}

/// The `auth_request` plugin.
pub fn auth_request_plugin() -> impl Plugin {
    typed("auth_request", |config: AuthRequestConfig, env: &BuildEnv<'_>| {
        if !env.config.clusters.iter().any(|c| c.name == config.cluster) {
            return Err(PluginError::at("cluster", format!("unknown cluster `{}`", config.cluster)));
        }
        if !config.path.starts_with('/') {
            return Err(PluginError::at("path", "must start with `/`"));
        }
        let path = http::uri::PathAndQuery::try_from(config.path.as_str())
            .map_err(|_| PluginError::at("path", "not a valid path"))?;
        if config.timeout.0.is_zero() {
            return Err(PluginError::at("timeout", "must be greater than zero"));
        }
        let names = |field: &str, list: &[String]| -> Result<Vec<HeaderName>, PluginError> {
            list.iter()
                .enumerate()
                .map(|(i, n)| {
                    HeaderName::from_bytes(n.as_bytes())
                        .map_err(|_| PluginError::at(format!("{field}[{i}]"), format!("invalid header name `{n}`")))
                })
                .collect()
        };
        let settings = Settings {
            cluster: config.cluster,
            path,
            timeout: config.timeout.0,
            forward: names("forward_headers", &config.forward_headers)?,
            copy: names("copy_headers", &config.copy_headers)?,
        };
        Ok(Arc::new(AuthRequestFactory(Arc::new(settings))) as Arc<dyn FilterFactory>)
    })
}

/// Factory of one configured `auth_request` filter.
#[derive(Debug)]
struct AuthRequestFactory(Arc<Settings>);

impl FilterFactory for AuthRequestFactory {
    fn name(&self) -> &'static str {
        "auth_request"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(AuthRequest(self.0.clone()))
    }
}

/// One request's filter.
struct AuthRequest(Arc<Settings>);

impl Filter for AuthRequest {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        Phase::wait(async move { self.check(request, ctx).await })
    }
}

impl AuthRequest {
    /// Asks the auth service and decides.
    async fn check(&self, request: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        let settings = &self.0;
        for name in &settings.copy {
            request.headers.remove(name);
        }
        let Some(subrequests) = ctx.subrequests.clone() else {
            return Flow::respond(LocalResponse::for_reason(Reason::AuthUnavailable));
        };
        let mut ask = http::Request::new(Bytes::new());
        *ask.method_mut() = Method::GET;
        *ask.uri_mut() = http::Uri::from(settings.path.clone());
        let headers = ask.headers_mut();
        for name in &settings.forward {
            for value in request.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        if let Some(host) = request.headers.get(header::HOST) {
            headers.insert(header::HOST, host.clone());
        }
        if let Ok(uri) = HeaderValue::from_str(&request.uri.to_string()) {
            headers.insert(HeaderName::from_static("x-original-uri"), uri);
        }
        if let Ok(method) = HeaderValue::from_str(request.method.as_str()) {
            headers.insert(HeaderName::from_static("x-original-method"), method);
        }
        let answer = match subrequests.send(&settings.cluster, ask, settings.timeout).await {
            Ok(answer) => answer,
            Err(_) => return Flow::respond(LocalResponse::for_reason(Reason::AuthUnavailable)),
        };
        let status = answer.status();
        if status.is_success() {
            for name in &settings.copy {
                for value in answer.headers().get_all(name) {
                    request.headers.append(name.clone(), value.clone());
                }
            }
            return Flow::Continue;
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let mut denied = LocalResponse::for_reason(Reason::AuthDenied);
            denied.status = status;
            denied.body =
                Bytes::from(format!("{} {}: auth_denied\n", status.as_str(), status.canonical_reason().unwrap_or("")));
            if let Some(challenge) = answer.headers().get(header::WWW_AUTHENTICATE) {
                denied.headers.insert(header::WWW_AUTHENTICATE, challenge.clone());
            }
            return Flow::respond(denied);
        }
        Flow::respond(LocalResponse::for_reason(Reason::AuthUnavailable))
    }
}
