//! The access log of the real binary: JSON, combined and squid lines in a file, and reopening it on
//! SIGUSR1.

use crate::support;

use std::net::SocketAddr;
use std::path::Path;

use support::{get, wait_until, Backend, Conn, Reply, Strait, Workdir};

fn config(log: &Path, format: &str, backend: SocketAddr) -> String {
    format!(
        "\
workers: 2
access_log: {{ path: \"{}\", format: {format} }}
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - name: api
        match: {{ path: {{ prefix: /api }} }}
        forward: {{ cluster: app }}
      - name: down
        match: {{ path: {{ prefix: /down }} }}
        forward: {{ cluster: dead }}
clusters:
  - name: app
    endpoints: [{{ address: \"{backend}\" }}]
  - name: dead
    endpoints: [{{ address: \"127.0.0.1:1\" }}]
",
        log.display()
    )
}

/// The complete lines of a file (none if it does not exist).
fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect()
}

/// Waits until `path` holds at least `n` complete lines and returns them.
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    wait_until(&format!("{n} lines in {}", path.display()), || lines(path).len() >= n);
    lines(path)
}

/// A GET with extra request headers on a new connection.
fn get_with(addr: SocketAddr, path: &str, headers: &str) -> support::Response {
    Conn::connect(addr)
        .unwrap()
        .request(&format!("GET {path} HTTP/1.1\r\nHost: test.local\r\n{headers}Connection: close\r\n\r\n"))
        .unwrap()
}

#[test]
fn json_lines_record_status_upstream_reason_request_id_and_route() {
    let backend = Backend::named("app");
    let work = Workdir::new("");
    let log = work.path("access.json");
    work.rewrite(&config(&log, "json", backend.addr));
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    let addr = strait.listener("web");

    let ok = get_with(addr, "/api/items?id=7", "X-Request-Id: req-json-1\r\nUser-Agent: strait-test/1.0\r\n");
    assert_eq!(ok.status, 200);
    assert_eq!(wait_lines(&log, 1).len(), 1);
    let missing = get(addr, "/nowhere");
    assert_eq!(missing.status, 404);
    assert_eq!(wait_lines(&log, 2).len(), 2);
    let failed = get(addr, "/down/x");
    assert_eq!(failed.status, 502);
    let lines = wait_lines(&log, 3);
    assert_eq!(lines.len(), 3, "{lines:?}");

    let parsed: Vec<serde_json::Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let (ok, missing, failed) = (&parsed[0], &parsed[1], &parsed[2]);

    assert_eq!(ok["status"], 200);
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["target"], "/api/items?id=7");
    assert_eq!(ok["route"], "api");
    assert_eq!(ok["cluster"], "app");
    assert_eq!(ok["upstream"], backend.addr.to_string());
    assert!(ok["reason"].is_null(), "{ok}");
    assert_eq!(ok["request_id"], "req-json-1");
    assert_eq!(ok["user_agent"], "strait-test/1.0");
    assert_eq!(ok["client"], "127.0.0.1");
    assert_eq!(ok["bytes_sent"], 3);
    assert!(ok["upstream_time_ms"].is_f64(), "{ok}");

    assert_eq!(missing["status"], 404);
    assert_eq!(missing["reason"], "no_route");
    assert!(missing["route"].is_null(), "{missing}");
    assert!(missing["upstream"].is_null(), "{missing}");
    // A request id is generated when the client sends none.
    let generated = missing["request_id"].as_str().expect("generated request id");
    assert!(!generated.is_empty());
    assert_ne!(generated, "req-json-1");

    assert_eq!(failed["status"], 502);
    assert_eq!(failed["reason"], "upstream_connect_failed");
    assert_eq!(failed["route"], "down");
    assert_eq!(failed["cluster"], "dead");
}

#[test]
fn combined_lines_follow_the_nginx_combined_format() {
    let backend = Backend::named("app");
    let work = Workdir::new("");
    let log = work.path("access.log");
    work.rewrite(&config(&log, "combined", backend.addr));
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    let addr = strait.listener("web");

    let headers = "Referer: http://ref.example/page\r\nUser-Agent: strait-test/1.0\r\nX-Request-Id: req-c-1\r\n";
    assert_eq!(get_with(addr, "/api/x?q=1", headers).status, 200);
    let line = wait_lines(&log, 1).remove(0);

    // 127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /api/x?q=1 HTTP/1.1" 200 3 "referer" "agent" ...
    let (prefix, rest) = line.split_once('[').unwrap_or_else(|| panic!("{line}"));
    assert_eq!(prefix, "127.0.0.1 - - ");
    let (time, rest) = rest.split_once("] ").unwrap_or_else(|| panic!("{line}"));
    assert_clf_time(time);
    let expected = "\"GET /api/x?q=1 HTTP/1.1\" 200 3 \"http://ref.example/page\" \"strait-test/1.0\" ";
    assert!(rest.starts_with(expected), "after the time, expected\n  {expected}\ngot\n  {rest}");
    let extra = &rest[expected.len()..];
    assert!(extra.starts_with(&format!("upstream={} upstream_time=", backend.addr)), "{extra}");
    for field in ["reason=-", "request_id=req-c-1", "route=api", "host=test.local"] {
        assert!(extra.split(' ').any(|f| f == field), "`{field}` missing from {extra}");
    }

    // A local answer: no upstream, the reason, `-` for missing referer and agent.
    get(addr, "/nowhere");
    let line = wait_lines(&log, 2).remove(1);
    assert!(line.contains("] \"GET /nowhere HTTP/1.1\" 404 "), "{line}");
    assert!(line.contains(" \"-\" \"-\" upstream=- upstream_time=- "), "{line}");
    assert!(line.contains(" reason=no_route "), "{line}");
}

/// Checks `dd/Mon/yyyy:HH:MM:SS +zzzz`.
fn assert_clf_time(time: &str) {
    let b = time.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let ok = b.len() == 26
        && digits(0..2)
        && b[2] == b'/'
        && months.contains(&&time[3..6])
        && b[6] == b'/'
        && digits(7..11)
        && b[11] == b':'
        && digits(12..14)
        && b[14] == b':'
        && digits(15..17)
        && b[17] == b':'
        && digits(18..20)
        && b[20] == b' '
        && (b[21] == b'+' || b[21] == b'-')
        && digits(22..26);
    assert!(ok, "not a common log format time: {time:?}");
}

fn squid_config(log: &Path, backend: SocketAddr) -> String {
    format!(
        "\
workers: 2
access_log: {{ path: \"{}\", format: squid }}
consumers:
  - username: alice
    credentials: {{ key_auth: [{{ key: alice-key }}] }}
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: {{ path: {{ prefix: /api }} }}
        filters: [{{ name: key_auth }}]
        forward: {{ cluster: app }}
      - match: {{ path: {{ prefix: /private }} }}
        filters: [{{ name: ip_restriction, config: {{ deny: [127.0.0.1] }} }}]
        forward: {{ cluster: app }}
  - name: fwd
    bind: 127.0.0.1:0
    routes:
      - forward_proxy: {{ ssrf_guard: {{ allow: [\"127.0.0.1:{port}\"] }} }}
clusters:
  - name: app
    endpoints: [{{ address: \"{backend}\" }}]
",
        log.display(),
        port = backend.port(),
    )
}

/// The fields of a squid line, after checking the time (`%ts.%03tu`, near now) and that the
/// elapsed milliseconds are right-aligned in six columns.
fn squid_fields(line: &str) -> Vec<String> {
    let (time, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line}"));
    let (secs, millis) = time.split_once('.').unwrap_or_else(|| panic!("no milliseconds: {line}"));
    assert_eq!(millis.len(), 3, "{line}");
    assert!(millis.bytes().all(|b| b.is_ascii_digit()), "{line}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let secs: u64 = secs.parse().unwrap_or_else(|_| panic!("{line}"));
    assert!(secs <= now && now - secs < 120, "time {secs} is not about now ({now}): {line}");
    let elapsed = &rest[..6];
    assert!(elapsed.trim_start().bytes().all(|b| b.is_ascii_digit()), "elapsed `{elapsed}`: {line}");
    assert_eq!(rest.as_bytes()[6], b' ', "elapsed wider than 6 for a quick request: {line}");
    line.split_whitespace().skip(1).map(str::to_owned).collect()
}

/// `fields` from the client address on (after time and elapsed) are `want`, where `*` matches
/// any value.
#[track_caller]
fn assert_squid_line(line: &str, want: &[&str]) {
    let fields = squid_fields(line);
    assert_eq!(fields.len(), want.len() + 1, "{line}");
    for (got, want) in fields[1..].iter().zip(want) {
        assert!(*want == "*" || got == want, "expected `{want}`, got `{got}` in\n  {line}");
    }
}

#[test]
fn squid_lines_give_result_codes_users_hierarchy_and_content_types() {
    let backend = Backend::start(|_| Reply::text("app").header("content-type", "text/plain; charset=utf-8"));
    let work = Workdir::new("");
    let log = work.path("access.log");
    work.rewrite(&squid_config(&log, backend.addr));
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    let (web, fwd) = (strait.listener("web"), strait.listener("fwd"));
    let origin = backend.addr;

    // Reverse proxy: a 200 with its user, a 404 of Strait's own, a denial by ip_restriction.
    assert_eq!(get_with(web, "/api/items?id=7", "apikey: alice-key\r\n").status, 200);
    let line = wait_lines(&log, 1).remove(0);
    assert_squid_line(
        &line,
        &[
            "127.0.0.1",
            "TCP_MISS/200",
            "3",
            "GET",
            "http://test.local/api/items?id=7",
            "alice",
            "HIER_DIRECT/127.0.0.1",
            "text/plain",
        ],
    );
    let missing = get(web, "/nowhere");
    assert_eq!(missing.status, 404);
    let line = wait_lines(&log, 2).remove(1);
    let body = missing.body.len().to_string();
    assert_squid_line(
        &line,
        &["127.0.0.1", "TCP_MISS/404", &body, "GET", "http://test.local/nowhere", "-", "HIER_NONE/-", "*"],
    );
    let denied = get(web, "/private/x");
    assert_eq!(denied.status, 403);
    let line = wait_lines(&log, 3).remove(2);
    let body = denied.body.len().to_string();
    assert_squid_line(
        &line,
        &["127.0.0.1", "TCP_DENIED/403", &body, "GET", "http://test.local/private/x", "-", "HIER_NONE/-", "*"],
    );

    // Forward proxy: an absolute-form request, a destination the SSRF guard refuses, a tunnel.
    let url = format!("http://{origin}/fwd?q=1");
    let raw = format!("GET {url} HTTP/1.1\r\nHost: {origin}\r\nConnection: close\r\n\r\n");
    assert_eq!(Conn::connect(fwd).unwrap().request(&raw).unwrap().status, 200);
    let line = wait_lines(&log, 4).remove(3);
    assert_squid_line(
        &line,
        &["127.0.0.1", "TCP_MISS/200", "3", "GET", &url, "-", "HIER_DIRECT/127.0.0.1", "text/plain"],
    );
    let raw = "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n";
    assert_eq!(Conn::connect(fwd).unwrap().request(raw).unwrap().status, 403);
    let line = wait_lines(&log, 5).remove(4);
    assert_squid_line(
        &line,
        &["127.0.0.1", "TCP_DENIED/403", "*", "GET", "http://127.0.0.1:1/", "-", "HIER_NONE/-", "*"],
    );

    let output = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-p", "-x", &format!("http://{fwd}"), &format!("http://{origin}/tunneled")])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "app", "{}", String::from_utf8_lossy(&output.stderr));
    let line = wait_lines(&log, 6).remove(5);
    let fields = squid_fields(&line);
    let tunneled: u64 = fields[3].parse().unwrap_or_else(|_| panic!("{line}"));
    // The origin's whole answer came back through the tunnel: its head and the 3-byte body.
    assert!(tunneled > 3, "{line}");
    assert_squid_line(
        &line,
        &["127.0.0.1", "TCP_TUNNEL/200", "*", "CONNECT", &origin.to_string(), "-", "HIER_DIRECT/127.0.0.1", "-"],
    );

    // A head that cannot be parsed is refused before any classification.
    let refused = Conn::connect(web).unwrap().request("NOT A REQUEST\r\n\r\n").unwrap();
    assert_eq!(refused.status, 400);
    let line = wait_lines(&log, 7).remove(6);
    let body = refused.body.len().to_string();
    assert_squid_line(
        &line,
        &["127.0.0.1", "NONE_NONE/400", &body, "NONE", "error:invalid-request", "-", "HIER_NONE/-", "text/plain"],
    );
}

#[test]
fn sigusr1_after_renaming_the_file_sends_new_lines_to_a_new_file() {
    let backend = Backend::named("app");
    let work = Workdir::new("");
    let log = work.path("access.log");
    let rotated = work.path("access.log.1");
    work.rewrite(&config(&log, "combined", backend.addr));
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    let addr = strait.listener("web");

    get(addr, "/api/before");
    wait_lines(&log, 1);
    std::fs::rename(&log, &rotated).unwrap();
    // Until SIGUSR1 the open file, now renamed, keeps receiving lines.
    get(addr, "/api/between");
    wait_lines(&rotated, 2);
    assert!(!log.exists());

    let from = strait.stderr_len();
    strait.signal(libc::SIGUSR1);
    strait.wait_stderr(from, "`reopening access log`", |l| l.contains("reopening access log"));
    wait_until("the access log to be created again at its path", || log.exists());
    get(addr, "/api/after");
    let fresh = wait_lines(&log, 1);

    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert!(fresh[0].contains("\"GET /api/after HTTP/1.1\" 200 "), "{fresh:?}");
    let old = lines(&rotated);
    assert_eq!(old.len(), 2, "{old:?}");
    assert!(old[0].contains("GET /api/before "), "{old:?}");
    assert!(old[1].contains("GET /api/between "), "{old:?}");
    assert!(strait.find_stderr(0, |l| l.contains("cannot reopen")).is_none());
}
