//! `listeners[].path_normalization`: defaults, each setting, errors where written, and the
//! example of `docs/CONFIG.md`.

use std::path::Path;

use strait_config::{load_str_with_env, ConfigErrors, EscapedSlashes, PathNormalization};

/// A listener with `extra` lines (indented 4) and one direct route.
fn listener(extra: &str) -> String {
    format!("listeners:\n  - name: web\n    bind: 127.0.0.1:0\n{extra}    routes:\n      - direct: {{}}\n")
}

fn load(text: &str) -> Result<strait_config::Config, ConfigErrors> {
    load_str_with_env(text, "paths.yaml", &|_| None)
}

#[test]
fn normalization_is_on_by_default() {
    let config = load(&listener("")).unwrap_or_else(|errors| panic!("{errors}"));
    let normalization = config.listeners[0].path_normalization;
    assert_eq!(normalization, PathNormalization::default());
    assert!(normalization.enabled && normalization.merge_slashes);
    assert_eq!(normalization.escaped_slashes, EscapedSlashes::Reject);
}

#[test]
fn each_setting_is_read() {
    let text = listener(
        "    path_normalization:\n      enabled: false\n      merge_slashes: false\n      escaped_slashes: decode\n",
    );
    let config = load(&text).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        config.listeners[0].path_normalization,
        PathNormalization { enabled: false, merge_slashes: false, escaped_slashes: EscapedSlashes::Decode }
    );
    let config = load(&listener("    path_normalization: { escaped_slashes: keep }\n")).unwrap();
    let normalization = config.listeners[0].path_normalization;
    assert_eq!((normalization.enabled, normalization.escaped_slashes), (true, EscapedSlashes::Keep));
}

#[test]
fn unknown_policy_and_fields_are_reported_where_written() {
    let errors = load(&listener("    path_normalization: { escaped_slashes: unescape }\n")).unwrap_err().to_string();
    assert!(errors.starts_with("paths.yaml:4:44: listeners[0].path_normalization.escaped_slashes: "), "{errors}");
    assert!(errors.contains("unknown variant `unescape`"), "{errors}");
    let errors = load(&listener("    path_normalization: { merge: false }\n")).unwrap_err().to_string();
    assert!(errors.starts_with("paths.yaml:4:27: listeners[0].path_normalization.merge: "), "{errors}");
    assert!(errors.contains("unknown field `merge`"), "{errors}");
}

#[test]
fn the_reference_example_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/CONFIG.md");
    let text = std::fs::read_to_string(path).expect("docs/CONFIG.md is readable");
    let section = text.split("### Path normalization").nth(1).expect("a Path normalization section");
    let block = section.split("```yaml\n").nth(1).and_then(|rest| rest.split("\n```").next()).expect("its example");
    let config = load(block).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.listeners[0].path_normalization.escaped_slashes, EscapedSlashes::Keep);
    assert!(!config.listeners[1].path_normalization.enabled);
}
