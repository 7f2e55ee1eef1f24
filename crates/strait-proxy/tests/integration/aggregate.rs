//! Response aggregation end to end: the seed's Express example (`/api/data` merging
//! `service1` and `service2`), parallel calls taking as long as the slower one, calls in
//! sequence using an earlier answer, and partial and total failures.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{Backend, Proxy, RawResponse, Reply};

fn json_reply(value: Value) -> Reply {
    Reply::text(&value.to_string()).header("content-type", "application/json")
}

/// A proxy with one `aggregate` route on `/api/data`, `calls` being its YAML list, and a
/// cluster per `(name, backend)`.
fn proxy(mode: &str, calls: &str, clusters: &[(&str, &Backend)]) -> Proxy {
    let clusters: String = clusters
        .iter()
        .map(|(name, backend)| format!("  - name: {name}\n    endpoints: [{{ address: \"{}\" }}]\n", backend.addr))
        .collect();
    Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - match: {{ path: {{ exact: /api/data }} }}\n        aggregate:\n          mode: {mode}\n          calls: {calls}\nclusters:\n{clusters}"
    ))
}

fn get(proxy: &Proxy, target: &str) -> RawResponse {
    let raw =
        format!("GET {target} HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer t\r\nConnection: close\r\n\r\n");
    support::raw_request(proxy.addr("web"), raw.as_bytes()).expect("response")
}

fn body(response: &RawResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&response.body)))
}

#[test]
fn the_express_example_merges_service1_and_service2_under_their_names() {
    let service1 = Backend::start(|_| json_reply(json!({ "users": [1, 2] })));
    let service2 = Backend::start(|_| Reply::text("plain text"));
    let calls =
        "[ { key: service1, cluster: service1, path: /data }, { key: service2, cluster: service2, path: /data } ]";
    let proxy = proxy("parallel", calls, &[("service1", &service1), ("service2", &service2)]);
    let response = get(&proxy, "/api/data");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(body(&response), json!({ "service1": { "users": [1, 2] }, "service2": "plain text" }));
    assert!(response.header("x-strait-partial").is_none());
    let seen = service1.requests().pop().unwrap();
    assert_eq!(seen.uri, "/data");
    assert_eq!(seen.headers["authorization"], "Bearer t", "the client's credentials are passed on");
}

#[test]
fn parallel_calls_take_as_long_as_the_slower_one() {
    let delay = Duration::from_millis(400);
    let slow = |name: &'static str| Backend::start(move |_| Reply { delay, ..json_reply(json!({ "from": name })) });
    let (a, b, c) = (slow("a"), slow("b"), slow("c"));
    let calls =
        "[ { key: a, cluster: a, path: /a }, { key: b, cluster: b, path: /b }, { key: c, cluster: c, path: /c } ]";
    let proxy = proxy("parallel", calls, &[("a", &a), ("b", &b), ("c", &c)]);
    let started = Instant::now();
    let response = get(&proxy, "/api/data");
    let took = started.elapsed();
    assert_eq!(response.status, 200);
    assert_eq!(body(&response)["c"]["from"], "c");
    // In sequence this would take 1.2 s at least.
    assert!(took >= delay && took < delay * 5 / 2, "three 400 ms calls took {took:?}");
}

#[test]
fn calls_in_sequence_use_fields_of_earlier_answers_and_the_clients_query() {
    let users = Backend::start(|_| json_reply(json!({ "user": { "id": 42, "name": "Ada Lovelace" } })));
    let orders = Backend::start(|request| json_reply(json!({ "asked": request.uri })));
    let calls = "[ { key: me, cluster: users, path: /me }, { key: orders, cluster: orders, path: \"/users/{me.user.id}/orders?name={me.user.name}&limit={query.limit}\" } ]";
    let proxy = proxy("sequence", calls, &[("users", &users), ("orders", &orders)]);
    let response = get(&proxy, "/api/data?limit=5");
    assert_eq!(response.status, 200);
    assert_eq!(body(&response)["orders"]["asked"], "/users/42/orders?name=Ada%20Lovelace&limit=5");
}

#[test]
fn an_optional_call_that_fails_leaves_a_partial_answer_that_says_so() {
    let good = Backend::start(|_| json_reply(json!({ "ok": true })));
    let broken = Backend::start(|_| Reply::status(503));
    let calls = "[ { key: good, cluster: good, path: / }, { key: extra, cluster: broken, path: /, required: false } ]";
    let proxy = proxy("parallel", calls, &[("good", &good), ("broken", &broken)]);
    let response = get(&proxy, "/api/data");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-strait-partial"), Some("extra"));
    assert_eq!(
        body(&response),
        json!({ "good": { "ok": true }, "extra": null, "_errors": { "extra": { "reason": "upstream_bad_response", "status": 503 } } })
    );
}

#[test]
fn a_required_call_that_fails_fails_the_request_with_its_reason() {
    let good = Backend::start(|_| json_reply(json!({ "ok": true })));
    let slow = Backend::start(|_| Reply { delay: Duration::from_secs(3), ..json_reply(json!({})) });
    let calls = "[ { key: good, cluster: good, path: / }, { key: slow, cluster: slow, path: /, timeout: 200ms } ]";
    let proxy = proxy("parallel", calls, &[("good", &good), ("slow", &slow)]);
    let started = Instant::now();
    let response = get(&proxy, "/api/data");
    assert_eq!(response.status, 504, "{response:?}");
    assert_eq!(response.header("x-strait-reason"), Some("upstream_timeout"));
    assert_eq!(response.header("x-strait-failed-call"), Some("slow"));
    assert!(started.elapsed() < Duration::from_secs(2), "the call's timeout bounds the answer");
}

#[test]
fn placeholders_that_cannot_be_filled_are_config_errors() {
    let text = "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - aggregate:\n          calls:\n            - { key: a, cluster: app, path: /a }\n            - { key: b, cluster: app, path: \"/b/{a.id}\" }\n            - { key: a, cluster: nope, path: x }\nclusters:\n  - name: app\n    endpoints: [{ address: \"127.0.0.1:9\" }]\n";
    let errors = strait_config::load_str(text, "aggregate.yaml").unwrap_err().to_string();
    assert!(errors.contains("routes[0].aggregate.calls[1].path: `{a.id}`: parallel calls cannot use"), "{errors}");
    assert!(errors.contains("calls[2].key: key `a` is used by an earlier call"), "{errors}");
    assert!(errors.contains("calls[2].cluster:"), "{errors}");
    assert!(errors.contains("calls[2].path: the path must start with `/`"), "{errors}");
}
