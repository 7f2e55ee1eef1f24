//! REST to gRPC transcoding end to end: HTTP/1.1 JSON clients (curl, raw requests), Strait's
//! `grpc_transcode` action, and a real tonic gRPC server for `tests/protos/library.proto`
//! (compiled by protox as the tests run; the server handles dynamic messages through a
//! codec of its own, so nothing is generated ahead and no `protoc` is needed).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions};
use serde_json::{json, Value};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

use crate::support::{curl, raw_request, Proxy};

// === the descriptor set ===

/// The test protos' directory.
fn protos() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/protos")
}

/// `library.proto` and its imports compiled as `protoc --include_imports` would.
fn compiled() -> protox::Compiler {
    let mut compiler = protox::Compiler::new([protos()]).expect("protos directory");
    compiler.include_imports(true);
    compiler.open_file("library.proto").expect("library.proto compiles");
    compiler
}

/// A temporary directory holding `library.pb`, the binary descriptor set.
fn descriptor_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("library.pb");
    std::fs::write(&path, compiled().encode_file_descriptor_set()).unwrap();
    (dir, path)
}

// === the gRPC server ===

/// What one call brought to the server: its method, its message as JSON and two metadata
/// fields.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    message: Value,
    authorization: Option<String>,
    tenant: Option<String>,
    timeout: Option<String>,
}

/// A tonic server for `library.v1.Library` that records every call.
#[derive(Clone)]
struct Library {
    pool: DescriptorPool,
    calls: Arc<Mutex<Vec<Call>>>,
}

/// Prints a message as JSON with proto field names and default fields.
fn to_json(message: &DynamicMessage) -> Value {
    let options = SerializeOptions::new().use_proto_field_name(true).skip_default_fields(false);
    message.serialize_with_options(serde_json::value::Serializer, &options).unwrap()
}

/// A message of type `descriptor` from JSON.
fn from_json(descriptor: &MessageDescriptor, value: Value) -> DynamicMessage {
    DynamicMessage::deserialize(descriptor.clone(), value).unwrap()
}

/// The library's behaviour: answers (one per message of a stream) as JSON, or a status.
fn behave(method: &str, request: &Value) -> Result<Vec<Value>, Box<Status>> {
    match method {
        "GetBook" | "GetTitle" => {
            let id = request["book"].as_str().unwrap_or("0").to_owned();
            if id == "404" {
                return Err(Box::new(Status::not_found(format!(
                    "book {id} is not on shelf {}",
                    request["shelf"].as_str().unwrap()
                ))));
            }
            if request["shelf"] == "gone" {
                return Err(Box::new(shelf_missing()));
            }
            if request["shelf"] == "slow" {
                std::thread::sleep(std::time::Duration::from_millis(800));
            }
            if request["shelf"] == "bad" {
                return Err(Box::new(Status::invalid_argument("shelf names cannot be `bad`")));
            }
            let title = format!("by {}", request["filter"]["author"].as_str().unwrap_or(""));
            Ok(vec![json!({
                "shelf": request["shelf"],
                "id": id,
                "title": title,
                "tags": request["tags"],
                "genre": request["genre"],
                "page_count": request["filter"]["min_pages"],
            })])
        }
        "CreateBook" => {
            let mut book = request["book"].clone();
            book["shelf"] = request["shelf"].clone();
            book["id"] = json!("7");
            Ok(vec![book])
        }
        "UpdateShelf" | "Ping" => Ok(vec![request.clone()]),
        "MoveBook" => Ok(vec![json!({
            "id": request["book"],
            "shelf": request["target"]["shelf"],
            "page_count": request["target"]["position"],
        })]),
        "ListBooks" => {
            let count = request["limit"].as_i64().unwrap_or(0);
            Ok((1..=count).map(|id| json!({ "shelf": request["shelf"], "id": id.to_string() })).collect())
        }
        _ => Err(Box::new(Status::unimplemented(method.to_owned()))),
    }
}

/// `google.rpc.Status`, which carries typed error details.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// NOT_FOUND with a `library.v1.ShelfMissing` detail.
fn shelf_missing() -> Status {
    let pool = compiled().descriptor_pool();
    let detail = pool.get_message_by_name("library.v1.ShelfMissing").unwrap();
    let detail = from_json(&detail, json!({ "shelf": "gone", "nearby": ["here", "there"] }));
    let status = RpcStatus {
        code: Code::NotFound as i32,
        message: "no shelf `gone`".into(),
        details: vec![prost_types::Any {
            type_url: "type.googleapis.com/library.v1.ShelfMissing".into(),
            value: detail.encode_to_vec(),
        }],
    };
    Status::with_details(Code::NotFound, "no shelf `gone`", status.encode_to_vec().into())
}

impl tonic::server::NamedService for Library {
    const NAME: &'static str = "library.v1.Library";
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for Library {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let name = request.uri().path().rsplit('/').next().unwrap_or_default().to_owned();
        let service = self.pool.get_service_by_name("library.v1.Library").unwrap();
        let Some(method) = service.methods().find(|m| m.name() == name) else {
            let unimplemented = http::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "12")
                .body(tonic::body::Body::empty())
                .unwrap();
            return Box::pin(async { Ok(unimplemented) });
        };
        let handler = Handler { method: method.clone(), calls: self.calls.clone() };
        let codec = DynamicCodec { input: method.input() };
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(codec);
            let response = if method.is_server_streaming() {
                grpc.server_streaming(handler, request).await
            } else {
                grpc.unary(handler, request).await
            };
            Ok(response)
        })
    }
}

/// Handles one call of one method.
#[derive(Clone)]
struct Handler {
    method: MethodDescriptor,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Handler {
    /// Records the call and runs the library's behaviour.
    fn run(&self, request: tonic::Request<DynamicMessage>) -> Result<Vec<DynamicMessage>, Box<Status>> {
        let text = |name: &str| request.metadata().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let message = to_json(request.get_ref());
        self.calls.lock().unwrap().push(Call {
            method: self.method.name().to_owned(),
            message: message.clone(),
            authorization: text("authorization"),
            tenant: text("x-tenant"),
            timeout: text("grpc-timeout"),
        });
        let answers = behave(self.method.name(), &message)?;
        Ok(answers.into_iter().map(|answer| from_json(&self.method.output(), answer)).collect())
    }
}

impl tonic::server::UnaryService<DynamicMessage> for Handler {
    type Response = DynamicMessage;
    type Future = std::future::Ready<Result<tonic::Response<DynamicMessage>, Status>>;

    fn call(&mut self, request: tonic::Request<DynamicMessage>) -> Self::Future {
        std::future::ready(self.run(request).map(|mut answers| tonic::Response::new(answers.remove(0))).map_err(|e| *e))
    }
}

impl tonic::server::ServerStreamingService<DynamicMessage> for Handler {
    type Response = DynamicMessage;
    type ResponseStream = futures_util::stream::Iter<std::vec::IntoIter<Result<DynamicMessage, Status>>>;
    type Future = std::future::Ready<Result<tonic::Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: tonic::Request<DynamicMessage>) -> Self::Future {
        let answers = self.run(request).map(|answers| {
            let items: Vec<Result<DynamicMessage, Status>> = answers.into_iter().map(Ok).collect();
            tonic::Response::new(futures_util::stream::iter(items))
        });
        let answers = answers.map_err(|e| *e);
        std::future::ready(answers)
    }
}

/// Protobuf encoding of dynamic messages; requests decode as the method's input type.
struct DynamicCodec {
    input: MessageDescriptor,
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder(self.input.clone())
    }
}

/// Writes a message's protobuf bytes.
struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(e.to_string()))
    }
}

/// Reads a message of one type.
struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src).map(Some).map_err(|e| Status::internal(e.to_string()))
    }
}

/// The library server on a loopback port, running on its own thread's runtime.
struct Server {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start() -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let library = Library { pool: compiled().descriptor_pool(), calls: calls.clone() };
        runtime.spawn(async move {
            let incoming = futures_util::stream::unfold(listener, |listener| async move {
                let accepted = listener.accept().await.map(|(tcp, _)| tcp);
                Some((accepted, listener))
            });
            let _ = tonic::transport::Server::builder().add_service(library).serve_with_incoming(incoming).await;
        });
        Server { addr, calls, _runtime: runtime }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

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
    assert!(started.elapsed() < std::time::Duration::from_millis(750), "answered at the deadline");
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
fn request_bodies_over_the_limit_are_413() {
    let (server, _dir, proxy) = setup("          max_request_bytes: 64\n");
    let big = format!(r#"{{"title": "{}"}}"#, "x".repeat(200));
    let (status, _, response) = call(&proxy, "POST", "/v1/shelves/s1/books", Some(&big));
    assert_eq!(status, 413, "{response:?}");
    assert_eq!(response.header("x-strait-reason"), Some("body_too_large"));
    assert!(server.calls().is_empty());
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
