//! The `jwt` filter's configuration, and its compilation into [`Settings`] at build time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use http::header::HeaderName;
use serde::Deserialize;
use strait_config::{header_edit_problems, HeaderEdits};
use strait_http::consumer::{Consumer, Credential};
use strait_http::registry::BuildEnv;
use strait_http::PluginError;

use super::cache::TokenCache;
use super::claims::ClaimRules;
use super::jwks::{JwksConfig, JwksSource};
use super::keys::VerifyingKey;
use super::refusal::realm_is_valid;
use super::source::TokenSources;
use crate::consumer_auth::anonymous_consumer;

/// Settings of a `jwt` filter (Kong's `jwt` plugin fields, plus `leeway`, `issuers`,
/// `audiences`, `required_claims`, `claims_to_headers` and `cache_size`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The claim whose value names the key (a credential's `key`); `kid` reads the header.
    #[serde(default = "default_key_claim_name")]
    pub key_claim_name: String,
    /// Registered claims that must be present (and are checked): `exp`, `nbf`.
    #[serde(default)]
    pub claims_to_verify: Vec<RegisteredClaim>,
    /// The longest a token may still be valid, in seconds (0: no limit; needs `exp` verified).
    #[serde(default)]
    pub maximum_expiration: u64,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    #[serde(default)]
    pub leeway: u64,
    /// Accepted `iss` values (empty: any).
    #[serde(default)]
    pub issuers: Vec<String>,
    /// Accepted `aud` values; the token's `aud` (a string or an array) must hold one.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Claims every token must carry.
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// Header fields searched for `Bearer <token>` or a bare token.
    #[serde(default = "default_header_names")]
    pub header_names: Vec<String>,
    /// Query parameters searched for a token.
    #[serde(default = "default_uri_param_names")]
    pub uri_param_names: Vec<String>,
    /// Cookies searched for a token.
    #[serde(default)]
    pub cookie_names: Vec<String>,
    /// The consumer (username) a request that fails to authenticate proceeds as.
    #[serde(default)]
    pub anonymous: Option<String>,
    /// The `realm` of the `WWW-Authenticate` challenge.
    #[serde(default)]
    pub realm: Option<String>,
    /// HS secrets are written in base64.
    #[serde(default)]
    pub secret_is_base64: bool,
    /// Authenticate CORS preflights (`OPTIONS`) too.
    #[serde(default = "enabled")]
    pub run_on_preflight: bool,
    /// Claim name -> header sent upstream with its value.
    #[serde(default)]
    pub claims_to_headers: BTreeMap<String, String>,
    /// Verified tokens remembered (0: none).
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
    /// Keys fetched from a JWKS endpoint, found by the token's `kid`.
    #[serde(default)]
    pub jwks: Option<JwksConfig>,
}

/// A registered claim `claims_to_verify` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegisteredClaim {
    /// Expiration time.
    Exp,
    /// Not before.
    Nbf,
}

fn default_key_claim_name() -> String {
    "iss".into()
}

fn default_header_names() -> Vec<String> {
    vec!["authorization".into()]
}

fn default_uri_param_names() -> Vec<String> {
    vec!["jwt".into()]
}

fn enabled() -> bool {
    true
}

/// The default `cache_size`.
pub const DEFAULT_CACHE_SIZE: usize = 4096;

fn default_cache_size() -> usize {
    DEFAULT_CACHE_SIZE
}

/// How a token names its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The `kid` header.
    KidHeader,
    /// A claim of the payload (`iss` by default).
    Claim(String),
}

/// A configured key and the consumer it identifies.
#[derive(Debug)]
pub struct KeyEntry {
    /// The key.
    pub key: Arc<VerifyingKey>,
    /// Its consumer, with the credential (`jwt`, the key's name).
    pub consumer: Consumer,
}

/// The compiled settings shared by a filter's instances.
#[derive(Debug)]
pub struct Settings {
    /// Every consumer's key, by name.
    pub keys: HashMap<String, KeyEntry>,
    /// How a token names its key.
    pub key_claim: KeyClaim,
    /// Where tokens are looked for.
    pub sources: TokenSources,
    /// The claim checks.
    pub rules: ClaimRules,
    /// Claim -> upstream header.
    pub claims_to_headers: Vec<(String, HeaderName)>,
    /// The stand-in consumer of failed authentications.
    pub anonymous: Option<Consumer>,
    /// The challenge's realm.
    pub realm: Option<String>,
    /// Whether `OPTIONS` requests are authenticated.
    pub run_on_preflight: bool,
    /// Verified tokens.
    pub cache: TokenCache,
    /// The JWKS source, if any.
    pub jwks: Option<JwksSource>,
}

impl JwtConfig {
    /// Checks the configuration and parses every consumer's JWT key.
    pub fn compile(self, env: &BuildEnv<'_>) -> Result<Settings, PluginError> {
        let mut keys = HashMap::new();
        for (c, consumer) in env.config.consumers.iter().enumerate() {
            for (j, credential) in consumer.credentials.jwt.iter().enumerate() {
                let key = VerifyingKey::from_credential(credential, self.secret_is_base64).map_err(|message| {
                    let at = format!("consumers[{c}].credentials.jwt[{j}]");
                    PluginError::at("", format!("{at} (consumer `{}`): {message}", consumer.username))
                })?;
                let credential_id = Credential { kind: "jwt", id: credential.key.as_str().into() };
                let entry =
                    KeyEntry { key: Arc::new(key), consumer: Consumer::from_config(consumer, Some(credential_id)) };
                keys.insert(credential.key.clone(), entry);
            }
        }
        if self.key_claim_name.is_empty() {
            return Err(PluginError::at("key_claim_name", "must not be empty"));
        }
        let key_claim =
            if self.key_claim_name == "kid" { KeyClaim::KidHeader } else { KeyClaim::Claim(self.key_claim_name) };
        let verifies = |claim| self.claims_to_verify.contains(&claim);
        if self.maximum_expiration > 0 && !verifies(RegisteredClaim::Exp) {
            return Err(PluginError::at("maximum_expiration", "needs `exp` in `claims_to_verify`"));
        }
        let anonymous = anonymous_consumer(self.anonymous.as_deref(), env)?;
        if let Some(realm) = &self.realm {
            if !realm_is_valid(realm) {
                return Err(PluginError::at("realm", "must be printable ASCII without `\"` or `\\`"));
            }
        }
        let sources = TokenSources {
            headers: header_names("header_names", &self.header_names)?,
            query: self.uri_param_names.clone(),
            cookies: self.cookie_names.clone(),
        };
        if sources.headers.is_empty() && sources.query.is_empty() && sources.cookies.is_empty() {
            return Err(PluginError::at("header_names", "no place to look for a token"));
        }
        let mut claims_to_headers = Vec::new();
        for (claim, header) in &self.claims_to_headers {
            let edits = HeaderEdits { set: [(header.clone(), "x".into())].into(), ..HeaderEdits::default() };
            if let Some((_, problem)) = header_edit_problems(&edits).into_iter().next() {
                return Err(PluginError::at(format!("claims_to_headers.{claim}"), problem));
            }
            let name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| PluginError::at(format!("claims_to_headers.{claim}"), "invalid header name"))?;
            claims_to_headers.push((claim.clone(), name));
        }
        let jwks = self.jwks.map(|jwks| JwksSource::compile(jwks, env)).transpose()?;
        let rules = ClaimRules {
            require_exp: verifies(RegisteredClaim::Exp),
            require_nbf: verifies(RegisteredClaim::Nbf),
            maximum_expiration: self.maximum_expiration,
            leeway: self.leeway,
            issuers: self.issuers,
            audiences: self.audiences,
            required: self.required_claims,
        };
        Ok(Settings {
            keys,
            key_claim,
            sources,
            rules,
            claims_to_headers,
            anonymous,
            realm: self.realm,
            run_on_preflight: self.run_on_preflight,
            cache: TokenCache::new(self.cache_size),
            jwks,
        })
    }
}

/// Header names of a list field, each error at its index.
fn header_names(field: &str, names: &[String]) -> Result<Vec<HeaderName>, PluginError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| PluginError::at(format!("{field}[{i}]"), format!("invalid header name `{name}`")))
        })
        .collect()
}
