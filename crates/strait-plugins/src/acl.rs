//! Access by consumer group, as Kong's `acl`: after an authentication filter identified the
//! consumer, `allow` lets only members of the listed groups through, or `deny` keeps them out.
//!
//! ```yaml
//! filters:
//!   - name: key_auth
//!   - name: acl
//!     config: { allow: [admin, ops] }
//! ```
//!
//! A request without a consumer is refused 401 `unauthorized`; a consumer not allowed,
//! 403 `consumer_forbidden`. The anonymous consumer of an authentication filter is a consumer
//! like any other, with the groups it is configured with.

use std::collections::HashSet;
use std::sync::Arc;

use http::request;
use serde::Deserialize;
use strait_http::consumer::{Consumer, CONSUMER_GROUPS};
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Plugin, PluginError, Reason, RequestCtx};

/// Kong's priority of `acl`: after the authentication filters and `ip_restriction` (990).
pub const ACL_PRIORITY: i32 = 950;

/// Settings of an `acl` filter: exactly one of `allow` and `deny`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclConfig {
    /// Only consumers in one of these groups may pass.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Consumers in one of these groups may not pass.
    #[serde(default)]
    pub deny: Option<Vec<String>>,
    /// Whether the `x-consumer-groups` field is removed from the request the upstream gets.
    #[serde(default)]
    pub hide_groups_header: bool,
}

/// Which groups decide, and how.
#[derive(Debug)]
enum Rule {
    /// Members of one of these pass, no one else.
    Allow(HashSet<String>),
    /// Members of one of these are refused, everyone else passes.
    Deny(HashSet<String>),
}

impl Rule {
    /// Whether `consumer` may pass.
    fn admits(&self, consumer: &Consumer) -> bool {
        match self {
            Rule::Allow(groups) => consumer.groups.iter().any(|g| groups.contains(&**g)),
            Rule::Deny(groups) => !consumer.groups.iter().any(|g| groups.contains(&**g)),
        }
    }
}

/// The compiled settings shared by a filter's instances.
#[derive(Debug)]
struct Settings {
    rule: Rule,
    hide_groups: bool,
}

/// The `acl` plugin.
pub fn acl_plugin() -> impl Plugin {
    prioritized(
        typed("acl", |config: AclConfig, _env: &BuildEnv<'_>| {
            Ok(Arc::new(AclFactory(Arc::new(Settings::compile(config)?))) as Arc<dyn FilterFactory>)
        }),
        ACL_PRIORITY,
    )
}

impl Settings {
    /// Checks that exactly one list is given, not empty, without empty names.
    fn compile(config: AclConfig) -> Result<Settings, PluginError> {
        let groups = |field: &str, list: Vec<String>| -> Result<HashSet<String>, PluginError> {
            if list.is_empty() {
                return Err(PluginError::at(field, "must list at least one group"));
            }
            if let Some(i) = list.iter().position(String::is_empty) {
                return Err(PluginError::at(format!("{field}[{i}]"), "group name is empty"));
            }
            Ok(list.into_iter().collect())
        };
        let rule = match (config.allow, config.deny) {
            (Some(allow), None) => Rule::Allow(groups("allow", allow)?),
            (None, Some(deny)) => Rule::Deny(groups("deny", deny)?),
            (Some(_), Some(_)) => {
                return Err(PluginError::at("deny", "`allow` and `deny` cannot both be set: use one of them"))
            }
            (None, None) => return Err(PluginError::at("", "needs `allow` or `deny` (a list of consumer groups)")),
        };
        Ok(Settings { rule, hide_groups: config.hide_groups_header })
    }

    /// Lets the request's consumer through, or refuses it.
    fn check(&self, request: &mut request::Parts, ctx: &RequestCtx) -> Flow {
        let Some(consumer) = ctx.consumer.as_ref() else {
            return Flow::respond(LocalResponse::for_reason(Reason::Unauthorized));
        };
        if !self.rule.admits(consumer) {
            return Flow::respond(LocalResponse::for_reason(Reason::ConsumerForbidden));
        }
        if self.hide_groups {
            request.headers.remove(CONSUMER_GROUPS);
        }
        Flow::Continue
    }
}

/// Factory of one configured `acl` filter.
#[derive(Debug)]
struct AclFactory(Arc<Settings>);

impl FilterFactory for AclFactory {
    fn name(&self) -> &'static str {
        "acl"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(Acl(self.0.clone()))
    }
}

/// One request's filter.
struct Acl(Arc<Settings>);

impl Filter for Acl {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        Phase::Ready(self.0.check(request, ctx))
    }
}

#[cfg(test)]
mod tests {
    use http::Request;
    use serde_json::json;
    use strait_config::Config;
    use strait_http::consumer::Credential;

    use super::*;
    use crate::consumer_auth::test_ctx;

    fn settings(block: serde_json::Value) -> Result<Settings, PluginError> {
        let block: AclConfig = serde_json::from_value(block).map_err(|e| PluginError::at("", e.to_string()))?;
        Settings::compile(block)
    }

    /// The status of the answer for a request from a consumer in `groups` (`None`: no
    /// consumer), or `None` if it passed; and the request as it would go on.
    fn verdict(settings: &Settings, groups: Option<&[&str]>) -> (Option<u16>, request::Parts) {
        let mut request = Request::get("/").body(()).unwrap().into_parts().0;
        let mut ctx = test_ctx("127.0.0.1");
        if let Some(groups) = groups {
            let consumer = Consumer::new(
                "alice".into(),
                None,
                groups.iter().map(|g| Arc::from(*g)).collect(),
                Some(Credential { kind: "key_auth", id: "alice#0".into() }),
            );
            ctx.identify(&mut request.headers, consumer, false);
        }
        let status = match settings.check(&mut request, &ctx) {
            Flow::Continue => None,
            Flow::Respond(answer) => {
                assert_eq!(answer.reason.map(|r| r.status()), Some(answer.status));
                Some(answer.status.as_u16())
            }
        };
        (status, request)
    }

    #[test]
    fn allow_admits_members_only() {
        let allow = settings(json!({ "allow": ["admin", "ops"] })).unwrap();
        assert_eq!(verdict(&allow, Some(&["staff", "ops"])).0, None);
        assert_eq!(verdict(&allow, Some(&["staff"])).0, Some(403));
        assert_eq!(verdict(&allow, Some(&[])).0, Some(403));
        assert_eq!(verdict(&allow, None).0, Some(401));
    }

    #[test]
    fn deny_refuses_members_only() {
        let deny = settings(json!({ "deny": ["banned"] })).unwrap();
        assert_eq!(verdict(&deny, Some(&["staff"])).0, None);
        assert_eq!(verdict(&deny, Some(&[])).0, None);
        assert_eq!(verdict(&deny, Some(&["staff", "banned"])).0, Some(403));
        assert_eq!(verdict(&deny, None).0, Some(401));
    }

    #[test]
    fn the_groups_header_is_hidden_on_request() {
        let (_, shown) = verdict(&settings(json!({ "allow": ["ops"] })).unwrap(), Some(&["ops"]));
        assert_eq!(shown.headers["x-consumer-groups"], "ops");
        let hidden = settings(json!({ "allow": ["ops"], "hide_groups_header": true })).unwrap();
        let (status, request) = verdict(&hidden, Some(&["ops"]));
        assert_eq!(status, None);
        assert!(request.headers.get("x-consumer-groups").is_none());
        assert_eq!(request.headers["x-consumer-username"], "alice");
    }

    #[test]
    fn exactly_one_non_empty_list_is_required() {
        for (block, path, message) in [
            (json!({ "allow": ["a"], "deny": ["b"] }), "deny", "cannot both be set"),
            (json!({}), "", "needs `allow` or `deny`"),
            (json!({ "hide_groups_header": true }), "", "needs `allow` or `deny`"),
            (json!({ "allow": [] }), "allow", "at least one group"),
            (json!({ "deny": ["a", ""] }), "deny[1]", "empty"),
        ] {
            let error = settings(block.clone()).unwrap_err();
            assert_eq!((error.path.as_str(), error.message.contains(message)), (path, true), "{block}: {error:?}");
        }
        let env = BuildEnv { config: &Config::default() };
        let unknown = acl_plugin().build(&json!({ "whitelist": ["a"] }), &env).unwrap_err();
        assert!(unknown.message.contains("unknown field `whitelist`"), "{}", unknown.message);
        assert_eq!(acl_plugin().priority(), 950);
    }
}
