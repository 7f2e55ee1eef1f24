//! `strait run -c examples/quickstart.yaml` serves what the file's comments promise (skipped if its fixed ports are busy).

use crate::support;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;

use support::{get, Conn, Strait};

/// The fixed ports the quickstart binds.
const PORTS: [u16; 3] = [8080, 9001, 9002];

/// Ports among `PORTS` that something else holds on 127.0.0.1.
fn busy_ports() -> Vec<u16> {
    PORTS.into_iter().filter(|&p| TcpListener::bind(("127.0.0.1", p)).is_err()).collect()
}

/// Which echo upstream answered, from the body (`x-echo-name` must agree).
fn upstream(response: &support::Response) -> String {
    let name = response.header("x-echo-name").unwrap_or_else(|| panic!("no x-echo-name: {response:?}"));
    assert!(response.text().contains(name), "body does not name {name}: {}", response.text());
    name.to_owned()
}

#[test]
fn quickstart_balances_api_across_both_echo_upstreams_and_answers_health_and_no_route() {
    let busy = busy_ports();
    if !busy.is_empty() {
        println!("SKIPPED quickstart test: port(s) {busy:?} on 127.0.0.1 are in use by another process");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let strait = Strait::spawn(&root, &["--log-level", "info", "run", "-c", "examples/quickstart.yaml"], &[]);
    let (_, line) = strait.wait_stderr(0, "`strait started` or a start failure", |l| {
        l.contains("strait started") || l.contains("cannot start")
    });
    if line.contains("cannot bind") {
        println!("SKIPPED quickstart test: a port was taken between the check and the start: {line}");
        return;
    }
    assert!(line.contains("strait started"), "{}", strait.stderr_text());
    let public = strait.listener("public");
    assert_eq!(public, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert_eq!(strait.listener("echo-a").port(), 9001);
    assert_eq!(strait.listener("echo-b").port(), 9002);

    // curl -i http://127.0.0.1:8080/health
    let health = get(public, "/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.text(), "OK\n");
    assert_eq!(health.header("content-type"), Some("text/plain"));

    // curl -i http://127.0.0.1:8080/api/x, several times: round robin over the two upstreams.
    let names: Vec<String> = (0..6)
        .map(|_| {
            let r = get(public, "/api/x");
            assert_eq!(r.status, 200, "{}", r.text());
            assert!(r.text().contains("GET /x HTTP/1.1"), "prefix not stripped: {}", r.text());
            assert_eq!(r.header("x-frame-options"), Some("DENY"));
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(r.header("strict-transport-security"), Some("max-age=31536000; includeSubDomains"));
            upstream(&r)
        })
        .collect();
    for pair in names.windows(2) {
        assert_ne!(pair[0], pair[1], "not alternating: {names:?}");
    }
    for name in ["upstream-a", "upstream-b"] {
        assert!(names.iter().any(|n| n == name), "{name} never answered: {names:?}");
    }
    // The same on one keep-alive connection.
    let mut conn = Conn::connect(public).unwrap();
    let kept: Vec<String> = (0..4).map(|_| upstream(&conn.get("/api/x").unwrap())).collect();
    for pair in kept.windows(2) {
        assert_ne!(pair[0], pair[1], "not alternating on keep-alive: {kept:?}");
    }

    // curl -i http://127.0.0.1:8080/elsewhere
    let missing = get(public, "/elsewhere");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-strait-reason"), Some("no_route"));

    // The access log goes to stdout in combined format.
    support::wait_until("access log lines on stdout", || {
        strait
            .stdout_lines()
            .iter()
            .any(|l| l.contains("\"GET /elsewhere HTTP/1.1\" 404 ") && l.contains("reason=no_route"))
    });
    let lines = strait.stdout_lines();
    assert!(
        lines.iter().any(|l| l.starts_with("127.0.0.1 - - [") && l.contains("\"GET /api/x HTTP/1.1\" 200 ")),
        "{lines:?}"
    );
}
