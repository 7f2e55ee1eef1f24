//! The forward proxy: absolute-form requests to origins, CONNECT tunnels (to a TLS origin too),
//! the SSRF guard over loopback spellings, parent chaining and the PAC file, with curl `-x`,
//! `HTTP_PROXY` and raw requests as the clients.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use crate::support::pki::Pki;
use crate::support::{curl, echo_server, open_tunnel, raw_request, read_head, Backend, Proxy, RawConn, Reply, WAIT};

/// Listener filters letting every client tunnel to any port (the tests' origins listen on
/// ports the kernel picks; without `http_access`, tunnels go to port 443 only).
const ANY_PORT: &str = r#"    filters:
      - name: http_access
        config: { acls: { any_port: { port: [1-65535] } }, rules: [{ allow: [any_port] }] }
"#;

/// A forward proxy on listener `proxy` whose SSRF guard lets `allow` through.
fn forward_proxy(allow: &[String], extra: &str) -> Proxy {
    let allow = allow.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
    Proxy::start(&format!(
        r#"
listeners:
  - name: proxy
    bind: 127.0.0.1:0
{ANY_PORT}    routes:
      - forward_proxy:
          ssrf_guard: {{ allow: [{allow}] }}
{extra}
"#
    ))
}

fn proxy_url(proxy: &Proxy) -> String {
    format!("http://{}", proxy.addr("proxy"))
}

#[test]
fn absolute_form_requests_reach_the_origin_over_one_client_connection() {
    let a = Backend::start(|r| Reply::text(&format!("a saw {}", r.uri)));
    let b = Backend::start(|r| Reply::text(&format!("b saw {}", r.uri)));
    let proxy = forward_proxy(&[a.addr.to_string(), b.addr.to_string()], "");
    let mut conn = RawConn::connect(proxy.addr("proxy"));
    for (origin, expected) in [(&a, "a saw /x?y=1"), (&b, "b saw /x?y=1"), (&a, "a saw /x?y=1")] {
        let request = format!(
            "GET http://{0}/x?y=1 HTTP/1.1\r\nHost: {0}\r\nProxy-Connection: keep-alive\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
            origin.addr
        );
        conn.send(request.as_bytes());
        let response = conn.read_response().expect("an answer on the same connection");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.text(), expected);
        assert!(response.header("via").is_none(), "no Via is added");
    }
    let seen = a.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].uri, "/x?y=1", "the origin gets the origin-form target");
    assert_eq!(seen[0].headers["host"], a.addr.to_string());
    assert!(!seen[0].headers.contains_key("proxy-connection"));
    assert!(!seen[0].headers.contains_key("via"), "no Via is added");
    // The proxy adds no X-Forwarded-For of its own (what the client sent is the privacy
    // filter's business).
    assert_eq!(seen[0].headers.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(a.connections(), 1, "the origin connection is pooled");
}

#[test]
fn curl_and_http_proxy_environment_use_the_proxy() {
    let origin = Backend::start(|_| Reply::text("through the proxy"));
    let proxy = forward_proxy(&[origin.addr.to_string()], "");
    let url = format!("http://{}/page", origin.addr);
    let got = curl(&["-x", &proxy_url(&proxy), &url]);
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "through the proxy");
    let output = std::process::Command::new("curl")
        .args(["--max-time", "10", "-s", &url])
        .env("http_proxy", proxy_url(&proxy))
        .env_remove("no_proxy")
        .env_remove("NO_PROXY")
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "through the proxy");
    assert_eq!(origin.count(), 2);
}

#[test]
fn the_ssrf_guard_refuses_every_spelling_of_loopback() {
    let origin = Backend::start(|_| Reply::text("must not be reached"));
    let port = origin.addr.port();
    // Allowed: another port only, so the origin's address itself stays internal.
    let proxy = forward_proxy(&["127.0.0.1:1".to_string()], "");
    let spellings = [
        format!("127.0.0.1:{port}"),
        format!("127.1:{port}"),
        format!("2130706433:{port}"),
        format!("0x7f000001:{port}"),
        format!("[::1]:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("localhost:{port}"),
    ];
    for target in &spellings {
        // Raw requests: curl would write some spellings as 127.0.0.1 itself.
        let request = format!("GET http://{target}/ HTTP/1.1\r\nHost: {target}\r\n\r\n");
        let got = raw_request(proxy.addr("proxy"), request.as_bytes()).expect("an answer");
        assert_eq!(got.status, 403, "{target}: {}", got.text());
        assert_eq!(got.header("x-strait-reason"), Some("destination_forbidden"), "{target}");
        let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
        let answer = raw_request(proxy.addr("proxy"), request.as_bytes()).expect("an answer");
        assert_eq!(answer.status, 403, "CONNECT {target}");
        assert_eq!(answer.header("x-strait-reason"), Some("destination_forbidden"), "CONNECT {target}");
    }
    // curl's own spelling of a name that maps to loopback is refused too.
    let got = curl(&["-x", &proxy_url(&proxy), &format!("http://localhost:{port}/")]);
    assert_eq!(got.status, 403);
    assert_eq!(origin.count(), 0, "no request reached the origin");
}

#[test]
fn a_name_mapped_to_loopback_is_refused_after_resolution() {
    let origin = Backend::start(|_| Reply::text("must not be reached"));
    let proxy = forward_proxy(&[], "");
    // curl resolves nothing itself when it uses a proxy: the proxy resolves the name, finds
    // loopback, and refuses it. `--resolve` would only affect curl's own lookups.
    let got = curl(&["-x", &proxy_url(&proxy), &format!("http://localhost:{}/", origin.addr.port())]);
    assert_eq!(got.status, 403);
    assert_eq!(origin.count(), 0);
    let unknown = curl(&["-x", &proxy_url(&proxy), "http://no-such-host.invalid/"]);
    assert_eq!(unknown.status, 502);
    assert_eq!(unknown.header("x-strait-reason"), Some("dns_failed"));
}

#[test]
fn connect_opens_a_tunnel_that_carries_bytes_both_ways_and_half_closes() {
    let echo = echo_server();
    let proxy = forward_proxy(&[echo.to_string()], "");
    // The first tunnel bytes go in the same packet as the CONNECT head.
    let (mut stream, answer) = open_tunnel(proxy.addr("proxy"), echo, b"early ");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(!lower.contains("content-length") && !lower.contains("transfer-encoding"), "{answer}");
    stream.write_all(b"bytes").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).unwrap();
    assert_eq!(echoed, b"early bytes", "the echo, then the origin's half-close passed on");
}

#[test]
fn connect_reaches_a_tls_origin_with_curl() {
    let pki = Pki::new("forward test ca");
    let leaf = pki.server("origin", &["localhost"]);
    let origin = Proxy::start(&format!(
        r#"
listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls:
      certificates:
        - {{ cert: "{}", key: "{}" }}
    routes:
      - direct: {{ status: 200, body: "secret page" }}
"#,
        leaf.cert.display(),
        leaf.key.display()
    ));
    let origin_addr = origin.addr("tls");
    let proxy = forward_proxy(&[origin_addr.to_string()], "");
    let url = format!("https://localhost:{}/", origin_addr.port());
    let ca = pki.ca_file();
    let got = curl(&["--suppress-connect-headers", "-x", &proxy_url(&proxy), "--cacert", ca.to_str().unwrap(), &url]);
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "secret page");
}

#[test]
fn connect_is_refused_on_reverse_proxy_routes_and_malformed_targets() {
    let backend = Backend::start(|_| Reply::text("backend"));
    let proxy = Proxy::start(&format!(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    ));
    let target = backend.addr;
    let answer =
        raw_request(proxy.addr("web"), format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
            .expect("an answer");
    assert_eq!(answer.status, 405);
    for bad in ["CONNECT example.test HTTP/1.1\r\nHost: example.test\r\n\r\n", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"]
    {
        assert_eq!(raw_request(proxy.addr("web"), bad.as_bytes()).expect("an answer").status, 400, "{bad:?}");
    }
    assert_eq!(backend.count(), 0);
}

#[test]
fn a_parent_proxy_gets_absolute_form_requests_and_its_credentials() {
    let origin = Backend::start(|r| Reply::text(&format!("origin saw {}", r.uri)));
    let parent = forward_proxy(&[origin.addr.to_string()], "");
    // The parent is reached by a configured address (loopback here): the guard does not
    // apply to it. A destination written as an address is still the child's guard's to judge.
    let refusing = forward_proxy(&[], &format!("          parent: {{ address: \"{}\" }}", parent.addr("proxy")));
    let refused = curl(&["-x", &proxy_url(&refusing), &format!("http://{}/via-parent", origin.addr)]);
    assert_eq!(refused.status, 403, "the child's guard refuses a loopback address before the parent sees it");
    let child = forward_proxy(
        &[origin.addr.to_string()],
        &format!("          parent: {{ address: \"{}\", username: child, password: s3cret }}", parent.addr("proxy")),
    );
    let got = curl(&["-x", &proxy_url(&child), &format!("http://{}/via-parent", origin.addr)]);
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.text(), "origin saw /via-parent");
    // A recording parent shows what the child sends it.
    let recorder = TcpListener::bind("127.0.0.1:0").unwrap();
    let recorder_addr = recorder.local_addr().unwrap();
    let child = forward_proxy(
        &[],
        &format!("          parent: {{ address: \"{recorder_addr}\", username: child, password: s3cret }}"),
    );
    let seen = std::thread::spawn(move || {
        let (mut stream, _) = recorder.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let head = read_head(&mut stream);
        stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        head
    });
    let got = curl(&["-x", &proxy_url(&child), "http://origin.test:8080/p?q"]);
    assert_eq!(got.status, 204);
    let head = seen.join().unwrap();
    assert!(head.starts_with("GET http://origin.test:8080/p?q HTTP/1.1\r\n"), "{head}");
    // base64("child:s3cret")
    assert!(head.contains("proxy-authorization: Basic Y2hpbGQ6czNjcmV0\r\n"), "{head}");
}

#[test]
fn connect_through_a_parent_proxy() {
    let echo = echo_server();
    let parent = forward_proxy(&[echo.to_string()], "");
    let child =
        forward_proxy(&[echo.to_string()], &format!("          parent: {{ address: \"{}\" }}", parent.addr("proxy")));
    let (mut stream, got) = open_tunnel(child.addr("proxy"), echo, b"");
    assert!(got.starts_with("HTTP/1.1 200 "), "{got}");
    stream.write_all(b"ping").unwrap();
    let mut pong = [0u8; 4];
    stream.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"ping");
}

#[test]
fn the_pac_file_is_served_to_requests_for_the_proxy_itself() {
    let proxy = forward_proxy(&[], "          pac: { direct: [.corp.example, 10.0.0.0/8] }");
    let addr = proxy.addr("proxy");
    let got = curl(&[&format!("http://{addr}/proxy.pac")]);
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("application/x-ns-proxy-autoconfig"));
    let text = got.text();
    assert!(text.contains(&format!("return \"PROXY {addr}\";")), "{text}");
    assert!(text.contains("dnsDomainIs(host, \".corp.example\")"), "{text}");
    // Another origin-form path is not a proxied request.
    assert_eq!(curl(&[&format!("http://{addr}/other")]).status, 400);
}

#[test]
fn the_tunnel_closes_after_its_idle_time() {
    let echo = echo_server();
    let proxy = forward_proxy(&[echo.to_string()], "          timeouts: { tunnel_idle: 300ms }");
    let mut conn = RawConn::connect(proxy.addr("proxy"));
    conn.send(format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n").as_bytes());
    let opened = conn.read_response_to(true).expect("the tunnel opens");
    assert_eq!(opened.status, 200);
    assert!(conn.closes_within(Duration::from_secs(5)), "an idle tunnel closes");
}

#[test]
fn a_clients_bandwidth_is_limited_on_responses_and_tunnels() {
    const LEN: u64 = 300 * 1024;
    let origin = Backend::generating(LEN);
    let echo = echo_server();
    let proxy = forward_proxy(&[origin.addr.to_string(), echo.to_string()], "          client_bandwidth: 100KiB");
    // A second's worth goes at once, the other 200 KiB at 100 KiB/s: about two seconds.
    let started = std::time::Instant::now();
    let got = curl(&["-x", &proxy_url(&proxy), &format!("http://{}/big", origin.addr)]);
    let took = started.elapsed();
    assert_eq!(got.status, 200);
    assert_eq!(got.body.len() as u64, LEN);
    assert!(took >= Duration::from_millis(1500), "300 KiB at 100 KiB/s took {took:?}");
    // Through a tunnel both directions count: 100 KiB up and back is 200 KiB. A fresh proxy
    // has a full bucket: 100 KiB at once, the rest (less one chunk) at 100 KiB/s.
    let proxy = forward_proxy(&[echo.to_string()], "          client_bandwidth: 100KiB");
    let (mut stream, head) = open_tunnel(proxy.addr("proxy"), echo, b"");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let started = std::time::Instant::now();
    let payload = vec![7u8; 100 * 1024];
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || stream.write_all(&payload).unwrap())
    };
    let mut back = vec![0u8; 100 * 1024];
    stream.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    let took = started.elapsed();
    assert!(back.iter().all(|b| *b == 7));
    assert!(took >= Duration::from_millis(700), "200 KiB through the tunnel took {took:?}");
}

#[test]
fn the_seeds_python_requests_client_works_through_the_proxy() {
    let origin = Backend::start(|_| Reply::text("hello from the origin"));
    let pki = Pki::new("requests test ca");
    let leaf = pki.server("origin", &["localhost"]);
    let tls_origin = Proxy::start(&format!(
        r#"
listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls:
      certificates:
        - {{ cert: "{}", key: "{}" }}
    routes:
      - direct: {{ status: 200, body: "hello over tls" }}
"#,
        leaf.cert.display(),
        leaf.key.display()
    ));
    let tls_addr = tls_origin.addr("tls");
    let proxy = forward_proxy(&[origin.addr.to_string(), tls_addr.to_string()], "");
    // The seed's client, with its `proxies` mapping for both schemes.
    let script = r#"
import sys, requests
proxy, plain, secure, ca = sys.argv[1:5]
proxies = {"http": proxy, "https": proxy}
print(requests.get(plain, proxies=proxies, timeout=10).text)
print(requests.get(secure, proxies=proxies, timeout=10, verify=ca).text)
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(proxy_url(&proxy))
        .arg(format!("http://{}/", origin.addr))
        .arg(format!("https://localhost:{}/", tls_addr.port()))
        .arg(pki.ca_file())
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .output()
        .expect("python3 runs (scripts/test.sh installs requests)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello from the origin\nhello over tls\n");
}

/// A TLS origin on loopback whose certificate for `localhost` comes from `pki`, answering with
/// the request line and headers it got (`echo`).
fn tls_echo_origin(pki: &Pki) -> Proxy {
    let leaf = pki.server("origin", &["localhost"]);
    Proxy::start(&format!(
        r#"
listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls:
      certificates:
        - {{ cert: "{}", key: "{}" }}
    routes:
      - echo: {{ name: origin }}
"#,
        leaf.cert.display(),
        leaf.key.display()
    ))
}

/// curl through `proxy` to `url`, trusting `ca`; `-v` output goes to the returned stderr.
fn curl_verbose(proxy: &str, ca: &std::path::Path, url: &str) -> (String, String) {
    let output = std::process::Command::new("curl")
        .args(["--max-time", "10", "-s", "-v", "-x", proxy, "--cacert", ca.to_str().unwrap(), url])
        .output()
        .expect("curl runs");
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn tls_inspection_decrypts_listed_domains_only_and_verifies_the_origin() {
    let origin_pki = Pki::new("origin ca");
    let origin = tls_echo_origin(&origin_pki);
    let port = origin.addr("tls").port();
    let inspection_pki = Pki::new("inspection ca");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let proxy = Proxy::start(&format!(
        r#"
access_log: {{ path: "{log}", format: json }}
listeners:
  - name: proxy
    bind: 127.0.0.1:0
    filters:
      - name: request_headers
        config: {{ set: {{ x-inspected-by: strait }} }}
      - name: http_access
        config: {{ acls: {{ any_port: {{ port: [1-65535] }} }}, rules: [{{ allow: [any_port] }}] }}
    routes:
      - forward_proxy:
          ssrf_guard: {{ allow: ["127.0.0.1:{port}"] }}
          tls_inspection:
            ca_cert: "{ca}"
            ca_key: "{key}"
            origin_ca: "{origin_ca}"
            domains: [localhost]
"#,
        log = log.display(),
        ca = inspection_pki.ca_file().display(),
        key = inspection_pki.ca_key_file().display(),
        origin_ca = origin_pki.ca_file().display(),
    ));
    let url = format!("https://localhost:{port}/inside?q=1");
    // The client trusts only the inspection CA: it sees a minted certificate, and the
    // listener's filters applied to the decrypted request (the origin got their header).
    let (body, verbose) = curl_verbose(&proxy_url(&proxy), &inspection_pki.ca_file(), &url);
    assert!(body.contains("GET /inside?q=1"), "{body}\n{verbose}");
    assert!(body.contains("x-inspected-by: strait"), "{body}");
    assert!(verbose.contains("issuer: CN=inspection ca"), "{verbose}");
    // Trusting only the origin's CA fails: the certificate shown is not the origin's (curl's
    // exit code 60: the peer's certificate cannot be verified).
    let status = std::process::Command::new("curl")
        .args(["--max-time", "10", "-s", "-o", "/dev/null", "-x", &proxy_url(&proxy), "--cacert"])
        .arg(origin_pki.ca_file())
        .arg(&url)
        .status()
        .expect("curl runs");
    assert_eq!(status.code(), Some(60));
    // Inside the tunnel, a request for another host is refused: the rules judged the tunnel's.
    let output = std::process::Command::new("curl")
        .args(["--max-time", "10", "-s", "-i", "-H", "Host: elsewhere.test", "-x", &proxy_url(&proxy), "--cacert"])
        .arg(inspection_pki.ca_file())
        .arg(&url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("HTTP/1.1 400"), "{text}");
    // A client naming another host by SNI gets no certificate at all.
    let status = std::process::Command::new("curl")
        .args(["--max-time", "10", "-s", "-o", "/dev/null", "-x", &proxy_url(&proxy), "--cacert"])
        .arg(inspection_pki.ca_file())
        .args(["--connect-to", &format!("other.test:{port}:localhost:{port}")])
        .arg(format!("https://other.test:{port}/"))
        .status()
        .expect("curl runs");
    assert_ne!(status.code(), Some(0));
    // The decrypted request is in the access log beside its CONNECT.
    crate::support::wait_until("the access log has both lines", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("/inside?q=1") && text.contains("CONNECT")
    });
}

#[test]
fn tls_inspection_leaves_other_domains_opaque_and_refuses_unverified_origins() {
    let origin_pki = Pki::new("origin ca");
    let origin = tls_echo_origin(&origin_pki);
    let port = origin.addr("tls").port();
    let inspection_pki = Pki::new("inspection ca");
    let untrusted = Pki::new("some other ca");
    let proxy_with = |domains: &str, origin_ca: &std::path::Path| {
        Proxy::start(&format!(
            r#"
listeners:
  - name: proxy
    bind: 127.0.0.1:0
{ANY_PORT}    routes:
      - forward_proxy:
          ssrf_guard: {{ allow: ["127.0.0.1:{port}"] }}
          tls_inspection: {{ ca_cert: "{}", ca_key: "{}", origin_ca: "{}", domains: [{domains}] }}
"#,
            inspection_pki.ca_file().display(),
            inspection_pki.ca_key_file().display(),
            origin_ca.display(),
        ))
    };
    let url = format!("https://localhost:{port}/");
    // `localhost` is not listed: the tunnel is opaque, the client sees the origin's own certificate.
    let opaque = proxy_with(".example.test", &origin_pki.ca_file());
    let (body, verbose) = curl_verbose(&proxy_url(&opaque), &origin_pki.ca_file(), &url);
    // (curl and the origin agree on HTTP/2 by ALPN: the proxy is not in their TLS.)
    assert!(body.contains("echo: origin") && body.contains("HTTP/2.0"), "{body}\n{verbose}");
    assert!(verbose.contains("issuer: CN=origin ca"), "{verbose}");
    // Inspected, but the origin's certificate does not chain to the configured trust: 502.
    let strict = proxy_with("localhost", &untrusted.ca_file());
    let got = curl(&[
        "--suppress-connect-headers",
        "-x",
        &proxy_url(&strict),
        "--cacert",
        inspection_pki.ca_file().to_str().unwrap(),
        &url,
    ]);
    assert_eq!(got.status, 502);
    assert_eq!(got.header("x-strait-reason"), Some("upstream_tls_failed"));
}

#[test]
fn requests_per_second_per_client_are_the_listeners_limit_req() {
    let origin = Backend::start(|_| Reply::text("ok"));
    let proxy = Proxy::start(&format!(
        r#"
listeners:
  - name: proxy
    bind: 127.0.0.1:0
    filters:
      - name: limit_req
        config: {{ rate: 1r/m, limit_by: ip }}
    routes:
      - forward_proxy: {{ ssrf_guard: {{ allow: ["{}"] }} }}
"#,
        origin.addr
    ));
    let url = format!("http://{}/", origin.addr);
    assert_eq!(curl(&["-x", &proxy_url(&proxy), &url]).status, 200);
    // The next request of that client, to any origin and even a tunnel, is over the rate.
    let refused = curl(&["-x", &proxy_url(&proxy), &url]);
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("x-strait-reason"), Some("rate_limited"));
    let tunnel = format!("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n", origin.addr);
    assert_eq!(raw_request(proxy.addr("proxy"), tunnel.as_bytes()).expect("an answer").status, 429);
    assert_eq!(origin.count(), 1);
}

#[test]
fn without_access_rules_only_local_clients_may_use_it_and_tunnels_go_to_443_only() {
    let echo = echo_server();
    let origin = Backend::start(|_| Reply::text("local client"));
    let proxy = Proxy::start(&format!(
        r#"
listeners:
  - name: proxy
    bind: 127.0.0.1:0
    routes:
      - forward_proxy: {{ ssrf_guard: {{ allow: ["{echo}", "{}"] }} }}
"#,
        origin.addr
    ));
    // A client on this host may fetch (the tests' clients are all local)...
    assert_eq!(curl(&["-x", &proxy_url(&proxy), &format!("http://{}/", origin.addr)]).status, 200);
    // ...but a tunnel to a port other than 443 is refused, as Squid's default configuration does.
    let request = format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n");
    let answer = raw_request(proxy.addr("proxy"), request.as_bytes()).expect("an answer");
    assert_eq!(answer.status, 403);
    assert_eq!(answer.header("x-strait-reason"), Some("proxy_access_denied"));
}
