use base64::Engine;
use http::Request;
use serde_json::json;

use super::*;
use crate::consumer_auth::test_ctx;

/// alice and bob with bcrypt hashes (`wonderland`, `builder`); alice is staff.
fn settings(block: serde_json::Value) -> Result<Settings, PluginError> {
    let mut block = block;
    block["htpasswd"] = json!("users");
    let config: ProxyAuthConfig = serde_json::from_value(block).map_err(|e| PluginError::at("", e.to_string()))?;
    let text =
        format!("alice:{}\nbob:{}\n", bcrypt::hash("wonderland", 4).unwrap(), bcrypt::hash("builder", 4).unwrap());
    Settings::compile(config, htpasswd::parse(&text, "users", "htpasswd")?)
}

fn basic(user_password: &str) -> HeaderValue {
    let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password));
    HeaderValue::from_str(&value).unwrap()
}

/// An absolute-form request, with `Proxy-Authorization` as the driver keeps it.
fn proxied(credentials: Option<HeaderValue>) -> request::Parts {
    let mut parts = Request::get("http://example.test/").body(()).unwrap().into_parts().0;
    if let Some(value) = credentials {
        parts.extensions.insert(ProxyAuthorization(value));
    }
    parts
}

fn run(settings: &Settings, request: &request::Parts, ctx: &mut RequestCtx) -> Flow {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(settings.check(request, ctx).resolve())
}

#[test]
fn a_valid_user_becomes_the_consumer_with_its_groups_and_no_header() {
    let settings = settings(json!({ "groups": { "staff": ["alice"], "ops": ["alice", "bob"] } })).unwrap();
    let mut request = proxied(Some(basic("alice:wonderland")));
    let mut ctx = test_ctx("10.0.0.1");
    assert!(matches!(settings.check(&request, &mut ctx), Phase::Wait(_)), "bcrypt is waited for");
    assert!(matches!(run(&settings, &request, &mut ctx), Flow::Continue));
    let consumer = ctx.consumer.as_ref().expect("identified");
    assert_eq!(&*consumer.username, "alice");
    assert!(consumer.in_group("staff") && consumer.in_group("ops") && !consumer.in_group("root"));
    assert_eq!(consumer.credential.as_ref().map(|c| c.kind), Some("proxy_auth"));
    assert!(request.headers.is_empty(), "nothing told to the origin: {:?}", request.headers);
    // Verified once, then remembered.
    let mut ctx = test_ctx("10.0.0.1");
    assert!(matches!(settings.check(&request, &mut ctx), Phase::Ready(Flow::Continue)));
    request.extensions.insert(ProxyAuthorization(basic("bob:builder")));
    let mut ctx = test_ctx("10.0.0.1");
    assert!(matches!(run(&settings, &request, &mut ctx), Flow::Continue));
    assert!(ctx.consumer.as_ref().unwrap().in_group("ops") && !ctx.consumer.as_ref().unwrap().in_group("staff"));
}

#[test]
fn missing_or_wrong_credentials_are_407_with_the_challenge() {
    let settings = settings(json!({ "realm": "office proxy" })).unwrap();
    for (credentials, why) in [
        (None, "proxy credentials required"),
        (Some(basic("alice:wrong")), "invalid authentication credentials"),
        (Some(basic("carol:wonderland")), "invalid authentication credentials"),
        (Some(HeaderValue::from_static("Negotiate abc")), "no basic-auth credentials"),
        (Some(HeaderValue::from_static("Basic !!!")), "invalid authentication credentials"),
    ] {
        let mut ctx = test_ctx("10.0.0.1");
        let Flow::Respond(answer) = run(&settings, &proxied(credentials.clone()), &mut ctx) else {
            panic!("{credentials:?} passed")
        };
        assert_eq!((answer.status.as_u16(), answer.reason), (407, Some(Reason::ProxyAuthRequired)));
        assert_eq!(answer.headers[PROXY_AUTHENTICATE], "Basic realm=\"office proxy\"");
        let body = String::from_utf8_lossy(&answer.body);
        assert!(body.starts_with("407 Proxy Authentication Required: proxy_auth_required: "), "{body}");
        assert!(body.contains(why), "{credentials:?}: {body}");
        assert!(ctx.consumer.is_none());
    }
}

#[test]
fn when_not_required_only_requests_with_credentials_are_identified() {
    let settings = settings(json!({ "required": false })).unwrap();
    let mut ctx = test_ctx("10.0.0.1");
    assert!(matches!(run(&settings, &proxied(None), &mut ctx), Flow::Continue));
    assert!(ctx.consumer.is_none());
    let left = ctx.extensions.get::<ProxyChallenge>().expect("the challenge is left for http_access");
    assert_eq!(left.0, "Basic realm=\"strait\"");
    let mut ctx = test_ctx("10.0.0.1");
    assert!(matches!(run(&settings, &proxied(Some(basic("bob:wrong"))), &mut ctx), Flow::Respond(_)));
}

#[test]
fn requests_for_the_proxy_itself_are_not_challenged() {
    let settings = settings(json!({})).unwrap();
    let pac = Request::get("/proxy.pac").body(()).unwrap().into_parts().0;
    assert!(matches!(run(&settings, &pac, &mut test_ctx("10.0.0.1")), Flow::Continue));
    let connect = Request::connect("example.test:443").body(()).unwrap().into_parts().0;
    assert!(matches!(run(&settings, &connect, &mut test_ctx("10.0.0.1")), Flow::Respond(_)), "CONNECT is");
}

#[test]
fn settings_are_checked_at_their_field() {
    let unknown_member = settings(json!({ "groups": { "staff": ["alice", "carol"] } })).unwrap_err();
    assert_eq!(unknown_member.path, "groups.staff[1]");
    assert_eq!(unknown_member.message, "`carol` is not a user of `users`");
    assert_eq!(settings(json!({ "realm": "a\"b" })).unwrap_err().path, "realm");
    let config = strait_config::Config::default();
    let env = BuildEnv { config: &config };
    let missing = proxy_auth_plugin().build(&json!({}), &env).unwrap_err();
    assert!(missing.message.contains("missing field `htpasswd`"), "{}", missing.message);
    let unreadable = proxy_auth_plugin().build(&json!({ "htpasswd": "/nonexistent/users" }), &env).unwrap_err();
    assert_eq!(unreadable.path, "htpasswd");
    let typo = proxy_auth_plugin().build(&json!({ "htpasswd": "x", "realms": "x" }), &env).unwrap_err();
    assert!(typo.message.contains("unknown field `realms`"), "{}", typo.message);
    assert_eq!(proxy_auth_plugin().priority(), PROXY_AUTH_PRIORITY);
}
