//! Live reload of the real binary: SIGHUP and file changes apply new routes and listeners; bad files are rejected.

use crate::support;

use std::net::TcpListener;

use support::{field, get, refused, wait_until, Backend, Conn, Reply, Strait, Workdir};

const BEFORE: &str = "\
workers: 2
listeners:
  - name: main
    bind: 127.0.0.1:0
    routes:
      - match: { path: { exact: /one } }
        direct: { body: one }
  - name: old
    bind: 127.0.0.1:0
    routes:
      - direct: { body: old }
";

const AFTER: &str = "\
workers: 2
listeners:
  - name: main
    bind: 127.0.0.1:0
    routes:
      - match: { path: { exact: /one } }
        direct: { body: one }
      - match: { path: { exact: /two } }
        direct: { body: two }
  - name: added
    bind: 127.0.0.1:0
    routes:
      - direct: { body: added }
";

#[test]
fn sighup_adds_a_route_starts_an_added_listener_and_stops_a_removed_one() {
    let work = Workdir::new(BEFORE);
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    let main = strait.listener("main");
    let old = strait.listener("old");
    assert_eq!(get(main, "/one").text(), "one");
    assert_eq!(get(main, "/two").status, 404);
    assert_eq!(get(old, "/").text(), "old");
    // A keep-alive connection opened before the reload.
    let mut kept = Conn::connect(main).unwrap();
    assert_eq!(kept.get("/one").unwrap().text(), "one");

    work.rewrite(AFTER);
    let from = strait.stderr_len();
    strait.reload_to(2);

    // The unchanged listener keeps its socket and serves the new route, on old and new connections.
    assert_eq!(strait.find_stderr(from, |l| l.contains(" listening ") && field(l, "listener") == Some("main")), None);
    assert_eq!(kept.get("/two").unwrap().text(), "two");
    assert_eq!(get(main, "/two").text(), "two");
    // The added listener accepts.
    let added = strait.listener_after(from, "added");
    assert_eq!(get(added, "/").text(), "added");
    // The removed listener stops accepting on every worker's socket.
    strait.wait_stderr(from, "`listener stopped listener=old`", |l| {
        l.contains("listener stopped") && field(l, "listener") == Some("old")
    });
    wait_until("the removed listener to refuse connections", || refused(old));
    for _ in 0..20 {
        assert!(refused(old), "a socket of the removed listener still accepts");
    }
}

#[test]
fn changing_the_file_reloads_without_a_signal() {
    let work = Workdir::new(BEFORE);
    let strait = Strait::run(&work.config(), &[]);
    let main = strait.listener("main");
    assert_eq!(get(main, "/two").status, 404);

    let from = strait.stderr_len();
    work.rewrite(AFTER);
    strait.wait_stderr(from, "`configuration file changed`", |l| l.contains("configuration file changed"));
    strait.wait_generation(from, 2);
    assert_eq!(get(main, "/two").text(), "two");
    assert_eq!(get(strait.listener_after(from, "added"), "/").text(), "added");
}

#[test]
fn no_watch_ignores_file_changes_until_sighup() {
    let work = Workdir::new(BEFORE);
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    let main = strait.listener("main");
    work.rewrite(AFTER);
    // The watcher polls every second; give it three chances to (wrongly) notice.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        assert_eq!(get(main, "/two").status, 404, "--no-watch reloaded on a file change");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(strait.find_stderr(0, |l| l.contains("configuration file changed")).is_none());
    strait.reload_to(2);
    assert_eq!(get(main, "/two").text(), "two");
}

#[test]
fn invalid_new_config_is_rejected_with_its_line_and_the_old_one_keeps_serving() {
    let work = Workdir::new(BEFORE);
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    let main = strait.listener("main");
    let old = strait.listener("old");

    // Line 7 names a cluster that does not exist; line 10 has a lower-case method.
    work.rewrite(
        "\
workers: 2
listeners:
  - name: main
    bind: 127.0.0.1:0
    routes:
      - match: { path: { exact: /two } }
        forward: { cluster: missing }
      - match:
          path: { exact: /three }
          methods: [get]
        direct: { body: three }
",
    );
    let from = strait.stderr_len();
    strait.signal(libc::SIGHUP);
    let (_, line) = strait.wait_stderr(from, "a rejection naming line 7", |l| l.contains("configuration rejected"));
    assert!(
        line.contains("strait.yaml:7:29: listeners[0].routes[0].forward.cluster: unknown cluster `missing`"),
        "{line}"
    );
    strait.wait_stderr(from, "a rejection naming line 10", |l| {
        l.contains("configuration rejected") && l.contains("strait.yaml:10:21: listeners[0].routes[1].match.methods[0]")
    });

    // Nothing changed: same routes, both listeners, no new generation.
    assert_eq!(get(main, "/one").text(), "one");
    assert_eq!(get(main, "/two").status, 404);
    assert_eq!(get(old, "/").text(), "old");
    assert!(strait.find_stderr(from, |l| l.contains("configuration applied")).is_none());

    // A fixed file is then applied as the next generation.
    work.rewrite(AFTER);
    strait.reload_to(2);
    assert_eq!(get(main, "/two").text(), "two");
}

#[test]
fn reload_that_cannot_bind_a_new_listener_changes_nothing() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let work = Workdir::new(BEFORE);
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    let main = strait.listener("main");
    let old = strait.listener("old");

    // New route on `main`, `old` removed, and a listener on a port that is taken.
    work.rewrite(&format!(
        "{AFTER}  - name: clash\n    bind: 127.0.0.1:{port}\n    routes:\n      - direct: {{ body: clash }}\n"
    ));
    let from = strait.stderr_len();
    strait.signal(libc::SIGHUP);
    let (_, line) = strait.wait_stderr(from, "the bind failure", |l| l.contains("configuration rejected"));
    assert!(line.contains(&format!("listener `clash`: cannot bind 127.0.0.1:{port}")), "{line}");

    assert_eq!(get(main, "/two").status, 404, "the route of a rejected config was applied");
    assert_eq!(get(old, "/").text(), "old", "a listener was removed by a rejected config");
    assert!(strait.find_stderr(from, |l| l.contains(" listening ")).is_none(), "a listener was started");
    drop(taken);
}

#[test]
fn reload_keeps_the_health_state_of_an_unchanged_cluster() {
    // The first probe fails and later ones succeed: a cluster state rebuilt by the reload
    // would turn healthy, a kept one stays down (the next probe is an hour away).
    let probes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = probes.clone();
    let backend = Backend::start(move |target| {
        if target == "/health" {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Reply::status(if n == 0 { 503 } else { 200 });
        }
        Reply::text("app")
    });
    let config = |extra_route: &str| {
        format!(
            "\
workers: 2
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: {{ path: {{ prefix: /api }} }}
        forward: {{ cluster: app }}
{extra_route}
clusters:
  - name: app
    endpoints: [{{ address: \"{}\" }}]
    health:
      active: {{ path: /health, interval: 1h, unhealthy_threshold: 1, healthy_threshold: 1 }}
",
            backend.addr
        )
    };
    let work = Workdir::new(&config(""));
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    let web = strait.listener("web");
    wait_until("the failed probe to mark the endpoint down", || {
        get(web, "/api/x").header("x-strait-reason") == Some("no_healthy_upstream")
    });

    work.rewrite(&config("      - match: { path: { exact: /new } }\n        direct: { body: new }"));
    strait.reload_to(2);
    assert_eq!(get(web, "/new").text(), "new");
    let after = get(web, "/api/x");
    assert_eq!(after.status, 503, "health state was reset by the reload: {}", after.text());
    assert_eq!(after.header("x-strait-reason"), Some("no_healthy_upstream"));
    assert_eq!(probes.load(std::sync::atomic::Ordering::SeqCst), 1, "the unchanged cluster was probed again");
}

#[test]
fn sighup_or_sigusr1_sent_as_soon_as_a_listener_is_announced_is_handled_not_fatal() {
    // The window between binding and installing handlers is short: try several times.
    for attempt in 0..6 {
        let work = Workdir::new(BEFORE);
        let args = ["--log-level", "info", "run", "-c", "strait.yaml", "--no-watch"];
        let mut strait = Strait::spawn(work.dir.path(), &args, &[]);
        let (_, line) = strait.wait_stderr(0, "`listening listener=main`", |l| {
            l.contains(" listening ") && field(l, "listener") == Some("main")
        });
        let (signal, handled) = if attempt % 2 == 0 {
            (libc::SIGHUP, "configuration applied")
        } else {
            (libc::SIGUSR1, "reopening access log")
        };
        strait.signal(signal);
        strait.wait_stderr(0, handled, |l| l.contains(handled));
        assert!(strait.is_running(), "signal {signal} killed the process");
        let addr = field(&line, "addr").unwrap().parse().unwrap();
        assert_eq!(get(addr, "/one").text(), "one");
        assert!(strait.is_running());
    }
}
