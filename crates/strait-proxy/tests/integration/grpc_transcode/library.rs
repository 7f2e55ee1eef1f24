//! The backend of the transcoding tests: `tests/protos/library.proto` compiled by protox as
//! the tests run, and a real tonic server for `library.v1.Library` whose codec carries
//! prost-reflect dynamic messages (nothing generated ahead, no `protoc`).

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

// === the descriptor set ===

/// The test protos' directory.
pub fn protos() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/protos")
}

/// `library.proto` and its imports compiled as `protoc --include_imports` would.
pub fn compiled() -> protox::Compiler {
    let mut compiler = protox::Compiler::new([protos()]).expect("protos directory");
    compiler.include_imports(true);
    compiler.open_file("library.proto").expect("library.proto compiles");
    compiler
}

/// A temporary directory holding `library.pb`, the binary descriptor set.
pub fn descriptor_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("library.pb");
    std::fs::write(&path, compiled().encode_file_descriptor_set()).unwrap();
    (dir, path)
}

// === the gRPC server ===

/// What one call brought to the server: its method, its message as JSON and two metadata
/// fields.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub message: Value,
    pub authorization: Option<String>,
    pub tenant: Option<String>,
    pub timeout: Option<String>,
    pub request_id: Option<String>,
}

/// A tonic server for `library.v1.Library` that records every call.
#[derive(Clone)]
struct Library {
    pool: DescriptorPool,
    calls: Arc<Mutex<Vec<Call>>>,
}

/// Prints a message as JSON with proto field names and default fields.
pub fn to_json(message: &DynamicMessage) -> Value {
    let options = SerializeOptions::new().use_proto_field_name(true).skip_default_fields(false);
    message.serialize_with_options(serde_json::value::Serializer, &options).unwrap()
}

/// A message of type `descriptor` from JSON.
pub fn from_json(descriptor: &MessageDescriptor, value: Value) -> DynamicMessage {
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
        "AddBooks" => {
            let titles: Vec<&str> = request.as_array().unwrap().iter().map(|b| b["title"].as_str().unwrap()).collect();
            Ok(vec![json!({ "name": request[0]["shelf"], "theme": titles.join("+") })])
        }
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
            } else if method.is_client_streaming() {
                grpc.client_streaming(handler, request).await
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
        self.run_json(request.metadata(), to_json(request.get_ref()))
    }

    /// [`Handler::run`] for a request already printed as JSON.
    fn run_json(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        message: Value,
    ) -> Result<Vec<DynamicMessage>, Box<Status>> {
        let text = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        self.calls.lock().unwrap().push(Call {
            method: self.method.name().to_owned(),
            message: message.clone(),
            authorization: text("authorization"),
            tenant: text("x-tenant"),
            timeout: text("grpc-timeout"),
            request_id: text("x-request-id"),
        });
        let answers = behave(self.method.name(), &message)?;
        Ok(answers.into_iter().map(|answer| from_json(&self.method.output(), answer)).collect())
    }
}

impl tonic::server::UnaryService<DynamicMessage> for Handler {
    type Response = DynamicMessage;
    type Future = futures_util::future::BoxFuture<'static, Result<tonic::Response<DynamicMessage>, Status>>;

    /// Answers at once, or after two seconds for the shelf `slow`.
    fn call(&mut self, request: tonic::Request<DynamicMessage>) -> Self::Future {
        let slow = to_json(request.get_ref())["shelf"] == "slow";
        let answer = self.run(request).map(answer_with_metadata).map_err(|e| *e);
        Box::pin(async move {
            if slow {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            answer
        })
    }
}

/// The one answer of a unary call, with header metadata the transcoder passes on.
fn answer_with_metadata(mut answers: Vec<DynamicMessage>) -> tonic::Response<DynamicMessage> {
    let mut response = tonic::Response::new(answers.remove(0));
    response.metadata_mut().insert("x-served-by", "library".parse().unwrap());
    response
}

impl tonic::server::ClientStreamingService<DynamicMessage> for Handler {
    type Response = DynamicMessage;
    type Future = futures_util::future::BoxFuture<'static, Result<tonic::Response<DynamicMessage>, Status>>;

    fn call(&mut self, request: tonic::Request<tonic::Streaming<DynamicMessage>>) -> Self::Future {
        let handler = self.clone();
        Box::pin(async move {
            let metadata = request.metadata().clone();
            let mut stream = request.into_inner();
            let mut items = Vec::new();
            while let Some(item) = stream.message().await? {
                items.push(to_json(&item));
            }
            handler.run_json(&metadata, Value::Array(items)).map(answer_with_metadata).map_err(|e| *e)
        })
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
pub struct DynamicCodec {
    pub input: MessageDescriptor,
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
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(e.to_string()))
    }
}

/// Reads a message of one type.
pub struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src).map(Some).map_err(|e| Status::internal(e.to_string()))
    }
}

/// The library server on a loopback port, running on its own thread's runtime.
pub struct Server {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    pub fn start() -> Server {
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

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}
