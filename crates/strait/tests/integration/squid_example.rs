//! `examples/squid.yaml` validates without warnings, and the seed's literal translation (the
//! deny of the blocked sites after `deny all`) validates with a warning at that rule's line.

use std::path::Path;

use crate::support::{run_to_end, strip_ansi, Strait, Workdir};

#[test]
fn the_squid_example_validates_without_warnings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Validation opens the cache directory: a temporary one, not the example's /var/spool.
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let (code, stdout, stderr) =
        run_to_end(&root, &["validate", "-c", "examples/squid.yaml"], &[("STRAIT_CACHE_DIR", cache_dir)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "examples/squid.yaml: ok (1 listeners, 1 routes, 0 clusters)\n");
    assert!(stderr.contains(&format!("disk store opened path={cache_dir}")), "{stderr}");
    assert!(!stderr.contains("warning") && !stderr.contains("WARN"), "{stderr}");
}

#[test]
fn the_literal_translation_validates_with_a_warning_at_the_shadowed_rule() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let file = "fixtures/squid-literal.yaml";
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    let line = 1 + text.lines().position(|l| l.trim() == "- deny: [blocked_sites]").expect("the shadowed rule");
    let column = 1 + text.lines().nth(line - 1).unwrap().find("deny").unwrap();
    let (code, stdout, stderr) = run_to_end(&dir, &["validate", "-c", file], &[]);
    assert_eq!(code, 0, "warnings do not fail validation: {stderr}");
    assert_eq!(stdout, format!("{file}: ok (1 listeners, 1 routes, 0 clusters), 1 warning(s)\n"));
    let expected = format!(
        "{file}:{line}:{column}: warning: listeners[0].filters[0].config.rules[2]: \
         `rules[2]: deny blocked_sites` never takes effect: `rules[1]: deny all` decides every request\n"
    );
    assert_eq!(stderr, expected);
}

#[test]
fn run_logs_the_warning_and_serves() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let literal = std::fs::read_to_string(dir.join("fixtures/squid-literal.yaml")).unwrap();
    let work = Workdir::new(&literal.replace("127.0.0.1:3128", "127.0.0.1:0"));
    let strait =
        Strait::spawn(work.dir.path(), &["--log-level", "info", "run", "-c", "strait.yaml", "--no-watch"], &[]);
    let (at, warning) = strait.wait_stderr(0, "the configuration warning", |l| l.contains("configuration warning"));
    let warning = strip_ansi(&warning);
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("listeners[0].filters[0].config.rules[2]"), "{warning}");
    let (_, started) =
        strait.wait_stderr(at, "`strait started`", |l| l.contains("strait started") || l.contains("cannot"));
    assert!(started.contains("strait started"), "{started}");
}
