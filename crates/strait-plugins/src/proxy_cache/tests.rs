//! The `proxy_cache` filter driven phase by phase, as the proxy runs it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use http::{request, response, HeaderValue, StatusCode, Version};
use serde_json::json;
use strait_http::context::ConnInfo;
use strait_http::{Filter, FilterFactory, Flow, LocalResponse, Phase, Reason, RequestCtx};

use super::{ProxyCacheConfig, ProxyCacheFactory, Settings};

fn factory(config: serde_json::Value) -> ProxyCacheFactory {
    let config: ProxyCacheConfig = serde_json::from_value(config).unwrap();
    ProxyCacheFactory(Arc::new(Settings::new(config).unwrap()))
}

fn ctx() -> RequestCtx {
    let conn = ConnInfo {
        peer: SocketAddr::from(([127, 0, 0, 1], 1)),
        listener: Arc::from("web"),
        scheme: "http",
        version: Version::HTTP_11,
        tls: None,
    };
    RequestCtx::new(Rc::new(conn), IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn get(fields: &[(&'static str, &'static str)]) -> request::Parts {
    let mut builder = http::Request::get("/item?id=1").header("host", "cache.test");
    for (name, value) in fields {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn upstream(status: u16, fields: &[(&'static str, &'static str)]) -> response::Parts {
    let mut builder = http::Response::builder().status(status);
    for (name, value) in fields {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn ready<T>(phase: Phase<'_, T>) -> T {
    match phase {
        Phase::Ready(value) => value,
        Phase::Wait(_) => panic!("the cache never waits"),
    }
}

/// Runs the body of an upstream answer through the filter's body phase; returns what the
/// client gets.
fn body_through(filter: &mut dyn Filter, response: &response::Parts, body: &'static [u8]) -> Bytes {
    let ctx = ctx();
    let Some(body_filter) = filter.response_body(response, &ctx) else { return Bytes::from_static(body) };
    let (body_filter, first) = ready(body_filter.chunk(Bytes::from_static(body), false));
    let (_, last) = ready(body_filter.chunk(Bytes::new(), true));
    [first.unwrap(), last.unwrap()].concat().into()
}

/// One request through the cache: the answer it got and its `X-Cache-Status`.
fn exchange(
    factory: &ProxyCacheFactory,
    request: &mut request::Parts,
    upstream: impl FnOnce(&request::Parts) -> (response::Parts, &'static [u8]),
) -> (StatusCode, Bytes, String) {
    let mut filter = factory.create();
    let mut ctx = ctx();
    let (mut head, body) = match ready(filter.request_headers(request, &mut ctx)) {
        Flow::Respond(mut local) => {
            ready(filter.local_reply(&mut local, &mut ctx));
            let mut head = upstream_head(&local);
            ready(filter.response_headers(&mut head, &mut ctx));
            let status = head.headers["x-cache-status"].to_str().unwrap().to_owned();
            return (head.status, local.body, status);
        }
        Flow::Continue => upstream(request),
    };
    ready(filter.response_headers(&mut head, &mut ctx));
    let body = body_through(&mut *filter, &head, body);
    (head.status, body, head.headers["x-cache-status"].to_str().unwrap().to_owned())
}

fn upstream_head(local: &LocalResponse) -> response::Parts {
    let mut head = http::Response::new(()).into_parts().0;
    head.status = local.status;
    head.headers = local.headers.clone();
    head
}

#[test]
fn a_stored_answer_is_served_until_it_expires() {
    let cache = factory(json!({}));
    let answer = |_: &request::Parts| (upstream(200, &[("cache-control", "max-age=60")]), &b"hello"[..]);
    assert_eq!(exchange(&cache, &mut get(&[]), answer), (StatusCode::OK, Bytes::from("hello"), "MISS".into()));
    let never = |_: &request::Parts| -> (response::Parts, &'static [u8]) { panic!("a hit went upstream") };
    assert_eq!(exchange(&cache, &mut get(&[]), never), (StatusCode::OK, Bytes::from("hello"), "HIT".into()));
}

#[test]
fn no_store_private_cookies_and_unlisted_statuses_are_not_stored() {
    for (status, field) in [
        (200, ("cache-control", "no-store")),
        (200, ("cache-control", "private, max-age=60")),
        (200, ("set-cookie", "a=b")),
        (500, ("cache-control", "max-age=60")),
    ] {
        let cache = factory(json!({}));
        let answer = move |_: &request::Parts| (upstream(status, &[field]), &b"x"[..]);
        assert_eq!(exchange(&cache, &mut get(&[]), answer).2, "MISS");
        assert_eq!(exchange(&cache, &mut get(&[]), answer).2, "MISS", "{field:?} was stored");
    }
}

#[test]
fn an_expired_entry_is_revalidated_and_a_304_serves_the_stored_body() {
    let cache = factory(json!({}));
    let first =
        |_: &request::Parts| (upstream(200, &[("cache-control", "max-age=0"), ("etag", "\"v1\"")]), &b"full"[..]);
    assert_eq!(exchange(&cache, &mut get(&[]), first).2, "MISS");
    let revalidate = |request: &request::Parts| {
        assert_eq!(request.headers.get("if-none-match"), Some(&HeaderValue::from_static("\"v1\"")));
        (upstream(304, &[("cache-control", "max-age=60"), ("etag", "\"v1\"")]), &b""[..])
    };
    assert_eq!(
        exchange(&cache, &mut get(&[]), revalidate),
        (StatusCode::OK, Bytes::from("full"), "REVALIDATED".into())
    );
    let never = |_: &request::Parts| -> (response::Parts, &'static [u8]) { panic!("fresh again after the 304") };
    assert_eq!(exchange(&cache, &mut get(&[]), never).2, "HIT");
}

#[test]
fn a_stale_entry_answers_for_an_upstream_failure_when_allowed() {
    let cache = factory(json!({ "use_stale": ["error", "http_503"] }));
    let first =
        |_: &request::Parts| (upstream(200, &[("cache-control", "max-age=0"), ("etag", "\"v1\"")]), &b"old"[..]);
    exchange(&cache, &mut get(&[]), first);
    let failing = |_: &request::Parts| (upstream(503, &[]), &b"down"[..]);
    assert_eq!(exchange(&cache, &mut get(&[]), failing), (StatusCode::OK, Bytes::from("old"), "STALE".into()));

    let mut filter = cache.create();
    let mut ctx = ctx();
    assert!(matches!(ready(filter.request_headers(&mut get(&[]), &mut ctx)), Flow::Continue));
    let mut reply = LocalResponse::for_reason(Reason::UpstreamConnectFailed);
    ready(filter.local_reply(&mut reply, &mut ctx));
    assert_eq!((reply.status, reply.body.as_ref(), reply.reason), (StatusCode::OK, &b"old"[..], None));
    assert_eq!(ctx.reason, Some(Reason::UpstreamConnectFailed), "the failure is still logged");
}

#[test]
fn another_filters_local_answer_is_not_stored() {
    let cache = factory(json!({}));
    let mut filter = cache.create();
    let mut ctx = ctx();
    ready(filter.request_headers(&mut get(&[]), &mut ctx));
    let mut reply = LocalResponse::new(StatusCode::OK, "text/plain", "local");
    ready(filter.local_reply(&mut reply, &mut ctx));
    let mut head = upstream_head(&reply);
    ready(filter.response_headers(&mut head, &mut ctx));
    assert_eq!(head.headers["x-cache-status"], "MISS");
    assert!(filter.response_body(&head, &ctx).is_none(), "nothing captured");
}

#[test]
fn the_clients_no_cache_and_bypass_headers_skip_the_cache() {
    let cache = factory(json!({ "bypass": ["x-refresh"] }));
    let answer = |_: &request::Parts| (upstream(200, &[("cache-control", "max-age=60")]), &b"v"[..]);
    exchange(&cache, &mut get(&[]), answer);
    assert_eq!(exchange(&cache, &mut get(&[("cache-control", "no-cache")]), answer).2, "BYPASS");
    assert_eq!(exchange(&cache, &mut get(&[("x-refresh", "1")]), answer).2, "BYPASS");
    assert_eq!(exchange(&cache, &mut get(&[("x-refresh", "0")]), answer).2, "HIT");
}

#[test]
fn answers_to_authorized_requests_are_stored_only_when_they_say_they_may_be_shared() {
    let authorized = || get(&[("authorization", "Basic eDp5")]);
    for (directives, stored) in [
        ("max-age=60", false),
        ("public, max-age=60", true),
        ("s-maxage=60", true),
        ("must-revalidate, max-age=60", true),
    ] {
        let cache = factory(json!({}));
        let answer = move |_: &request::Parts| (upstream(200, &[("cache-control", directives)]), &b"x"[..]);
        assert_eq!(exchange(&cache, &mut authorized(), answer).2, "MISS");
        let again = exchange(&cache, &mut get(&[]), answer).2;
        assert_eq!(again == "HIT", stored, "{directives}: {again}");
    }
    let cache = factory(json!({}));
    let shared = |_: &request::Parts| (upstream(200, &[("cache-control", "max-age=60")]), &b"x"[..]);
    exchange(&cache, &mut get(&[]), shared);
    assert_eq!(exchange(&cache, &mut authorized(), shared).2, "HIT", "a shared answer serves everyone");
}

#[test]
fn vary_star_is_never_stored_and_no_cache_is_revalidated_on_every_use() {
    let cache = factory(json!({}));
    let star = |_: &request::Parts| (upstream(200, &[("cache-control", "max-age=60"), ("vary", "*")]), &b"x"[..]);
    exchange(&cache, &mut get(&[]), star);
    assert_eq!(exchange(&cache, &mut get(&[]), star).2, "MISS");

    let cache = factory(json!({}));
    let first = |_: &request::Parts| {
        (upstream(200, &[("cache-control", "no-cache, max-age=60"), ("etag", "\"a\"")]), &b"body"[..])
    };
    assert_eq!(exchange(&cache, &mut get(&[]), first).2, "MISS");
    for _ in 0..2 {
        let confirm = |request: &request::Parts| {
            assert_eq!(request.headers["if-none-match"], "\"a\"", "asked before use");
            (upstream(304, &[("etag", "\"a\"")]), &b""[..])
        };
        assert_eq!(
            exchange(&cache, &mut get(&[]), confirm),
            (StatusCode::OK, Bytes::from("body"), "REVALIDATED".into())
        );
    }
    // Without a validator there is nothing to revalidate with: not stored.
    let cache = factory(json!({}));
    let bare = |_: &request::Parts| (upstream(200, &[("cache-control", "no-cache")]), &b"x"[..]);
    exchange(&cache, &mut get(&[]), bare);
    assert_eq!(exchange(&cache, &mut get(&[]), bare).2, "MISS");
}

#[test]
fn heuristic_freshness_only_for_statuses_that_allow_it() {
    // 302 is stored when listed, but without freshness of its own it gets no `ttl`...
    let cache = factory(json!({ "statuses": [200, 302] }));
    let redirect = |_: &request::Parts| (upstream(302, &[("location", "/x")]), &b""[..]);
    exchange(&cache, &mut get(&[]), redirect);
    assert_eq!(exchange(&cache, &mut get(&[]), redirect).2, "MISS");
    // ...unless it says `public`, or the operator gives it a `valid` entry.
    let public = |_: &request::Parts| (upstream(302, &[("location", "/x"), ("cache-control", "public")]), &b""[..]);
    exchange(&cache, &mut get(&[]), public);
    assert_eq!(exchange(&cache, &mut get(&[]), public).2, "HIT");
    let cache = factory(json!({ "statuses": [302], "valid": [{ "statuses": [302], "ttl": "1m" }] }));
    exchange(&cache, &mut get(&[]), redirect);
    assert_eq!(exchange(&cache, &mut get(&[]), redirect).2, "HIT");
    // A 200 without freshness information gets `ttl`.
    let cache = factory(json!({}));
    let plain = |_: &request::Parts| (upstream(200, &[]), &b"x"[..]);
    exchange(&cache, &mut get(&[]), plain);
    assert_eq!(exchange(&cache, &mut get(&[]), plain).2, "HIT");
}

#[test]
fn must_revalidate_and_s_maxage_are_never_served_stale() {
    for directives in ["max-age=0, must-revalidate", "s-maxage=0", "max-age=0, proxy-revalidate"] {
        let cache = factory(json!({ "use_stale": ["error", "http_503"] }));
        let first =
            move |_: &request::Parts| (upstream(200, &[("cache-control", directives), ("etag", "\"v\"")]), &b"old"[..]);
        exchange(&cache, &mut get(&[]), first);
        let failing = |_: &request::Parts| (upstream(503, &[]), &b"down"[..]);
        let answer = exchange(&cache, &mut get(&[]), failing);
        assert_eq!((answer.0, answer.2.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "EXPIRED"), "{directives}");
    }
}

#[test]
fn bodies_past_max_object_size_stop_being_buffered_without_a_declared_length() {
    let cache = factory(json!({ "max_object_size": 8 }));
    let mut filter = cache.create();
    let mut ctx = ctx();
    ready(filter.request_headers(&mut get(&[]), &mut ctx));
    let mut head = upstream(200, &[("cache-control", "max-age=60")]);
    ready(filter.response_headers(&mut head, &mut ctx));
    let body = filter.response_body(&head, &ctx).expect("captured");
    let (body, first) = ready(body.chunk(Bytes::from_static(b"12345"), false));
    let (body, second) = ready(body.chunk(Bytes::from_static(b"67890"), false));
    let (_, last) = ready(body.chunk(Bytes::new(), true));
    assert_eq!([first.unwrap(), second.unwrap(), last.unwrap()].concat(), b"1234567890", "the client gets it all");
    drop(filter);
    let never = |_: &request::Parts| (upstream(200, &[]), &b"fresh"[..]);
    assert_eq!(exchange(&cache, &mut get(&[]), never).2, "MISS", "not stored");
    // `max_body`, its earlier name, still reads.
    assert!(serde_json::from_value::<ProxyCacheConfig>(json!({ "max_body": "1MiB" })).is_ok());
}

#[test]
fn the_cache_status_is_in_the_request_context_for_the_log() {
    let cache = factory(json!({}));
    let answer = |_: &request::Parts| (upstream(200, &[("cache-control", "max-age=60")]), &b"x"[..]);
    exchange(&cache, &mut get(&[]), answer);
    let mut filter = cache.create();
    let mut ctx = ctx();
    let Flow::Respond(mut local) = ready(filter.request_headers(&mut get(&[]), &mut ctx)) else { panic!("a hit") };
    ready(filter.local_reply(&mut local, &mut ctx));
    ready(filter.response_headers(&mut upstream_head(&local), &mut ctx));
    assert_eq!(ctx.cache_status, Some("HIT"));
}

#[test]
fn bad_settings_name_their_field() {
    let error = |config: serde_json::Value| {
        let config: ProxyCacheConfig = serde_json::from_value(config).unwrap();
        Settings::new(config).unwrap_err().path
    };
    assert_eq!(error(json!({ "statuses": [200, 99] })), "statuses[1]");
    assert_eq!(error(json!({ "valid": [{ "statuses": [700], "ttl": "1m" }] })), "valid[0].statuses[0]");
    assert_eq!(error(json!({ "methods": ["G T"] })), "methods[0]");
    assert_eq!(error(json!({ "cache_key": { "headers": ["bad name"] } })), "cache_key.headers[0]");
    assert_eq!(error(json!({ "max_size": 0 })), "max_size");
    assert!(serde_json::from_value::<ProxyCacheConfig>(json!({ "use_stale": ["sometimes"] })).is_err());
    assert!(serde_json::from_value::<ProxyCacheConfig>(json!({ "unknown": 1 })).is_err());
}

fn unsafe_request(method: &str, target: &str) -> request::Parts {
    http::Request::builder().method(method).uri(target).header("host", "Cache.Test").body(()).unwrap().into_parts().0
}

#[test]
fn a_successful_unsafe_request_invalidates_its_target_and_its_location() {
    let cache = factory(json!({}));
    let stored = |_: &request::Parts| (upstream(200, &[("cache-control", "max-age=60")]), &b"v1"[..]);
    let never = |_: &request::Parts| -> (response::Parts, &'static [u8]) { panic!("a hit went upstream") };
    let mut other = http::Request::get("/other").header("host", "cache.test").body(()).unwrap().into_parts().0;
    assert_eq!(exchange(&cache, &mut get(&[]), stored).2, "MISS");
    assert_eq!(exchange(&cache, &mut other.clone(), stored).2, "MISS");
    assert_eq!(exchange(&cache, &mut get(&[]), never).2, "HIT");
    // A failed update keeps the entry.
    let refused = |_: &request::Parts| (upstream(409, &[]), &b""[..]);
    assert_eq!(exchange(&cache, &mut unsafe_request("PUT", "/item?id=1"), refused).2, "BYPASS");
    assert_eq!(exchange(&cache, &mut get(&[]), never).2, "HIT");
    // A successful one drops it; `Content-Location` on the same host drops that one too.
    let updated = |_: &request::Parts| (upstream(204, &[("content-location", "/other")]), &b""[..]);
    assert_eq!(exchange(&cache, &mut unsafe_request("DELETE", "/item?id=1"), updated).2, "BYPASS");
    assert_eq!(exchange(&cache, &mut get(&[]), stored).2, "MISS");
    assert_eq!(exchange(&cache, &mut other, stored).2, "MISS");
    // `Location` on another host is not this cache's to drop.
    let elsewhere = |_: &request::Parts| (upstream(201, &[("location", "http://elsewhere.test/item?id=1")]), &b""[..]);
    assert_eq!(exchange(&cache, &mut unsafe_request("POST", "/new"), elsewhere).2, "BYPASS");
    assert_eq!(exchange(&cache, &mut get(&[]), never).2, "HIT");
}

#[test]
fn invalidation_reaches_every_variant_of_keys_with_request_headers() {
    let cache = factory(json!({ "cache_key": { "headers": ["x-user"] } }));
    let stored = |_: &request::Parts| (upstream(200, &[("cache-control", "max-age=60")]), &b"v1"[..]);
    let never = |_: &request::Parts| -> (response::Parts, &'static [u8]) { panic!("a hit went upstream") };
    for user in ["a", "b"] {
        let mut request = get(&[("x-user", if user == "a" { "a" } else { "b" })]);
        assert_eq!(exchange(&cache, &mut request.clone(), stored).2, "MISS");
        assert_eq!(exchange(&cache, &mut request, never).2, "HIT");
    }
    let ok = |_: &request::Parts| (upstream(200, &[]), &b""[..]);
    assert_eq!(exchange(&cache, &mut unsafe_request("PATCH", "/item?id=1"), ok).2, "BYPASS");
    assert_eq!(exchange(&cache, &mut get(&[("x-user", "a")]), stored).2, "MISS");
    assert_eq!(exchange(&cache, &mut get(&[("x-user", "b")]), stored).2, "MISS");
}

#[test]
fn the_reference_examples_load_and_their_disk_store_opens() {
    let doc = include_str!("../../../../docs/CONFIG.md");
    let section = &doc[doc.find("### `proxy_cache`").expect("docs/CONFIG.md documents the filter")..];
    let section = &section[..section.find("\n## ").unwrap()];
    let mut examples = 0;
    for block in section.split("```yaml\n").skip(1) {
        let example = &block[..block.find("```").unwrap()];
        let config =
            strait_config::load_str_with_env(example, "CONFIG.md", &|_| None).unwrap_or_else(|e| panic!("{e}"));
        let mut settings: ProxyCacheConfig =
            serde_json::from_value(config.listeners[0].routes[0].filters[0].config.clone()).unwrap();
        // The example's directory is a system one: the store opens in a directory of the test's.
        let dir = tempfile::tempdir().unwrap();
        if let Some(disk) = &mut settings.disk {
            assert_eq!(disk.max_size.0, 10_000 << 20);
            disk.path = dir.path().join("cache").display().to_string();
        }
        assert!(Settings::new(settings).is_ok());
        examples += 1;
    }
    assert_eq!(examples, 2);
}

#[test]
fn a_disk_store_that_cannot_be_made_is_reported_at_its_path() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let config = json!({ "disk": { "path": file.path().join("below-a-file").display().to_string() } });
    let error = Settings::new(serde_json::from_value(config).unwrap()).unwrap_err();
    assert_eq!(error.path, "disk.path");
    let config = json!({ "disk": { "path": "/tmp", "max_size": 0 } });
    assert_eq!(Settings::new(serde_json::from_value(config).unwrap()).unwrap_err().path, "disk.max_size");
    assert!(serde_json::from_value::<ProxyCacheConfig>(json!({ "disk": { "path": "/x", "levels": 2 } })).is_err());
}
