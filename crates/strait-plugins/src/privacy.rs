//! What the origin learns about the client through a forward proxy (Squid `forwarded_for`,
//! `via` and `request_header_access ... deny all`). The forward proxy adds no
//! `X-Forwarded-For` or `Via` of its own; this filter decides.
//!
//! ```yaml
//! filters:
//!   - name: privacy
//!     config: { forwarded_for: delete, via: false, remove: [From, Referer, User-Agent] }
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue, FORWARDED, VIA};
use http::{request, response, Version};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, Phase, Phases, Plugin, PluginError, RequestCtx};

/// Low, so that the filters before it (access rules) see the request as the client sent it.
pub const PRIVACY_PRIORITY: i32 = 10;

/// `X-Forwarded-For`, the client addresses a request passed through.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// `X-Real-IP`, another field clients (and proxies) put an address in.
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The request fields Squid's "paranoid" example of `request_header_access` lets through
/// (every other field is removed); framing fields are the connection's and never removed.
pub const PARANOID_KEPT: [&str; 11] = [
    "authorization",
    "cache-control",
    "content-type",
    "date",
    "host",
    "if-modified-since",
    "pragma",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
];

/// What happens to `X-Forwarded-For` (Squid `forwarded_for`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedFor {
    /// Remove what the client sent; add nothing.
    #[default]
    Delete,
    /// Add the client's address (after what the client sent).
    On,
    /// Add `unknown`.
    Off,
    /// Leave what the client sent as it is.
    Transparent,
    /// Replace what the client sent by the client's address.
    Truncate,
}

impl<'de> Deserialize<'de> for ForwardedFor {
    /// `delete`, `on`, `off`, `transparent` or `truncate`; `true` and `false` (what YAML 1.1
    /// makes of a bare `on` and `off`) as `on` and `off`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ForwardedFor, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Flag(bool),
            Word(String),
        }
        Ok(match Written::deserialize(deserializer)? {
            Written::Flag(true) => ForwardedFor::On,
            Written::Flag(false) => ForwardedFor::Off,
            Written::Word(word) => match word.as_str() {
                "delete" => ForwardedFor::Delete,
                "on" => ForwardedFor::On,
                "off" => ForwardedFor::Off,
                "transparent" => ForwardedFor::Transparent,
                "truncate" => ForwardedFor::Truncate,
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown value `{other}`, expected one of `delete`, `on`, `off`, `transparent`, `truncate`"
                    )))
                }
            },
        })
    }
}

/// Settings of a `privacy` filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// What the origin sees in `X-Forwarded-For`.
    #[serde(default)]
    pub forwarded_for: ForwardedFor,
    /// Whether `Via: 1.1 strait` is added to requests and responses.
    #[serde(default)]
    pub via: bool,
    /// Request fields removed.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Remove every request field but [`PARANOID_KEPT`] and `keep`.
    #[serde(default)]
    pub paranoid: bool,
    /// With `paranoid`, more fields kept.
    #[serde(default)]
    pub keep: Vec<String>,
}

/// The compiled settings shared by a filter's instances.
#[derive(Debug)]
struct Settings {
    forwarded_for: ForwardedFor,
    via: bool,
    remove: Vec<HeaderName>,
    /// With `paranoid`: the only fields kept.
    keep_only: Option<HashSet<HeaderName>>,
}

/// The `privacy` plugin.
pub fn privacy_plugin() -> impl Plugin {
    prioritized(
        typed("privacy", |config: PrivacyConfig, _env: &BuildEnv<'_>| {
            Ok(Arc::new(PrivacyFactory(Arc::new(Settings::compile(config)?))) as Arc<dyn FilterFactory>)
        }),
        PRIVACY_PRIORITY,
    )
}

/// Reads field names; `field[i]` names a bad one in errors.
fn header_names(list: &[String], field: &str) -> Result<Vec<HeaderName>, PluginError> {
    list.iter()
        .enumerate()
        .map(|(i, name)| {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| PluginError::at(format!("{field}[{i}]"), format!("`{name}` is not a header name")))
        })
        .collect()
}

impl Settings {
    /// Checks the field names.
    fn compile(config: PrivacyConfig) -> Result<Settings, PluginError> {
        if !config.paranoid && !config.keep.is_empty() {
            return Err(PluginError::at("keep", "only means something with `paranoid: true`"));
        }
        let keep_only = config.paranoid.then(|| -> Result<HashSet<HeaderName>, PluginError> {
            let mut kept: HashSet<HeaderName> =
                PARANOID_KEPT.iter().map(|name| HeaderName::from_static(name)).collect();
            kept.extend(header_names(&config.keep, "keep")?);
            Ok(kept)
        });
        Ok(Settings {
            forwarded_for: config.forwarded_for,
            via: config.via,
            remove: header_names(&config.remove, "remove")?,
            keep_only: keep_only.transpose()?,
        })
    }

    /// Removes and adds the request's fields as configured.
    fn request(&self, headers: &mut HeaderMap, ctx: &RequestCtx) {
        if let Some(kept) = &self.keep_only {
            let dropped: Vec<HeaderName> = headers.keys().filter(|name| !kept.contains(*name)).cloned().collect();
            for name in dropped {
                headers.remove(name);
            }
        }
        for name in &self.remove {
            headers.remove(name);
        }
        let client =
            || HeaderValue::from_str(&ctx.client_ip.to_canonical().to_string()).expect("an address is a value");
        let sent = || joined(headers, &X_FORWARDED_FOR);
        let forwarded_for = match self.forwarded_for {
            ForwardedFor::Transparent => return self.add_via(headers, ctx.conn.version),
            ForwardedFor::Delete => None,
            ForwardedFor::Truncate => Some(client()),
            ForwardedFor::On => Some(appended(sent(), client())),
            ForwardedFor::Off => Some(appended(sent(), HeaderValue::from_static("unknown"))),
        };
        for name in [&X_FORWARDED_FOR, &FORWARDED, &X_REAL_IP] {
            headers.remove(name);
        }
        if let Some(value) = forwarded_for {
            headers.insert(X_FORWARDED_FOR, value);
        }
        self.add_via(headers, ctx.conn.version);
    }

    /// Adds this proxy to `Via` when configured, for a message of `version`.
    fn add_via(&self, headers: &mut HeaderMap, version: Version) {
        if !self.via {
            return;
        }
        let hop = match version {
            Version::HTTP_10 => "1.0 strait",
            Version::HTTP_2 => "2 strait",
            _ => "1.1 strait",
        };
        let value = appended(joined(headers, &VIA), HeaderValue::from_static(hop));
        headers.insert(VIA, value);
    }
}

/// Every field `name` of `headers`, joined with `, ` (none when there is none).
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<Vec<u8>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut text = first.as_bytes().to_vec();
    for value in values {
        text.extend_from_slice(b", ");
        text.extend_from_slice(value.as_bytes());
    }
    Some(text)
}

/// `earlier, last`, or `last` alone.
fn appended(earlier: Option<Vec<u8>>, last: HeaderValue) -> HeaderValue {
    let Some(mut text) = earlier else { return last };
    text.extend_from_slice(b", ");
    text.extend_from_slice(last.as_bytes());
    HeaderValue::from_bytes(&text).unwrap_or(last)
}

/// Factory of one configured `privacy` filter.
#[derive(Debug)]
struct PrivacyFactory(Arc<Settings>);

impl FilterFactory for PrivacyFactory {
    fn name(&self) -> &'static str {
        "privacy"
    }

    fn phases(&self) -> Phases {
        if self.0.via {
            Phases::REQUEST_HEADERS | Phases::RESPONSE_HEADERS
        } else {
            Phases::REQUEST_HEADERS
        }
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(Privacy(self.0.clone()))
    }
}

/// One request's filter.
struct Privacy(Arc<Settings>);

impl Filter for Privacy {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        self.0.request(&mut request.headers, ctx);
        Phase::Ready(Flow::Continue)
    }

    fn response_headers<'a>(&'a mut self, response: &'a mut response::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, ()> {
        self.0.add_via(&mut response.headers, ctx.conn.version);
        Phase::Ready(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::consumer_auth::test_ctx;

    fn settings(block: serde_json::Value) -> Result<Settings, PluginError> {
        let config: PrivacyConfig = serde_json::from_value(block).map_err(|e| PluginError::at("", e.to_string()))?;
        Settings::compile(config)
    }

    /// The fields a client sent, after the filter.
    fn filtered(block: serde_json::Value, sent: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in sent {
            headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        settings(block).unwrap().request(&mut headers, &test_ctx("10.1.2.3"));
        headers
    }

    const SENT: [(&str, &str); 5] = [
        ("x-forwarded-for", "192.0.2.1"),
        ("x-forwarded-for", "192.0.2.2"),
        ("forwarded", "for=192.0.2.1"),
        ("x-real-ip", "192.0.2.1"),
        ("user-agent", "curl/8"),
    ];

    #[test]
    fn forwarded_for_modes_are_squids() {
        let values = |headers: &HeaderMap, name: &str| -> Vec<String> {
            headers.get_all(name).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
        };
        let deleted = filtered(json!({}), &SENT);
        assert!(values(&deleted, "x-forwarded-for").is_empty() && values(&deleted, "forwarded").is_empty());
        assert!(values(&deleted, "x-real-ip").is_empty());
        assert_eq!(values(&deleted, "user-agent"), ["curl/8"]);
        assert!(deleted.get("via").is_none(), "no Via unless asked");
        let on = filtered(json!({ "forwarded_for": "on" }), &SENT);
        assert_eq!(values(&on, "x-forwarded-for"), ["192.0.2.1, 192.0.2.2, 10.1.2.3"]);
        assert!(on.get("forwarded").is_none() && on.get("x-real-ip").is_none());
        let off = filtered(json!({ "forwarded_for": false }), &SENT);
        assert_eq!(values(&off, "x-forwarded-for"), ["192.0.2.1, 192.0.2.2, unknown"]);
        let truncated = filtered(json!({ "forwarded_for": "truncate" }), &SENT);
        assert_eq!(values(&truncated, "x-forwarded-for"), ["10.1.2.3"]);
        let alone = filtered(json!({ "forwarded_for": true }), &[]);
        assert_eq!(values(&alone, "x-forwarded-for"), ["10.1.2.3"]);
        let transparent = filtered(json!({ "forwarded_for": "transparent" }), &SENT);
        assert_eq!(values(&transparent, "x-forwarded-for"), ["192.0.2.1", "192.0.2.2"]);
        assert_eq!(values(&transparent, "x-real-ip"), ["192.0.2.1"]);
    }

    #[test]
    fn via_is_added_when_asked_to_requests_and_responses() {
        let via = filtered(json!({ "via": true }), &[("via", "1.0 upstream")]);
        assert_eq!(via["via"], "1.0 upstream, 1.1 strait");
        let settings = settings(json!({ "via": true })).unwrap();
        let factory = PrivacyFactory(Arc::new(settings));
        assert!(factory.phases().contains(Phases::RESPONSE_HEADERS));
        let mut response = http::Response::new(()).into_parts().0;
        let mut ctx = test_ctx("10.1.2.3");
        let _ = factory.create().response_headers(&mut response, &mut ctx);
        assert_eq!(response.headers["via"], "1.1 strait");
        assert!(!PrivacyFactory(Arc::new(Settings::compile(PrivacyConfig::default()).unwrap()))
            .phases()
            .contains(Phases::RESPONSE_HEADERS));
    }

    #[test]
    fn listed_fields_are_removed_and_paranoid_keeps_only_squids_list() {
        let sent = [("from", "me@example.test"), ("referer", "http://a.test/"), ("cookie", "a=1"), ("accept", "*/*")];
        let removed = filtered(json!({ "remove": ["From", "Referer"] }), &sent);
        assert!(removed.get("from").is_none() && removed.get("referer").is_none());
        assert_eq!((removed["cookie"].to_str().unwrap(), removed["accept"].to_str().unwrap()), ("a=1", "*/*"));
        let paranoid = filtered(json!({ "paranoid": true, "forwarded_for": "on" }), &sent);
        let names: Vec<&str> = paranoid.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept", "x-forwarded-for"]);
        let kept = filtered(json!({ "paranoid": true, "keep": ["Cookie"] }), &sent);
        assert_eq!(kept["cookie"], "a=1");
    }

    #[test]
    fn bad_settings_are_refused_at_their_field() {
        assert_eq!(settings(json!({ "remove": ["ok", "not ok"] })).unwrap_err().path, "remove[1]");
        assert_eq!(settings(json!({ "keep": ["Cookie"] })).unwrap_err().path, "keep");
        let unknown = settings(json!({ "forwarded_for": "hide" })).unwrap_err();
        assert!(unknown.message.contains("unknown value `hide`"), "{}", unknown.message);
        let env = BuildEnv { config: &strait_config::Config::default() };
        let typo = privacy_plugin().build(&json!({ "forwarded": "on" }), &env).unwrap_err();
        assert!(typo.message.contains("unknown field `forwarded`"), "{}", typo.message);
    }
}
