//! The typed configuration model: what a `strait.yaml` file may say.
//!
//! Every struct rejects unknown fields. Defaults are the values a user of NGINX or HAProxy
//! would expect; each field's doc comment is its reference entry (see `docs/CONFIG.md`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::units::{ByteSize, Dur};

mod forward_proxy;
mod l4;
mod transcode;
pub use forward_proxy::{ForwardProxy, ForwardTimeouts, PacFile, ParentProxy, SsrfGuard, TlsInspection};
pub use l4::{AcceptProxyProtocol, Fallback, ProxyProtocolVersion, SniRoute, TcpForward, UdpForward};
pub use transcode::{GrpcTranscode, PrintOptions};

/// A whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Number of worker threads, each with its own event loop and listening sockets
    /// (`SO_REUSEPORT`). `0` means one per CPU core.
    pub workers: usize,
    /// Process-wide behaviour of the HTTP server side.
    pub server: ServerSettings,
    /// Where and how requests are logged.
    pub access_log: AccessLogSettings,
    /// The sockets Strait accepts connections on, each with its own routes.
    pub listeners: Vec<Listener>,
    /// Upstream pools that routes forward to.
    pub clusters: Vec<Cluster>,
    /// Filters for every route of every listener (Kong's global plugins); a route's or its
    /// cluster's filter of the same name takes their place.
    pub filters: Vec<FilterSpec>,
    /// The API's clients, with the credentials authentication filters check.
    pub consumers: Vec<Consumer>,
    /// Where each field came from (not part of the file's content).
    #[serde(skip)]
    pub source: crate::SourceMap,
}

/// Process-wide settings for accepting and answering HTTP requests.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Add `x-strait-reason: <code>` to every response Strait generates itself.
    pub reason_header: bool,
    /// Generate `x-request-id` when a request has none; pass it on to the upstream.
    pub request_id: bool,
    /// Keep the `x-request-id` a client sent (`true`), or replace it with a new one (`false`,
    /// as Envoy does at the edge) so clients cannot choose the id logs and upstreams see.
    pub trust_request_id: bool,
    /// Add `Via: 1.1 strait` to forwarded requests and responses.
    pub via: bool,
    /// Add `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Real-IP`.
    pub forwarded_headers: bool,
    /// Proxies in front of Strait (addresses or CIDR blocks): from them the client address is
    /// the rightmost untrusted `X-Forwarded-For` entry and `X-Forwarded-Proto/Host` are kept.
    pub trusted_proxies: Vec<String>,
    /// Request trailer fields passed on to upstreams (`[x-checksum]`); every other trailer
    /// field is dropped, so trailers cannot carry `Authorization` or `X-Forwarded-For` past
    /// the checks that headers get. Empty by default.
    pub request_trailers: Vec<String>,
    /// Limits that protect the proxy from oversized or slow requests.
    pub limits: Limits,
    /// Client-side timeouts.
    pub timeouts: ServerTimeouts,
    /// HTTP/2 limits (connections negotiated by ALPN, or cleartext with `listeners[].http2`).
    pub http2: Http2Settings,
    /// How long in-flight requests may take to finish on SIGTERM/SIGINT.
    pub drain_timeout: Dur,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            reason_header: true,
            request_id: true,
            trust_request_id: true,
            via: false,
            forwarded_headers: true,
            trusted_proxies: Vec::new(),
            request_trailers: Vec::new(),
            limits: Limits::default(),
            timeouts: ServerTimeouts::default(),
            http2: Http2Settings::default(),
            drain_timeout: Dur::secs(30),
        }
    }
}

/// HTTP/2 limits: each one bounds what a client can make the proxy hold or do.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Http2Settings {
    /// Streams a client may have open at once (nginx `http2_max_concurrent_streams`).
    pub max_concurrent_streams: u32,
    /// Flow-control window of each stream: how much request body a client may send ahead.
    pub initial_stream_window: ByteSize,
    /// Flow-control window of the whole connection.
    pub initial_connection_window: ByteSize,
    /// Largest frame payload accepted (16 KiB to 16 MiB).
    pub max_frame_size: ByteSize,
    /// Largest decoded header list of a request (HPACK bombs and CONTINUATION floods stop here).
    pub max_header_list_size: ByteSize,
    /// Streams a client may open and reset before they are served (Rapid Reset, CVE-2023-44487);
    /// beyond it the connection ends with GOAWAY `ENHANCE_YOUR_CALM`.
    pub max_pending_reset_streams: usize,
    /// Malformed streams a client may cause before the connection ends with GOAWAY.
    pub max_error_resets: usize,
    /// Accept WebSocket over HTTP/2 (RFC 8441): advertise `SETTINGS_ENABLE_CONNECT_PROTOCOL`
    /// and relay extended CONNECT requests for `websocket` to the upstream as WebSocket
    /// upgrades.
    pub websocket: bool,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            max_concurrent_streams: 128,
            initial_stream_window: ByteSize(1 << 20),
            initial_connection_window: ByteSize(2 << 20),
            max_frame_size: ByteSize(16 * 1024),
            max_header_list_size: ByteSize(32 * 1024),
            max_pending_reset_streams: 20,
            max_error_resets: 64,
            websocket: true,
        }
    }
}

/// Request size limits (nginx `large_client_header_buffers`, `client_max_body_size`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request head (request line and headers) accepted; more gets 431.
    pub max_header_bytes: ByteSize,
    /// Longest request target accepted; more gets 414.
    pub max_uri_bytes: ByteSize,
    /// Most headers in one request; more gets 431.
    pub max_headers: usize,
    /// Largest request body accepted; more gets 413. `0` means no limit.
    pub max_body_bytes: ByteSize,
    /// Most client connections open at once across all listeners; beyond it new connections
    /// are closed at once. `0` means no limit (HAProxy `maxconn`).
    pub max_connections: usize,
    /// Most connections one client address may have open at once (nginx `limit_conn` on
    /// `$binary_remote_addr`); beyond it new ones are closed at once. `0` means no limit.
    pub max_connections_per_ip: usize,
    /// Slowest a client may send a request body (Kestrel `MinRequestBodyDataRate`): below it,
    /// 408 `client_body_too_slow`. Off when absent.
    pub min_request_body_rate: Option<MinRate>,
    /// Slowest a client may take a response (Kestrel `MinResponseDataRate`): below it, the
    /// connection (HTTP/1) or stream (HTTP/2) is closed, `client_read_too_slow`. Off when absent.
    pub min_response_body_rate: Option<MinRate>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: ByteSize(16 * 1024),
            max_uri_bytes: ByteSize(8 * 1024),
            max_headers: 100,
            max_body_bytes: ByteSize(0),
            max_connections: 0,
            max_connections_per_ip: 0,
            min_request_body_rate: None,
            min_response_body_rate: None,
        }
    }
}

/// A minimum data rate: bytes per second, averaged over the time the proxy spends waiting on
/// the client, checked once that time exceeds `grace`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MinRate {
    /// The least average rate, in bytes per second (a size: `240`, `1KiB`).
    pub bytes_per_second: ByteSize,
    /// Waiting allowed before the rate is checked (a slow start, a client that ramps up).
    #[serde(default = "default_rate_grace")]
    pub grace: Dur,
}

fn default_rate_grace() -> Dur {
    Dur::secs(5)
}

/// Timeouts on the client side of a connection.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerTimeouts {
    /// Time allowed to receive a complete request head once its first byte arrived; 408 after.
    pub client_header: Dur,
    /// Time allowed between two reads of a request body.
    pub client_body: Dur,
    /// How long an idle keep-alive connection is kept open.
    pub idle: Dur,
    /// Longest whole exchange, from the request head's arrival to the last byte of the
    /// response (Envoy `max_stream_duration`); 408 `exchange_timeout` after. `0`: no limit.
    pub exchange: Dur,
}

impl Default for ServerTimeouts {
    fn default() -> Self {
        ServerTimeouts {
            client_header: Dur::secs(10),
            client_body: Dur::secs(60),
            idle: Dur::secs(75),
            exchange: Dur::secs(0),
        }
    }
}

/// Access log destination and format.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogSettings {
    /// `stdout`, `stderr`, `off`, or a file path (reopened on SIGUSR1).
    pub path: String,
    /// Line format.
    pub format: AccessLogFormat,
}

impl Default for AccessLogSettings {
    fn default() -> Self {
        AccessLogSettings { path: "off".into(), format: AccessLogFormat::Combined }
    }
}

/// Access log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AccessLogFormat {
    /// nginx `combined` followed by upstream address, times, reason and request id.
    Combined,
    /// One JSON object per line.
    Json,
    /// Squid's native `access.log` line (result code, hierarchy, content type), for the tools
    /// that read Squid logs.
    Squid,
}

/// A listening socket and the routes it serves.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Unique name, used in logs and to keep the socket across reloads.
    pub name: String,
    /// Address to bind, `IP:PORT` (`0.0.0.0:80`, `[::]:8080`, `127.0.0.1:0`).
    pub bind: String,
    /// Accept TLS connections with these settings; plain TCP when absent.
    #[serde(default)]
    pub tls: Option<crate::tls::ListenerTls>,
    /// Accept cleartext HTTP/2 with prior knowledge (h2c) beside HTTP/1.1, told apart by the
    /// connection preface. TLS listeners offer HTTP/2 by ALPN instead (`tls.alpn`).
    #[serde(default)]
    pub http2: bool,
    /// Routes, matched by the precedence documented in `docs/CONFIG.md`.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Filters run on every request of this listener, before routing (also on 404s and
    /// refused requests), in list order.
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// How request paths are normalized before routing; the upstream receives the normalized
    /// path too. On by default.
    #[serde(default)]
    pub path_normalization: PathNormalization,
    /// Forward connections to a cluster as byte streams (L4) instead of serving HTTP; with
    /// `tcp.sni`, chosen by TLS server name, beside termination when `tls` is set too.
    #[serde(default)]
    pub tcp: Option<TcpForward>,
    /// Bind a UDP socket and forward its datagrams to a cluster instead of serving HTTP.
    #[serde(default)]
    pub udp: Option<UdpForward>,
    /// Accept the PROXY protocol (v1 and v2) from the listed load balancers.
    #[serde(default)]
    pub proxy_protocol: Option<AcceptProxyProtocol>,
}

/// Path normalization of a listener (Envoy `normalize_path`, `merge_slashes` and
/// `path_with_escaped_slashes_action`): routes, filters and the upstream all see one spelling
/// of a path, so `//admin`, `/%61dmin` or `/x/../admin` cannot slip past a `/admin` route.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PathNormalization {
    /// Normalize paths: decode percent-encoded unreserved characters (`%61` → `a`), write the
    /// remaining escapes in upper case, resolve `.` and `..` segments (RFC 3986 §5.2.4) and
    /// refuse with 400 a `..` above the root, an invalid escape, `%00` and a raw `\`.
    pub enabled: bool,
    /// Merge repeated slashes (`//a///b` → `/a/b`); only while `enabled`.
    pub merge_slashes: bool,
    /// What an escaped slash (`%2F`, `%5C`, in either case) becomes; only while `enabled`.
    pub escaped_slashes: EscapedSlashes,
}

impl Default for PathNormalization {
    fn default() -> Self {
        PathNormalization { enabled: true, merge_slashes: true, escaped_slashes: EscapedSlashes::Reject }
    }
}

/// What path normalization does with `%2F` and `%5C` (Envoy `path_with_escaped_slashes_action`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EscapedSlashes {
    /// Refuse the request with 400 `bad_request`.
    #[default]
    Reject,
    /// Keep the escape as it is (in upper case): it is part of a segment, not a separator.
    Keep,
    /// Decode both to `/`, a separator like any other, before dot segments and slashes are
    /// handled (Envoy `UNESCAPE_AND_FORWARD`, whose normalization then reads `\` as `/`).
    Decode,
}

/// One filter (plugin) and its configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// The plugin's name (`request_headers`, `response_headers`, `compression`...).
    pub name: String,
    /// The plugin's own settings; each plugin documents and checks its fields.
    #[serde(default)]
    pub config: serde_json::Value,
    /// Where the filter runs in its chain: higher first. Each plugin has a default (Kong's
    /// priorities); filters of equal priority run in list order.
    #[serde(default)]
    pub priority: Option<i32>,
    /// On a route's, a cluster's or the top-level list: the filter applies only to this
    /// consumer's requests (Kong's plugin with both a route or service and a consumer).
    #[serde(default)]
    pub consumer: Option<String>,
}

/// A client of the API (Kong's consumer): who it is, the groups it belongs to, the credentials
/// that identify it, and filters that apply only to its requests.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Consumer {
    /// Unique name; logs, upstream headers and rate limits use it.
    pub username: String,
    /// An identifier from another system, passed upstream with the username.
    pub custom_id: Option<String>,
    /// Groups, for `acl` filters.
    pub groups: Vec<String>,
    /// Credentials, by kind.
    pub credentials: Credentials,
    /// Filters that replace the route's filters of the same name for this consumer's
    /// requests, or join them (run after authentication).
    pub filters: Vec<FilterSpec>,
}

/// A consumer's credentials, by the filter that checks them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Credentials {
    /// API keys (`key_auth` filters).
    pub key_auth: Vec<KeyCredential>,
    /// User names and passwords (`basic_auth` filters).
    pub basic_auth: Vec<BasicCredential>,
    /// JWT signing keys (`jwt` filters).
    pub jwt: Vec<JwtCredential>,
}

/// An API key.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyCredential {
    /// The key; unique across consumers.
    pub key: String,
}

/// A user name and password.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicCredential {
    /// The user name; unique across consumers.
    pub username: String,
    /// The password: a bcrypt hash (`$2b$...`, as `htpasswd -B` writes) or, discouraged, the
    /// plain text.
    pub password: String,
}

/// A key that signs a consumer's JWTs (Kong's `jwt_secrets`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtCredential {
    /// Matched against the token's `iss` claim (or its `kid` header, by the filter's
    /// `key_claim`); unique across consumers.
    pub key: String,
    /// The signature algorithm tokens must use with this key.
    #[serde(default)]
    pub algorithm: JwtAlgorithm,
    /// The shared secret, for the HS algorithms.
    #[serde(default)]
    pub secret: Option<String>,
    /// The public key in PEM, for the RS, PS, ES and EdDSA algorithms (Kong's name).
    #[serde(default)]
    pub rsa_public_key: Option<String>,
}

/// JWT signature algorithms (RFC 7518, RFC 8037). `none` is not one of them.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256.
    #[default]
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl JwtAlgorithm {
    /// Whether the algorithm uses a shared secret (HS) rather than a public key.
    pub fn is_hmac(self) -> bool {
        matches!(self, JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512)
    }
}

/// One route: what it matches and what it does.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    /// Name used in logs and `explain`; defaults to `<listener>#<index>`.
    pub name: Option<String>,
    /// Conditions a request must meet; an empty match matches everything.
    #[serde(rename = "match")]
    pub matches: RouteMatch,
    /// Forward to one cluster.
    pub forward: Option<Forward>,
    /// Forward to one of several clusters chosen by weight (canary releases).
    pub split: Option<Vec<WeightedCluster>>,
    /// Answer with a redirect.
    pub redirect: Option<Redirect>,
    /// Answer with a fixed response.
    pub direct: Option<DirectResponse>,
    /// Serve files from a directory.
    #[serde(rename = "static")]
    pub static_files: Option<StaticFiles>,
    /// Answer with a description of the request (a built-in demo upstream).
    pub echo: Option<Echo>,
    /// Call several clusters and answer with their JSON merged under keys (response
    /// aggregation).
    pub aggregate: Option<Aggregate>,
    /// Answer JSON requests by calling a gRPC service (REST to gRPC transcoding).
    pub grpc_transcode: Option<GrpcTranscode>,
    /// Act as a forward proxy: absolute-form requests go to their origin, CONNECT opens a tunnel.
    pub forward_proxy: Option<ForwardProxy>,
    /// How the path is rewritten before forwarding.
    pub rewrite: Option<Rewrite>,
    /// Filters run on this route's requests after the listener's, in list order.
    pub filters: Vec<FilterSpec>,
    /// Headers changed on the request before forwarding.
    pub request_headers: HeaderEdits,
    /// Headers changed on every response of this route, including Strait's own.
    pub response_headers: HeaderEdits,
    /// Total time allowed for the upstream exchange, retries included; 504 after.
    pub timeout: Option<Dur>,
    /// This route's whole-exchange limit in place of `server.timeouts.exchange`; `0`: no limit.
    pub exchange_timeout: Option<Dur>,
    /// Retry policy for forwarded requests.
    pub retries: Option<Retries>,
}

/// Conditions of a route. All given conditions must hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RouteMatch {
    /// Host names: exact (`api.example.com`) or leading wildcard (`*.example.com`).
    pub hosts: Vec<String>,
    /// Path condition.
    pub path: Option<PathMatch>,
    /// Methods (`GET`, `POST`...); any when empty.
    pub methods: Vec<String>,
    /// Header conditions.
    pub headers: Vec<ValueMatch>,
    /// Query parameter conditions.
    pub query: Vec<ValueMatch>,
}

/// A path condition; exactly one field is set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PathMatch {
    /// The path equals this.
    pub exact: Option<String>,
    /// The path starts with these whole segments (`/api` matches `/api` and `/api/x`,
    /// not `/apix`).
    pub prefix: Option<String>,
    /// The path matches this regular expression (anchored at both ends).
    pub regex: Option<String>,
}

/// A header or query parameter condition.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ValueMatch {
    /// Header or parameter name (headers compare case-insensitively).
    pub name: String,
    /// The value equals this.
    pub exact: Option<String>,
    /// The value matches this regular expression (anchored).
    pub regex: Option<String>,
    /// The header or parameter is present (`true`) or absent (`false`).
    pub present: Option<bool>,
}

/// Forward to one cluster.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    /// Name of the cluster.
    pub cluster: String,
}

/// A cluster and its share of a split.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WeightedCluster {
    /// Name of the cluster.
    pub cluster: String,
    /// Relative weight.
    pub weight: u32,
}

/// A redirect answer (nginx `return 301 https://$host$request_uri`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Redirect {
    /// Replacement scheme (`https`).
    pub scheme: Option<String>,
    /// Replacement host (and optional port).
    pub host: Option<String>,
    /// Replacement path; the query is kept.
    pub path: Option<String>,
    /// Status: 301, 302, 303, 307 or 308.
    pub status: u16,
}

impl Default for Redirect {
    fn default() -> Self {
        Redirect { scheme: None, host: None, path: None, status: 301 }
    }
}

/// Calls to several upstreams whose answers are merged into one JSON object, one key each.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Aggregate {
    /// `parallel`: every call at once, so the answer takes as long as the slowest; `sequence`:
    /// one after another, so a call's path may use fields of earlier answers.
    pub mode: AggregateMode,
    /// The calls; their keys name their answers in the merged object.
    pub calls: Vec<AggregateCall>,
}

/// How the calls of an aggregation are made.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AggregateMode {
    /// All at once.
    #[default]
    Parallel,
    /// In list order.
    Sequence,
}

/// One upstream call of an aggregation.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AggregateCall {
    /// The key of this answer in the merged object.
    pub key: String,
    /// The cluster called.
    pub cluster: String,
    /// The path and query asked. `{query.NAME}` is the client's query parameter NAME; in
    /// `sequence` mode `{KEY.field.sub}` is a field of an earlier call's JSON answer.
    pub path: String,
    /// The method.
    #[serde(default = "default_get")]
    pub method: String,
    /// Time for this call's whole exchange.
    #[serde(default = "default_call_timeout")]
    pub timeout: Dur,
    /// Whether the aggregation fails when this call does (`false`: the key is `null` and the
    /// failure is reported in `_errors` and `x-strait-partial`).
    #[serde(default = "default_true")]
    pub required: bool,
    /// Request fields of the client passed on to this call.
    #[serde(default = "default_call_headers")]
    pub forward_headers: Vec<String>,
}

fn default_get() -> String {
    "GET".into()
}
fn default_call_timeout() -> Dur {
    Dur::secs(5)
}
fn default_true() -> bool {
    true
}
fn default_call_headers() -> Vec<String> {
    vec!["authorization".into(), "accept-language".into()]
}

/// A fixed answer (nginx `return 200 "OK"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DirectResponse {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: String,
    /// Response headers.
    pub headers: BTreeMap<String, String>,
}

impl Default for DirectResponse {
    fn default() -> Self {
        DirectResponse { status: 200, body: String::new(), headers: BTreeMap::new() }
    }
}

/// Static files from a directory.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticFiles {
    /// Directory the request path is resolved in (after `rewrite`).
    pub root: String,
    /// File served for a directory.
    #[serde(default = "default_index")]
    pub index: String,
    /// `Cache-Control: max-age` and `Expires` (nginx `expires 30d`).
    #[serde(default)]
    pub expires: Option<Dur>,
}

fn default_index() -> String {
    "index.html".into()
}

/// The built-in demo upstream: answers 200 with the request line, headers and the name.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Echo {
    /// Text put in the `x-echo-name` header and the body, to tell echo servers apart.
    pub name: String,
}

/// Path rewrite; exactly one field is set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rewrite {
    /// Remove this prefix (`/api` turns `/api/users` into `/users`).
    pub strip_prefix: Option<String>,
    /// Replace the matched prefix with this.
    pub replace_prefix: Option<String>,
    /// Regex substitution on the path.
    pub regex: Option<RegexRewrite>,
}

/// A regex substitution; `$1`-style groups allowed in `replace`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegexRewrite {
    /// Pattern.
    pub pattern: String,
    /// Replacement.
    pub replace: String,
}

/// Header edits: set (replace), add (append) and remove.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderEdits {
    /// Replace or insert these headers.
    pub set: BTreeMap<String, String>,
    /// Append these headers.
    pub add: BTreeMap<String, String>,
    /// Remove these headers.
    pub remove: Vec<String>,
}

/// Retry policy (nginx `proxy_next_upstream`, Envoy `retry_policy`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Retries {
    /// Total attempts including the first.
    pub attempts: u32,
    /// Retry idempotent requests on these upstream statuses (502, 503, 504 by default).
    pub on_status: Vec<u16>,
}

impl Default for Retries {
    fn default() -> Self {
        Retries { attempts: 2, on_status: vec![502, 503, 504] }
    }
}

/// An upstream pool.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Unique name routes refer to.
    pub name: String,
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Load-balancing algorithm.
    #[serde(default)]
    pub balancer: Balancer,
    /// What a hashing balancer hashes.
    #[serde(default)]
    pub hash_on: Option<HashOn>,
    /// How often host names are resolved again.
    #[serde(default = "default_dns_refresh")]
    pub dns_refresh: Dur,
    /// Host header sent upstream: `preserve` (the client's), `endpoint` (the endpoint's
    /// address), or any other literal value.
    #[serde(default = "default_host_header")]
    pub host_header: String,
    /// Idle keep-alive connections kept per endpoint and worker (nginx `keepalive`).
    #[serde(default = "default_keepalive")]
    pub keepalive: usize,
    /// Upstream timeouts.
    #[serde(default)]
    pub timeouts: ClusterTimeouts,
    /// Health checking.
    #[serde(default)]
    pub health: Health,
    /// Connect to the endpoints with TLS using these settings; plain TCP when absent.
    #[serde(default)]
    pub tls: Option<crate::tls::ClusterTls>,
    /// Protocol spoken to the endpoints: `http1`, or `http2` (h2c in the clear, h2 by ALPN over
    /// TLS), which multiplexes requests over few connections (gRPC needs it).
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// Filters for every route that forwards to this cluster (Kong's service plugins); a
    /// route's filter of the same name takes their place.
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// Open every connection to the endpoints with a PROXY protocol header naming the client
    /// (HAProxy `send-proxy`, `send-proxy-v2`); only for TCP listeners' connections.
    #[serde(default)]
    pub proxy_protocol: Option<ProxyProtocolVersion>,
}

fn default_dns_refresh() -> Dur {
    Dur::secs(30)
}
fn default_host_header() -> String {
    "preserve".into()
}
fn default_keepalive() -> usize {
    64
}

/// The protocol of a cluster's upstream connections.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http1,
    /// HTTP/2.
    Http2,
}

/// One upstream endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `IP:PORT` or `HOST:PORT` (resolved by DNS and refreshed every `dns_refresh`).
    pub address: String,
    /// Relative weight.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Used only when no primary endpoint is healthy.
    #[serde(default)]
    pub backup: bool,
}

fn default_weight() -> u32 {
    1
}

/// Load-balancing algorithm.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Balancer {
    /// Smooth weighted round robin (nginx default).
    #[default]
    RoundRobin,
    /// Fewest in-flight requests relative to weight (nginx `least_conn`, HAProxy `leastconn`).
    LeastRequest,
    /// Uniform random, weighted.
    Random,
    /// Power of two random choices by in-flight requests.
    P2c,
    /// Consistent hash ring over `hash_on` (HAProxy `balance source`).
    RingHash,
    /// Maglev lookup table over `hash_on`.
    Maglev,
}

/// What a hashing balancer hashes.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum HashOn {
    /// The client IP address.
    SourceIp,
    /// A request header's value.
    Header(String),
    /// A cookie's value.
    Cookie(String),
}

/// Timeouts towards upstream endpoints.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterTimeouts {
    /// TCP connect (nginx `proxy_connect_timeout`); 502 `upstream_connect_failed` after.
    pub connect: Dur,
    /// Time from request sent to response head received (nginx `proxy_read_timeout`); 504.
    pub response_header: Dur,
    /// Time allowed between two reads or writes of a body on the upstream side.
    pub body: Dur,
    /// How long an idle pooled connection is kept.
    pub idle: Dur,
}

impl Default for ClusterTimeouts {
    fn default() -> Self {
        ClusterTimeouts {
            connect: Dur::secs(5),
            response_header: Dur::secs(60),
            body: Dur::secs(60),
            idle: Dur::secs(60),
        }
    }
}

/// Health checking of a cluster's endpoints.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Health {
    /// Probes sent on a timer.
    pub active: Option<ActiveHealth>,
    /// Failures of real traffic.
    pub passive: Option<PassiveHealth>,
}

/// Active health checks (HAProxy `option httpchk`, Envoy `health_checks`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ActiveHealth {
    /// `http` (a GET on `path`) or `tcp` (a connect).
    pub kind: HealthKind,
    /// Path probed by HTTP checks.
    pub path: String,
    /// Host header of HTTP checks; the endpoint address when empty.
    pub host: Option<String>,
    /// Statuses counted as healthy; any 2xx or 3xx when empty.
    pub expected_statuses: Vec<u16>,
    /// Time between probes.
    pub interval: Dur,
    /// Time a probe may take.
    pub timeout: Dur,
    /// Consecutive successes that make an unhealthy endpoint healthy.
    pub healthy_threshold: u32,
    /// Consecutive failures that make a healthy endpoint unhealthy.
    pub unhealthy_threshold: u32,
}

impl Default for ActiveHealth {
    fn default() -> Self {
        ActiveHealth {
            kind: HealthKind::Http,
            path: "/health".into(),
            host: None,
            expected_statuses: Vec::new(),
            interval: Dur::secs(5),
            timeout: Dur::secs(2),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }
}

/// Kind of active probe.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HealthKind {
    /// HTTP GET.
    #[default]
    Http,
    /// TCP connect.
    Tcp,
}

/// Passive health (nginx `max_fails` / `fail_timeout`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveHealth {
    /// Failures within `fail_timeout` that mark the endpoint down.
    pub max_fails: u32,
    /// Window for counting failures, and how long the endpoint then stays down.
    pub fail_timeout: Dur,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth { max_fails: 1, fail_timeout: Dur::secs(10) }
    }
}
