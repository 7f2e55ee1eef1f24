//! The command line of the real binary: `version`, `--help`, `validate`, `run` on bad files, `${ENV}`.

use crate::support;

use std::net::TcpListener;

use support::{get, run_to_end, Strait, Workdir};

/// A file with three independent semantic errors on lines 7, 8 and 12.
const THREE_ERRORS: &str = "\
workers: 1
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match:
          methods: [get]
        forward: { cluster: nope }
clusters:
  - name: app
    endpoints:
      - address: \"127.0.0.1:0\"
";

const GOOD: &str = "\
workers: 1
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { path: { prefix: /api } }
        forward: { cluster: app }
      - direct: { status: 200, body: ok }
clusters:
  - name: app
    endpoints:
      - address: 127.0.0.1:9
";

#[test]
fn version_prints_the_package_version_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let expected = format!("strait {}\n", env!("CARGO_PKG_VERSION"));
    let (code, stdout, _) = run_to_end(dir.path(), &["version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(stdout, expected);
    let (code, stdout, _) = run_to_end(dir.path(), &["--version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(stdout, expected);
}

#[test]
fn help_works_for_the_command_and_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, _) = run_to_end(dir.path(), &["--help"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Usage: strait"), "{stdout}");
    for sub in ["run", "validate", "version"] {
        assert!(stdout.contains(&format!("\n  {sub} ")), "`{sub}` missing from --help:\n{stdout}");
    }
    for (args, expect) in [
        (&["run", "--help"][..], &["Usage: strait run", "--config <CONFIG>", "--no-watch"][..]),
        (&["validate", "--help"], &["Usage: strait validate", "--config <CONFIG>"]),
        (&["version", "--help"], &["Usage: strait version"]),
        (&["help", "run"], &["Usage: strait run", "--no-watch"]),
        (&["run", "-h"], &["Usage: strait run"]),
    ] {
        let (code, stdout, stderr) = run_to_end(dir.path(), args, &[]);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        for e in expect {
            assert!(stdout.contains(e), "{args:?}: `{e}` missing:\n{stdout}");
        }
        assert!(stdout.contains("--log-level"), "{args:?}: global option missing:\n{stdout}");
    }
}

#[test]
fn unknown_subcommand_or_missing_config_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_to_end(dir.path(), &["frobnicate"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("frobnicate"), "{stderr}");
    let (code, _, stderr) = run_to_end(dir.path(), &["run"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--config"), "{stderr}");
}

#[test]
fn validate_accepts_a_good_file_and_summarises_it() {
    let work = Workdir::new(GOOD);
    let (code, stdout, stderr) = run_to_end(work.dir.path(), &["validate", "-c", "strait.yaml"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "strait.yaml: ok (1 listeners, 2 routes, 1 clusters)\n");
}

#[test]
fn validate_reports_every_error_with_file_line_column_and_field_path() {
    let work = Workdir::new(THREE_ERRORS);
    let (code, stdout, stderr) = run_to_end(work.dir.path(), &["validate", "--config", "strait.yaml"], &[]);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(!stdout.contains("ok"), "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    let expected = [
        "strait.yaml:7:21: listeners[0].routes[0].match.methods[0]: method `get` must be upper-case",
        "strait.yaml:8:29: listeners[0].routes[0].forward.cluster: unknown cluster `nope` (defined clusters: `app`)",
        "strait.yaml:12:18: clusters[0].endpoints[0].address: `127.0.0.1:0`: port 0",
    ];
    assert_eq!(lines.len(), 4, "three errors and a summary expected:\n{stderr}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(line.starts_with(want), "expected a line starting with\n  {want}\ngot\n  {line}");
    }
    assert_eq!(lines[3], "strait.yaml: 3 error(s)");
}

#[test]
fn validate_rejects_an_unknown_field_at_the_misspelt_key() {
    let work = Workdir::new(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - direct: {}\n        forwrd: { cluster: x }\n",
    );
    let (code, _, stderr) = run_to_end(work.dir.path(), &["validate", "-c", "strait.yaml"], &[]);
    assert_eq!(code, 2);
    let first = stderr.lines().next().unwrap();
    assert!(first.starts_with("strait.yaml:6:9: listeners[0].routes[0].forwrd: unknown field `forwrd`"), "{stderr}");
}

#[test]
fn validate_reports_an_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_to_end(dir.path(), &["validate", "-c", "missing.yaml"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with("missing.yaml:1:1: cannot read file"), "{stderr}");
}

#[test]
fn run_with_a_bad_config_exits_2_without_binding_anything() {
    let work = Workdir::new(THREE_ERRORS);
    let (code, stdout, stderr) =
        run_to_end(work.dir.path(), &["--log-level", "info", "run", "-c", "strait.yaml", "--no-watch"], &[]);
    assert_eq!(code, 2, "stderr: {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("strait.yaml:7:21: "), "{stderr}");
    assert!(stderr.contains("strait.yaml:8:29: "), "{stderr}");
    assert!(stderr.contains("strait.yaml:12:18: "), "{stderr}");
    assert!(!stderr.contains("listening"), "bound a listener despite the errors:\n{stderr}");
    assert!(!stderr.contains("strait started"), "{stderr}");
}

#[test]
fn run_exits_1_when_a_listener_cannot_bind() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let work = Workdir::new(&format!(
        "workers: 1\nlisteners:\n  - name: web\n    bind: 127.0.0.1:{port}\n    routes:\n      - direct: {{}}\n"
    ));
    let (code, _, stderr) = run_to_end(work.dir.path(), &["run", "-c", "strait.yaml"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&format!("cannot bind 127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn env_references_are_resolved_from_the_process_environment() {
    let yaml = "\
workers: 1
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { path: { exact: /greet } }
        direct: { body: \"${STRAIT_TEST_GREETING} from ${STRAIT_TEST_UNSET_PLACE:-the default}\" }
      - match: { path: { exact: /status } }
        direct:
          status: ${STRAIT_TEST_STATUS}
";
    let work = Workdir::new(yaml);
    let envs = [("STRAIT_TEST_GREETING", "hello"), ("STRAIT_TEST_STATUS", "418")];

    let (code, stdout, stderr) = run_to_end(work.dir.path(), &["validate", "-c", "strait.yaml"], &envs);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok (1 listeners, 2 routes"), "{stdout}");

    // A missing variable without a default is an error at its value.
    let (code, _, stderr) =
        run_to_end(work.dir.path(), &["validate", "-c", "strait.yaml"], &[("STRAIT_TEST_GREETING", "hello")]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("strait.yaml:10:19: listeners[0].routes[1].direct.status: environment variable `STRAIT_TEST_STATUS` is not set"),
        "{stderr}"
    );

    // The running proxy serves the expanded values.
    let args = ["--log-level", "info", "run", "-c", "strait.yaml", "--no-watch"];
    let strait = Strait::spawn(work.dir.path(), &args, &envs);
    let addr = strait.listener("web");
    let greet = get(addr, "/greet");
    assert_eq!(greet.status, 200);
    assert_eq!(greet.text(), "hello from the default");
    assert_eq!(get(addr, "/status").status, 418);
}

#[test]
fn log_lines_written_to_a_pipe_have_no_colour_codes() {
    let work = Workdir::new("workers: 1\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n");
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    strait.listener("web");
    let raw = strait.stderr_text_raw();
    assert!(!raw.contains('\u{1b}'), "ANSI escapes in piped log output:\n{raw:?}");
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let work = Workdir::new("workers: 1\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n");
    let args = ["--log-format", "json", "run", "-c", "strait.yaml", "--no-watch"];
    let strait = Strait::spawn(work.dir.path(), &args, &[]);
    let (_, line) = strait.wait_stderr(0, "a `listening` JSON line", |l| l.contains("\"listening\""));
    let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(value["fields"]["message"], "listening");
    assert_eq!(value["fields"]["listener"], "web");
    let addr: std::net::SocketAddr = value["fields"]["addr"].as_str().unwrap().parse().unwrap();
    assert_eq!(get(addr, "/").status, 404);
}

#[test]
fn a_client_sending_an_ip_address_as_sni_does_not_fill_the_log() {
    let work = Workdir::new("");
    let (cert, key) = (work.path("cert.pem"), work.path("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "2", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "openssl req: {}", String::from_utf8_lossy(&made.stderr));
    work.rewrite(&format!(
        "workers: 1\nlisteners:\n  - name: tls\n    bind: 127.0.0.1:0\n    tls:\n      certificates:\n        \
         - {{ cert: {}, key: {} }}\n    routes:\n      - direct: {{ status: 200, body: ok }}\n",
        cert.display(),
        key.display()
    ));
    let strait = Strait::run(&work.config(), &["--no-watch"]);
    let addr = strait.listener("tls");
    for _ in 0..3 {
        let hello = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), "-servername", "127.0.0.1"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl s_client runs");
        let out = String::from_utf8_lossy(&hello.stdout);
        assert!(out.contains("BEGIN CERTIFICATE"), "no handshake:\n{out}");
    }
    // A reload's line comes after anything the handshakes logged.
    strait.reload_to(2);
    let log = strait.stderr_text();
    assert!(!log.contains("SNI"), "rustls's per-connection warning reached the log:\n{log}");
}

#[test]
fn import_kong_translates_the_seed_and_lists_what_it_could_not() {
    let work = Workdir::new("");
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../strait-import/tests/data/kong.yml");
    let out = work.path("kong.strait.yaml");
    let out_arg = out.to_str().unwrap();
    let (code, stdout, stderr) =
        run_to_end(work.dir.path(), &["import", "kong", seed, "--bind", "127.0.0.1:0", "-o", out_arg], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("plugins[4]: plugin `prometheus` has no Strait counterpart"), "{stderr}");
    let translated = std::fs::read_to_string(&out).unwrap();
    assert!(translated.contains("user-svc.internal:8080"), "{translated}");
    let (code, _, stderr) = run_to_end(work.dir.path(), &["import", "kong", "strait.yaml"], &[]);
    assert_eq!(code, 2, "not a Kong file: {stderr}");
}

#[test]
fn the_seeds_kong_file_imports_into_a_configuration_that_validates() {
    let work = Workdir::new("");
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../strait-import/tests/data/kong.yml");
    let out = work.path("kong.strait.yaml");
    let (code, _, stderr) = run_to_end(work.dir.path(), &["import", "kong", seed, "-o", out.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    // The partner's RS256 key, as the seed reads it from the environment.
    let key = work.path("partner.pem");
    let made = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&key)
        .output()
        .expect("openssl runs");
    assert!(made.status.success());
    let public = std::process::Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&key).output().unwrap();
    let public = String::from_utf8(public.stdout).unwrap();
    let envs = [("MOBILE_JWT_SECRET", "mobile-secret"), ("PARTNER_PUBLIC_KEY", public.as_str())];
    let (code, stdout, stderr) = run_to_end(work.dir.path(), &["validate", "-c", "kong.strait.yaml"], &envs);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("ok (1 listeners, 2 routes, 2 clusters)"), "{stdout}");
}
