use base64::Engine;
use http::Request;
use serde_json::json;
use strait_config::{BasicCredential, Config, Consumer as ConsumerSpec};

use super::*;
use crate::consumer_auth::test_ctx;

/// alice signs in with a bcrypt hash, bob with a plain password; guest has no credentials.
fn consumers() -> Config {
    let mut alice = ConsumerSpec { username: "alice".into(), custom_id: Some("c-1".into()), ..Default::default() };
    let hash = bcrypt::hash("wonderland", 4).unwrap();
    alice.credentials.basic_auth = vec![BasicCredential { username: "alice".into(), password: hash }];
    let mut bob = ConsumerSpec { username: "bob".into(), ..Default::default() };
    bob.credentials.basic_auth = vec![BasicCredential { username: "bob@example".into(), password: "builder".into() }];
    let guest = ConsumerSpec { username: "guest".into(), ..Default::default() };
    Config { consumers: vec![alice, bob, guest], ..Default::default() }
}

fn settings(config_block: serde_json::Value) -> Result<Settings, PluginError> {
    let block: BasicAuthConfig =
        serde_json::from_value(config_block).map_err(|e| PluginError::at("", e.to_string()))?;
    Settings::compile(block, &BuildEnv { config: &consumers() })
}

fn basic(user_password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password))
}

fn get(authorization: &[&str]) -> request::Parts {
    let mut builder = Request::get("/");
    for value in authorization {
        builder = builder.header("authorization", *value);
    }
    builder.body(()).unwrap().into_parts().0
}

/// Runs the filter to its end on a current-thread runtime, as a worker would.
fn run(settings: &Settings, request: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(settings.check(request, ctx).resolve())
}

#[test]
fn defaults_are_kongs_with_strait_as_the_realm() {
    let config: BasicAuthConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!(config, BasicAuthConfig { hide_credentials: false, anonymous: None, realm: "strait".into() });
    assert_eq!(basic_auth_plugin().priority(), 1100);
    let factory = basic_auth_plugin().build(&serde_json::Value::Null, &BuildEnv { config: &consumers() }).unwrap();
    assert_eq!(factory.name(), "basic_auth");
}

#[test]
fn a_bcrypt_user_is_verified_once_and_then_remembered() {
    let settings = settings(json!({})).unwrap();
    let mut first = get(&[&basic("alice:wonderland")]);
    let mut ctx = test_ctx("127.0.0.1");
    assert!(matches!(settings.check(&mut first, &mut ctx), Phase::Wait(_)), "bcrypt is waited for");
    assert!(matches!(run(&settings, &mut first, &mut ctx), Flow::Continue));
    assert_eq!(first.headers["x-consumer-username"], "alice");
    assert_eq!(first.headers["x-consumer-custom-id"], "c-1");
    assert_eq!(first.headers["x-credential-identifier"], "alice");
    assert!(first.headers.contains_key("authorization"), "kept unless hidden");
    let mut again = get(&[&basic("alice:wonderland")]);
    let mut ctx = test_ctx("127.0.0.1");
    let Phase::Ready(Flow::Continue) = settings.check(&mut again, &mut ctx) else { panic!("not remembered") };
    assert_eq!(ctx.consumer.as_ref().unwrap().username.as_ref(), "alice");
    // A wrong password is not remembered: it is checked (and refused) every time.
    for _ in 0..2 {
        let mut wrong = get(&[&basic("alice:wonderlanD")]);
        assert!(matches!(settings.check(&mut wrong, &mut test_ctx("127.0.0.1")), Phase::Wait(_)));
        assert!(matches!(run(&settings, &mut wrong, &mut test_ctx("127.0.0.1")), Flow::Respond(_)));
    }
}

#[test]
fn a_plain_password_is_compared_without_waiting() {
    let settings = settings(json!({ "hide_credentials": true })).unwrap();
    let mut request = get(&[&basic("bob@example:builder")]);
    let mut ctx = test_ctx("127.0.0.1");
    let Phase::Ready(Flow::Continue) = settings.check(&mut request, &mut ctx) else { panic!("refused") };
    assert_eq!(request.headers["x-consumer-username"], "bob");
    assert_eq!(request.headers["x-credential-identifier"], "bob@example");
    assert!(request.headers.get("authorization").is_none(), "hidden");
}

#[test]
fn missing_and_wrong_credentials_are_refused_with_the_challenge() {
    let settings = settings(json!({ "realm": "admin area" })).unwrap();
    let twice = basic("bob@example:builder");
    for (authorization, why) in [
        (&[][..], "no basic-auth credentials found"),
        (&["Bearer abc"][..], "no basic-auth credentials found"),
        (&[&*basic("bob@example:wrong")][..], "invalid authentication credentials"),
        (&[&*basic("carol:builder")][..], "invalid authentication credentials"),
        (&[&*basic("no colon")][..], "invalid authentication credentials"),
        (&["Basic !!!"][..], "invalid authentication credentials"),
        (&["Basic"][..], "invalid authentication credentials"),
        (&[&*twice, &*twice][..], "invalid authentication credentials"),
    ] {
        let Flow::Respond(answer) = run(&settings, &mut get(authorization), &mut test_ctx("127.0.0.1")) else {
            panic!("{authorization:?} passed")
        };
        assert_eq!(answer.status, 401);
        assert_eq!(answer.headers["www-authenticate"], "Basic realm=\"admin area\"");
        assert!(String::from_utf8_lossy(&answer.body).contains(why), "{authorization:?}: {:?}", answer.body);
    }
}

#[test]
fn the_scheme_is_case_insensitive_and_padding_optional() {
    let settings = settings(json!({})).unwrap();
    let unpadded = basic("bob@example:builder").trim_end_matches('=').replace("Basic ", "bAsIc   ");
    let mut request = get(&[&unpadded]);
    assert!(matches!(run(&settings, &mut request, &mut test_ctx("127.0.0.1")), Flow::Continue), "{unpadded}");
    let mut colon_in_password = get(&[&basic("bob@example:builder:extra")]);
    assert!(matches!(run(&settings, &mut colon_in_password, &mut test_ctx("127.0.0.1")), Flow::Respond(_)));
}

#[test]
fn the_anonymous_consumer_stands_in_and_hidden_credentials_stay_hidden() {
    let settings = settings(json!({ "anonymous": "guest", "hide_credentials": true })).unwrap();
    let mut request = get(&[&basic("alice:wrong")]);
    let mut ctx = test_ctx("127.0.0.1");
    assert!(matches!(run(&settings, &mut request, &mut ctx), Flow::Continue));
    assert_eq!(request.headers["x-consumer-username"], "guest");
    assert_eq!(request.headers["x-anonymous-consumer"], "true");
    assert!(request.headers.get("authorization").is_none());
}

#[test]
fn bad_settings_and_passwords_are_refused() {
    let error = settings(json!({ "anonymous": "nobody" })).unwrap_err();
    assert_eq!(error.path, "anonymous");
    let error = settings(json!({ "realm": "" })).unwrap_err();
    assert_eq!(error.path, "realm");
    let mut config = consumers();
    config.consumers[1].credentials.basic_auth[0].password = "$apr1$x$y".into();
    let error = basic_auth_plugin().build(&json!({}), &BuildEnv { config: &config }).unwrap_err();
    assert!(error.message.starts_with("consumers[1].credentials.basic_auth[0].password looks like"), "{error:?}");
    let mut config = consumers();
    config.consumers[1].credentials.basic_auth[0].username = "bob:the:builder".into();
    let error = basic_auth_plugin().build(&json!({}), &BuildEnv { config: &config }).unwrap_err();
    assert!(error.message.contains("basic_auth[0].username contains `:`"), "{error:?}");
    let unknown = basic_auth_plugin().build(&json!({ "users": [] }), &BuildEnv { config: &config }).unwrap_err();
    assert!(unknown.message.contains("unknown field `users`"), "{}", unknown.message);
}
