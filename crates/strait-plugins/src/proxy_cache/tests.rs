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
    assert_eq!(exchange(&cache, &mut get(&[("authorization", "Basic eDp5")]), answer).2, "BYPASS");
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
