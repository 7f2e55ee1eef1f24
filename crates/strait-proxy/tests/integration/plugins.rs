//! The plugin interface end to end, on HTTP/1.1 and HTTP/2 alike: phase order across the
//! listener and route chains, per-request state and typed extensions, an async phase, body
//! transforms both ways, filters on 404s and refused heads, the `auth_request` sub-request
//! plugin, compression, and plugin configuration errors with their file position.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{request, response};
use http_body_util::Full;
use strait_http::filter::UpstreamTarget;
use strait_http::registry::{typed, BuildEnv};
use strait_http::{
    BodyFilter, BodyStep, Filter, FilterFactory, Flow, LocalResponse, Phase, Phases, Reason, Registry, RequestCtx,
};
use support::pki;
use support::{Backend, Proxy, RawConn, Reply};

// === test plugins ===

/// What the `trace` filters saw, in order, across requests.
type Log = Arc<Mutex<Vec<String>>>;

/// A consumer name one filter learns and a later one reads (the JWT → rate-limit hand-over).
#[derive(Debug, Clone)]
struct Consumer(String);

/// Records every phase it sees; with `who: <name>` it also names the consumer.
#[derive(Debug)]
struct TraceFactory {
    label: String,
    who: Option<String>,
    log: Log,
}

impl FilterFactory for TraceFactory {
    fn name(&self) -> &'static str {
        "trace"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
            | Phases::UPSTREAM_REQUEST
            | Phases::RESPONSE_HEADERS
            | Phases::LOCAL_REPLY
            | Phases::LOG
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(Trace { label: self.label.clone(), who: self.who.clone(), log: self.log.clone(), phases_seen: 0 })
    }
}

/// One request's `trace` filter; `phases_seen` is its own per-request state.
struct Trace {
    label: String,
    who: Option<String>,
    log: Log,
    phases_seen: u32,
}

impl Trace {
    fn note(&mut self, phase: &str) {
        self.phases_seen += 1;
        self.log.lock().unwrap().push(format!("{}:{phase}", self.label));
    }
}

impl Filter for Trace {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        self.note("request");
        if let Some(who) = &self.who {
            ctx.extensions.insert(Consumer(who.clone()));
        }
        let seen = ctx.extensions.get::<Consumer>().map_or("-".to_owned(), |c| c.0.clone());
        let name = HeaderName::try_from(format!("x-{}-consumer", self.label)).unwrap();
        request.headers.insert(name, HeaderValue::from_str(&seen).unwrap());
        Phase::Ready(Flow::Continue)
    }

    fn upstream_request<'a>(
        &'a mut self,
        request: &'a mut request::Parts,
        target: UpstreamTarget<'a>,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, Flow> {
        self.note("upstream");
        let name = HeaderName::try_from(format!("x-{}-attempt", self.label)).unwrap();
        request.headers.insert(name, HeaderValue::from(target.attempt));
        Phase::Ready(Flow::Continue)
    }

    fn response_headers<'a>(
        &'a mut self,
        response: &'a mut response::Parts,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, ()> {
        self.note("response");
        let value = format!("{}:{}", self.label, self.phases_seen);
        response.headers.append("x-trace", HeaderValue::from_str(&value).unwrap());
        Phase::Ready(())
    }

    fn local_reply<'a>(&'a mut self, _reply: &'a mut LocalResponse, _ctx: &'a mut RequestCtx) -> Phase<'a, ()> {
        self.note("local");
        Phase::Ready(())
    }

    fn log<'a>(&'a mut self, ctx: &'a RequestCtx, error: Option<Reason>) -> Phase<'a, ()> {
        let error = error.map_or("-", Reason::code);
        let status = ctx.status.as_u16();
        self.note(&format!("log:{status}:{error}"));
        Phase::Ready(())
    }
}

/// Waits (an async phase), then tells upstream which consumer an earlier filter found.
#[derive(Debug)]
struct AwaitFactory(Duration);

impl FilterFactory for AwaitFactory {
    fn name(&self) -> &'static str {
        "await"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(Await(self.0))
    }
}

struct Await(Duration);

impl Filter for Await {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        Phase::wait(async move {
            tokio::time::sleep(self.0).await;
            match ctx.extensions.get::<Consumer>() {
                Some(consumer) => {
                    request.headers.insert("x-awaited-consumer", HeaderValue::from_str(&consumer.0).unwrap());
                    Flow::Continue
                }
                None => Flow::respond(LocalResponse::new(http::StatusCode::UNAUTHORIZED, "text/plain", "who?\n")),
            }
        })
    }
}

/// Upper-cases bodies both ways, and appends a byte count to responses (state per body).
#[derive(Debug)]
struct ShoutFactory;

impl FilterFactory for ShoutFactory {
    fn name(&self) -> &'static str {
        "shout"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_BODY | Phases::RESPONSE_BODY
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(Shout)
    }
}

struct Shout;

impl Filter for Shout {
    fn request_body(&mut self, _ctx: &RequestCtx) -> Option<Box<dyn BodyFilter>> {
        Some(Box::new(Upper { count: 0, footer: false }))
    }

    fn response_body(&mut self, _response: &response::Parts, _ctx: &RequestCtx) -> Option<Box<dyn BodyFilter>> {
        Some(Box::new(Upper { count: 0, footer: true }))
    }
}

struct Upper {
    count: usize,
    footer: bool,
}

impl BodyFilter for Upper {
    fn chunk(mut self: Box<Self>, chunk: Bytes, end: bool) -> BodyStep {
        // Async on purpose: every chunk waits a little, so the body streams through a future.
        Phase::wait(async move {
            tokio::task::yield_now().await;
            self.count += chunk.len();
            let mut out = chunk.to_ascii_uppercase();
            if end && self.footer {
                out.extend_from_slice(format!("\n-- {} bytes --\n", self.count).as_bytes());
            }
            (self as Box<dyn BodyFilter>, Ok(Bytes::from(out)))
        })
    }
}

/// The test plugins and the built-in ones.
fn registry(log: &Log) -> Registry {
    let mut registry = strait_plugins::builtin();
    let trace_log = log.clone();
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TraceConfig {
        label: String,
        #[serde(default)]
        who: Option<String>,
    }
    registry.register(typed("trace", move |c: TraceConfig, _env: &BuildEnv<'_>| {
        Ok(Arc::new(TraceFactory { label: c.label, who: c.who, log: trace_log.clone() }) as Arc<dyn FilterFactory>)
    }));
    registry.register(typed("await", |c: std::collections::BTreeMap<String, u64>, _env: &BuildEnv<'_>| {
        let ms = c.get("ms").copied().unwrap_or(10);
        Ok(Arc::new(AwaitFactory(Duration::from_millis(ms))) as Arc<dyn FilterFactory>)
    }));
    registry.register(typed("shout", |_: std::collections::BTreeMap<String, String>, _env: &BuildEnv<'_>| {
        Ok(Arc::new(ShoutFactory) as Arc<dyn FilterFactory>)
    }));
    registry
}

/// A proxy whose `web` listener (HTTP/1.1 and h2c) has `listener_filters`, and one route per
/// entry of `routes`: `(prefix, filters)` forwarding to `backend`.
fn proxy(backend: &Backend, listener_filters: &str, routes: &[(&str, &str)], log: &Log, extra: &str) -> Proxy {
    let routes: String = routes
        .iter()
        .map(|(prefix, filters)| {
            format!(
                "      - match: {{ path: {{ prefix: {prefix} }} }}\n        filters: {filters}\n        forward: {{ cluster: app }}\n"
            )
        })
        .collect();
    Proxy::start_with(
        &format!(
            "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    http2: true\n    filters: {listener_filters}\n    routes:\n{routes}clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n{extra}",
            backend.addr
        ),
        registry(log),
    )
}

/// Which protocol a test client speaks.
#[derive(Debug, Clone, Copy)]
enum Proto {
    H1,
    H2,
}

/// Sends one request with hyper over `proto` (over HTTP/1.1 with the `Host` its URI names).
fn send(addr: std::net::SocketAddr, proto: Proto, mut request: http::Request<Full<Bytes>>) -> pki::Got {
    if let (Proto::H1, Some(host)) = (proto, request.uri().host().map(str::to_owned)) {
        request.headers_mut().entry(http::header::HOST).or_insert(HeaderValue::from_str(&host).unwrap());
    }
    let rt = pki::runtime();
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        match proto {
            Proto::H1 => pki::http1_requests(tcp, vec![request]).await.remove(0),
            Proto::H2 => pki::http2_requests(tcp, vec![request]).await.remove(0),
        }
    })
}

fn get(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(format!("http://plugins.test{path}")).body(Full::new(Bytes::new())).unwrap()
}

// === tests ===

#[test]
fn phases_run_in_documented_order_with_per_request_state_on_both_protocols() {
    for proto in [Proto::H1, Proto::H2] {
        let log: Log = Log::default();
        let backend = Backend::start(|_| Reply::text("upstream"));
        let proxy = proxy(
            &backend,
            "[{ name: trace, config: { label: outer, who: alice } }]",
            &[("/", "[{ name: trace, config: { label: inner } }, { name: await, config: { ms: 20 } }]")],
            &log,
            "",
        );
        let got = send(proxy.addr("web"), proto, get("/x"));
        assert_eq!(got.parts.status, 200, "{proto:?}");
        assert_eq!(got.body, "upstream");
        // Response phases run inner first: each filter counts the phases it saw so far.
        let trace: Vec<&str> = got.parts.headers.get_all("x-trace").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(trace, ["inner:3", "outer:3"], "{proto:?}");
        let recorded = &backend.requests()[0];
        assert_eq!(recorded.headers["x-outer-consumer"], "alice");
        assert_eq!(recorded.headers["x-inner-consumer"], "alice", "a typed extension set by an earlier filter");
        assert_eq!(recorded.headers["x-awaited-consumer"], "alice", "an async phase");
        assert_eq!(recorded.headers["x-outer-attempt"], "1");
        wait_for_log(&log, 8);
        let log = log.lock().unwrap().clone();
        let expected = [
            "outer:request",
            "inner:request",
            "outer:upstream",
            "inner:upstream",
            "inner:response",
            "outer:response",
            "outer:log:200:-",
            "inner:log:200:-",
        ];
        assert_eq!(log, expected, "{proto:?}");
    }
}

#[test]
fn body_filters_transform_request_and_response_bodies_on_both_protocols() {
    for proto in [Proto::H1, Proto::H2] {
        let log: Log = Log::default();
        let backend = Backend::start(|r| Reply::text(&format!("got {} bytes", r.body_len)));
        let proxy = proxy(&backend, "[]", &[("/", "[{ name: shout }]")], &log, "");
        let body = Bytes::from("hello, body filters ".repeat(5000));
        let request = http::Request::post("http://plugins.test/up").body(Full::new(body.clone())).unwrap();
        let got = send(proxy.addr("web"), proto, request);
        assert_eq!(got.parts.status, 200, "{proto:?}");
        let text = format!("got {} bytes", body.len());
        let expected = format!("{}\n-- {} bytes --\n", text.to_uppercase(), text.len());
        assert_eq!(got.body, expected, "{proto:?}");
        assert!(got.parts.headers.get("content-length").is_none_or(|v| v == expected.len().to_string().as_str()));
        let recorded = &backend.requests()[0];
        let upper = body.to_ascii_uppercase();
        assert_eq!(recorded.body_sha256, support::hex(&sha256(&upper)), "{proto:?}");
        assert!(recorded.headers.get("content-length").is_none(), "a transformed body has no known length");
    }
}

#[test]
fn listener_filters_see_404s_and_refused_heads() {
    let log: Log = Log::default();
    let backend = Backend::start(|_| Reply::text("unused"));
    let proxy = proxy(&backend, "[{ name: trace, config: { label: edge } }]", &[("/known", "[]")], &log, "");
    let addr = proxy.addr("web");
    let got = send(addr, Proto::H2, get("/unknown"));
    assert_eq!(got.parts.status, 404);
    assert_eq!(got.parts.headers["x-trace"], "edge:3", "request, local and response phases ran");
    let mut conn = RawConn::connect(addr);
    conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    let refused = conn.read_response().expect("an answer");
    assert_eq!(refused.status, 400);
    assert_eq!(refused.header("x-trace"), Some("edge:2"), "local and response phases on a refused head");
    wait_for_log(&log, 7);
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "edge:request",
            "edge:local",
            "edge:response",
            "edge:log:404:no_route",
            "edge:local",
            "edge:response",
            "edge:log:400:bad_request"
        ]
    );
    assert_eq!(backend.count(), 0);
}

#[test]
fn auth_request_asks_the_auth_cluster_and_hands_the_user_upstream() {
    let auth = Backend::start(|r| match r.headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some("Bearer good") => Reply::status(204).header("x-user", "alice"),
        _ => Reply::status(401).header("www-authenticate", "Bearer realm=\"test\""),
    });
    let backend = Backend::start(|_| Reply::text("secret data"));
    let log: Log = Log::default();
    let extra = format!("  - name: auth\n    endpoints: [{{ address: \"{}\" }}]\n", auth.addr);
    let proxy = proxy(
        &backend,
        "[]",
        &[("/", "[{ name: auth_request, config: { cluster: auth, path: /check, copy_headers: [x-user] } }]")],
        &log,
        &extra,
    );
    let addr = proxy.addr("web");
    for proto in [Proto::H1, Proto::H2] {
        let request = http::Request::get("http://plugins.test/data?x=1")
            .header("authorization", "Bearer good")
            .header("x-user", "mallory")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let got = send(addr, proto, request);
        assert_eq!(got.parts.status, 200, "{proto:?}");
        assert_eq!(got.body, "secret data");
        let denied = send(addr, proto, get("/data"));
        assert_eq!(denied.parts.status, 401, "{proto:?}");
        assert_eq!(denied.parts.headers["x-strait-reason"], "auth_denied");
        assert_eq!(denied.parts.headers["www-authenticate"], "Bearer realm=\"test\"");
    }
    let upstream = backend.requests();
    assert_eq!(upstream.len(), 2, "denied requests never reach the backend");
    for recorded in &upstream {
        assert_eq!(recorded.headers["x-user"], "alice", "the client's x-user is replaced");
        assert_eq!(recorded.headers.get_all("x-user").iter().count(), 1);
    }
    let asked = &auth.requests()[0];
    assert_eq!(asked.uri, "/check");
    assert_eq!(asked.headers["x-original-uri"], "http://plugins.test/data?x=1");
    assert_eq!(asked.headers["x-original-method"], "GET");

    // The auth service gone: 500 `auth_unavailable`, and still nothing upstream.
    auth.stop();
    let got = send(addr, Proto::H1, get("/data"));
    assert_eq!(got.parts.status, 500);
    assert_eq!(got.parts.headers["x-strait-reason"], "auth_unavailable");
    assert_eq!(backend.count(), 2);
}

#[test]
fn compression_follows_accept_encoding_on_both_protocols() {
    let page = "<html>".to_owned() + &"compress me please ".repeat(2000) + "</html>";
    let served = page.clone();
    let backend = Backend::start(move |r| match r.uri.as_str() {
        "/image" => Reply::text("binary-ish").header("content-type", "image/png"),
        _ => Reply::text(&served).header("content-type", "text/html; charset=utf-8"),
    });
    let log: Log = Log::default();
    let proxy = proxy(&backend, "[{ name: compression }]", &[("/", "[]")], &log, "");
    let addr = proxy.addr("web");
    for proto in [Proto::H1, Proto::H2] {
        for (coding, decode) in [("gzip", gunzip as fn(&[u8]) -> Vec<u8>), ("br", unbrotli), ("zstd", unzstd)] {
            let request = http::Request::get("http://plugins.test/page")
                .header("accept-encoding", format!("{coding}, identity;q=0.1"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let got = send(addr, proto, request);
            assert_eq!(got.parts.status, 200);
            assert_eq!(got.parts.headers["content-encoding"], coding, "{proto:?}");
            assert!(got.parts.headers["vary"].to_str().unwrap().contains("Accept-Encoding"));
            assert!(got.body.len() < page.len() / 4, "{coding} compressed {} to {}", page.len(), got.body.len());
            assert_eq!(decode(&got.body), page.as_bytes(), "{proto:?} {coding}");
        }
        // Not asked for, not compressible, or a range: passed as it is.
        let plain = send(addr, proto, get("/page"));
        assert!(plain.parts.headers.get("content-encoding").is_none());
        assert_eq!(plain.body, page);
        let image = http::Request::get("http://plugins.test/image").header("accept-encoding", "gzip");
        let image = send(addr, proto, image.body(Full::new(Bytes::new())).unwrap());
        assert!(image.parts.headers.get("content-encoding").is_none());
        let ranged = http::Request::get("http://plugins.test/page")
            .header("accept-encoding", "gzip")
            .header("range", "bytes=0-9");
        let ranged = send(addr, proto, ranged.body(Full::new(Bytes::new())).unwrap());
        assert!(ranged.parts.headers.get("content-encoding").is_none());
    }
    // curl asking for it decodes what it got.
    let response = support::curl(&["--compressed", &format!("http://{addr}/page")]);
    let coding = response.header("content-encoding").expect("curl was answered compressed");
    assert!(["gzip", "br", "zstd"].contains(&coding), "{coding}");
    assert_eq!(response.text(), page, "curl decoded {coding}");
}

#[test]
fn plugin_configuration_errors_name_file_line_and_field() {
    let text = "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    filters:\n      - name: compression\n        config:\n          gzip_level: 42\n      - name: no_such_plugin\n    routes:\n      - direct: { body: x }\n        filters:\n          - name: response_headers\n            config: { set: { content-length: \"5\" } }\n";
    let config = strait_config::load_str(text, "plugins.yaml").unwrap();
    let errors = strait_proxy::check(&config).unwrap_err().to_string();
    assert!(errors.contains("plugins.yaml:7:23: listeners[0].filters[0].config.gzip_level:"), "{errors}");
    assert!(
        errors.contains("plugins.yaml:8:15: listeners[0].filters[1].name: unknown filter `no_such_plugin`"),
        "{errors}"
    );
    assert!(errors.contains("listeners[0].routes[0].filters[0].config.set.content-length"), "{errors}");
    assert!(errors.contains("managed by Strait"), "{errors}");
}

fn wait_for_log(log: &Log, entries: usize) {
    support::wait_until("the log phase", || log.lock().unwrap().len() >= entries);
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096).read_to_end(&mut out).unwrap();
    out
}

fn unzstd(bytes: &[u8]) -> Vec<u8> {
    zstd::decode_all(bytes).unwrap()
}
