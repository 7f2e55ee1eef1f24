//! Rate and concurrency limits end to end: `rate_limiting` (counts, 429 with `Retry-After`,
//! Kong's and the IETF draft's headers, keys per client address, header value and consumer),
//! `limit_req` (burst with and without `nodelay`) and `concurrency_limit` (slots held while a
//! slow backend answers, given back afterwards, also by aborted requests).
//!
//! Where exact counts matter the windows are hours (or rates per minute), so no window rolls
//! over while a test runs on a loaded machine.

use crate::support;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::request;
use strait_http::registry::{typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, Phase, Phases, RequestCtx};
use support::{Backend, Proxy, RawConn, RawResponse};

/// A proxy on one listener whose routes are `(path prefix, filters)`, forwarding to `backend`.
fn proxy(backend: SocketAddr, routes: &[(&str, &str)]) -> Proxy {
    let routes: String = routes
        .iter()
        .map(|(prefix, filters)| {
            format!(
                "      - match: {{ path: {{ prefix: {prefix} }} }}\n        filters: {filters}\n        forward: {{ cluster: app }}\n"
            )
        })
        .collect();
    Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n{routes}clusters:\n  - name: app\n    endpoints: [{{ address: \"{backend}\" }}]\n"
    ))
}

/// A GET of `path` with `headers` (`Name: value\r\n` lines) from the source address `source`.
fn get_from(source: &str, addr: SocketAddr, path: &str, headers: &str) -> RawResponse {
    let source: IpAddr = source.parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).expect("bind client source address");
    socket.connect_timeout(&addr.into(), support::WAIT).expect("connect");
    let mut conn = RawConn::from_stream(socket.into());
    conn.send(format!("GET {path} HTTP/1.1\r\nHost: test.local\r\n{headers}Connection: close\r\n\r\n").as_bytes());
    conn.read_response().expect("response")
}

/// A GET of `path` from 127.0.0.1.
fn get(addr: SocketAddr, path: &str) -> RawResponse {
    get_from("127.0.0.1", addr, path, "")
}

/// The value of header `name`, which must be there.
fn header<'a>(response: &'a RawResponse, name: &str) -> &'a str {
    response.header(name).unwrap_or_else(|| panic!("no `{name}` in {:?}", response.headers))
}

// === rate_limiting ===

#[test]
fn rate_limiting_lets_the_limit_through_then_answers_429_with_retry_after() {
    let backend = Backend::named("app");
    let proxy = proxy(backend.addr, &[("/", "[{ name: rate_limiting, config: { hour: 3, day: 10 } }]")]);
    let addr = proxy.addr("web");
    let mut counted = Vec::new();
    for _ in 0..3 {
        let response = get(addr, "/");
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "app");
        assert_eq!(header(&response, "x-ratelimit-limit-hour"), "3");
        assert_eq!(header(&response, "x-ratelimit-limit-day"), "10");
        assert_eq!(header(&response, "ratelimit-limit"), "3", "the hour is the tightest window");
        assert_eq!(header(&response, "ratelimit-policy"), "3;w=3600, 10;w=86400");
        let reset: u64 = header(&response, "ratelimit-reset").parse().unwrap();
        assert!((1..=7_200).contains(&reset), "reset {reset}");
        counted.push(
            ["x-ratelimit-remaining-hour", "ratelimit-remaining", "x-ratelimit-remaining-day"]
                .map(|name| header(&response, name).to_owned()),
        );
    }
    let expected = [["2", "2", "9"], ["1", "1", "8"], ["0", "0", "7"]].map(|row| row.map(str::to_owned));
    assert_eq!(counted, expected, "the remaining counts go down");
    let refused = get(addr, "/");
    assert_eq!(refused.status, 429);
    assert_eq!(header(&refused, "x-strait-reason"), "rate_limited");
    let retry: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=7_200).contains(&retry), "retry after {retry}");
    assert_eq!(header(&refused, "x-ratelimit-remaining-hour"), "0");
    assert_eq!(header(&refused, "ratelimit-remaining"), "0");
    assert_eq!(header(&refused, "x-ratelimit-remaining-day"), "7", "a refusal is not counted");
    assert_eq!(backend.count(), 3, "the refused request never reaches the backend");
}

#[test]
fn a_per_second_limit_is_free_again_after_retry_after() {
    let backend = Backend::named("app");
    let proxy = proxy(backend.addr, &[("/", "[{ name: rate_limiting, config: { second: 2, limit_by: ip } }]")]);
    let addr = proxy.addr("web");
    // However slow the machine, 60 requests in a row exceed 2 a second at some point.
    let refused = (0..60).map(|_| get(addr, "/")).find(|r| r.status == 429).expect("some request is refused");
    let retry: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry), "a one-second window: retry after {retry}");
    assert_eq!(header(&refused, "x-ratelimit-remaining-second"), "0");
    std::thread::sleep(Duration::from_secs(retry));
    let again = get(addr, "/");
    assert_eq!(again.status, 200, "admitted after Retry-After");
    assert_eq!(header(&again, "x-ratelimit-limit-second"), "2");
}

#[test]
fn keys_are_separate_per_client_address_and_per_header_value() {
    let backend = Backend::named("app");
    let proxy = proxy(
        backend.addr,
        &[
            ("/by-ip", "[{ name: rate_limiting, config: { hour: 1, limit_by: ip } }]"),
            ("/by-key", "[{ name: rate_limiting, config: { hour: 1, limit_by: header, header_name: x-api-key } }]"),
        ],
    );
    let addr = proxy.addr("web");
    let status = |source: &str, path: &str, headers: &str| get_from(source, addr, path, headers).status;
    assert_eq!(status("127.0.0.1", "/by-ip", ""), 200);
    assert_eq!(status("127.0.0.1", "/by-ip", ""), 429);
    assert_eq!(status("127.0.0.2", "/by-ip", ""), 200, "another address has its own count");
    assert_eq!(status("127.0.0.2", "/by-ip", ""), 429);

    assert_eq!(status("127.0.0.1", "/by-key", "X-Api-Key: a\r\n"), 200, "each filter has its own counts");
    assert_eq!(status("127.0.0.2", "/by-key", "X-Api-Key: a\r\n"), 429, "the key counts, not the address");
    assert_eq!(status("127.0.0.1", "/by-key", "X-Api-Key: b\r\n"), 200, "another key has its own count");
    assert_eq!(status("127.0.0.3", "/by-key", ""), 200, "without the header, the address counts");
    assert_eq!(status("127.0.0.3", "/by-key", ""), 429);
    assert_eq!(backend.count(), 5);
}

/// A test plugin that takes the consumer named in `x-user` as authenticated (what an
/// authentication filter leaves for the filters after it).
#[derive(Debug)]
struct IdentifyFactory;

impl FilterFactory for IdentifyFactory {
    fn name(&self) -> &'static str {
        "identify"
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST_HEADERS
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(Identify)
    }
}

/// One request's `identify` filter.
struct Identify;

impl Filter for Identify {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        if let Some(user) = request.headers.get("x-user").and_then(|v| v.to_str().ok()) {
            let spec = strait_config::Consumer { username: user.to_owned(), ..Default::default() };
            let consumer = strait_http::Consumer::from_config(&spec, None);
            ctx.identify(&mut request.headers, consumer, false);
        }
        Phase::Ready(Flow::Continue)
    }
}

#[test]
fn rate_limiting_by_consumer_counts_each_consumer_and_anonymous_clients_by_address() {
    let backend = Backend::named("app");
    let mut registry = strait_plugins::builtin();
    registry.register(typed("identify", |_: BTreeMap<String, String>, _env: &BuildEnv<'_>| {
        Ok(Arc::new(IdentifyFactory) as Arc<dyn FilterFactory>)
    }));
    let yaml = format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - filters: [{{ name: identify, priority: 2000 }}, {{ name: rate_limiting, config: {{ hour: 1 }} }}]\n        forward: {{ cluster: app }}\nclusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr
    );
    let proxy = Proxy::start_with(&yaml, registry);
    let addr = proxy.addr("web");
    let status = |headers: &str| get_from("127.0.0.1", addr, "/", headers).status;
    assert_eq!(status("X-User: alice\r\n"), 200);
    assert_eq!(status("X-User: alice\r\n"), 429);
    assert_eq!(status("X-User: bob\r\n"), 200, "bob has his own count, from the same address");
    assert_eq!(status(""), 200, "no consumer: the address counts");
    assert_eq!(status(""), 429);
    let users: Vec<_> = backend.requests().iter().map(|r| r.headers.get("x-consumer-username").cloned()).collect();
    assert_eq!(users, [Some("alice".parse().unwrap()), Some("bob".parse().unwrap()), None]);
}

// === limit_req ===

/// Sends `n` GETs of `path` at once, each on its own thread; their statuses and when the
/// last one ended, measured from just before the first was sent.
fn at_once(addr: SocketAddr, path: &'static str, n: usize) -> (Vec<u16>, Duration) {
    let started = Instant::now();
    let threads: Vec<_> = (0..n).map(|_| std::thread::spawn(move || get(addr, path).status)).collect();
    let mut statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort_unstable();
    (statuses, started.elapsed())
}

#[test]
fn limit_req_with_nodelay_passes_one_plus_burst_at_once_then_refuses() {
    let backend = Backend::named("app");
    let proxy = proxy(backend.addr, &[("/", "[{ name: limit_req, config: { rate: 1r/m, burst: 3, nodelay: true } }]")]);
    let addr = proxy.addr("web");
    // Without `nodelay` the last of these would wait three minutes (1r/m).
    let (statuses, elapsed) = at_once(addr, "/", 4);
    assert_eq!(statuses, [200, 200, 200, 200]);
    assert!(elapsed < support::WAIT, "passed at once, in {elapsed:?}");
    let refused = get(addr, "/");
    assert_eq!(refused.status, 429);
    assert_eq!(header(&refused, "x-strait-reason"), "rate_limited");
    let retry: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((50..=63).contains(&retry), "one request drains in about a minute: {retry}");
    assert_eq!(backend.count(), 4);
}

#[test]
fn limit_req_without_nodelay_spaces_the_burst_out_at_the_rate() {
    let backend = Backend::named("app");
    let proxy = proxy(backend.addr, &[("/slow", "[{ name: limit_req, config: { rate: 2r/s, burst: 3 } }]")]);
    let addr = proxy.addr("web");
    // The first passes at once, the three others wait 0.5, 1 and 1.5 s from the first's arrival.
    let (statuses, elapsed) = at_once(addr, "/slow", 4);
    assert_eq!(statuses, [200, 200, 200, 200], "the burst is delayed, not refused");
    assert!(elapsed >= Duration::from_millis(1_400), "the last left after 1.5 s, measured {elapsed:?}");
    assert!(elapsed < support::WAIT, "{elapsed:?}");
    assert_eq!(backend.count(), 4);
}

// === concurrency_limit ===

/// A backend that holds every response until `open`, counting the requests that arrived.
struct GatedBackend {
    addr: SocketAddr,
    arrived: Arc<AtomicUsize>,
    open: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl GatedBackend {
    /// Starts it on a port of its own, closed.
    fn start() -> GatedBackend {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let (arrived, open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, gate) = (arrived.clone(), open.clone());
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (count, gate) = (count.clone(), gate.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        let (count, gate) = (count.clone(), gate.clone());
                        async move {
                            count.fetch_add(1, Ordering::SeqCst);
                            while !gate.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            let body = http_body_util::Full::new(bytes::Bytes::from_static(b"done"));
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        GatedBackend { addr, arrived, open, _runtime: runtime }
    }

    /// Requests that reached it so far.
    fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    /// Lets every held response (and every later one) go.
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[test]
fn concurrency_limit_refuses_beyond_max_in_flight_until_they_finish() {
    let backend = GatedBackend::start();
    let proxy = proxy(backend.addr, &[("/", "[{ name: concurrency_limit, config: { max: 2 } }]")]);
    let addr = proxy.addr("web");
    let held: Vec<_> = (0..2).map(|_| std::thread::spawn(move || get(addr, "/"))).collect();
    support::wait_until("two requests held at the backend", || backend.arrived() == 2);
    let refused = get(addr, "/");
    assert_eq!(refused.status, 429);
    assert_eq!(header(&refused, "x-strait-reason"), "rate_limited");
    let other = std::thread::spawn(move || get_from("127.0.0.2", addr, "/", ""));
    support::wait_until("another address's request let through", || backend.arrived() == 3);
    backend.open();
    assert_eq!(other.join().unwrap().status, 200);
    for request in held {
        let response = request.join().unwrap();
        assert_eq!((response.status, response.text().as_str()), (200, "done"));
    }
    // The slots come back once the exchanges have ended (their log phase).
    support::wait_until("a slot to be free again", || get(addr, "/").status == 200);
    assert_eq!(backend.arrived(), 4);
}

#[test]
fn an_aborted_request_gives_its_slot_back() {
    let backend = GatedBackend::start();
    let proxy = proxy(backend.addr, &[("/", "[{ name: concurrency_limit, config: { max: 1 } }]")]);
    let addr = proxy.addr("web");
    let mut conn = RawConn::connect(addr);
    conn.send(b"GET / HTTP/1.1\r\nHost: test.local\r\n\r\n");
    support::wait_until("the request held at the backend", || backend.arrived() == 1);
    assert_eq!(get(addr, "/").status, 429, "the held request has the only slot");
    drop(conn);
    backend.open();
    support::wait_until("the aborted request's slot to be free", || get(addr, "/").status == 200);
}
