//! HTTP Basic authentication (RFC 7617), as Kong's `basic-auth`: `Authorization: Basic` with a
//! user name and password of `consumers[].credentials.basic_auth`, and the request goes on as
//! that user's consumer.
//!
//! ```yaml
//! filters:
//!   - name: basic_auth
//!     config: { realm: admin, hide_credentials: true }
//! ```
//!
//! Passwords are bcrypt hashes (`htpasswd -B`) or plain text (compared as SHA-256 digests in
//! constant time). bcrypt is slow on purpose, so it runs on a blocking thread, and each filter
//! remembers the credentials it verified lately (see [`verified`]): a keep-alive client pays
//! bcrypt once, not on every request.

mod password;
#[cfg(test)]
mod tests;
mod verified;

use std::collections::HashMap;
use std::sync::Arc;

use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use http::header::{HeaderMap, AUTHORIZATION};
use http::request;
use serde::Deserialize;
use strait_http::consumer::{Consumer, Credential};
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, Phase, Phases, Plugin, PluginError, RequestCtx};
use tokio::sync::Semaphore;

use self::password::{bcrypt_matches, StoredPassword};
use self::verified::Verified;
use crate::consumer_auth::{anonymous_consumer, challenge, Unauthenticated};

/// Kong's priority of `basic-auth`: after `key_auth` (1250), before the access checks.
pub const BASIC_AUTH_PRIORITY: i32 = 1100;

/// How many verified credentials each filter remembers.
pub const VERIFIED_CAPACITY: usize = 1024;

/// Settings of a `basic_auth` filter (Kong's fields and defaults).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// Whether the `Authorization` field is removed before the upstream sees it.
    #[serde(default)]
    pub hide_credentials: bool,
    /// A consumer's username: requests without valid credentials go on as that consumer
    /// instead of being refused.
    #[serde(default)]
    pub anonymous: Option<String>,
    /// The realm of the `WWW-Authenticate: Basic realm="..."` challenge.
    #[serde(default = "default_realm")]
    pub realm: String,
}

fn default_realm() -> String {
    "strait".into()
}

/// A user who may sign in: the consumer it identifies, and its password.
#[derive(Debug)]
struct Account {
    consumer: Consumer,
    password: StoredPassword,
}

/// The compiled settings shared by a filter's instances.
#[derive(Debug)]
struct Settings {
    /// Every basic-auth user, by name.
    accounts: HashMap<String, Account>,
    hide: bool,
    unauthenticated: Unauthenticated,
    /// Credentials whose bcrypt check succeeded lately.
    verified: Verified,
    /// Bounds the bcrypt checks running at once, so a flood of wrong passwords cannot occupy
    /// more threads than the machine has cores.
    bcrypt_slots: Semaphore,
}

/// The `basic_auth` plugin.
pub fn basic_auth_plugin() -> impl Plugin {
    prioritized(
        typed("basic_auth", |config: BasicAuthConfig, env: &BuildEnv<'_>| {
            Ok(Arc::new(BasicAuthFactory(Arc::new(Settings::compile(config, env)?))) as Arc<dyn FilterFactory>)
        }),
        BASIC_AUTH_PRIORITY,
    )
}

impl Settings {
    /// Checks `config` and reads every consumer's users and passwords.
    fn compile(config: BasicAuthConfig, env: &BuildEnv<'_>) -> Result<Settings, PluginError> {
        let mut accounts = HashMap::new();
        for (position, spec) in env.config.consumers.iter().enumerate() {
            for (index, user) in spec.credentials.basic_auth.iter().enumerate() {
                let path = format!("consumers[{position}].credentials.basic_auth[{index}]");
                if user.username.contains(':') {
                    let message = format!("{path}.username contains `:`, which Basic authentication cannot send");
                    return Err(PluginError::at("", message));
                }
                let password = StoredPassword::parse(&user.password, &path)?;
                let credential = Credential { kind: "basic_auth", id: user.username.as_str().into() };
                let consumer = Consumer::from_config(spec, Some(credential));
                accounts.insert(user.username.clone(), Account { consumer, password });
            }
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Settings {
            accounts,
            hide: config.hide_credentials,
            unauthenticated: Unauthenticated {
                challenge: challenge("Basic", &config.realm)?,
                anonymous: anonymous_consumer(config.anonymous.as_deref(), env)?,
            },
            verified: Verified::new(VERIFIED_CAPACITY),
            bcrypt_slots: Semaphore::new(cores),
        })
    }

    /// Authenticates the request, or refuses it (or lets it go on as the anonymous consumer);
    /// waits only when a bcrypt hash has to be checked.
    fn check<'a>(&'a self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        if self.unauthenticated.already_authenticated(ctx) {
            return Phase::Ready(Flow::Continue);
        }
        let presented = presented_credentials(&request.headers);
        if self.hide {
            request.headers.remove(AUTHORIZATION);
        }
        let (user, given) = match presented {
            Ok(credentials) => credentials,
            Err(why) => return Phase::Ready(self.unauthenticated.refuse(&mut request.headers, ctx, why)),
        };
        let Some(account) = self.accounts.get(&user) else {
            return Phase::Ready(self.unauthenticated.refuse(&mut request.headers, ctx, INVALID));
        };
        let StoredPassword::Bcrypt(hash) = &account.password else {
            return Phase::Ready(self.decide(account, account.password.plain_matches(&given), request, ctx));
        };
        let entry = Verified::entry(hash, &user, &given);
        if self.verified.contains(&entry) {
            return Phase::Ready(self.decide(account, true, request, ctx));
        }
        Phase::wait(async move {
            let matches = bcrypt_matches(given, hash.clone(), &self.bcrypt_slots).await;
            if matches {
                self.verified.insert(entry);
            }
            self.decide(account, matches, request, ctx)
        })
    }

    /// Identifies `account`'s consumer if its password matched; refuses otherwise.
    fn decide(&self, account: &Account, matched: bool, request: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        if !matched {
            return self.unauthenticated.refuse(&mut request.headers, ctx, INVALID);
        }
        ctx.identify(&mut request.headers, account.consumer.clone(), false);
        Flow::Continue
    }
}

/// Why credentials that were sent are refused.
const INVALID: &str = "invalid authentication credentials";

/// Base64 as RFC 7617 uses it, also accepting a value whose `=` padding was left out.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The user name and password of the request's `Authorization: Basic` field, or why there
/// are none.
fn presented_credentials(headers: &HeaderMap) -> Result<(String, Vec<u8>), &'static str> {
    let mut fields = headers.get_all(AUTHORIZATION).iter();
    let field = match (fields.next(), fields.next()) {
        (None, _) => return Err("no basic-auth credentials found in request"),
        (Some(field), None) => field.as_bytes(),
        (Some(_), Some(_)) => return Err(INVALID),
    };
    let scheme_end = field.iter().position(|&b| b == b' ').ok_or(INVALID)?;
    if !field[..scheme_end].eq_ignore_ascii_case(b"basic") {
        return Err("no basic-auth credentials found in request");
    }
    let encoded = field[scheme_end..].trim_ascii();
    let decoded = BASE64.decode(encoded).map_err(|_| INVALID)?;
    let colon = decoded.iter().position(|&b| b == b':').ok_or(INVALID)?;
    let user = std::str::from_utf8(&decoded[..colon]).map_err(|_| INVALID)?.to_owned();
    Ok((user, decoded[colon + 1..].to_vec()))
}

/// Factory of one configured `basic_auth` filter.
#[derive(Debug)]
struct BasicAuthFactory(Arc<Settings>);

impl FilterFactory for BasicAuthFactory {
    fn name(&self) -> &'static str {
        "basic_auth"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(BasicAuth(self.0.clone()))
    }
}

/// One request's filter.
struct BasicAuth(Arc<Settings>);

impl Filter for BasicAuth {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        self.0.check(request, ctx)
    }
}
