//! Unit tests of the `cors` filter: configuration checks, preflight answers, actual responses.

use super::*;

fn policy(edit: impl FnOnce(&mut CorsConfig)) -> Policy {
    let mut config = CorsConfig::default();
    edit(&mut config);
    Policy::compile(&config).unwrap()
}

fn preflight_request(origin: &str, method: &str, headers: Option<&str>) -> request::Parts {
    let mut builder =
        http::Request::options("/api").header(ORIGIN, origin).header(ACCESS_CONTROL_REQUEST_METHOD, method);
    if let Some(headers) = headers {
        builder = builder.header(ACCESS_CONTROL_REQUEST_HEADERS, headers);
    }
    builder.body(()).unwrap().into_parts().0
}

fn answer(policy: &Policy, request: &request::Parts) -> LocalResponse {
    policy.preflight(&request.headers[ORIGIN], request)
}

#[test]
fn defaults_are_kongs() {
    let policy = policy(|_| {});
    assert!(matches!(policy.origins, Origins::Any));
    assert_eq!(policy.allow_methods, "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT");
    assert!(policy.headers.is_none() && policy.exposed_headers.is_none() && policy.max_age.is_none());
    assert!(!policy.credentials && !policy.preflight_continue && !policy.private_network);
}

#[test]
fn config_errors_name_the_field() {
    let error = |edit: fn(&mut CorsConfig)| {
        let mut config = CorsConfig::default();
        edit(&mut config);
        Policy::compile(&config).unwrap_err().path
    };
    assert_eq!(error(|c| c.origins = vec!["https://a.test".into(), "~a(".into()]), "origins[1]");
    assert_eq!(error(|c| c.origins.clear()), "origins");
    assert_eq!(error(|c| c.methods = vec!["GET".into(), "GE T".into()]), "methods[1]");
    assert_eq!(error(|c| c.methods.clear()), "methods");
    assert_eq!(error(|c| c.headers = vec!["x-ok".into(), "bad name".into()]), "headers[1]");
    assert_eq!(error(|c| c.exposed_headers = vec!["*".into()]), "exposed_headers[0]");
}

#[test]
fn an_allowed_preflight_gets_every_allow_field() {
    let policy = policy(|c| {
        c.origins = vec!["https://app.test".into()];
        c.methods = vec!["GET".into(), "PUT".into()];
        c.headers = vec!["X-Token".into(), "content-type".into()];
        c.credentials = true;
        c.max_age = Some(600);
    });
    let reply = answer(&policy, &preflight_request("https://app.test", "PUT", Some("x-token, Content-Type")));
    assert_eq!(reply.status, 204);
    assert_eq!(reply.reason, None);
    assert_eq!(reply.headers[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.test");
    assert_eq!(reply.headers[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    assert_eq!(reply.headers[ACCESS_CONTROL_ALLOW_METHODS], "GET,PUT");
    assert_eq!(reply.headers[ACCESS_CONTROL_ALLOW_HEADERS], "x-token,content-type");
    assert_eq!(reply.headers[ACCESS_CONTROL_MAX_AGE], "600");
    assert_eq!(reply.headers[VARY], "Origin");
    assert!(reply.headers.get(ALLOW_PRIVATE_NETWORK).is_none());
}

#[test]
fn a_preflight_for_an_origin_method_or_header_not_allowed_is_refused() {
    let policy = policy(|c| {
        c.origins = vec!["https://app.test".into()];
        c.methods = vec!["GET".into(), "POST".into()];
        c.headers = vec!["x-token".into()];
    });
    for request in [
        preflight_request("https://evil.test", "GET", None),
        preflight_request("https://app.test", "DELETE", None),
        preflight_request("https://app.test", "get", None),
        preflight_request("https://app.test", "POST", Some("x-token, x-other")),
    ] {
        let reply = answer(&policy, &request);
        assert_eq!(reply.status, 403, "{request:?}");
        assert_eq!(reply.reason, Some(Reason::CorsRejected));
        assert!(reply.headers.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }
}

#[test]
fn without_listed_headers_the_preflight_is_echoed_and_star_never_goes_with_credentials() {
    let open = policy(|_| {});
    let reply = answer(&open, &preflight_request("https://any.test", "PATCH", Some("x-a,x-b")));
    assert_eq!(reply.headers[ACCESS_CONTROL_ALLOW_HEADERS], "x-a,x-b");
    assert_eq!(reply.headers[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let with_credentials = policy(|c| c.credentials = true);
    let reply = answer(&with_credentials, &preflight_request("https://any.test", "GET", None));
    assert_eq!(reply.headers[ACCESS_CONTROL_ALLOW_ORIGIN], "https://any.test");
    assert!(reply.headers.get(ACCESS_CONTROL_ALLOW_HEADERS).is_none(), "nothing asked, nothing echoed");
}

#[test]
fn private_network_access_is_answered_only_when_enabled() {
    let mut request = preflight_request("https://app.test", "GET", None);
    request.headers.insert(REQUEST_PRIVATE_NETWORK, HeaderValue::from_static("true"));
    let enabled = policy(|c| c.private_network = true);
    assert_eq!(answer(&enabled, &request).headers[ALLOW_PRIVATE_NETWORK], "true");
    let disabled = policy(|_| {});
    assert!(answer(&disabled, &request).headers.get(ALLOW_PRIVATE_NETWORK).is_none());
}

#[test]
fn actual_responses_get_the_origin_credentials_exposed_headers_and_vary() {
    let policy = policy(|c| {
        c.origins = vec!["https://app.test".into()];
        c.credentials = true;
        c.exposed_headers = vec!["x-total".into(), "x-page".into()];
    });
    let mut headers = HeaderMap::new();
    headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    policy.decorate(&HeaderValue::from_static("https://app.test"), &mut headers);
    add_vary_origin(&mut headers);
    assert_eq!(headers[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.test", "an upstream's `*` is replaced");
    assert_eq!(headers[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    assert_eq!(headers[ACCESS_CONTROL_EXPOSE_HEADERS], "x-total,x-page");
    let vary: Vec<_> = headers.get_all(VARY).iter().collect();
    assert_eq!(vary, ["Accept-Encoding", "Origin"]);
    add_vary_origin(&mut headers);
    assert_eq!(headers.get_all(VARY).iter().count(), 2, "`Origin` is not listed twice");
}

#[test]
fn reference_example_loads_and_a_bad_pattern_is_reported_on_its_entry() {
    let doc = include_str!("../../../../docs/CONFIG.md");
    let section = &doc[doc.find("### `cors`").expect("docs/CONFIG.md documents the filter")..];
    let start = section.find("```yaml\n").expect("with an example") + "```yaml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let config = strait_config::load_str_with_env(example, "CONFIG.md", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let spec = &config.listeners[0].routes[0].filters[0];
    let env = BuildEnv { config: &config };
    let path = "listeners[0].routes[0].filters[0]";
    let factory = crate::builtin().build(spec, path, &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(factory.name(), "cors");
    assert_eq!(crate::builtin().priority(spec), PRIORITY);
    let mut wrong = spec.clone();
    wrong.config["origins"][1] = serde_json::json!("~https://(unclosed");
    let error = crate::builtin().build(&wrong, path, &env).unwrap_err();
    assert_eq!(error.path, "listeners[0].routes[0].filters[0].config.origins[1]");
}
