//! Other implementations' clients against Strait: OpenSSL's `s_client` (ALPN, protocol
//! versions, session resumption) and nghttp2's `h2load` (many HTTP/2 streams over TLS and h2c).

use crate::support;

use std::process::{Command, Stdio};

use support::pki::Pki;
use support::{Backend, Proxy, Reply};

/// A TLS listener `tls` (and an h2c listener `h2c`) forwarding to `backend`; `tls_extra` is
/// added to the `tls:` block.
fn proxy(pki: &Pki, backend: &Backend, tls_extra: &str) -> Proxy {
    let leaf = pki.server("interop", &["interop.test"]);
    Proxy::start(&format!(
        r#"
listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls:
      certificates:
        - {{ cert: "{}", key: "{}" }}
{tls_extra}
    routes:
      - forward: {{ cluster: app }}
  - name: h2c
    bind: 127.0.0.1:0
    http2: true
    routes:
      - forward: {{ cluster: app }}
clusters:
  - name: app
    keepalive: 16
    endpoints: [{{ address: "{}" }}]
"#,
        leaf.cert.display(),
        leaf.key.display(),
        backend.addr
    ))
}

/// `openssl s_client` with `args`, connecting to `addr` as `interop.test` and trusting the
/// test CA; its standard output. Sends `input` (then end of file) once connected, and reads
/// until the server closes.
fn s_client(pki: &Pki, addr: std::net::SocketAddr, args: &[&str], input: &str) -> String {
    let mut child = bounded("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-servername", "interop.test", "-CAfile"])
        .arg(pki.ca_file())
        .arg("-verify_return_error")
        // With a request to send, read the answer to its end; without, hang up at once.
        .args(if input.is_empty() { &[][..] } else { &["-ign_eof"][..] })
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().expect("openssl ends");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `program` run under coreutils' `timeout`, so a stuck client ends the test instead of
/// hanging it.
fn bounded(program: &str) -> Command {
    let mut command = Command::new("timeout");
    command.args(["20", program]);
    command
}

#[test]
fn openssl_negotiates_h2_by_alpn_and_gets_http11_answers_without_it() {
    let pki = Pki::new("interop ca");
    let backend = Backend::start(|_| Reply::text("hello from the backend"));
    let proxy = proxy(&pki, &backend, "");
    let addr = proxy.addr("tls");
    let h2 = s_client(&pki, addr, &["-alpn", "h2,http/1.1"], "");
    assert!(h2.contains("ALPN protocol: h2"), "no h2 by ALPN:\n{h2}");
    assert!(h2.contains("Verify return code: 0 (ok)"), "certificate not verified:\n{h2}");
    let request = "GET /x HTTP/1.1\r\nHost: interop.test\r\nConnection: close\r\n\r\n";
    let h1 = s_client(&pki, addr, &["-alpn", "http/1.1", "-quiet"], request);
    assert!(h1.starts_with("HTTP/1.1 200"), "no HTTP/1.1 answer:\n{h1}");
    assert!(h1.ends_with("hello from the backend"), "no body:\n{h1}");
}

#[test]
fn openssl_is_held_to_the_configured_protocol_versions() {
    let pki = Pki::new("interop ca");
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = proxy(&pki, &backend, "      versions: [tls1.2]");
    let addr = proxy.addr("tls");
    let tls12 = s_client(&pki, addr, &["-tls1_2"], "");
    assert!(tls12.contains("Protocol  : TLSv1.2") || tls12.contains("TLSv1.2, Cipher"), "no TLS 1.2:\n{tls12}");
    let tls13 = s_client(&pki, addr, &["-tls1_3"], "");
    assert!(tls13.contains("no peer certificate available"), "a TLS 1.3 handshake succeeded:\n{tls13}");
}

#[test]
fn openssl_resumes_a_session_from_its_ticket() {
    let pki = Pki::new("interop ca");
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = proxy(&pki, &backend, "");
    let addr = proxy.addr("tls");
    let session = tempfile::NamedTempFile::new().unwrap();
    let path = session.path().to_str().unwrap();
    // TLS 1.3 tickets arrive after the handshake: a request makes the client read them.
    let request = "GET / HTTP/1.1\r\nHost: interop.test\r\nConnection: close\r\n\r\n";
    let first = s_client(&pki, addr, &["-alpn", "http/1.1", "-sess_out", path], request);
    assert!(first.contains("New, TLSv1.3"), "first handshake:\n{first}");
    let second = s_client(&pki, addr, &["-alpn", "http/1.1", "-sess_in", path], request);
    assert!(second.contains("Reused, TLSv1.3"), "the session was not resumed:\n{second}");
}

/// Runs `h2load` with `args` against `url`; its standard output.
fn h2load(url: &str, args: &[&str]) -> String {
    let output = bounded("h2load").args(args).arg(url).output().expect("h2load runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn h2load_gets_every_answer_over_tls_and_h2c() {
    let pki = Pki::new("interop ca");
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = proxy(&pki, &backend, "");
    let runs = [
        format!("https://127.0.0.1:{}/", proxy.addr("tls").port()),
        format!("http://127.0.0.1:{}/", proxy.addr("h2c").port()),
    ];
    for url in &runs {
        // 4 connections x 10 streams, 400 requests.
        let out = h2load(url, &["-n", "400", "-c", "4", "-m", "10"]);
        assert!(out.contains("400 succeeded, 0 failed, 0 errored"), "{url}:\n{out}");
        assert!(out.contains("Application protocol: h2") || out.contains("h2c"), "{url}: not HTTP/2:\n{out}");
    }
}
