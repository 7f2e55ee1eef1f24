//! Access by client address, as Kong's `ip-restriction`: `deny` lists refused addresses,
//! `allow` the only ones let in; IPv4 and IPv6 addresses and CIDR ranges alike.
//!
//! ```yaml
//! filters:
//!   - name: ip_restriction
//!     config: { allow: [10.0.0.0/8, "2001:db8::/32"], deny: [10.0.0.13] }
//! ```
//!
//! The address checked is `RequestCtx::client_ip`: the peer, or the address a trusted proxy
//! forwarded (`server.trusted_proxies`). `deny` wins over `allow`. Refusals are 403
//! `ip_forbidden`, or the configured `status` and `message`.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{request, StatusCode};
use ipnet::IpNet;
use serde::Deserialize;
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Plugin, PluginError, Reason, RequestCtx};

/// Kong's priority of `ip-restriction`: after the authentication filters, before `acl` (950).
pub const IP_RESTRICTION_PRIORITY: i32 = 990;

/// Settings of an `ip_restriction` filter (Kong's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpRestrictionConfig {
    /// Addresses and ranges let in; when given, every other address is refused.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Addresses and ranges refused, also when `allow` has them.
    #[serde(default)]
    pub deny: Vec<String>,
    /// The status of refusals, instead of 403.
    #[serde(default)]
    pub status: Option<u16>,
    /// The body of refusals, instead of the reason line.
    #[serde(default)]
    pub message: Option<String>,
}

/// The compiled settings shared by a filter's instances.
#[derive(Debug)]
struct Settings {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    refusal: LocalResponse,
}

/// The `ip_restriction` plugin.
pub fn ip_restriction_plugin() -> impl Plugin {
    prioritized(
        typed("ip_restriction", |config: IpRestrictionConfig, _env: &BuildEnv<'_>| {
            Ok(Arc::new(IpRestrictionFactory(Arc::new(Settings::compile(config)?))) as Arc<dyn FilterFactory>)
        }),
        IP_RESTRICTION_PRIORITY,
    )
}

/// Reads `1.2.3.4`, `10.0.0.0/8`, `::1` or `2001:db8::/32`; `field[i]` names it in errors.
pub(crate) fn parse_net(text: &str, field: &str, i: usize) -> Result<IpNet, PluginError> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        let message =
            format!("`{text}` is not an IP address or CIDR range (`192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`)");
        PluginError::at(format!("{field}[{i}]"), message)
    })
}

impl Settings {
    /// Reads the lists and the refusal.
    fn compile(config: IpRestrictionConfig) -> Result<Settings, PluginError> {
        if config.allow.is_empty() && config.deny.is_empty() {
            return Err(PluginError::at("", "needs `allow` or `deny` (or both): lists of addresses or CIDR ranges"));
        }
        let nets = |field: &str, list: &[String]| -> Result<Vec<IpNet>, PluginError> {
            list.iter().enumerate().map(|(i, text)| parse_net(text, field, i)).collect()
        };
        let mut refusal = LocalResponse::for_reason(Reason::IpForbidden);
        if let Some(status) = config.status {
            refusal.status =
                StatusCode::from_u16(status).ok().filter(|s| s.is_client_error() || s.is_server_error()).ok_or_else(
                    || PluginError::at("status", format!("{status} is not an error status (400 to 599)")),
                )?;
            let text = refusal.status.canonical_reason().unwrap_or("");
            refusal.body = Bytes::from(format!("{status} {text}: {}\n", Reason::IpForbidden.code()));
        }
        if let Some(message) = config.message {
            refusal.body = Bytes::from(if message.ends_with('\n') { message } else { format!("{message}\n") });
        }
        Ok(Settings { allow: nets("allow", &config.allow)?, deny: nets("deny", &config.deny)?, refusal })
    }

    /// Whether `ip` may pass: not denied, and allowed when there is an allow list.
    fn admits(&self, ip: IpAddr) -> bool {
        // An IPv4 client on a dual-stack socket arrives as `::ffff:a.b.c.d`.
        let ip = ip.to_canonical();
        let listed = |nets: &[IpNet]| nets.iter().any(|net| net.contains(&ip));
        !listed(&self.deny) && (self.allow.is_empty() || listed(&self.allow))
    }
}

/// Factory of one configured `ip_restriction` filter.
#[derive(Debug)]
struct IpRestrictionFactory(Arc<Settings>);

impl FilterFactory for IpRestrictionFactory {
    fn name(&self) -> &'static str {
        "ip_restriction"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(IpRestriction(self.0.clone()))
    }
}

/// One request's filter.
struct IpRestriction(Arc<Settings>);

impl Filter for IpRestriction {
    fn request_headers<'a>(&'a mut self, _request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        let settings = &self.0;
        Phase::Ready(if settings.admits(ctx.client_ip) {
            Flow::Continue
        } else {
            Flow::respond(settings.refusal.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use strait_config::Config;

    use super::*;

    fn settings(block: serde_json::Value) -> Result<Settings, PluginError> {
        let block: IpRestrictionConfig =
            serde_json::from_value(block).map_err(|e| PluginError::at("", e.to_string()))?;
        Settings::compile(block)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_allow_list_refuses_everything_else() {
        let allow = settings(json!({ "allow": ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"] })).unwrap();
        for admitted in ["10.1.2.3", "192.0.2.7", "2001:db8::1", "::ffff:10.9.9.9"] {
            assert!(allow.admits(ip(admitted)), "{admitted}");
        }
        for refused in ["11.0.0.1", "192.0.2.8", "2001:db9::1", "::1", "127.0.0.1"] {
            assert!(!allow.admits(ip(refused)), "{refused}");
        }
    }

    #[test]
    fn deny_wins_over_allow() {
        let both = settings(json!({ "allow": ["10.0.0.0/8"], "deny": ["10.0.0.13", "10.2.0.0/16"] })).unwrap();
        assert!(both.admits(ip("10.0.0.12")));
        assert!(!both.admits(ip("10.0.0.13")) && !both.admits(ip("10.2.3.4")));
        let deny = settings(json!({ "deny": ["::1", "127.0.0.0/8"] })).unwrap();
        assert!(!deny.admits(ip("::1")) && !deny.admits(ip("127.0.0.1")) && !deny.admits(ip("::ffff:127.0.0.1")));
        assert!(deny.admits(ip("192.0.2.1")) && deny.admits(ip("::2")));
    }

    #[test]
    fn a_range_with_host_bits_covers_its_network() {
        let allow = settings(json!({ "allow": ["10.1.2.3/16"] })).unwrap();
        assert!(allow.admits(ip("10.1.200.1")) && !allow.admits(ip("10.2.0.1")));
    }

    #[test]
    fn the_refusal_is_403_or_the_configured_status_and_message() {
        let plain = settings(json!({ "deny": ["::1"] })).unwrap();
        assert_eq!(plain.refusal.status, 403);
        assert_eq!(plain.refusal.body, "403 Forbidden: ip_forbidden\n");
        let custom = settings(json!({ "deny": ["::1"], "status": 404 })).unwrap();
        assert_eq!((custom.refusal.status.as_u16(), custom.refusal.reason), (404, Some(Reason::IpForbidden)));
        assert_eq!(custom.refusal.body, "404 Not Found: ip_forbidden\n");
        let message = settings(json!({ "deny": ["::1"], "status": 451, "message": "Not from here" })).unwrap();
        assert_eq!((message.refusal.status.as_u16(), &message.refusal.body[..]), (451, &b"Not from here\n"[..]));
    }

    #[test]
    fn bad_settings_are_refused_at_the_list_item() {
        for (block, path, message) in [
            (json!({ "allow": ["10.0.0.0/8", "10.0.0.300/8"] }), "allow[1]", "`10.0.0.300/8` is not an IP address"),
            (json!({ "deny": ["10.0.0.0/33"] }), "deny[0]", "not an IP address or CIDR"),
            (json!({ "deny": ["localhost"] }), "deny[0]", "not an IP address or CIDR"),
            (json!({}), "", "needs `allow` or `deny`"),
            (json!({ "deny": ["::1"], "status": 200 }), "status", "not an error status"),
            (json!({ "deny": ["::1"], "status": 1000 }), "status", "not an error status"),
        ] {
            let error = settings(block.clone()).unwrap_err();
            assert_eq!((error.path.as_str(), error.message.contains(message)), (path, true), "{block}: {error:?}");
        }
        let env = BuildEnv { config: &Config::default() };
        let unknown = ip_restriction_plugin().build(&json!({ "whitelist": ["::1"] }), &env).unwrap_err();
        assert!(unknown.message.contains("unknown field `whitelist`"), "{}", unknown.message);
        assert_eq!(ip_restriction_plugin().priority(), 990);
    }
}
