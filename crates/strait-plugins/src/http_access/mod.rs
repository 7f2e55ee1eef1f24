//! Forward-proxy access rules (Squid `acl` and `http_access`): named ACLs, and ordered
//! `allow`/`deny` rules over them; the first rule that matches decides, and a request no
//! rule matches is denied.
//!
//! ```yaml
//! filters:
//!   - name: http_access
//!     config:
//!       acls:
//!         internal_network: { src: [10.0.0.0/8] }
//!         blocked_sites: { dstdomain: [.facebook.com, .twitter.com] }
//!       rules:
//!         - deny: ["!Safe_ports"]
//!         - deny: [CONNECT, "!SSL_ports"]
//!         - deny: [blocked_sites]
//!         - allow: [internal_network]
//!         - deny: [all]
//! ```
//!
//! A denial is a 403 `proxy_access_denied` whose page names the rule (`rules[2]: deny
//! blocked_sites`); a rule that needs the user (`proxy_auth`, `proxy_auth_group`) when none is
//! authenticated is a 407 `proxy_auth_required` challenge, as in Squid.

mod acl;
mod destination;
mod rules;
mod shadow;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderValue;
use http::request;
use serde::Deserialize;
use serde_json::Value;
use strait_http::registry::{prioritized, typed, BuildEnv, PluginWarning};
use strait_http::{Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Plugin, PluginError, Reason, RequestCtx};

pub use self::acl::AclSpec;
use self::acl::Facts;
use self::destination::Destination;
pub use self::rules::RuleSpec;
use self::rules::{Decision, Rules};
use crate::proxy_auth::{proxy_auth_required, ProxyChallenge};

/// After `proxy_auth` (1150), whose user the rules may need; before the gateway's access checks.
pub const HTTP_ACCESS_PRIORITY: i32 = 985;

/// Settings of an `http_access` filter.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAccessConfig {
    /// Named ACLs: each one type and its values (`{ src: [10.0.0.0/8] }`).
    #[serde(default)]
    pub acls: BTreeMap<String, AclSpec>,
    /// The rules, in order; empty means Squid's safe default (deny `!Safe_ports`, deny
    /// `CONNECT !SSL_ports`, allow `localhost`, deny `all`).
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// The `http_access` plugin.
pub fn http_access_plugin() -> impl Plugin {
    WithShadowWarnings(prioritized(
        typed("http_access", |config: HttpAccessConfig, _env: &BuildEnv<'_>| {
            let rules = Rules::compile(&config.acls, &config.rules)?;
            Ok(Arc::new(HttpAccessFactory(Arc::new(rules))) as Arc<dyn FilterFactory>)
        }),
        HTTP_ACCESS_PRIORITY,
    ))
}

/// The plugin, with warnings about rules that never take effect.
struct WithShadowWarnings<P>(P);

impl<P: Plugin> Plugin for WithShadowWarnings<P> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn build(&self, config: &Value, env: &BuildEnv<'_>) -> Result<Arc<dyn FilterFactory>, PluginError> {
        self.0.build(config, env)
    }

    fn priority(&self) -> i32 {
        self.0.priority()
    }

    fn warnings(&self, config: &Value, _env: &BuildEnv<'_>) -> Vec<PluginWarning> {
        let config = if config.is_null() { Value::Object(Default::default()) } else { config.clone() };
        let Ok(config) = serde_json::from_value::<HttpAccessConfig>(config) else { return Vec::new() };
        let Ok(rules) = Rules::compile(&config.acls, &config.rules) else { return Vec::new() };
        shadow::warnings(&rules, config.acls.keys().cloned())
            .into_iter()
            .map(|(path, message)| PluginWarning::at(path, message))
            .collect()
    }
}

/// Factory of one configured `http_access` filter.
#[derive(Debug)]
struct HttpAccessFactory(Arc<Rules>);

impl FilterFactory for HttpAccessFactory {
    fn name(&self) -> &'static str {
        "http_access"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(HttpAccess(self.0.clone()))
    }
}

/// One request's filter.
struct HttpAccess(Arc<Rules>);

impl Filter for HttpAccess {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        Phase::Ready(check(&self.0, request, ctx))
    }
}

/// The challenge of a 407 when no `proxy_auth` filter left one.
const DEFAULT_CHALLENGE: HeaderValue = HeaderValue::from_static("Basic realm=\"strait\"");

/// Lets the request through, or answers 403 (or 407 when a rule needs a user), logging why.
fn check(rules: &Rules, request: &request::Parts, ctx: &mut RequestCtx) -> Flow {
    let user = ctx.consumer.as_ref().filter(|consumer| consumer.credential.is_some());
    let facts = Facts {
        client: ctx.client_ip,
        destination: Destination::of(request, &ctx.conn),
        method: &request.method,
        user,
    };
    let (rule, why) = match rules.decide(&facts) {
        Decision::Allow => return Flow::Continue,
        Decision::NeedsUser(rule) => {
            let challenge = ctx.extensions.get::<ProxyChallenge>().map_or(DEFAULT_CHALLENGE, |c| c.0.clone());
            let why = format!("{} needs an authenticated user", rule.text);
            tracing::debug!(rule = %rule.text, client = %facts.client, method = %facts.method,
                destination = %DestinationText(&facts.destination), "proxy authentication required");
            return Flow::respond(proxy_auth_required(challenge, &why));
        }
        Decision::Deny { rule, connect_port } => (rule.text.as_str(), rule.text.clone() + &passed_over(connect_port)),
        Decision::NoMatch { connect_port } => {
            ("none", format!("no rule matched (the default is deny){}", passed_over(connect_port)))
        }
    };
    tracing::info!(rule, client = %facts.client, method = %facts.method,
        destination = %DestinationText(&facts.destination),
        user = facts.user.map_or("-", |user| &*user.username), "proxy access denied");
    let mut answer = LocalResponse::for_reason(Reason::ProxyAccessDenied);
    let status = answer.status;
    let text = status.canonical_reason().unwrap_or("");
    answer.body = Bytes::from(format!("{} {text}: {}: {why}\n", status.as_str(), Reason::ProxyAccessDenied.code()));
    Flow::respond(answer)
}

/// Why an `allow` rule that matched a CONNECT did not decide it, for the denial's page.
fn passed_over(connect_port: Option<&rules::Rule>) -> String {
    connect_port.map_or(String::new(), |rule| {
        format!(
            " (`{}` matched, but a CONNECT to a port outside SSL_ports is allowed only by a rule with a port ACL)",
            rule.text
        )
    })
}

/// `host:port` (`[v6]:port`) for the log.
struct DestinationText<'a>(&'a Destination<'a>);

impl std::fmt::Display for DestinationText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Destination { host, port, .. } = self.0;
        if host.contains(':') {
            write!(f, "[{host}]:{port}")
        } else {
            write!(f, "{host}:{port}")
        }
    }
}
