//! The filter as a whole: keys from consumers, the safety rules, claims, cache and anonymous.

use std::rc::Rc;

use http::header::WWW_AUTHENTICATE;
use serde_json::json;
use strait_config::{Config, Consumer as ConsumerSpec, Credentials, JwtAlgorithm, JwtCredential};
use strait_http::consumer::{ANONYMOUS_CONSUMER, CONSUMER_USERNAME, CREDENTIAL_IDENTIFIER};
use strait_http::context::ConnInfo;
use strait_http::{LocalResponse, PluginError};

use super::test_keys::{header, token, TestKey};
use super::*;

const NOW: f64 = 1_700_000_000.0;

/// A configuration whose consumers each own one key: `(username, key, algorithm, public PEM or secret)`.
fn config_with(keys: &[(&str, &str, JwtAlgorithm, String)]) -> Config {
    let mut config = Config::default();
    for (username, key, algorithm, material) in keys {
        let credential = JwtCredential {
            key: key.to_string(),
            algorithm: *algorithm,
            secret: algorithm.is_hmac().then(|| material.clone()),
            rsa_public_key: (!algorithm.is_hmac()).then(|| material.clone()),
        };
        config.consumers.push(ConsumerSpec {
            username: username.to_string(),
            credentials: Credentials { jwt: vec![credential], ..Credentials::default() },
            ..ConsumerSpec::default()
        });
    }
    config.consumers.push(ConsumerSpec { username: "guest".into(), ..ConsumerSpec::default() });
    config
}

fn settings(config: &Config, filter: serde_json::Value) -> Result<Settings, PluginError> {
    let filter: JwtConfig = serde_json::from_value(filter).map_err(|e| PluginError::at("", e.to_string()))?;
    filter.compile(&BuildEnv { config })
}

fn ctx() -> RequestCtx {
    let peer = "127.0.0.1:5000".parse().unwrap();
    let conn = ConnInfo { peer, listener: "web".into(), scheme: "http", version: http::Version::HTTP_11, tls: None };
    RequestCtx::new(Rc::new(conn), peer.ip())
}

fn bearer(token: &str) -> request::Parts {
    let request = http::Request::get("/").header("authorization", format!("Bearer {token}")).header("x-user", "forged");
    request.body(()).unwrap().into_parts().0
}

/// An HS256 setup: consumer `alice` with key `alice-iss` and secret `secret`.
struct Hs {
    config: Config,
    key: TestKey,
}

fn hs() -> Hs {
    Hs {
        config: config_with(&[("alice", "alice-iss", JwtAlgorithm::HS256, "secret".into())]),
        key: TestKey::generate(JwtAlgorithm::HS256),
    }
}

/// Runs the filter on `request` at `NOW`.
fn run(settings: &Settings, request: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
    settings.authenticate_request(request, ctx, NOW, false).expect("no JWKS here")
}

fn refused(flow: Flow) -> LocalResponse {
    match flow {
        Flow::Respond(response) => *response,
        Flow::Continue => panic!("the request was let through"),
    }
}

fn description(flow: Flow) -> String {
    let response = refused(flow);
    assert_eq!(response.status, 401);
    response.headers[WWW_AUTHENTICATE].to_str().unwrap().to_string()
}

#[test]
fn a_valid_token_identifies_its_consumer_and_sends_claims_upstream() {
    let hs = hs();
    let settings =
        settings(&hs.config, json!({ "claims_to_headers": { "sub": "x-user", "roles": "x-roles" } })).unwrap();
    let text = token(&hs.key, &header("HS256"), &json!({ "iss": "alice-iss", "sub": "u-1", "roles": ["a", "b"] }));
    let (mut request, mut ctx) = (bearer(&text), ctx());
    assert!(matches!(run(&settings, &mut request, &mut ctx), Flow::Continue));
    assert_eq!(request.headers[CONSUMER_USERNAME], "alice");
    assert_eq!(request.headers[CREDENTIAL_IDENTIFIER], "alice-iss");
    assert_eq!(request.headers["x-user"], "u-1");
    assert_eq!(request.headers["x-roles"], "a, b");
    let claims = ctx.token.as_ref().expect("claims recorded");
    assert_eq!((&*claims.key, &claims.claims["sub"]), ("alice-iss", &json!("u-1")));
    assert_eq!(ctx.consumer.as_ref().unwrap().credential.as_ref().unwrap().kind, "jwt");
}

#[test]
fn every_algorithm_family_verifies() {
    use JwtAlgorithm::*;
    for algorithm in [HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA] {
        let signer = TestKey::generate(algorithm);
        let material = if algorithm.is_hmac() { "secret".to_string() } else { signer.public_pem() };
        let config = config_with(&[("user", "iss-1", algorithm, material)]);
        let settings = settings(&config, json!({})).unwrap();
        let text = token(&signer, &header(&format!("{algorithm:?}")), &json!({ "iss": "iss-1" }));
        let (mut request, mut ctx) = (bearer(&text), ctx());
        assert!(matches!(run(&settings, &mut request, &mut ctx), Flow::Continue), "{algorithm:?}");
        assert_eq!(request.headers[CONSUMER_USERNAME], "user");
    }
}

#[test]
fn alg_none_is_refused() {
    let hs = hs();
    let settings = settings(&hs.config, json!({})).unwrap();
    let part = |v: serde_json::Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!("{}.{}.", part(header("none")), part(json!({ "iss": "alice-iss" })));
    let challenge = description(run(&settings, &mut bearer(&unsigned), &mut ctx()));
    assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains("not supported"), "{challenge}");
}

#[test]
fn an_hmac_token_made_with_the_public_key_as_secret_is_refused() {
    let rsa = TestKey::generate(JwtAlgorithm::RS256);
    let pem = rsa.public_pem();
    let config = config_with(&[("bob", "bob-iss", JwtAlgorithm::RS256, pem.clone())]);
    let settings = settings(&config, json!({})).unwrap();
    let forger = TestKey::Hmac(JwtAlgorithm::HS256, pem.into_bytes());
    let forged = token(&forger, &header("HS256"), &json!({ "iss": "bob-iss" }));
    let challenge = description(run(&settings, &mut bearer(&forged), &mut ctx()));
    assert!(challenge.contains("not its key"), "{challenge}");
    let other_rsa_alg = token(&rsa, &header("RS384"), &json!({ "iss": "bob-iss" }));
    assert!(description(run(&settings, &mut bearer(&other_rsa_alg), &mut ctx())).contains("not its key"));
}

#[test]
fn keys_named_by_the_token_itself_are_never_trusted() {
    let rsa = TestKey::generate(JwtAlgorithm::RS256);
    let config = config_with(&[("bob", "bob-iss", JwtAlgorithm::RS256, rsa.public_pem())]);
    let settings = settings(&config, json!({})).unwrap();
    let attacker = TestKey::generate(JwtAlgorithm::RS256);
    let header =
        json!({ "alg": "RS256", "jku": "http://evil/jwks", "x5u": "http://evil/cert", "jwk": { "kty": "RSA" } });
    let forged = token(&attacker, &header, &json!({ "iss": "bob-iss" }));
    assert!(description(run(&settings, &mut bearer(&forged), &mut ctx())).contains("invalid signature"));
    let honest = token(&rsa, &header, &json!({ "iss": "bob-iss" }));
    assert!(matches!(run(&settings, &mut bearer(&honest), &mut ctx()), Flow::Continue));
}

#[test]
fn unknown_critical_headers_are_refused() {
    let hs = hs();
    let settings = settings(&hs.config, json!({})).unwrap();
    let text =
        token(&hs.key, &json!({ "alg": "HS256", "crit": ["x-custom"], "x-custom": 1 }), &json!({ "iss": "alice-iss" }));
    assert!(description(run(&settings, &mut bearer(&text), &mut ctx())).contains("critical"));
}

#[test]
fn tampered_tokens_and_unknown_keys_are_refused() {
    let hs = hs();
    let settings = settings(&hs.config, json!({})).unwrap();
    let text = token(&hs.key, &header("HS256"), &json!({ "iss": "alice-iss", "admin": false }));
    let dot = text.rfind('.').unwrap();
    let first = &text[dot + 1..dot + 2];
    let signature_flipped = format!("{}{}{}", &text[..=dot], if first == "A" { "B" } else { "A" }, &text[dot + 2..]);
    assert!(description(run(&settings, &mut bearer(&signature_flipped), &mut ctx())).contains("invalid signature"));
    let other = token(&hs.key, &header("HS256"), &json!({ "iss": "alice-iss", "admin": true }));
    let spliced = format!("{}.{}", &other[..other.rfind('.').unwrap()], &text[text.rfind('.').unwrap() + 1..]);
    assert!(description(run(&settings, &mut bearer(&spliced), &mut ctx())).contains("invalid signature"));
    let unknown = token(&hs.key, &header("HS256"), &json!({ "iss": "mallory" }));
    assert!(description(run(&settings, &mut bearer(&unknown), &mut ctx())).contains("no key is known"));
    let no_iss = token(&hs.key, &header("HS256"), &json!({ "sub": "x" }));
    assert!(description(run(&settings, &mut bearer(&no_iss), &mut ctx())).contains("no iss claim"));
}

#[test]
fn key_claim_name_kid_reads_the_header() {
    let es = TestKey::generate(JwtAlgorithm::ES256);
    let config = config_with(&[("carol", "key-7", JwtAlgorithm::ES256, es.public_pem())]);
    let settings = settings(&config, json!({ "key_claim_name": "kid" })).unwrap();
    let good = token(&es, &json!({ "alg": "ES256", "kid": "key-7" }), &json!({ "iss": "anyone" }));
    let (mut request, mut context) = (bearer(&good), ctx());
    assert!(matches!(run(&settings, &mut request, &mut context), Flow::Continue));
    assert_eq!(request.headers[CONSUMER_USERNAME], "carol");
    let unknown = token(&es, &json!({ "alg": "ES256", "kid": "key-8" }), &json!({}));
    assert!(description(run(&settings, &mut bearer(&unknown), &mut ctx())).contains("no key"));
    let missing = token(&es, &header("ES256"), &json!({ "kid": "key-7" }));
    assert!(description(run(&settings, &mut bearer(&missing), &mut ctx())).contains("kid header"));
}

#[test]
fn cached_tokens_are_checked_for_expiry_on_every_use() {
    let hs = hs();
    let settings = settings(&hs.config, json!({ "claims_to_verify": ["exp"] })).unwrap();
    let text = token(&hs.key, &header("HS256"), &json!({ "iss": "alice-iss", "exp": NOW + 60.0 }));
    assert!(matches!(run(&settings, &mut bearer(&text), &mut ctx()), Flow::Continue));
    assert_eq!(settings.cache.len(), 1);
    assert!(settings.verify(text.as_bytes(), NOW + 59.0, false).is_ok());
    assert_eq!(settings.verify(text.as_bytes(), NOW + 60.0, false).unwrap_err(), Refusal::Expired.into());
    // Tokens are looked up as bytes; one that is not text is malformed, never cached.
    assert_eq!(settings.verify(b"a.\xff.c", NOW, false).unwrap_err(), Refusal::Malformed.into());
    assert_eq!(settings.cache.len(), 1);
    let nbf = token(&hs.key, &header("HS256"), &json!({ "iss": "alice-iss", "exp": NOW + 60.0, "nbf": NOW + 10.0 }));
    assert_eq!(settings.verify(nbf.as_bytes(), NOW, false).unwrap_err(), Refusal::NotYetValid.into());
    assert!(settings.verify(nbf.as_bytes(), NOW + 10.0, false).is_ok());
    assert_eq!(
        settings.verify(nbf.as_bytes(), NOW, false).unwrap_err(),
        Refusal::NotYetValid.into(),
        "checked again on a cache hit"
    );
    let no_exp = token(&hs.key, &header("HS256"), &json!({ "iss": "alice-iss" }));
    assert!(description(run(&settings, &mut bearer(&no_exp), &mut ctx())).contains("lacks the exp claim"));
}

#[test]
fn the_anonymous_consumer_stands_in_for_a_failed_authentication() {
    let hs = hs();
    let settings = settings(&hs.config, json!({ "anonymous": "guest" })).unwrap();
    let bad =
        token(&TestKey::Hmac(JwtAlgorithm::HS256, b"wrong".to_vec()), &header("HS256"), &json!({ "iss": "alice-iss" }));
    for mut request in [bearer(&bad), http::Request::get("/").body(()).unwrap().into_parts().0] {
        let mut ctx = ctx();
        assert!(matches!(run(&settings, &mut request, &mut ctx), Flow::Continue));
        assert_eq!(request.headers[CONSUMER_USERNAME], "guest");
        assert_eq!(request.headers[ANONYMOUS_CONSUMER], "true");
        assert!(ctx.token.as_ref().is_none());
    }
    let error = settings_error(&hs.config, json!({ "anonymous": "nobody" }));
    assert_eq!(error.path, "anonymous");
}

#[test]
fn no_token_is_a_bare_challenge_and_preflights_may_pass() {
    let hs = hs();
    let settings_default = settings(&hs.config, json!({ "realm": "api" })).unwrap();
    let mut request = http::Request::options("/").body(()).unwrap().into_parts().0;
    let challenge = description(run(&settings_default, &mut request, &mut ctx()));
    assert_eq!(challenge, "Bearer realm=\"api\"");
    let lenient =
        settings(&hs.config, json!({ "run_on_preflight": false, "claims_to_headers": { "sub": "x-user" } })).unwrap();
    request.headers.insert("x-user", http::HeaderValue::from_static("forged"));
    assert!(matches!(run(&lenient, &mut request, &mut ctx()), Flow::Continue));
    assert!(!request.headers.contains_key(CONSUMER_USERNAME));
    assert!(!request.headers.contains_key("x-user"), "claim headers are never the client's");
}

fn settings_error(config: &Config, filter: serde_json::Value) -> PluginError {
    settings(config, filter).expect_err("the configuration is refused")
}

#[test]
fn bad_configurations_are_refused_at_build_time() {
    let broken = config_with(&[(
        "bob",
        "bob-iss",
        JwtAlgorithm::RS256,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into(),
    )]);
    let error = settings_error(&broken, json!({}));
    assert!(error.message.contains("consumers[0].credentials.jwt[0] (consumer `bob`)"), "{}", error.message);
    let hs = hs();
    assert_eq!(settings_error(&hs.config, json!({ "maximum_expiration": 60 })).path, "maximum_expiration");
    assert!(settings(&hs.config, json!({ "maximum_expiration": 60, "claims_to_verify": ["exp"] })).is_ok());
    assert_eq!(
        settings_error(&hs.config, json!({ "claims_to_headers": { "sub": "content-length" } })).path,
        "claims_to_headers.sub"
    );
    assert_eq!(settings_error(&hs.config, json!({ "realm": "a\"b" })).path, "realm");
    let env = BuildEnv { config: &hs.config };
    let error = jwt_plugin().build(&json!({ "claims_to_verify": ["iat"] }), &env).unwrap_err();
    assert_eq!(error.path, "claims_to_verify[0]");
    assert!(jwt_plugin().build(&json!({ "secret": "x" }), &env).is_err());
    assert_eq!(jwt_plugin().priority(), 1450);
}

#[test]
fn claims_become_header_values() {
    assert_eq!(header_value(&json!("a")).unwrap(), "a");
    assert_eq!(header_value(&json!(42)).unwrap(), "42");
    assert_eq!(header_value(&json!(true)).unwrap(), "true");
    assert_eq!(header_value(&json!(["a", "b"])).unwrap(), "a, b");
    assert_eq!(header_value(&json!({ "k": 1 })).unwrap(), "{\"k\":1}");
    assert!(header_value(&json!("line\nbreak")).is_none());
    assert!(header_value(&json!(null)).is_none());
}

#[test]
fn reference_example_loads_and_builds() {
    let doc = include_str!("../../../../docs/CONFIG.md");
    let section = &doc[doc.find("### `jwt`").expect("docs/CONFIG.md documents the filter")..];
    let start = section.find("```yaml\n").expect("with an example") + "```yaml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let config = strait_config::load_str_with_env(example, "CONFIG.md", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let spec = &config.listeners[0].routes[0].filters[0];
    let env = BuildEnv { config: &config };
    let factory =
        crate::builtin().build(spec, "listeners[0].routes[0].filters[0]", &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(factory.name(), "jwt");
    let settings = settings(&config, spec.config.clone()).unwrap();
    assert_eq!(settings.keys["partner-key-1"].key.algorithm, JwtAlgorithm::ES256);
    assert_eq!(settings.keys["https://idp.example.com"].consumer.username.as_ref(), "mobile-app");
    assert_eq!(settings.rules.maximum_expiration, 3600);
    let mut wrong = spec.clone();
    wrong.config["maximum_expiration"] = json!(-1);
    let error = crate::builtin().build(&wrong, "listeners[0].routes[0].filters[0]", &env).unwrap_err();
    assert!(error.to_string().contains("CONFIG.md:"), "{error}");
}

#[test]
fn a_jwks_key_is_found_by_kid_once_the_set_is_fetched() {
    let mut config = hs().config;
    config
        .clusters
        .push(serde_json::from_value(json!({ "name": "idp", "endpoints": [{ "address": "127.0.0.1:1" }] })).unwrap());
    let filter = json!({ "jwks": { "cluster": "idp", "path": "/jwks", "consumer": "guest" } });
    let settings = settings(&config, filter).unwrap();
    let es = TestKey::generate(JwtAlgorithm::ES256);
    let text = token(&es, &json!({ "alg": "ES256", "kid": "remote-1" }), &json!({ "iss": "https://idp", "sub": "s" }));
    let mut request = bearer(&text);
    assert_eq!(settings.authenticate_request(&mut request, &mut ctx(), NOW, true).unwrap_err(), FetchKeys);
    assert!(description(run(&settings, &mut request, &mut ctx())).contains("no key is known"));
    let jwks = settings.jwks.as_ref().unwrap();
    let set = json!({ "keys": [es.jwk("remote-1", JwtAlgorithm::ES256)] });
    jwks.store(jwk::parse_key_set(set.to_string().as_bytes()).unwrap(), std::time::Instant::now());
    let mut context = ctx();
    assert!(matches!(settings.authenticate_request(&mut request, &mut context, NOW, true), Ok(Flow::Continue)));
    assert_eq!(request.headers[CONSUMER_USERNAME], "guest");
    assert_eq!(request.headers[CREDENTIAL_IDENTIFIER], "remote-1");
    assert!(!request.headers.contains_key(ANONYMOUS_CONSUMER));
    let hs_alg =
        token(&TestKey::generate(JwtAlgorithm::HS256), &json!({ "alg": "HS256", "kid": "remote-1" }), &json!({}));
    assert!(description(run(&settings, &mut bearer(&hs_alg), &mut ctx())).contains("not its key"));
}
