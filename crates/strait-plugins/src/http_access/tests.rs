use http::Request;
use serde_json::json;
use strait_http::consumer::{Consumer, Credential};

use super::*;
use crate::consumer_auth::test_ctx;

/// The brief's example: Squid's safe ports, blocked sites for everyone, the internal network.
fn example() -> serde_json::Value {
    json!({
        "acls": {
            "internal_network": { "src": ["10.0.0.0/8"] },
            "blocked_sites": { "dstdomain": [".facebook.com", ".twitter.com", ".tiktok.com"] },
            "staff": { "group": ["staff"] },
        },
        "rules": [
            { "deny": ["!Safe_ports"] },
            { "deny": ["CONNECT", "!SSL_ports"] },
            { "deny": ["blocked_sites"] },
            { "allow": ["internal_network"] },
            { "deny": ["all"] },
        ],
    })
}

fn rules(block: serde_json::Value) -> Result<Rules, PluginError> {
    let config: HttpAccessConfig = serde_json::from_value(block).map_err(|e| PluginError::at("", e.to_string()))?;
    Rules::compile(&config.acls, &config.rules)
}

fn user(name: &str, groups: &[&str]) -> Consumer {
    let credential = Credential { kind: "proxy_auth", id: name.into() };
    Consumer::new(name.into(), None, groups.iter().map(|g| (*g).into()).collect(), Some(credential))
}

/// Runs the filter's check for `GET uri` (or `CONNECT authority`) from `client`.
fn answer(rules: &Rules, method: &str, target: &str, client: &str, consumer: Option<Consumer>) -> Flow {
    let host = target.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let request = Request::builder().method(method).uri(target).header("host", host).body(()).unwrap();
    let mut ctx = test_ctx(client);
    ctx.consumer = consumer;
    check(rules, &request.into_parts().0, &mut ctx)
}

/// The status and the body's last part (after the reason code), or 200 for a pass.
fn outcome(flow: Flow) -> (u16, String) {
    match flow {
        Flow::Continue => (200, String::new()),
        Flow::Respond(answer) => {
            let body = String::from_utf8_lossy(&answer.body).into_owned();
            let code = answer.reason.map(Reason::code).unwrap_or("-");
            let why = body.split_once(&format!("{code}: ")).map_or(body.clone(), |(_, why)| why.trim_end().to_owned());
            (answer.status.as_u16(), why)
        }
    }
}

#[test]
fn the_first_matching_rule_decides_and_the_page_names_it() {
    let rules = rules(example()).unwrap();
    let run = |method, target, client| outcome(answer(&rules, method, target, client, None));
    assert_eq!(run("GET", "http://example.test/", "10.1.2.3"), (200, String::new()));
    assert_eq!(run("GET", "http://www.facebook.com/", "10.1.2.3"), (403, "rules[2]: deny blocked_sites".into()));
    assert_eq!(run("GET", "http://example.test:25/", "10.1.2.3"), (403, "rules[0]: deny !Safe_ports".into()));
    assert_eq!(run("CONNECT", "example.test:443", "10.1.2.3"), (200, String::new()));
    assert_eq!(run("CONNECT", "example.test:8443", "10.1.2.3"), (403, "rules[1]: deny CONNECT !SSL_ports".into()));
    assert_eq!(run("GET", "http://example.test/", "192.0.2.1"), (403, "rules[4]: deny all".into()));
}

#[test]
fn what_no_rule_matches_is_denied() {
    let rules = rules(json!({
        "acls": { "internal_network": { "src": ["10.0.0.0/8"] } },
        "rules": [{ "allow": ["internal_network"] }],
    }))
    .unwrap();
    let (status, why) = outcome(answer(&rules, "GET", "http://example.test/", "192.0.2.1", None));
    assert_eq!((status, why.as_str()), (403, "no rule matched (the default is deny)"));
    let Flow::Respond(page) = answer(&rules, "GET", "http://example.test/", "192.0.2.1", None) else { panic!() };
    assert_eq!(page.reason, Some(Reason::ProxyAccessDenied));
    assert!(page.body.starts_with(b"403 Forbidden: proxy_access_denied: "));
}

#[test]
fn acls_of_a_rule_are_anded_and_negation_inverts_one() {
    let rules = rules(json!({
        "acls": {
            "office": { "src": ["10.0.0.0/8"] },
            "lab": { "src": ["10.9.0.0/16"] },
            "search": { "dstdom_regex": ["^search\\."] },
            "posts": { "method": ["POST"] },
        },
        "rules": [
            { "deny": ["office", "posts", "search"] },
            { "allow": ["office", "!lab"] },
        ],
    }))
    .unwrap();
    let run = |method, target, client| outcome(answer(&rules, method, target, client, None)).0;
    assert_eq!(run("POST", "http://search.test/", "10.1.0.1"), 403, "all three match");
    assert_eq!(run("GET", "http://search.test/", "10.1.0.1"), 200, "not a POST");
    assert_eq!(run("POST", "http://other.test/", "10.1.0.1"), 200);
    assert_eq!(run("GET", "http://other.test/", "10.9.0.1"), 403, "the lab is not allowed");
}

#[test]
fn every_acl_type_decides_a_rule() {
    let block = |acl: serde_json::Value| json!({ "acls": { "it": acl }, "rules": [{ "allow": ["it"] }] });
    let alice = || Some(user("alice", &["staff"]));
    for (acl, method, target, client, consumer, expected) in [
        (json!({ "src": ["10.0.0.0/8"] }), "GET", "http://a.test/", "10.0.0.1", None, 200),
        (json!({ "src": ["10.0.0.0/8"] }), "GET", "http://a.test/", "11.0.0.1", None, 403),
        (json!({ "dstdomain": [".a.test"] }), "GET", "http://www.a.test/", "11.0.0.1", None, 200),
        (json!({ "dstdomain": ["a.test"] }), "GET", "http://www.a.test/", "11.0.0.1", None, 403),
        (json!({ "dstdom_regex": ["\\.test$"] }), "GET", "http://a.test/", "11.0.0.1", None, 200),
        (json!({ "dst": ["192.0.2.0/24"] }), "GET", "http://192.0.2.8/", "11.0.0.1", None, 200),
        (json!({ "dst": ["192.0.2.0/24"] }), "GET", "http://a.test/", "11.0.0.1", None, 403),
        (json!({ "port": ["8000-8999"] }), "GET", "http://a.test:8080/", "11.0.0.1", None, 200),
        (json!({ "port": ["8000-8999"] }), "GET", "http://a.test/", "11.0.0.1", None, 403),
        (json!({ "method": ["GET"] }), "GET", "http://a.test/", "11.0.0.1", None, 200),
        (json!({ "method": ["GET"] }), "HEAD", "http://a.test/", "11.0.0.1", None, 403),
        (json!({ "proxy_auth": ["alice"] }), "GET", "http://a.test/", "11.0.0.1", alice(), 200),
        (json!({ "proxy_auth": ["bob"] }), "GET", "http://a.test/", "11.0.0.1", alice(), 403),
        (json!({ "proxy_auth": ["REQUIRED"] }), "GET", "http://a.test/", "11.0.0.1", alice(), 200),
        (json!({ "proxy_auth_group": ["staff"] }), "GET", "http://a.test/", "11.0.0.1", alice(), 200),
        (json!({ "group": ["ops"] }), "GET", "http://a.test/", "11.0.0.1", alice(), 403),
    ] {
        let rules = rules(block(acl.clone())).unwrap();
        let got = outcome(answer(&rules, method, target, client, consumer));
        assert_eq!(got.0, expected, "{acl} {method} {target} from {client}: {got:?}");
    }
}

#[test]
fn a_rule_that_needs_a_user_challenges_with_407() {
    let rules = rules(json!({
        "acls": { "office": { "src": ["10.0.0.0/8"] }, "staff": { "group": ["staff"] } },
        "rules": [{ "allow": ["office", "staff"] }, { "deny": ["all"] }],
    }))
    .unwrap();
    let request = || Request::get("http://a.test/").header("host", "a.test").body(()).unwrap().into_parts().0;
    // From outside the office, the first ACL decides: no user needed to refuse.
    let mut outside = test_ctx("192.0.2.1");
    assert_eq!(outcome(check(&rules, &request(), &mut outside)), (403, "rules[1]: deny all".into()));
    let mut office = test_ctx("10.0.0.1");
    let Flow::Respond(challenge) = check(&rules, &request(), &mut office) else { panic!("no challenge") };
    assert_eq!((challenge.status.as_u16(), challenge.reason), (407, Some(Reason::ProxyAuthRequired)));
    assert_eq!(challenge.headers["proxy-authenticate"], "Basic realm=\"strait\"");
    assert!(
        String::from_utf8_lossy(&challenge.body).contains("rules[0]: allow office staff needs an authenticated user")
    );
    // The realm of the proxy_auth filter that let the request go on, when there is one.
    let mut office = test_ctx("10.0.0.1");
    office.extensions.insert(ProxyChallenge(HeaderValue::from_static("Basic realm=\"office\"")));
    let Flow::Respond(challenge) = check(&rules, &request(), &mut office) else { panic!("no challenge") };
    assert_eq!(challenge.headers["proxy-authenticate"], "Basic realm=\"office\"");
    // A user: 200 for staff, 403 for others; the anonymous stand-in of a gateway filter is no user.
    let mut staff = test_ctx("10.0.0.1");
    staff.consumer = Some(user("alice", &["staff"]));
    assert!(matches!(check(&rules, &request(), &mut staff), Flow::Continue));
    let mut other = test_ctx("10.0.0.1");
    other.consumer = Some(user("bob", &[]));
    assert_eq!(outcome(check(&rules, &request(), &mut other)).0, 403);
    let mut anonymous = test_ctx("10.0.0.1");
    anonymous.consumer = Some(Consumer::new("guest".into(), None, vec!["staff".into()].into(), None));
    assert_eq!(outcome(check(&rules, &request(), &mut anonymous)).0, 407);
}

#[test]
fn a_connect_outside_ssl_ports_needs_a_rule_that_names_its_port() {
    let rules = rules(json!({
        "acls": { "office": { "src": ["10.0.0.0/8"] }, "mail": { "port": [587] }, "SSL_ports": { "port": [443, 8443] } },
        "rules": [{ "allow": ["office"] }, { "allow": ["office", "CONNECT", "mail"] }],
    }))
    .unwrap();
    let run = |target| outcome(answer(&rules, "CONNECT", target, "10.0.0.1", None));
    assert_eq!(run("a.test:443").0, 200);
    assert_eq!(run("a.test:8443").0, 200, "SSL_ports redefined");
    assert_eq!(run("a.test:587").0, 200, "the second rule names the port");
    let (status, why) = run("a.test:25");
    assert_eq!(status, 403);
    assert!(
        why.starts_with("no rule matched (the default is deny) (`rules[0]: allow office` matched, but a CONNECT"),
        "{why}"
    );
    let plain = outcome(answer(&rules, "GET", "http://a.test:25/", "10.0.0.1", None));
    assert_eq!(plain.0, 200, "only CONNECT is held to SSL_ports");
}

#[test]
fn empty_rules_are_squids_safe_default() {
    let rules = rules(json!({})).unwrap();
    let run = |method, target, client| outcome(answer(&rules, method, target, client, None));
    assert_eq!(run("GET", "http://a.test/", "127.0.0.1").0, 200);
    assert_eq!(run("GET", "http://a.test/", "::1").0, 200);
    assert_eq!(run("GET", "http://a.test/", "10.0.0.1"), (403, "default rules[3]: deny all".into()));
    assert_eq!(run("GET", "http://a.test:22/", "127.0.0.1"), (403, "default rules[0]: deny !Safe_ports".into()));
    assert_eq!(run("CONNECT", "a.test:8080", "127.0.0.1"), (403, "default rules[1]: deny CONNECT !SSL_ports".into()));
    assert_eq!(run("CONNECT", "a.test:443", "127.0.0.1").0, 200);
}

#[test]
fn bad_settings_are_refused_at_their_field() {
    for (block, path, message) in [
        (json!({ "rules": [{ "allow": ["nope"] }] }), "rules[0].allow[0]", "unknown ACL `nope`; ACLs: all, localhost"),
        (json!({ "rules": [{ "deny": ["all"] }, { "deny": ["!nope"] }] }), "rules[1].deny[0]", "unknown ACL `nope`"),
        (json!({ "acls": { "all": { "src": ["::1"] } } }), "acls.all", "built in"),
        (json!({ "acls": { "x": { "src": ["nope"] } } }), "acls.x.src[0]", "not an IP address"),
        (json!({ "acls": { "SSL_ports": { "method": ["GET"] } } }), "acls.SSL_ports", "must be a `port` ACL"),
    ] {
        let error = rules(block.clone()).unwrap_err();
        assert_eq!(error.path, path, "{block}: {error:?}");
        assert!(error.message.contains(message), "{block}: {}", error.message);
    }
    let env = BuildEnv { config: &strait_config::Config::default() };
    let typo = http_access_plugin().build(&json!({ "rule": [] }), &env).unwrap_err();
    assert!(typo.message.contains("unknown field `rule`"), "{}", typo.message);
    let both = http_access_plugin().build(&json!({ "rules": [{ "allow": [], "deny": [] }] }), &env).unwrap_err();
    assert_eq!(both.path, "rules[0]", "{both:?}");
    assert_eq!(http_access_plugin().priority(), HTTP_ACCESS_PRIORITY);
    assert!(http_access_plugin().build(&serde_json::Value::Null, &env).is_ok());
}

#[test]
fn rules_that_never_take_effect_are_warned_about() {
    let env = BuildEnv { config: &strait_config::Config::default() };
    let warnings = |block: serde_json::Value| -> Vec<(String, String)> {
        http_access_plugin().warnings(&block, &env).into_iter().map(|w| (w.path, w.message)).collect()
    };
    // The literal translation of the seed's squid.conf: the deny after `deny all`.
    let literal = warnings(json!({
        "acls": { "internal_network": { "src": ["10.0.0.0/8"] }, "blocked_sites": { "dstdomain": [".facebook.com"] } },
        "rules": [{ "allow": ["internal_network"] }, { "deny": ["all"] }, { "deny": ["blocked_sites"] }],
    }));
    assert_eq!(
        literal,
        [(
            "rules[2]".to_owned(),
            "`rules[2]: deny blocked_sites` never takes effect: `rules[1]: deny all` decides every request".to_owned()
        )]
    );
    assert!(warnings(example()).iter().all(|(path, _)| path == "acls.staff"), "{:?}", warnings(example()));
    let found = warnings(json!({
        "acls": { "a": { "src": ["10.0.0.0/8"] }, "b": { "method": ["GET"] }, "p": { "port": [8443] }, "unused": { "src": ["::1"] } },
        "rules": [
            { "allow": ["a"] },
            { "allow": ["b", "a"] },
            { "allow": ["a", "CONNECT", "p"] },
            { "deny": ["!all"] },
            { "allow": [] },
            { "deny": ["b"] },
        ],
    }));
    let paths: Vec<&str> = found.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(paths, ["rules[1]", "rules[3]", "rules[5]", "acls.unused"], "{found:#?}");
    assert!(found[0].1.contains("`rules[0]: allow a` already decides every request it matches"), "{}", found[0].1);
    assert!(found[1].1.contains("never matches"), "{}", found[1].1);
    assert!(found[2].1.contains("`rules[4]: allow` decides every request"), "{}", found[2].1);
    assert!(warnings(json!({})).is_empty(), "the defaults shadow nothing");
    assert!(warnings(json!({ "rules": "nonsense" })).is_empty(), "errors are the build's to report");
}

#[test]
fn squid_style_definitions_of_the_builtin_acls_are_accepted() {
    let block = json!({
        "acls": {
            "internal_network": { "src": ["10.0.0.0/8"] },
            "blocked_sites": { "dstdomain": [".facebook.com", ".twitter.com", ".tiktok.com"] },
            "SSL_ports": { "port": [443] },
            "Safe_ports": { "port": [80, 21, 443, 70, 210, "1025-65535", 280, 488, 591, 777] },
            "CONNECT": { "method": ["CONNECT"] },
        },
        "rules": [
            { "deny": ["!Safe_ports"] },
            { "deny": ["CONNECT", "!SSL_ports"] },
            { "deny": ["blocked_sites"] },
            { "allow": ["internal_network"] },
            { "deny": ["all"] },
        ],
    });
    let env = BuildEnv { config: &strait_config::Config::default() };
    assert!(http_access_plugin().warnings(&block, &env).is_empty());
    let rules = rules(block).unwrap();
    let run = |method, target| outcome(answer(&rules, method, target, "10.1.2.3", None));
    assert_eq!(run("GET", "http://tiktok.com/"), (403, "rules[2]: deny blocked_sites".into()));
    assert_eq!(run("GET", "http://example.test:8080/").0, 200);
    assert_eq!(run("CONNECT", "example.test:443").0, 200);
    assert_eq!(run("CONNECT", "example.test:22").0, 403);
}
