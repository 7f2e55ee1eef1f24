//! Keys from a JWKS endpoint (`jwks:`), fetched through a sub-request to a configured
//! cluster and remembered: fetched on first use, again when a token names an unknown `kid`
//! or the set is older than `max_age`, and never more than once per `refresh`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method};
use serde::Deserialize;
use strait_config::units::Dur;
use strait_http::consumer::Consumer;
use strait_http::registry::BuildEnv;
use strait_http::{PluginError, Subrequests};

use super::jwk::parse_key_set;
use super::keys::VerifyingKey;

/// Where the key set is fetched, and how often.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksConfig {
    /// The cluster serving the key set.
    pub cluster: String,
    /// Its path (`/.well-known/jwks.json`).
    pub path: String,
    /// The shortest time between two fetches (an unknown `kid` waits for the next window).
    #[serde(default = "default_refresh")]
    pub refresh: Dur,
    /// A set older than this is fetched again before use, so removed keys stop verifying.
    #[serde(default = "default_max_age")]
    pub max_age: Dur,
    /// Time allowed for one fetch.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// The consumer (username) tokens verified by these keys identify; none by default.
    #[serde(default)]
    pub consumer: Option<String>,
}

fn default_refresh() -> Dur {
    Dur::secs(60)
}

fn default_max_age() -> Dur {
    Dur::secs(3600)
}

fn default_timeout() -> Dur {
    Dur::secs(5)
}

/// A key set by `kid`.
type KeySet = Arc<HashMap<String, Arc<VerifyingKey>>>;

/// What is known of the remote set.
#[derive(Debug, Default)]
struct State {
    keys: KeySet,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

/// A configured JWKS source, shared by a filter's instances on every worker.
#[derive(Debug)]
pub struct JwksSource {
    cluster: String,
    path: http::uri::PathAndQuery,
    refresh: Duration,
    max_age: Duration,
    timeout: Duration,
    /// The consumer its tokens identify (without a credential: the `kid` is added per token).
    pub consumer: Option<Consumer>,
    state: Mutex<State>,
}

impl JwksSource {
    /// Checks the `jwks:` block against the configuration.
    pub fn compile(config: JwksConfig, env: &BuildEnv<'_>) -> Result<JwksSource, PluginError> {
        if !env.config.clusters.iter().any(|c| c.name == config.cluster) {
            return Err(PluginError::at("jwks.cluster", format!("unknown cluster `{}`", config.cluster)));
        }
        let path = config
            .path
            .starts_with('/')
            .then(|| http::uri::PathAndQuery::try_from(config.path.as_str()).ok())
            .flatten()
            .ok_or_else(|| PluginError::at("jwks.path", "must be a path starting with `/`"))?;
        for (field, value) in [("refresh", config.refresh), ("max_age", config.max_age), ("timeout", config.timeout)] {
            if value.0.is_zero() {
                return Err(PluginError::at(format!("jwks.{field}"), "must be greater than zero"));
            }
        }
        let consumer = match &config.consumer {
            None => None,
            Some(name) => {
                let spec = env.config.consumers.iter().find(|c| &c.username == name);
                let spec =
                    spec.ok_or_else(|| PluginError::at("jwks.consumer", format!("unknown consumer `{name}`")))?;
                Some(Consumer::from_config(spec, None))
            }
        };
        Ok(JwksSource {
            cluster: config.cluster,
            path,
            refresh: config.refresh.0,
            max_age: config.max_age.0,
            timeout: config.timeout.0,
            consumer,
            state: Mutex::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The key named `kid`, from the last fetched set.
    pub fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.state().keys.get(kid).cloned()
    }

    /// Whether the caller should fetch the set now, at `now`: it lacks the token's key (or is
    /// older than `max_age`, or was never fetched) and no fetch started within `refresh`. A
    /// `true` answer claims the fetch, so concurrent requests do not all fetch.
    pub fn claim_fetch(&self, key_known: bool, now: Instant) -> bool {
        let mut state = self.state();
        let stale = state.fetched.is_none_or(|at| now.saturating_duration_since(at) >= self.max_age);
        let window_open = state.attempted.is_none_or(|at| now.saturating_duration_since(at) >= self.refresh);
        if window_open && (stale || !key_known) {
            state.attempted = Some(now);
            return true;
        }
        false
    }

    /// Fetches the set and keeps it if it reads; a failure keeps the previous set.
    pub async fn fetch(&self, subrequests: &dyn Subrequests) -> Result<(), String> {
        let mut request = http::Request::new(Bytes::new());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = http::Uri::from(self.path.clone());
        request.headers_mut().insert(header::ACCEPT, header::HeaderValue::from_static("application/json"));
        let answer = subrequests.send(&self.cluster, request, self.timeout).await.map_err(|r| r.code().to_string())?;
        if !answer.status().is_success() {
            return Err(format!("status {}", answer.status()));
        }
        let keys = parse_key_set(answer.body())?;
        self.store(keys, Instant::now());
        Ok(())
    }

    /// Keeps `keys` as the set fetched at `now`.
    pub(super) fn store(&self, keys: HashMap<String, Arc<VerifyingKey>>, now: Instant) {
        let mut state = self.state();
        state.keys = Arc::new(keys);
        state.fetched = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_config::Config;

    fn source(config: serde_json::Value) -> Result<JwksSource, PluginError> {
        let mut env_config = Config::default();
        env_config.clusters.push(
            serde_json::from_value(serde_json::json!({ "name": "idp", "endpoints": [{ "address": "127.0.0.1:1" }] }))
                .unwrap(),
        );
        let config: JwksConfig = serde_json::from_value(config).unwrap();
        JwksSource::compile(config, &BuildEnv { config: &env_config })
    }

    #[test]
    fn fetches_happen_on_first_use_unknown_kids_and_age_at_most_once_per_refresh() {
        let jwks =
            source(serde_json::json!({ "cluster": "idp", "path": "/jwks", "refresh": "10s", "max_age": "100s" }))
                .unwrap();
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert!(jwks.claim_fetch(true, at(0)), "never fetched");
        assert!(!jwks.claim_fetch(false, at(1)), "a fetch is under way");
        jwks.store(HashMap::new(), at(1));
        assert!(!jwks.claim_fetch(false, at(9)), "within refresh");
        assert!(jwks.claim_fetch(false, at(10)), "unknown kid after refresh");
        jwks.store(HashMap::new(), at(10));
        assert!(!jwks.claim_fetch(true, at(50)), "known kid, fresh set");
        assert!(jwks.claim_fetch(true, at(110)), "set older than max_age");
    }

    #[test]
    fn the_block_is_checked() {
        assert_eq!(source(serde_json::json!({ "cluster": "nope", "path": "/j" })).unwrap_err().path, "jwks.cluster");
        assert_eq!(source(serde_json::json!({ "cluster": "idp", "path": "j" })).unwrap_err().path, "jwks.path");
        let zero = serde_json::json!({ "cluster": "idp", "path": "/j", "refresh": "0s" });
        assert_eq!(source(zero).unwrap_err().path, "jwks.refresh");
        let nobody = serde_json::json!({ "cluster": "idp", "path": "/j", "consumer": "nobody" });
        assert_eq!(source(nobody).unwrap_err().path, "jwks.consumer");
    }
}
