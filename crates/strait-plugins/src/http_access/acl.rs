//! Named ACLs (Squid `acl NAME TYPE VALUES...`): what each type matches and how its values
//! are read, and the ACLs every configuration has.

use std::collections::HashSet;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use http::Method;
use ipnet::IpNet;
use regex::RegexSet;
use serde::Deserialize;
use serde_json::Value;
use strait_http::consumer::Consumer;
use strait_http::PluginError;

use super::destination::Destination;
use crate::ip_restriction::parse_net;

/// An ACL as configured: its type and its values (any one of which matches).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AclSpec {
    /// Client addresses and CIDR ranges.
    Src(Vec<String>),
    /// Destination names: `example.com` exactly, `.example.com` for it and its subdomains.
    Dstdomain(Vec<String>),
    /// Regular expressions over the destination host (case-insensitive).
    DstdomRegex(Vec<String>),
    /// Destination addresses and CIDR ranges, for hosts given as IP literals.
    Dst(Vec<String>),
    /// Destination ports: numbers and `low-high` ranges.
    Port(Vec<Value>),
    /// Request methods (`CONNECT`, `GET`...).
    Method(Vec<String>),
    /// Authenticated user names, or `REQUIRED` for any authenticated user.
    ProxyAuth(Vec<String>),
    /// Groups of the authenticated user.
    #[serde(alias = "group")]
    ProxyAuthGroup(Vec<String>),
}

/// What a request is checked against.
#[derive(Debug)]
pub(super) struct Facts<'a> {
    /// The client's address.
    pub(super) client: IpAddr,
    /// Where the request goes.
    pub(super) destination: Destination<'a>,
    /// The request method.
    pub(super) method: &'a Method,
    /// The authenticated user, if any.
    pub(super) user: Option<&'a Consumer>,
}

/// What one ACL says of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It matches.
    Yes,
    /// It does not.
    No,
    /// It is about the user, and no user is authenticated.
    NeedsUser,
}

/// A compiled ACL.
#[derive(Debug)]
pub(super) enum Acl {
    /// Every request (the built-in `all`).
    All,
    /// Client addresses.
    Src(Vec<IpNet>),
    /// Destination names and domains.
    Dstdomain(Domains),
    /// Destination host patterns.
    DstdomRegex(RegexSet),
    /// Destination IP literals.
    Dst(Vec<IpNet>),
    /// Destination ports.
    Port(Vec<RangeInclusive<u16>>),
    /// Methods.
    Method(Vec<Method>),
    /// Users (`any`: every authenticated user).
    ProxyAuth { any: bool, users: HashSet<String> },
    /// Groups of the user.
    Group(HashSet<String>),
}

/// `dstdomain` values: exact names, and domains whose subdomains match too.
#[derive(Debug, Default)]
pub(super) struct Domains {
    exact: HashSet<String>,
    with_subdomains: HashSet<String>,
}

impl Domains {
    /// Whether `host` is one of the names, or one of the domains or under it.
    fn contains(&self, host: &str) -> bool {
        if self.exact.contains(host) || self.with_subdomains.contains(host) {
            return true;
        }
        host.match_indices('.').any(|(dot, _)| self.with_subdomains.contains(&host[dot + 1..]))
    }
}

impl Acl {
    /// What the ACL says of the request described by `facts`.
    pub(super) fn check(&self, facts: &Facts<'_>) -> Verdict {
        let yes = |matched: bool| if matched { Verdict::Yes } else { Verdict::No };
        let destination = &facts.destination;
        match self {
            Acl::All => Verdict::Yes,
            Acl::Src(nets) => {
                let client = facts.client.to_canonical();
                yes(nets.iter().any(|net| net.contains(&client)))
            }
            Acl::Dstdomain(domains) => yes(domains.contains(&destination.host)),
            Acl::DstdomRegex(patterns) => yes(patterns.is_match(&destination.host)),
            Acl::Dst(nets) => yes(destination.ip.is_some_and(|ip| nets.iter().any(|net| net.contains(&ip)))),
            Acl::Port(ranges) => yes(ranges.iter().any(|range| range.contains(&destination.port))),
            Acl::Method(methods) => yes(methods.contains(facts.method)),
            Acl::ProxyAuth { any, users } => match facts.user {
                None => Verdict::NeedsUser,
                Some(user) => yes(*any || users.contains(&*user.username)),
            },
            Acl::Group(groups) => match facts.user {
                None => Verdict::NeedsUser,
                Some(user) => yes(user.groups.iter().any(|group| groups.contains(&**group))),
            },
        }
    }

    /// Whether it is a `port` ACL.
    pub(super) fn is_port(&self) -> bool {
        matches!(self, Acl::Port(_))
    }

    /// Reads `spec`; errors name the value at its index, under the ACL's field (`port[2]`).
    pub(super) fn compile(spec: &AclSpec) -> Result<Acl, PluginError> {
        let values = |field: &str, list: &[String]| -> Result<(), PluginError> {
            if list.is_empty() {
                return Err(PluginError::at(field, "needs at least one value"));
            }
            Ok(())
        };
        Ok(match spec {
            AclSpec::Src(list) | AclSpec::Dst(list) => {
                let field = if matches!(spec, AclSpec::Src(_)) { "src" } else { "dst" };
                values(field, list)?;
                let nets =
                    list.iter().enumerate().map(|(i, text)| parse_net(text, field, i)).collect::<Result<_, _>>()?;
                if field == "src" {
                    Acl::Src(nets)
                } else {
                    Acl::Dst(nets)
                }
            }
            AclSpec::Dstdomain(list) => {
                values("dstdomain", list)?;
                let mut domains = Domains::default();
                for (i, name) in list.iter().enumerate() {
                    let lower = name.trim_end_matches('.').to_ascii_lowercase();
                    let (set, bare) = match lower.strip_prefix('.') {
                        Some(bare) => (&mut domains.with_subdomains, bare.to_owned()),
                        None => (&mut domains.exact, lower.clone()),
                    };
                    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
                    if bare.is_empty() || bare.starts_with('.') || !bare.chars().all(valid) {
                        let message = format!(
                            "`{name}` is not a host name (`example.com`, or `.example.com` for it and its subdomains)"
                        );
                        return Err(PluginError::at(format!("dstdomain[{i}]"), message));
                    }
                    set.insert(bare);
                }
                Acl::Dstdomain(domains)
            }
            AclSpec::DstdomRegex(list) => {
                values("dstdom_regex", list)?;
                for (i, pattern) in list.iter().enumerate() {
                    regex::Regex::new(pattern).map_err(|error| {
                        PluginError::at(
                            format!("dstdom_regex[{i}]"),
                            format!("not a valid regular expression: {error}"),
                        )
                    })?;
                }
                let set = regex::RegexSetBuilder::new(list)
                    .case_insensitive(true)
                    .build()
                    .map_err(|error| PluginError::at("dstdom_regex", error.to_string()))?;
                Acl::DstdomRegex(set)
            }
            AclSpec::Port(list) => {
                if list.is_empty() {
                    return Err(PluginError::at("port", "needs at least one value"));
                }
                Acl::Port(list.iter().enumerate().map(|(i, value)| port_range(value, i)).collect::<Result<_, _>>()?)
            }
            AclSpec::Method(list) => {
                values("method", list)?;
                let mut methods = Vec::with_capacity(list.len());
                for (i, name) in list.iter().enumerate() {
                    let method = Method::from_bytes(name.as_bytes()).ok().filter(|_| !name.is_empty());
                    match method {
                        Some(_) if name.bytes().any(|b| b.is_ascii_lowercase()) => {
                            let message = format!("method `{name}` must be upper-case");
                            return Err(PluginError::at(format!("method[{i}]"), message));
                        }
                        Some(method) => methods.push(method),
                        None => {
                            return Err(PluginError::at(format!("method[{i}]"), format!("`{name}` is not a method")))
                        }
                    }
                }
                Acl::Method(methods)
            }
            AclSpec::ProxyAuth(list) => {
                values("proxy_auth", list)?;
                let any = list.iter().any(|name| name == "REQUIRED");
                Acl::ProxyAuth { any, users: list.iter().filter(|name| *name != "REQUIRED").cloned().collect() }
            }
            AclSpec::ProxyAuthGroup(list) => {
                values("proxy_auth_group", list)?;
                Acl::Group(list.iter().cloned().collect())
            }
        })
    }
}

/// A `port` value: `443`, or `1025-65535`.
fn port_range(value: &Value, index: usize) -> Result<RangeInclusive<u16>, PluginError> {
    let at = || {
        let message = format!("`{value}` is not a port (1 to 65535) or a range of ports (`1025-65535`)");
        PluginError::at(format!("port[{index}]"), message)
    };
    let port = |text: &str| text.trim().parse::<u16>().ok().filter(|port| *port > 0);
    let range = match value {
        Value::Number(number) => {
            let port = number.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|port| *port > 0).ok_or_else(at)?;
            port..=port
        }
        Value::String(text) => match text.split_once('-') {
            Some((low, high)) => port(low).ok_or_else(at)?..=port(high).ok_or_else(at)?,
            None => {
                let port = port(text).ok_or_else(at)?;
                port..=port
            }
        },
        _ => return Err(at()),
    };
    if range.is_empty() {
        return Err(PluginError::at(format!("port[{index}]"), format!("`{value}`: the range is empty")));
    }
    Ok(range)
}

/// Squid's `Safe_ports` of its default configuration.
const SAFE_PORTS: [(u16, u16); 10] = [
    (80, 80),
    (21, 21),
    (443, 443),
    (70, 70),
    (210, 210),
    (1025, 65535),
    (280, 280),
    (488, 488),
    (591, 591),
    (777, 777),
];

/// The ACLs every configuration has, as Squid's default configuration defines them (`all` is
/// not among them: it cannot be redefined).
pub(super) fn builtin() -> Vec<(&'static str, Acl)> {
    let localhost = ["127.0.0.0/8", "::1/128"].iter().map(|net| net.parse().expect("a CIDR range")).collect();
    vec![
        ("localhost", Acl::Src(localhost)),
        ("CONNECT", Acl::Method(vec![Method::CONNECT])),
        ("SSL_ports", Acl::Port(vec![443..=443])),
        ("Safe_ports", Acl::Port(SAFE_PORTS.iter().map(|&(low, high)| low..=high).collect())),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn acl(spec: Value) -> Result<Acl, PluginError> {
        Acl::compile(&serde_json::from_value(spec).map_err(|e| PluginError::at("", e.to_string()))?)
    }

    fn facts<'a>(client: &str, host: &'a str, port: u16, method: &'a Method, user: Option<&'a Consumer>) -> Facts<'a> {
        let ip = host.parse::<IpAddr>().ok();
        Facts {
            client: client.parse().unwrap(),
            destination: Destination { host: host.into(), ip, port },
            method,
            user,
        }
    }

    #[test]
    fn every_type_matches_what_it_names() {
        let get = Method::GET;
        let connect = Method::CONNECT;
        let to = |host: &'static str, port: u16| facts("10.1.2.3", host, port, &get, None);
        let src = acl(json!({ "src": ["10.0.0.0/8", "2001:db8::/32"] })).unwrap();
        assert_eq!(src.check(&to("a.test", 80)), Verdict::Yes);
        assert_eq!(src.check(&facts("::ffff:10.9.9.9", "a.test", 80, &get, None)), Verdict::Yes);
        assert_eq!(src.check(&facts("192.0.2.1", "a.test", 80, &get, None)), Verdict::No);

        let domains = acl(json!({ "dstdomain": [".Facebook.com", "exact.test."] })).unwrap();
        for host in ["facebook.com", "www.facebook.com", "a.b.facebook.com", "exact.test"] {
            assert_eq!(domains.check(&to(host, 80)), Verdict::Yes, "{host}");
        }
        for host in ["notfacebook.com", "facebook.com.evil.test", "www.exact.test", "com"] {
            assert_eq!(domains.check(&to(host, 80)), Verdict::No, "{host}");
        }

        let regex = acl(json!({ "dstdom_regex": ["^ads?\\.", "TRACKER"] })).unwrap();
        assert_eq!(regex.check(&to("ads.example.test", 80)), Verdict::Yes);
        assert_eq!(regex.check(&to("a.tracker.test", 80)), Verdict::Yes, "case-insensitive");
        assert_eq!(regex.check(&to("news.example.test", 80)), Verdict::No);

        let dst = acl(json!({ "dst": ["192.0.2.0/24", "::1"] })).unwrap();
        assert_eq!(dst.check(&to("192.0.2.9", 80)), Verdict::Yes);
        assert_eq!(dst.check(&to("::1", 80)), Verdict::Yes);
        assert_eq!(dst.check(&to("198.51.100.1", 80)), Verdict::No);
        assert_eq!(dst.check(&to("names.are.not.resolved", 80)), Verdict::No);

        let ports = acl(json!({ "port": [80, "8000-8999", "443"] })).unwrap();
        for (port, verdict) in [(80, Verdict::Yes), (8000, Verdict::Yes), (8999, Verdict::Yes), (443, Verdict::Yes)] {
            assert_eq!(ports.check(&to("a.test", port)), verdict, "{port}");
        }
        assert_eq!(ports.check(&to("a.test", 9000)), Verdict::No);
        assert!(ports.is_port() && !src.is_port());

        let method = acl(json!({ "method": ["CONNECT", "PURGE"] })).unwrap();
        assert_eq!(method.check(&facts("10.0.0.1", "a.test", 443, &connect, None)), Verdict::Yes);
        assert_eq!(method.check(&to("a.test", 80)), Verdict::No);
    }

    #[test]
    fn user_acls_need_a_user() {
        let get = Method::GET;
        let alice = Consumer::new("alice".into(), None, vec!["staff".into()].into(), None);
        let bob = Consumer::new("bob".into(), None, Vec::new().into(), None);
        let as_user = |user| facts("10.0.0.1", "a.test", 80, &get, user);
        let named = acl(json!({ "proxy_auth": ["alice"] })).unwrap();
        let any = acl(json!({ "proxy_auth": ["REQUIRED"] })).unwrap();
        let staff = acl(json!({ "group": ["staff"] })).unwrap();
        let also_staff = acl(json!({ "proxy_auth_group": ["staff", "ops"] })).unwrap();
        for acl in [&named, &any, &staff, &also_staff] {
            assert_eq!(acl.check(&as_user(None)), Verdict::NeedsUser);
            assert_eq!(acl.check(&as_user(Some(&alice))), Verdict::Yes);
        }
        assert_eq!(named.check(&as_user(Some(&bob))), Verdict::No);
        assert_eq!(any.check(&as_user(Some(&bob))), Verdict::Yes);
        assert_eq!(staff.check(&as_user(Some(&bob))), Verdict::No);
    }

    #[test]
    fn bad_values_are_refused_at_their_index() {
        for (spec, path, message) in [
            (json!({ "src": ["10.0.0.0/8", "ten"] }), "src[1]", "not an IP address"),
            (json!({ "dst": [] }), "dst", "at least one value"),
            (json!({ "dstdomain": ["."] }), "dstdomain[0]", "not a host name"),
            (json!({ "dstdomain": ["a b.test"] }), "dstdomain[0]", "not a host name"),
            (json!({ "dstdom_regex": ["("] }), "dstdom_regex[0]", "not a valid regular expression"),
            (json!({ "port": [80, 0] }), "port[1]", "not a port"),
            (json!({ "port": ["100-20"] }), "port[0]", "the range is empty"),
            (json!({ "port": ["1-70000"] }), "port[0]", "not a port"),
            (json!({ "port": [true] }), "port[0]", "not a port"),
            (json!({ "method": ["get"] }), "method[0]", "must be upper-case"),
            (json!({ "method": ["GE T"] }), "method[0]", "is not a method"),
        ] {
            let error = acl(spec.clone()).unwrap_err();
            assert_eq!(error.path, path, "{spec}: {error:?}");
            assert!(error.message.contains(message), "{spec}: {}", error.message);
        }
        let unknown = acl(json!({ "srcdomain": ["x"] })).unwrap_err();
        assert!(unknown.message.contains("unknown variant `srcdomain`"), "{}", unknown.message);
    }

    #[test]
    fn the_builtin_acls_are_squids_defaults() {
        let get = Method::GET;
        let builtin: std::collections::HashMap<_, _> = builtin().into_iter().collect();
        assert_eq!(builtin["localhost"].check(&facts("127.0.0.1", "a.test", 80, &get, None)), Verdict::Yes);
        assert_eq!(builtin["localhost"].check(&facts("::1", "a.test", 80, &get, None)), Verdict::Yes);
        assert_eq!(builtin["localhost"].check(&facts("10.0.0.1", "a.test", 80, &get, None)), Verdict::No);
        for (port, safe) in [(80, true), (21, true), (443, true), (1025, true), (65535, true), (25, false), (22, false)]
        {
            let verdict = builtin["Safe_ports"].check(&facts("10.0.0.1", "a.test", port, &get, None));
            assert_eq!(verdict == Verdict::Yes, safe, "{port}");
        }
        assert_eq!(builtin["SSL_ports"].check(&facts("10.0.0.1", "a.test", 443, &get, None)), Verdict::Yes);
        assert_eq!(builtin["SSL_ports"].check(&facts("10.0.0.1", "a.test", 8443, &get, None)), Verdict::No);
    }
}
