use http::Request;
use serde_json::json;
use strait_config::{Config, Consumer as ConsumerSpec, KeyCredential};

use super::*;
use crate::consumer_auth::test_ctx;

/// alice has two keys; guest has none.
fn consumers() -> Config {
    let mut alice = ConsumerSpec { username: "alice".into(), groups: vec!["staff".into()], ..Default::default() };
    alice.credentials.key_auth = vec![KeyCredential { key: "k-old".into() }, KeyCredential { key: "k-alice".into() }];
    let guest = ConsumerSpec { username: "guest".into(), ..Default::default() };
    Config { consumers: vec![alice, guest], ..Default::default() }
}

fn settings(config_block: serde_json::Value) -> Result<Settings, PluginError> {
    let block: KeyAuthConfig = serde_json::from_value(config_block).map_err(|e| PluginError::at("", e.to_string()))?;
    Settings::compile(block, &BuildEnv { config: &consumers() })
}

fn get(uri: &str, headers: &[(&str, &str)]) -> request::Parts {
    let mut builder = Request::get(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

/// Runs the filter on a request; the status of its answer, if it refused.
fn run(settings: &Settings, request: &mut request::Parts, ctx: &mut RequestCtx) -> Option<u16> {
    match settings.check(request, ctx) {
        Flow::Continue => None,
        Flow::Respond(answer) => Some(answer.status.as_u16()),
    }
}

#[test]
fn defaults_are_kongs() {
    let config: KeyAuthConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!(config.key_names, ["apikey"]);
    assert!(config.key_in_header && config.key_in_query && !config.hide_credentials);
    assert_eq!((config.anonymous, config.realm.as_str()), (None, "strait"));
    let factory = key_auth_plugin().build(&serde_json::Value::Null, &BuildEnv { config: &consumers() }).unwrap();
    assert_eq!(factory.name(), "key_auth");
    assert_eq!(key_auth_plugin().priority(), 1250);
}

#[test]
fn a_key_in_the_header_identifies_its_consumer_by_a_label_not_the_key() {
    let settings = settings(json!({})).unwrap();
    let mut request = get("/x?a=1", &[("apikey", "k-alice"), ("x-consumer-username", "mallory")]);
    let mut ctx = test_ctx("127.0.0.1");
    assert_eq!(run(&settings, &mut request, &mut ctx), None);
    assert_eq!(request.headers["x-consumer-username"], "alice");
    assert_eq!(request.headers["x-credential-identifier"], "alice#1");
    assert_eq!(request.headers["apikey"], "k-alice", "not hidden by default");
    let consumer = ctx.consumer.as_ref().unwrap();
    assert_eq!(consumer.credential.as_ref().unwrap().kind, "key_auth");
    assert!(consumer.in_group("staff"));
}

#[test]
fn a_key_in_the_query_is_decoded_and_hidden_on_request() {
    let settings = settings(json!({ "key_names": ["X-Api-Key"], "hide_credentials": true })).unwrap();
    let mut request = get("/x?a=%41&X-Api-Key=k%2Dalice&b=2", &[]);
    assert_eq!(run(&settings, &mut request, &mut test_ctx("127.0.0.1")), None);
    assert_eq!(request.uri, "/x?a=%41&b=2");
    assert_eq!(request.headers["x-consumer-username"], "alice");
    // The header name matches case-insensitively; the header is removed.
    let mut request = get("/x?only=1", &[("x-api-key", "k-old")]);
    assert_eq!(run(&settings, &mut request, &mut test_ctx("127.0.0.1")), None);
    assert!(request.headers.get("x-api-key").is_none());
    assert_eq!(request.headers["x-credential-identifier"], "alice#0");
    let mut request = get("/x?X-Api-Key=k-old", &[]);
    assert_eq!(run(&settings, &mut request, &mut test_ctx("127.0.0.1")), None);
    assert_eq!(request.uri, "/x");
}

#[test]
fn missing_wrong_and_duplicate_keys_are_refused_with_the_challenge() {
    let settings = settings(json!({ "realm": "api" })).unwrap();
    for (uri, headers, why) in [
        ("/x", &[][..], "no API key found in request"),
        ("/x", &[("apikey", "k-bob")][..], "invalid authentication credentials"),
        ("/x?apikey=k-alice", &[("apikey", "wrong")][..], "invalid authentication credentials"),
        ("/x?apikey=k-alice&apikey=k-old", &[][..], "duplicate API key found"),
        ("/x", &[("apikey", "k-alice"), ("apikey", "k-alice")][..], "duplicate API key found"),
    ] {
        let mut request = get(uri, headers);
        let mut ctx = test_ctx("127.0.0.1");
        let Flow::Respond(answer) = settings.check(&mut request, &mut ctx) else { panic!("{uri} {headers:?} passed") };
        assert_eq!(answer.status, 401);
        assert_eq!(answer.headers["www-authenticate"], "Key realm=\"api\"");
        assert!(String::from_utf8_lossy(&answer.body).contains(why), "{uri} {headers:?}: {:?}", answer.body);
        assert!(ctx.consumer.as_ref().is_none());
    }
}

#[test]
fn where_keys_are_looked_for_follows_the_switches() {
    let header_only = settings(json!({ "key_in_query": false })).unwrap();
    assert_eq!(run(&header_only, &mut get("/?apikey=k-alice", &[]), &mut test_ctx("127.0.0.1")), Some(401));
    let query_only = settings(json!({ "key_in_header": false })).unwrap();
    assert_eq!(run(&query_only, &mut get("/", &[("apikey", "k-alice")]), &mut test_ctx("127.0.0.1")), Some(401));
    assert_eq!(run(&query_only, &mut get("/?apikey=k-alice", &[]), &mut test_ctx("127.0.0.1")), None);
    // Names are tried in order, each in the header and then the query.
    let two = settings(json!({ "key_names": ["a", "b"] })).unwrap();
    let mut both = get("/?a=k-old", &[("b", "k-alice")]);
    assert_eq!(run(&two, &mut both, &mut test_ctx("127.0.0.1")), None);
    assert_eq!(both.headers["x-credential-identifier"], "alice#0");
}

#[test]
fn the_anonymous_consumer_stands_in_for_a_missing_or_wrong_key() {
    let settings = settings(json!({ "anonymous": "guest", "hide_credentials": true })).unwrap();
    let mut request = get("/?apikey=nope", &[("x-anonymous-consumer", "false")]);
    let mut ctx = test_ctx("127.0.0.1");
    assert_eq!(run(&settings, &mut request, &mut ctx), None);
    assert_eq!(request.headers["x-consumer-username"], "guest");
    assert_eq!(request.headers["x-anonymous-consumer"], "true");
    assert_eq!(request.uri, "/", "a wrong key is hidden too");
    assert!(ctx.consumer.as_ref().unwrap().credential.is_none());
}

#[test]
fn with_anonymous_a_consumer_authenticated_earlier_is_kept() {
    let settings = settings(json!({ "anonymous": "guest" })).unwrap();
    let mut ctx = test_ctx("127.0.0.1");
    let earlier =
        Consumer::new("bob".into(), None, Arc::new([]), Some(Credential { kind: "basic_auth", id: "bob".into() }));
    ctx.consumer = Some(earlier.clone());
    let mut request = get("/", &[]);
    assert_eq!(run(&settings, &mut request, &mut ctx), None);
    assert_eq!(ctx.consumer.as_ref(), Some(&earlier));
    assert!(request.headers.get("x-anonymous-consumer").is_none());
}

#[test]
fn bad_settings_are_refused_on_their_field() {
    for (block, path, message) in [
        (json!({ "anonymous": "nobody" }), "anonymous", "unknown consumer `nobody`"),
        (json!({ "key_names": [] }), "key_names", "at least one"),
        (json!({ "key_names": ["ok", "bad name"] }), "key_names[1]", "not a valid header name"),
        (json!({ "key_names": ["apikey", "ApiKey"] }), "key_names[1]", "listed twice"),
        (json!({ "key_in_header": false, "key_in_query": false }), "key_in_query", "no key could be found"),
        (json!({ "realm": "a\"b" }), "realm", "printable"),
    ] {
        let error = settings(block.clone()).unwrap_err();
        assert_eq!(error.path, path, "{block}");
        assert!(error.message.contains(message), "{block}: {}", error.message);
    }
    let env = BuildEnv { config: &consumers() };
    let unknown = key_auth_plugin().build(&json!({ "key_name": ["x"] }), &env).unwrap_err();
    assert!(unknown.message.contains("unknown field `key_name`"), "{}", unknown.message);
}
