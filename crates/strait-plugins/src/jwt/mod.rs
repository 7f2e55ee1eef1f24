//! JSON Web Token authentication, as Kong's `jwt` plugin: a token signed by one of a
//! consumer's keys identifies that consumer; anything else is answered 401.
//!
//! ```yaml
//! consumers:
//!   - username: alice
//!     credentials: { jwt: [ { key: https://idp.example, algorithm: RS256, rsa_public_key: "-----BEGIN PUBLIC KEY-----..." } ] }
//! filters:
//!   - name: jwt
//!     config: { claims_to_verify: [exp], audiences: [api], claims_to_headers: { sub: x-user } }
//! ```
//!
//! The key is the credential whose `key` equals the token's `iss` claim (`key_claim_name`),
//! or its `kid` header with `key_claim_name: kid`. The token must declare exactly that key's
//! algorithm (no `none`, no HMAC with a public key as secret), carry no `crit` header, and
//! verify; keys named by the token itself (`jwk`, `jku`, `x5u`, `x5c`) are never used. Then
//! its claims are checked (`claims`) and the consumer recorded with
//! [`strait_http::RequestCtx::identify`]; the claims stay in `ctx.token` as
//! [`VerifiedClaims`] for later filters. With `jwks:`, tokens may also be signed by the keys
//! of a JSON Web Key Set fetched from a cluster (`jwks`), found by their `kid`.

mod cache;
mod claims;
mod config;
mod jwk;
mod jwks;
mod keys;
mod refusal;
mod source;
mod token;

#[cfg(test)]
mod test_keys;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::header::HeaderValue;
use http::{request, Method};
use serde_json::Value;
use strait_http::consumer::Credential;
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, Phase, Phases, Plugin, RequestCtx};

pub use config::{JwtConfig, RegisteredClaim, DEFAULT_CACHE_SIZE};
pub use jwks::JwksConfig;

use cache::Verified;
use config::{KeyClaim, Settings};
use refusal::Refusal;

/// Kong's priority of its `jwt` plugin: after `cors` (2000), before `key_auth` (1250) and `acl` (950).
pub const PRIORITY: i32 = 1450;

/// Tokens longer than this are verified every time rather than cached (their claims could
/// make a full cache large).
const MAX_CACHED_TOKEN_BYTES: usize = 8192;

/// The claims of the request's verified token, in `ctx.token` for later filters.
pub use strait_http::consumer::VerifiedToken as VerifiedClaims;

/// The `jwt` plugin, at Kong's priority.
pub fn jwt_plugin() -> impl Plugin {
    let plugin = typed("jwt", |config: JwtConfig, env: &BuildEnv<'_>| {
        Ok(Arc::new(JwtFactory(Arc::new(config.compile(env)?))) as Arc<dyn FilterFactory>)
    });
    prioritized(plugin, PRIORITY)
}

/// Factory of one configured `jwt` filter; its instances share keys and cache.
#[derive(Debug)]
struct JwtFactory(Arc<Settings>);

impl FilterFactory for JwtFactory {
    fn name(&self) -> &'static str {
        "jwt"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(JwtFilter(self.0.clone()))
    }
}

/// One request's filter.
struct JwtFilter(Arc<Settings>);

impl Filter for JwtFilter {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        let now = ctx.unix_time().as_secs_f64();
        match self.0.authenticate_request(request, ctx, now, true) {
            Ok(flow) => Phase::Ready(flow),
            Err(FetchKeys) => Phase::wait(async move {
                let settings = &self.0;
                if let (Some(jwks), Some(subrequests)) = (&settings.jwks, ctx.subrequests.clone()) {
                    if jwks.fetch(&*subrequests).await.is_ok() {
                        settings.cache.clear();
                    }
                }
                // The keys took a while to come: the token is checked at the time they came.
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
                let flow = settings.authenticate_request(request, ctx, now, false);
                flow.unwrap_or_else(|FetchKeys| Flow::respond(Refusal::UnknownKey.response(settings.realm.as_deref())))
            }),
        }
    }
}

/// The token names a JWKS key that is not known yet, and the set may be fetched now.
#[derive(Debug, PartialEq, Eq)]
struct FetchKeys;

/// Why a verification did not conclude: a refusal, or keys to fetch first.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Refused(Refusal),
    Fetch(FetchKeys),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        Failure::Refused(refusal)
    }
}

impl Settings {
    /// Authenticates one request at time `now`: identifies its consumer, or answers 401 (or
    /// goes on as the anonymous consumer). With `may_fetch`, a token of a JWKS key not known
    /// yet asks for the set to be fetched first (and nothing about the request has changed).
    fn authenticate_request(
        &self,
        request: &mut request::Parts,
        ctx: &mut RequestCtx,
        now: f64,
        may_fetch: bool,
    ) -> Result<Flow, FetchKeys> {
        for (_, header) in &self.claims_to_headers {
            request.headers.remove(header);
        }
        if !self.run_on_preflight && request.method == Method::OPTIONS {
            return Ok(Flow::Continue);
        }
        let already_authenticated = ctx.consumer.as_ref().is_some_and(|c| c.credential.is_some());
        if self.anonymous.is_some() && already_authenticated {
            return Ok(Flow::Continue);
        }
        let outcome = match self.sources.find(request) {
            Ok(Some(token)) => match self.verify(&token, now, may_fetch) {
                Err(Failure::Fetch(fetch)) => return Err(fetch),
                Err(Failure::Refused(refusal)) => Err(refusal),
                Ok(verified) => Ok(verified),
            },
            Ok(None) => Err(Refusal::NoToken),
            Err(refusal) => Err(refusal),
        };
        Ok(match outcome {
            Ok(verified) => {
                for (claim, header) in &self.claims_to_headers {
                    if let Some(value) = verified.claims.claims.get(claim).and_then(header_value) {
                        request.headers.insert(header.clone(), value);
                    }
                }
                if let Some(consumer) = &verified.consumer {
                    ctx.identify(&mut request.headers, consumer.clone(), false);
                }
                ctx.token = Some(verified.claims.clone());
                Flow::Continue
            }
            Err(_) if self.anonymous.is_some() => {
                let anonymous = self.anonymous.clone().expect("checked");
                ctx.identify(&mut request.headers, anonymous, true);
                Flow::Continue
            }
            Err(refusal) => Flow::respond(refusal.response(self.realm.as_deref())),
        })
    }

    /// Verifies `token` (or finds it verified in the cache) and checks its claims at `now`.
    fn verify(&self, token: &[u8], now: f64, may_fetch: bool) -> Result<Arc<Verified>, Failure> {
        if let Some(verified) = self.cache.get(token) {
            self.rules.check_times(verified.times, now)?;
            return Ok(verified);
        }
        let text = std::str::from_utf8(token).map_err(|_| Refusal::Malformed)?;
        let parsed = token::parse(text)?;
        let key_name = match &self.key_claim {
            KeyClaim::KidHeader => parsed.kid.as_deref(),
            KeyClaim::Claim(name) => parsed.claims.get(name).and_then(Value::as_str),
        };
        let configured = key_name.and_then(|name| self.keys.get(name));
        let (key, consumer) = match (configured, &self.jwks, parsed.kid.as_deref()) {
            (Some(entry), _, _) => (entry.key.clone(), Some(entry.consumer.clone())),
            (None, Some(jwks), Some(kid)) => {
                let found = jwks.key(kid);
                if may_fetch && jwks.claim_fetch(found.is_some(), Instant::now()) {
                    return Err(Failure::Fetch(FetchKeys));
                }
                let consumer = jwks
                    .consumer
                    .clone()
                    .map(|consumer| consumer.with_credential(Some(Credential { kind: "jwt", id: kid.into() })));
                (found.ok_or(Refusal::UnknownKey)?, consumer)
            }
            (None, _, _) if key_name.is_none() => return Err(Refusal::NoKeyClaim(self.key_claim_label()).into()),
            (None, _, _) => return Err(Refusal::UnknownKey.into()),
        };
        if parsed.algorithm != key.algorithm {
            return Err(Refusal::AlgorithmMismatch.into());
        }
        if !key.verify(parsed.signing_input.as_bytes(), &parsed.signature) {
            return Err(Refusal::BadSignature.into());
        }
        let times = self.rules.check(&parsed.claims)?;
        self.rules.check_times(times, now)?;
        let claims = VerifiedClaims { key: key.key.clone(), claims: Arc::new(parsed.claims) };
        let verified = Arc::new(Verified { consumer, claims, times });
        if token.len() <= MAX_CACHED_TOKEN_BYTES {
            self.cache.insert(token, verified.clone());
        }
        Ok(verified)
    }

    /// How the key is named, for error descriptions: `iss claim`, `kid header`.
    fn key_claim_label(&self) -> String {
        match &self.key_claim {
            KeyClaim::KidHeader => "kid header".into(),
            KeyClaim::Claim(name) => format!("{name} claim"),
        }
    }
}

/// A claim as a header value: strings as they are, string arrays comma-separated, other
/// values as compact JSON; `None` when the text cannot be a header value.
fn header_value(claim: &Value) -> Option<HeaderValue> {
    let text = match claim {
        Value::String(text) => text.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
        }
        Value::Null => return None,
        other => other.to_string(),
    };
    HeaderValue::from_str(&text).ok()
}
