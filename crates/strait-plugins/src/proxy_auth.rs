//! Forward-proxy authentication (Squid `auth_param basic` with `basic_ncsa_auth`):
//! `Proxy-Authorization: Basic` checked against an htpasswd file of bcrypt hashes; the user
//! becomes the request's consumer, for `http_access` rules.
//!
//! ```yaml
//! filters:
//!   - name: proxy_auth
//!     config: { htpasswd: users.htpasswd, realm: office, groups: { staff: [alice] } }
//! ```
//!
//! Unlike `basic_auth`, the user is never told to the origin: no `x-consumer-*` field is set
//! (a forward proxy does not reveal its users), and `Proxy-Authorization` itself never leaves
//! the proxy (the HTTP/1 driver keeps it out of the headers, in [`ProxyAuthorization`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, PROXY_AUTHENTICATE};
use http::{request, Method};
use serde::Deserialize;
use strait_http::consumer::{Consumer, Credential};
use strait_http::context::ProxyAuthorization;
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Plugin, PluginError, Reason, RequestCtx};

use crate::consumer_auth::challenge;
use crate::passwords::{basic_credentials, htpasswd, PasswordCheck, StoredPassword, INVALID};

/// Before `http_access` (985), which decides by the user this filter identifies.
pub const PROXY_AUTH_PRIORITY: i32 = 1150;

/// Settings of a `proxy_auth` filter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyAuthConfig {
    /// The htpasswd file of users and bcrypt hashes (`htpasswd -B`), relative to the
    /// configuration file's directory.
    pub htpasswd: String,
    /// The realm of the `Proxy-Authenticate: Basic realm="..."` challenge.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Groups and their members, for `http_access`'s `proxy_auth_group` ACLs.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Whether every request needs valid credentials; when false, only requests that send
    /// credentials are identified (and refused if they are wrong).
    #[serde(default = "required_by_default")]
    pub required: bool,
}

fn default_realm() -> String {
    "strait".into()
}

fn required_by_default() -> bool {
    true
}

/// The challenge a request without a user would get, left in [`RequestCtx::extensions`] by a
/// `proxy_auth` filter that let it go on unauthenticated (`required: false`), so that
/// `http_access` challenges with the same realm when a rule needs a user.
#[derive(Debug, Clone)]
pub struct ProxyChallenge(pub HeaderValue);

/// A user of the htpasswd file: its password, and the consumer it becomes.
#[derive(Debug)]
struct User {
    password: StoredPassword,
    consumer: Consumer,
}

/// A bcrypt hash (cost 10, as `htpasswd -B` makes) of a password no one is given, checked for
/// a user name the file does not have.
static UNKNOWN_USER: std::sync::LazyLock<StoredPassword> = std::sync::LazyLock::new(|| {
    StoredPassword::Bcrypt("$2b$10$2Ud1aeu7qYXexH7Pg53Vy.zfXHTHLCKOs3hp7xjRjT6pRHbEVm1xu".into())
});

/// The compiled settings shared by a filter's instances.
#[derive(Debug)]
struct Settings {
    users: HashMap<String, User>,
    challenge: HeaderValue,
    required: bool,
    passwords: PasswordCheck,
}

/// The `proxy_auth` plugin.
pub fn proxy_auth_plugin() -> impl Plugin {
    prioritized(
        typed("proxy_auth", |config: ProxyAuthConfig, env: &BuildEnv<'_>| {
            let base = Path::new(env.config.source.file()).parent().unwrap_or(Path::new(""));
            let file = base.join(&config.htpasswd);
            let passwords = htpasswd::read(&file, "htpasswd")?;
            Ok(Arc::new(ProxyAuthFactory(Arc::new(Settings::compile(config, passwords)?))) as Arc<dyn FilterFactory>)
        }),
        PROXY_AUTH_PRIORITY,
    )
}

impl Settings {
    /// Makes each user's consumer, with the groups it is in.
    fn compile(config: ProxyAuthConfig, passwords: HashMap<String, StoredPassword>) -> Result<Settings, PluginError> {
        let mut groups_of: HashMap<&str, Vec<Arc<str>>> = HashMap::new();
        for (group, members) in &config.groups {
            for (index, member) in members.iter().enumerate() {
                if !passwords.contains_key(member) {
                    let message = format!("`{member}` is not a user of `{}`", config.htpasswd);
                    return Err(PluginError::at(format!("groups.{group}[{index}]"), message));
                }
                groups_of.entry(member).or_default().push(Arc::from(group.as_str()));
            }
        }
        let users = passwords
            .into_iter()
            .map(|(name, password)| {
                let groups = groups_of.remove(name.as_str()).unwrap_or_default();
                let credential = Credential { kind: "proxy_auth", id: name.as_str().into() };
                let consumer = Consumer::new(name.as_str().into(), None, groups.into(), Some(credential));
                (name, User { password, consumer })
            })
            .collect();
        Ok(Settings {
            users,
            challenge: challenge("Basic", &config.realm)?,
            required: config.required,
            passwords: PasswordCheck::new(),
        })
    }

    /// Identifies the request's user, or refuses it 407; waits only when a bcrypt hash has to
    /// be checked.
    fn check<'a>(&'a self, request: &'a request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        // A request for the proxy itself (its PAC file) is no proxy request: a 407 means
        // nothing to a client that does not use this server as its proxy.
        if request.uri.scheme().is_none() && request.method != Method::CONNECT {
            return Phase::Ready(Flow::Continue);
        }
        let Some(ProxyAuthorization(field)) = request.extensions.get::<ProxyAuthorization>() else {
            if self.required {
                return Phase::Ready(Flow::respond(self.refusal("proxy credentials required")));
            }
            ctx.extensions.insert(ProxyChallenge(self.challenge.clone()));
            return Phase::Ready(Flow::Continue);
        };
        let (name, given) = match basic_credentials(field.as_bytes()) {
            Ok(credentials) => credentials,
            Err(why) => return Phase::Ready(Flow::respond(self.refusal(why))),
        };
        let Some(user) = self.users.get(&name) else {
            // As slow as a wrong password, so the answer's time does not tell which user
            // names exist.
            return match self.passwords.matches(&UNKNOWN_USER, &name, given) {
                Phase::Ready(_) => Phase::Ready(Flow::respond(self.refusal(INVALID))),
                Phase::Wait(checking) => Phase::wait(async move {
                    let _ = checking.await;
                    Flow::respond(self.refusal(INVALID))
                }),
            };
        };
        match self.passwords.matches(&user.password, &name, given) {
            Phase::Ready(matched) => Phase::Ready(self.decide(user, matched, ctx)),
            Phase::Wait(matching) => Phase::wait(async move {
                let matched = matching.await;
                self.decide(user, matched, ctx)
            }),
        }
    }

    /// Makes `user` the request's consumer if its password matched (without any header for the
    /// origin); refuses otherwise.
    fn decide(&self, user: &User, matched: bool, ctx: &mut RequestCtx) -> Flow {
        if !matched {
            return Flow::respond(self.refusal(INVALID));
        }
        ctx.consumer = Some(user.consumer.clone());
        Flow::Continue
    }

    /// The 407 answer, with the challenge and `why` in the body.
    fn refusal(&self, why: &str) -> LocalResponse {
        proxy_auth_required(self.challenge.clone(), why)
    }
}

/// A 407 `proxy_auth_required` answer with `challenge` as `Proxy-Authenticate` and `why` in
/// the body.
pub(crate) fn proxy_auth_required(challenge: HeaderValue, why: &str) -> LocalResponse {
    let mut answer = LocalResponse::for_reason(Reason::ProxyAuthRequired);
    let status = answer.status;
    let text = status.canonical_reason().unwrap_or("");
    answer.body = Bytes::from(format!("{} {text}: {}: {why}\n", status.as_str(), Reason::ProxyAuthRequired.code()));
    answer.headers.insert(PROXY_AUTHENTICATE, challenge);
    answer
}

/// Factory of one configured `proxy_auth` filter.
#[derive(Debug)]
struct ProxyAuthFactory(Arc<Settings>);

impl FilterFactory for ProxyAuthFactory {
    fn name(&self) -> &'static str {
        "proxy_auth"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(ProxyAuth(self.0.clone()))
    }
}

/// One request's filter.
struct ProxyAuth(Arc<Settings>);

impl Filter for ProxyAuth {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        self.0.check(request, ctx)
    }
}

#[cfg(test)]
mod tests;
