//! API-key authentication, as Kong's `key-auth`: the client sends a key configured in
//! `consumers[].credentials.key_auth`, in a header or a query parameter, and the request goes
//! on as that key's consumer.
//!
//! ```yaml
//! filters:
//!   - name: key_auth
//!     config: { key_names: [apikey, x-api-key], hide_credentials: true }
//! ```
//!
//! Keys are looked up by their SHA-256, so no comparison runs over the key itself and the time
//! a lookup takes tells nothing about how close a guess was. The consumer is recorded with
//! [`strait_http::RequestCtx::identify`]; its credential id is `<username>#<index>` (the key's
//! position in the consumer's list), never the key.

mod query;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use http::header::HeaderName;
use http::uri::PathAndQuery;
use http::{request, Uri};
use serde::Deserialize;
use strait_http::consumer::{Consumer, Credential};
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, Phase, Phases, Plugin, PluginError, RequestCtx};

use crate::consumer_auth::{anonymous_consumer, challenge, sha256, SecretDigest, Unauthenticated};

/// Kong's priority of `key-auth`: it runs before `basic_auth` (1100) and the access checks.
pub const KEY_AUTH_PRIORITY: i32 = 1250;

/// Settings of a `key_auth` filter (Kong's fields and defaults).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAuthConfig {
    /// Header and query parameter names a key is looked for under, in order.
    #[serde(default = "default_key_names")]
    pub key_names: Vec<String>,
    /// Whether keys are looked for in request headers.
    #[serde(default = "yes")]
    pub key_in_header: bool,
    /// Whether keys are looked for in the query string (after the headers).
    #[serde(default = "yes")]
    pub key_in_query: bool,
    /// Whether the key's header and query parameter are removed before the upstream sees them.
    #[serde(default)]
    pub hide_credentials: bool,
    /// A consumer's username: requests without a valid key go on as that consumer instead of
    /// being refused.
    #[serde(default)]
    pub anonymous: Option<String>,
    /// The realm of the `WWW-Authenticate: Key realm="..."` challenge.
    #[serde(default = "default_realm")]
    pub realm: String,
}

fn default_key_names() -> Vec<String> {
    vec!["apikey".into()]
}

fn yes() -> bool {
    true
}

fn default_realm() -> String {
    "strait".into()
}

/// The compiled settings shared by a filter's instances.
#[derive(Debug)]
struct Settings {
    /// Each key name as a header name and as the query parameter name it was written as.
    names: Vec<(HeaderName, String)>,
    in_header: bool,
    in_query: bool,
    hide: bool,
    /// The consumer of each key, by the key's SHA-256.
    keys: HashMap<SecretDigest, Consumer>,
    unauthenticated: Unauthenticated,
}

/// The `key_auth` plugin.
pub fn key_auth_plugin() -> impl Plugin {
    prioritized(
        typed("key_auth", |config: KeyAuthConfig, env: &BuildEnv<'_>| {
            Ok(Arc::new(KeyAuthFactory(Arc::new(Settings::compile(config, env)?))) as Arc<dyn FilterFactory>)
        }),
        KEY_AUTH_PRIORITY,
    )
}

impl Settings {
    /// Checks `config` and indexes every consumer's keys.
    fn compile(config: KeyAuthConfig, env: &BuildEnv<'_>) -> Result<Settings, PluginError> {
        if !config.key_in_header && !config.key_in_query {
            return Err(PluginError::at("key_in_query", "no key could be found: `key_in_header` is false too"));
        }
        if config.key_names.is_empty() {
            return Err(PluginError::at("key_names", "must name at least one header or query parameter"));
        }
        let mut names: Vec<(HeaderName, String)> = Vec::with_capacity(config.key_names.len());
        for (i, name) in config.key_names.iter().enumerate() {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                PluginError::at(format!("key_names[{i}]"), format!("`{name}` is not a valid header name"))
            })?;
            if names.iter().any(|(seen, _)| *seen == header) {
                return Err(PluginError::at(format!("key_names[{i}]"), format!("`{name}` is listed twice")));
            }
            names.push((header, name.clone()));
        }
        let mut keys = HashMap::new();
        for spec in &env.config.consumers {
            for (index, credential) in spec.credentials.key_auth.iter().enumerate() {
                let id = format!("{}#{index}", spec.username);
                let consumer = Consumer::from_config(spec, Some(Credential { kind: "key_auth", id: id.into() }));
                keys.insert(sha256(&[credential.key.as_bytes()]), consumer);
            }
        }
        Ok(Settings {
            names,
            in_header: config.key_in_header,
            in_query: config.key_in_query,
            hide: config.hide_credentials,
            keys,
            unauthenticated: Unauthenticated {
                challenge: challenge("Key", &config.realm)?,
                anonymous: anonymous_consumer(config.anonymous.as_deref(), env)?,
            },
        })
    }

    /// Authenticates the request, or refuses it (or lets it go on as the anonymous consumer).
    fn check(&self, request: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        if self.unauthenticated.already_authenticated(ctx) {
            return Flow::Continue;
        }
        let why = match self.find_key(request) {
            Presented::Key(digest) => match self.keys.get(&digest) {
                Some(consumer) => {
                    ctx.identify(&mut request.headers, consumer.clone(), false);
                    return Flow::Continue;
                }
                None => "invalid authentication credentials",
            },
            Presented::Duplicate => "duplicate API key found",
            Presented::Nothing => "no API key found in request",
        };
        self.unauthenticated.refuse(&mut request.headers, ctx, why)
    }

    /// The first key name the request has a key under (its header first, then its query
    /// parameter), removing that header and parameter when credentials are hidden.
    fn find_key(&self, request: &mut request::Parts) -> Presented {
        for (header, query_name) in &self.names {
            let mut presented = Presented::Nothing;
            if self.in_header {
                let mut values = request.headers.get_all(header).iter();
                presented = match (values.next(), values.next()) {
                    (None, _) => Presented::Nothing,
                    (Some(value), None) => Presented::Key(sha256(&[value.as_bytes()])),
                    (Some(_), Some(_)) => Presented::Duplicate,
                };
            }
            if self.in_query && matches!(presented, Presented::Nothing) {
                let mut values = request.uri.query().into_iter().flat_map(|q| query::values(q, query_name));
                presented = match (values.next(), values.next()) {
                    (None, _) => Presented::Nothing,
                    (Some(value), None) => Presented::Key(sha256(&[&query::decode(value)])),
                    (Some(_), Some(_)) => Presented::Duplicate,
                };
            }
            if matches!(presented, Presented::Nothing) {
                continue;
            }
            if self.hide {
                request.headers.remove(header);
                remove_query_parameter(&mut request.uri, query_name);
            }
            return presented;
        }
        Presented::Nothing
    }
}

/// What a request carries under the first key name it has one under.
enum Presented {
    /// No key under any name.
    Nothing,
    /// One key, as its SHA-256.
    Key(SecretDigest),
    /// More than one value under the same name: refused, as Kong does.
    Duplicate,
}

/// Removes the parameters named `name` from the query of `uri`, keeping the rest as written.
fn remove_query_parameter(uri: &mut Uri, name: &str) {
    let Some(query) = uri.query() else { return };
    let path_and_query = match query::without(query, name) {
        Some(rest) => format!("{}?{rest}", uri.path()),
        None => uri.path().to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = PathAndQuery::try_from(path_and_query).ok();
    if let Ok(changed) = Uri::from_parts(parts) {
        *uri = changed;
    }
}

/// Factory of one configured `key_auth` filter.
#[derive(Debug)]
struct KeyAuthFactory(Arc<Settings>);

impl FilterFactory for KeyAuthFactory {
    fn name(&self) -> &'static str {
        "key_auth"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(KeyAuth(self.0.clone()))
    }
}

/// One request's filter.
struct KeyAuth(Arc<Settings>);

impl Filter for KeyAuth {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        Phase::Ready(self.0.check(request, ctx))
    }
}
