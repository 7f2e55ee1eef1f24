//! REST to gRPC transcoding end to end: HTTP/1.1 JSON clients (curl, raw requests), Strait's
//! `grpc_transcode` action, and a real tonic gRPC server for `tests/protos/library.proto`
//! (see `library`).

mod library;

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{json, Value};

use crate::support::{curl, raw_request, Proxy};
use library::{compiled, descriptor_file, from_json, to_json, DynamicCodec, Server};

// === the proxy ===

/// Strait in front of `backend` with a `grpc_transcode` route (timeout 3s); `extra` adds
/// fields to it.
fn proxy(backend: SocketAddr, descriptor: &Path, extra: &str) -> Proxy {
    proxy_with_timeout(backend, descriptor, "3s", extra)
}

/// [`proxy`] with another route timeout.
fn proxy_with_timeout(backend: SocketAddr, descriptor: &Path, timeout: &str, extra: &str) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    http2: true\n    routes:\n      - timeout: {timeout}\n        grpc_transcode:\n          cluster: library\n          descriptor_set: \"{}\"\n          services: [library.v1.Library]\n{extra}clusters:\n  - name: library\n    protocol: http2\n    timeouts: {{ connect: 1s }}\n    endpoints: [{{ address: \"{backend}\" }}]\n",
        descriptor.display()
    ))
}

/// A server, a descriptor set and a proxy in front of the server.
fn setup(extra: &str) -> (Server, tempfile::TempDir, Proxy) {
    let server = Server::start();
    let (dir, descriptor) = descriptor_file();
    let proxy = proxy(server.addr, &descriptor, extra);
    (server, dir, proxy)
}

/// curl against the proxy's `web` listener: method, path and query, optional JSON body.
fn call(proxy: &Proxy, method: &str, target: &str, body: Option<&str>) -> (u16, Value, crate::support::RawResponse) {
    let url = format!("http://{}{target}", proxy.addr("web"));
    let mut args =
        vec!["-X", method, url.as_str(), "-H", "authorization: Bearer t0k3n", "-H", "grpc-metadata-x-tenant: acme"];
    if let Some(body) = body {
        args.extend(["-H", "content-type: application/json", "--data-binary", body]);
    }
    let response = curl(&args);
    let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, json, response)
}

// === cases ===

#[test]
fn get_binds_path_variables_and_query_parameters() {
    let (server, _dir, proxy) = setup("");
    let (status, body, response) =
        call(&proxy, "GET", "/v1/shelves/sci%20fi/books/42?filter.author=Le%20Guin&filter.min_pages=300&tags=a&tags=b&genre=HISTORY&drafts=true", None);
    assert_eq!(status, 200, "{response:?}");
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("grpc-status"), Some("0"));
    assert_eq!(
        body,
        json!({ "shelf": "sci fi", "id": "42", "title": "by Le Guin", "tags": ["a", "b"], "genre": "HISTORY", "pageCount": 300 })
    );
    let calls = server.calls();
    assert_eq!(calls.len(), 1);
    let seen = &calls[0];
    assert_eq!(seen.method, "GetBook");
    assert_eq!(seen.message["drafts"], true);
    assert_eq!(seen.message["book"], "42");
    assert_eq!(seen.authorization.as_deref(), Some("Bearer t0k3n"), "authorization is forwarded as metadata");
    assert_eq!(seen.tenant.as_deref(), Some("acme"), "grpc-metadata-x-tenant is sent as x-tenant");
    assert_eq!(seen.timeout.as_deref(), Some("3000m"), "the route's timeout is the call's deadline");
    assert_eq!(seen.request_id.as_deref(), response.header("x-request-id"), "the request's id goes along");
    assert!(seen.request_id.is_some());
    assert_eq!(response.header("grpc-metadata-x-served-by"), Some("library"), "the service's metadata comes back");
}

#[test]
fn post_with_a_body_field_and_with_the_whole_body() {
    let (server, _dir, proxy) = setup("");
    let (status, body, _) = call(
        &proxy,
        "POST",
        "/v1/shelves/s1/books",
        Some(r#"{"title": "Dune", "genre": "FICTION", "pageCount": 412}"#),
    );
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "shelf": "s1", "id": "7", "title": "Dune", "genre": "FICTION", "pageCount": 412 }));
    assert_eq!(server.calls()[0].message["book"]["title"], "Dune");

    // body: "*" with a pattern variable `{name=shelves/*}`, the path winning over the body.
    let (status, body, _) = call(&proxy, "PATCH", "/v1/shelves/s9", Some(r#"{"name": "ignored", "theme": "sea"}"#));
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "name": "shelves/s9", "theme": "sea" }));
    // The additional binding of the same method.
    let (status, body, _) = call(&proxy, "PUT", "/v1/shelves:update", Some(r#"{"name": "shelves/x", "theme": "sky"}"#));
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "name": "shelves/x", "theme": "sky" }));
}

#[test]
fn nested_path_fields_verbs_and_response_body() {
    let (_server, _dir, proxy) = setup("");
    let (status, body, _) = call(&proxy, "POST", "/v1/books/5/to/attic:move", Some(r#"{"target": {"position": 3}}"#));
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "shelf": "attic", "id": "5", "pageCount": 3 }));
    let (status, body, _) = call(&proxy, "GET", "/v1/titles/s1/3?filter.author=Ann", None);
    assert_eq!(status, 200);
    assert_eq!(body, json!("by Ann"), "response_body: only the title");
}

#[test]
fn methods_are_callable_at_their_grpc_paths() {
    let (server, _dir, proxy) = setup("");
    let (status, body, _) = call(&proxy, "POST", "/library.v1.Library/Ping", Some(r#"{"name": "n", "theme": "t"}"#));
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "name": "n", "theme": "t" }));
    let (status, body, _) = call(&proxy, "POST", "/library.v1.Library/GetBook", Some(r#"{"shelf": "s", "book": 8}"#));
    assert_eq!(status, 200);
    assert_eq!(body["id"], "8");
    assert_eq!(server.calls().len(), 2);
}

#[test]
fn client_streams_take_a_json_array() {
    let (server, _dir, proxy) = setup("");
    let body = r#"[{"title": "one"}, {"title": "two"}, {"title": "three"}]"#;
    let (status, body, response) = call(&proxy, "POST", "/v1/shelves/s3/books:batch", Some(body));
    assert_eq!(status, 200, "{response:?}");
    assert_eq!(body, json!({ "name": "s3", "theme": "one+two+three" }));
    let calls = server.calls();
    assert_eq!(calls[0].message.as_array().map(Vec::len), Some(3), "three messages, each with the path's shelf");
}

#[test]
fn server_streams_are_json_arrays_or_lines() {
    let (_server, _dir, proxy) = setup("");
    let (status, body, _) = call(&proxy, "GET", "/v1/shelves/s2/books?limit=3", None);
    assert_eq!(status, 200);
    assert_eq!(body, json!([{ "shelf": "s2", "id": "1" }, { "shelf": "s2", "id": "2" }, { "shelf": "s2", "id": "3" }]));
    let (_, body, _) = call(&proxy, "GET", "/v1/shelves/s2/books?limit=0", None);
    assert_eq!(body, json!([]));

    let (_server, _dir, proxy) = setup("          print_options: { stream_newline_delimited: true, preserve_proto_field_names: true, always_print_primitive_fields: true }\n");
    let (status, _, response) = call(&proxy, "GET", "/v1/shelves/s2/books?limit=2", None);
    assert_eq!(status, 200);
    assert_eq!(response.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = response.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["id"], "2");
    assert_eq!(lines[1]["page_count"], 0, "proto names, defaults printed");
}

#[test]
fn grpc_statuses_become_http_statuses_with_json_bodies() {
    let (_server, _dir, proxy) = setup("");
    let (status, body, response) = call(&proxy, "GET", "/v1/shelves/s1/books/404", None);
    assert_eq!(status, 404, "{response:?}");
    assert_eq!(body, json!({ "code": 5, "message": "book 404 is not on shelf s1", "details": [] }));
    assert_eq!(response.header("grpc-status"), Some("5"));
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(response.header("grpc-message").is_some_and(|m| m.contains("404")));
    let (status, body, _) = call(&proxy, "GET", "/v1/shelves/bad/books/1", None);
    assert_eq!(status, 400);
    assert_eq!(body["code"], 3);
    assert_eq!(body["message"], "shelf names cannot be `bad`");
    // Typed details from `grpc-status-details-bin`, printed as JSON with their type.
    let (status, body, _) = call(&proxy, "GET", "/v1/shelves/gone/books/1", None);
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({ "code": 5, "message": "no shelf `gone`", "details": [
            { "@type": "type.googleapis.com/library.v1.ShelfMissing", "shelf": "gone", "nearby": ["here", "there"] }
        ] })
    );
}

#[test]
fn a_slow_service_is_504_at_the_routes_timeout() {
    let server = Server::start();
    let (_dir, descriptor) = descriptor_file();
    let proxy = proxy_with_timeout(server.addr, &descriptor, "300ms", "");
    let started = std::time::Instant::now();
    let (status, _, response) = call(&proxy, "GET", "/v1/shelves/slow/books/1", None);
    assert_eq!(status, 504, "{response:?}");
    assert_eq!(response.header("x-strait-reason"), Some("upstream_timeout"));
    assert!(started.elapsed() < std::time::Duration::from_millis(1500), "answered at the deadline, not the answer");
    assert_eq!(server.calls()[0].timeout.as_deref(), Some("300m"));
}

#[test]
fn grpc_clients_and_unmatched_requests_pass_through() {
    let (server, _dir, proxy) = setup("          pass_through_unmatched: true\n");
    // A gRPC client calls through the same route, untouched.
    let pool = compiled().descriptor_pool();
    let ping = pool.get_service_by_name("library.v1.Library").unwrap().methods().find(|m| m.name() == "Ping").unwrap();
    let url = format!("http://{}", proxy.addr("web"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let answer = runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url).unwrap().connect().await.unwrap();
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.unwrap();
        let request = tonic::Request::new(from_json(&ping.input(), json!({ "name": "via grpc" })));
        let path = http::uri::PathAndQuery::from_static("/library.v1.Library/Ping");
        client.unary(request, path, DynamicCodec { input: ping.output() }).await.unwrap().into_inner()
    });
    assert_eq!(to_json(&answer)["name"], "via grpc");
    assert_eq!(server.calls().len(), 1);
    // A request no binding matches goes to the service as it is (which has no such method).
    let (status, _, response) = call(&proxy, "GET", "/metrics", None);
    assert_eq!(status, 200, "{response:?}");
    assert_eq!(response.header("grpc-status"), Some("12"), "tonic's own answer: unimplemented");
    assert_eq!(server.calls().len(), 1);
}

#[test]
fn bodies_over_their_limits_are_refused() {
    let (server, _dir, proxy) = setup("          max_request_bytes: 64\n");
    let big = format!(r#"{{"title": "{}"}}"#, "x".repeat(200));
    let (status, _, response) = call(&proxy, "POST", "/v1/shelves/s1/books", Some(&big));
    assert_eq!(status, 413, "{response:?}");
    assert_eq!(response.header("x-strait-reason"), Some("body_too_large"));
    assert!(server.calls().is_empty());
    // An answer over `max_response_bytes` is the service's fault: 502.
    let (_server, _dir, proxy) = setup("          max_response_bytes: 40\n");
    let (status, _, response) = call(&proxy, "GET", "/v1/shelves/s1/books?limit=10", None);
    assert_eq!(status, 502, "{response:?}");
    assert_eq!(response.header("x-strait-reason"), Some("upstream_bad_response"));
    let (status, _, _) = call(&proxy, "GET", "/v1/shelves/s1/books?limit=1", None);
    assert_eq!(status, 200, "a small answer still fits");
}

#[test]
fn bad_requests_are_refused_before_the_service() {
    let (server, _dir, proxy) = setup("");
    let (status, body, response) = call(&proxy, "GET", "/v1/shelves/s1/books/1?colour=red", None);
    assert_eq!(status, 400, "{response:?}");
    assert_eq!(response.header("x-strait-reason"), Some("bad_request"));
    assert_eq!(body["code"], 3);
    assert!(body["message"].as_str().unwrap().contains("colour"), "{body}");
    let (status, body, _) = call(&proxy, "POST", "/v1/shelves/s1/books", Some("{not json"));
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("not JSON"), "{body}");
    let (status, body, _) = call(&proxy, "POST", "/v1/shelves/s1/books", Some(r#"{"pageCount": "many"}"#));
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = call(&proxy, "GET", "/v1/shelves/s1/books/not-a-number", None);
    assert_eq!(status, 400);
    let (status, body, response) = call(&proxy, "GET", "/v1/nothing/here", None);
    assert_eq!(status, 404);
    assert_eq!(response.header("x-strait-reason"), Some("no_route"));
    assert_eq!(body["code"], 5);
    assert!(server.calls().is_empty(), "the service saw none of these: {:?}", server.calls());

    // Unknown parameters may be ignored instead.
    let (server, _dir, proxy) = setup("          ignore_unknown_query_parameters: true\n");
    let (status, _, _) = call(&proxy, "GET", "/v1/shelves/s1/books/1?colour=red", None);
    assert_eq!(status, 200);
    assert_eq!(server.calls().len(), 1);
}

#[test]
fn an_unreachable_service_is_502_with_its_reason() {
    let (_dir, descriptor) = descriptor_file();
    // A port that was free a moment ago: nothing listens there.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let proxy = proxy(free, &descriptor, "");
    let response =
        raw_request(proxy.addr("web"), b"GET /v1/shelves/s/books/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("a response");
    assert_eq!(response.status, 502, "{response:?}");
    assert_eq!(response.header("x-strait-reason"), Some("upstream_connect_failed"));
}

#[test]
fn descriptor_problems_are_reported_at_their_fields() {
    let (dir, descriptor) = descriptor_file();
    let not_a_set = dir.path().join("notes.txt");
    std::fs::write(&not_a_set, "\u{ff}\u{ff} this is text").unwrap();
    let text = format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - grpc_transcode:\n          cluster: library\n          descriptor_set: \"{}\"\n          services: [library.v1.Library, library.v1.Nope]\n      - grpc_transcode:\n          cluster: library\n          descriptor_set: /nonexistent/library.pb\n          services: [library.v1.Library]\n      - grpc_transcode:\n          cluster: plain\n          descriptor_set: \"{}\"\n          services: [library.v1.Library]\n      - grpc_transcode:\n          cluster: library\n          descriptor_set: \"{}\"\n          services: [library.v1.Library]\nclusters:\n  - name: library\n    protocol: http2\n    endpoints: [{{ address: \"127.0.0.1:9\" }}]\n  - name: plain\n    endpoints: [{{ address: \"127.0.0.1:9\" }}]\n",
        descriptor.display(),
        descriptor.display(),
        not_a_set.display(),
    );
    let config = strait_config::load_str(&text, "transcode.yaml").unwrap();
    let errors = strait_proxy::check(&config).unwrap_err().to_string();
    assert!(
        errors.contains("transcode.yaml:8:42: listeners[0].routes[0].grpc_transcode.services[1]: service `library.v1.Nope` is not in the descriptor set (it has `library.v1.Library`)"),
        "{errors}"
    );
    assert!(
        errors.contains("transcode.yaml:11:27: listeners[0].routes[1].grpc_transcode.descriptor_set: cannot read descriptor set `/nonexistent/library.pb`"),
        "{errors}"
    );
    assert!(errors.contains("routes[2].grpc_transcode.cluster: cluster `plain` speaks HTTP/1.1"), "{errors}");
    assert!(
        errors.contains("routes[3].grpc_transcode.descriptor_set:")
            && errors.contains("is not a binary FileDescriptorSet"),
        "{errors}"
    );

    // The loader's own checks: no services, an unknown cluster.
    let text = "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - grpc_transcode: { cluster: nope, descriptor_set: x.pb, services: [] }\nclusters: []\n";
    let errors = strait_config::load_str(text, "t.yaml").unwrap_err().to_string();
    assert!(errors.contains("grpc_transcode.cluster: unknown cluster `nope`"), "{errors}");
    assert!(errors.contains("grpc_transcode.services: services lists no service"), "{errors}");
}
