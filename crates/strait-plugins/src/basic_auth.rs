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
//! constant time); checking them, and remembering the credentials verified lately so that a
//! keep-alive client pays bcrypt once, is [`crate::passwords`]'s work, shared with `proxy_auth`.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use http::header::{HeaderMap, AUTHORIZATION};
use http::request;
use serde::Deserialize;
use strait_http::consumer::{Consumer, Credential};
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, Phase, Phases, Plugin, PluginError, RequestCtx};

use crate::consumer_auth::{anonymous_consumer, challenge, Unauthenticated};
pub use crate::passwords::VERIFIED_CAPACITY;
use crate::passwords::{basic_credentials, PasswordCheck, StoredPassword, INVALID, NOT_BASIC};

/// Kong's priority of `basic-auth`: after `key_auth` (1250), before the access checks.
pub const BASIC_AUTH_PRIORITY: i32 = 1100;

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
    /// Checks passwords, remembering the bcrypt credentials verified lately.
    passwords: PasswordCheck,
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
        Ok(Settings {
            accounts,
            hide: config.hide_credentials,
            unauthenticated: Unauthenticated {
                challenge: challenge("Basic", &config.realm)?,
                anonymous: anonymous_consumer(config.anonymous.as_deref(), env)?,
            },
            passwords: PasswordCheck::new(),
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
        match self.passwords.matches(&account.password, &user, given) {
            Phase::Ready(matched) => Phase::Ready(self.decide(account, matched, request, ctx)),
            Phase::Wait(matching) => Phase::wait(async move {
                let matched = matching.await;
                self.decide(account, matched, request, ctx)
            }),
        }
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

/// The user name and password of the request's `Authorization: Basic` field, or why there
/// are none.
fn presented_credentials(headers: &HeaderMap) -> Result<(String, Vec<u8>), &'static str> {
    let mut fields = headers.get_all(AUTHORIZATION).iter();
    let field = match (fields.next(), fields.next()) {
        (None, _) => return Err(NOT_BASIC),
        (Some(field), None) => field.as_bytes(),
        (Some(_), Some(_)) => return Err(INVALID),
    };
    basic_credentials(field)
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
