//! The `jwt` filter end to end: tokens signed in the test with HS256, RS256, PS256, ES256 and
//! EdDSA keys identify their consumers upstream; forged, expired, misdirected and missing
//! tokens are answered 401 with a Bearer challenge and never reach the backend; keys from a
//! JWKS endpoint are fetched on first use and again for an unknown `kid`.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::jwt::{encode_part, now, token, SigningKey};
use support::{raw_request, Backend, Proxy, RawResponse, Reply};

/// The consumers' keys: `(username, key, algorithm)`; each signs with its own key.
const FAMILIES: [(&str, &str, &str); 5] = [
    ("hs-user", "hs-iss", "HS256"),
    ("rs-user", "rs-iss", "RS256"),
    ("ps-user", "ps-iss", "PS256"),
    ("es-user", "es-iss", "ES256"),
    ("ed-user", "ed-iss", "EdDSA"),
];

/// A running proxy in front of a backend, with every family's signing key.
struct Gateway {
    backend: Backend,
    proxy: Proxy,
    keys: Vec<SigningKey>,
}

impl Gateway {
    /// Routes: `/iss/` finds keys by `iss`, wants `exp` and audience `api`, reads cookie
    /// `token` too; `/kid/` finds keys by the `kid` header and accepts only issuer
    /// `https://idp.test`. Both send `sub` upstream as `x-user`.
    fn start() -> Gateway {
        let backend = Backend::start(|_| Reply::text("secret data"));
        let keys: Vec<SigningKey> = FAMILIES.iter().map(|(_, _, alg)| SigningKey::generate(alg, "hs-secret")).collect();
        let mut consumers = String::from("consumers:\n");
        for ((username, key, alg), signing) in FAMILIES.iter().zip(&keys) {
            let material = match signing {
                SigningKey::Hs256(_) => format!("secret: {}", json!("hs-secret")),
                other => format!("rsa_public_key: {}", json!(other.public_pem())),
            };
            consumers.push_str(&format!(
                "  - username: {username}\n    credentials:\n      jwt:\n        - {{ key: {key}, algorithm: {alg}, {material} }}\n"
            ));
        }
        let yaml = format!(
            "{consumers}listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n\
             \x20     - match: {{ path: {{ prefix: /iss/ }} }}\n\
             \x20       filters: [{{ name: jwt, config: {{ claims_to_verify: [exp], audiences: [api], cookie_names: [token], claims_to_headers: {{ sub: x-user }} }} }}]\n\
             \x20       forward: {{ cluster: app }}\n\
             \x20     - match: {{ path: {{ prefix: /kid/ }} }}\n\
             \x20       filters: [{{ name: jwt, config: {{ key_claim_name: kid, issuers: [\"https://idp.test\"], claims_to_headers: {{ sub: x-user }} }} }}]\n\
             \x20       forward: {{ cluster: app }}\n\
             clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
            backend.addr
        );
        let proxy = Proxy::start(&yaml);
        Gateway { backend, proxy, keys }
    }

    /// The signing key of the consumer whose key is `key`.
    fn key(&self, key: &str) -> &SigningKey {
        &self.keys[FAMILIES.iter().position(|(_, k, _)| *k == key).expect("a configured key")]
    }

    /// A GET of `target` with extra header lines.
    fn get(&self, target: &str, headers: &[(&str, &str)]) -> RawResponse {
        let extra: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        let request = format!("GET {target} HTTP/1.1\r\nHost: jwt.test\r\n{extra}Connection: close\r\n\r\n");
        raw_request(self.proxy.addr("web"), request.as_bytes()).expect("a response")
    }

    /// A GET of `target` with `Authorization: Bearer <token>` and a forged `x-user`.
    fn bearer(&self, target: &str, token: &str) -> RawResponse {
        self.get(target, &[("authorization", &format!("Bearer {token}")), ("x-user", "forged")])
    }

    /// Asserts `response` is the filter's 401 whose challenge mentions `description`, and
    /// that the backend saw no new request.
    fn assert_refused(&self, response: &RawResponse, description: &str, before: usize) {
        assert_eq!(response.status, 401, "{}", response.text());
        assert_eq!(response.header("x-strait-reason"), Some("unauthorized"));
        let challenge = response.header("www-authenticate").expect("a challenge");
        assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{challenge}");
        assert!(challenge.contains(description), "`{challenge}` lacks `{description}`");
        assert_eq!(self.backend.count(), before, "a refused request reached the backend");
    }
}

/// Claims the `/iss/` route accepts for the consumer of `key`.
fn good_claims(key: &str) -> Value {
    json!({ "iss": key, "sub": format!("sub-of-{key}"), "aud": ["other", "api"], "exp": now() + 300 })
}

fn header(alg: &str) -> Value {
    json!({ "alg": alg, "typ": "JWT" })
}

#[test]
fn a_valid_token_of_every_family_identifies_its_consumer_upstream() {
    let gateway = Gateway::start();
    for (username, key, alg) in FAMILIES {
        let response = gateway.bearer("/iss/data", &token(gateway.key(key), &header(alg), &good_claims(key)));
        assert_eq!(response.status, 200, "{alg}: {}", response.text());
        assert_eq!(response.text(), "secret data");
        let recorded = gateway.backend.requests().pop().unwrap();
        assert_eq!(recorded.headers["x-consumer-username"], username, "{alg}");
        assert_eq!(recorded.headers["x-credential-identifier"], key, "{alg}");
        assert_eq!(
            recorded.headers["x-user"],
            format!("sub-of-{key}").as_str(),
            "{alg}: the claim replaces the client's"
        );
        assert_eq!(recorded.headers.get_all("x-user").iter().count(), 1);
    }
}

#[test]
fn forged_tokens_are_refused() {
    let gateway = Gateway::start();
    let before = gateway.backend.count();
    let unsigned = format!("{}.{}.", encode_part(&header("none")), encode_part(&good_claims("hs-iss")));
    gateway.assert_refused(&gateway.bearer("/iss/data", &unsigned), "algorithm is not supported", before);
    let rs_pem = gateway.key("rs-iss").public_pem();
    let confused = token(&SigningKey::Hs256(rs_pem.into_bytes()), &header("HS256"), &good_claims("rs-iss"));
    gateway.assert_refused(&gateway.bearer("/iss/data", &confused), "not its key", before);
    let valid = token(gateway.key("es-iss"), &header("ES256"), &good_claims("es-iss"));
    let dot = valid.rfind('.').unwrap();
    let flipped = if &valid[dot + 1..dot + 2] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &valid[..=dot], &valid[dot + 2..]);
    gateway.assert_refused(&gateway.bearer("/iss/data", &tampered), "invalid signature", before);
    let mut admin = good_claims("es-iss");
    admin["sub"] = json!("admin");
    let spliced = format!("{}.{}{}", encode_part(&header("ES256")), encode_part(&admin), &valid[dot..]);
    gateway.assert_refused(&gateway.bearer("/iss/data", &spliced), "invalid signature", before);
}

#[test]
fn expired_early_and_misdirected_tokens_are_refused() {
    let gateway = Gateway::start();
    let before = gateway.backend.count();
    let key = gateway.key("rs-iss");
    let with = |name: &str, value: Value| {
        let mut claims = good_claims("rs-iss");
        claims[name] = value;
        token(key, &header("RS256"), &claims)
    };
    gateway.assert_refused(&gateway.bearer("/iss/data", &with("exp", json!(now() - 10))), "expired", before);
    gateway.assert_refused(&gateway.bearer("/iss/data", &with("nbf", json!(now() + 600))), "not valid yet", before);
    gateway.assert_refused(&gateway.bearer("/iss/data", &with("aud", json!("elsewhere"))), "audience", before);
    let mut no_exp = good_claims("rs-iss");
    no_exp.as_object_mut().unwrap().remove("exp");
    gateway.assert_refused(&gateway.bearer("/iss/data", &token(key, &header("RS256"), &no_exp)), "exp claim", before);
    let unknown = token(gateway.key("hs-iss"), &header("HS256"), &good_claims("nobody-iss"));
    gateway.assert_refused(&gateway.bearer("/iss/data", &unknown), "no key is known", before);
}

#[test]
fn kid_names_the_key_and_issuers_are_checked() {
    let gateway = Gateway::start();
    let key = gateway.key("ed-iss");
    let kid_header = |kid: &str| json!({ "alg": "EdDSA", "kid": kid });
    let claims = |iss: &str| json!({ "iss": iss, "sub": "kid-user" });
    let good = gateway.bearer("/kid/data", &token(key, &kid_header("ed-iss"), &claims("https://idp.test")));
    assert_eq!(good.status, 200, "{}", good.text());
    let recorded = gateway.backend.requests().pop().unwrap();
    assert_eq!(recorded.headers["x-consumer-username"], "ed-user");
    assert_eq!(recorded.headers["x-user"], "kid-user");
    let before = gateway.backend.count();
    let unknown_kid = token(key, &kid_header("rotated-away"), &claims("https://idp.test"));
    gateway.assert_refused(&gateway.bearer("/kid/data", &unknown_kid), "no key is known", before);
    let wrong_issuer = token(key, &kid_header("ed-iss"), &claims("https://evil.test"));
    gateway.assert_refused(&gateway.bearer("/kid/data", &wrong_issuer), "issuer is not accepted", before);
}

#[test]
fn a_missing_token_gets_a_bare_bearer_challenge() {
    let gateway = Gateway::start();
    let response = gateway.get("/iss/data", &[("authorization", "Basic dXNlcjpwYXNz")]);
    assert_eq!(response.status, 401);
    assert_eq!(response.header("x-strait-reason"), Some("unauthorized"));
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    assert_eq!(response.text(), "401 Unauthorized: unauthorized: no token\n");
    assert_eq!(gateway.backend.count(), 0);
}

#[test]
fn tokens_are_read_from_the_query_and_cookies() {
    let gateway = Gateway::start();
    let text = token(gateway.key("hs-iss"), &header("HS256"), &good_claims("hs-iss"));
    let by_query = gateway.get(&format!("/iss/data?x=1&jwt={text}"), &[]);
    assert_eq!(by_query.status, 200, "{}", by_query.text());
    let by_cookie = gateway.get("/iss/data", &[("cookie", &format!("theme=dark; token={text}"))]);
    assert_eq!(by_cookie.status, 200, "{}", by_cookie.text());
    for recorded in gateway.backend.requests() {
        assert_eq!(recorded.headers["x-consumer-username"], "hs-user");
    }
    assert_eq!(gateway.backend.count(), 2);
    let other = token(gateway.key("es-iss"), &header("ES256"), &good_claims("es-iss"));
    let both = gateway.get(&format!("/iss/data?jwt={text}"), &[("authorization", &format!("Bearer {other}"))]);
    gateway.assert_refused(&both, "multiple tokens", 2);
}

#[test]
fn jwks_keys_are_fetched_on_first_use_and_refetched_for_an_unknown_kid_once_per_refresh() {
    let first = SigningKey::generate("ES256", "");
    let rotated = SigningKey::generate("ES256", "");
    let key_set = Arc::new(Mutex::new(json!({ "keys": [first.es256_jwk("k1")] }).to_string()));
    let served = key_set.clone();
    let idp = Backend::start(move |request| match request.uri.as_str() {
        "/jwks" => Reply::text(&served.lock().unwrap()).header("content-type", "application/json"),
        _ => Reply::status(404),
    });
    let backend = Backend::start(|_| Reply::text("secret data"));
    let yaml = format!(
        "consumers:\n  - username: idp-users\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n\
         \x20     - filters: [{{ name: jwt, config: {{ jwks: {{ cluster: idp, path: /jwks, refresh: 3s, consumer: idp-users }}, claims_to_headers: {{ sub: x-user }} }} }}]\n\
         \x20       forward: {{ cluster: app }}\n\
         clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n  - name: idp\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr, idp.addr
    );
    let proxy = Proxy::start(&yaml);
    let call = |key: &SigningKey, kid: &str| {
        let text =
            token(key, &json!({ "alg": "ES256", "kid": kid }), &json!({ "iss": "https://idp.test", "sub": kid }));
        let request = format!(
            "GET /data HTTP/1.1\r\nHost: jwt.test\r\nAuthorization: Bearer {text}\r\nConnection: close\r\n\r\n"
        );
        raw_request(proxy.addr("web"), request.as_bytes()).expect("a response")
    };
    let started = Instant::now();
    let ok = call(&first, "k1");
    assert_eq!(ok.status, 200, "{}", ok.text());
    let recorded = backend.requests().pop().unwrap();
    assert_eq!(recorded.headers["x-consumer-username"], "idp-users");
    assert_eq!(recorded.headers["x-credential-identifier"], "k1");
    assert_eq!(recorded.headers["x-user"], "k1");
    assert_eq!(call(&first, "k1").status, 200);
    assert_eq!(idp.count(), 1, "the key set is remembered");
    *key_set.lock().unwrap() = json!({ "keys": [first.es256_jwk("k1"), rotated.es256_jwk("k2")] }).to_string();
    let early = call(&rotated, "k2");
    if started.elapsed() < Duration::from_secs(3) {
        assert_eq!(early.status, 401, "within `refresh` of the last fetch the set is not fetched again");
        assert_eq!(idp.count(), 1);
    }
    support::wait_until("the rotated key is fetched", || call(&rotated, "k2").status == 200);
    assert_eq!(idp.count(), 2, "one fetch for the unknown kid after `refresh`");
    let forged = call(&SigningKey::generate("ES256", ""), "k2");
    assert_eq!(forged.status, 401);
    assert!(forged.header("www-authenticate").unwrap().contains("invalid signature"));
}
