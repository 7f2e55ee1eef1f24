//! TLS passthrough listeners (`tcp.sni`): defaults, the example of `docs/CONFIG.md`, and each
//! error at its field.

use std::path::Path;
use std::time::Duration;

use strait_config::{load_str_with_env, Fallback};

/// Loads `text` expecting failure; returns `(path, message)` of every error.
fn errors_of(text: &str) -> Vec<(String, String)> {
    match load_str_with_env(text, "test.yaml", &|_| None) {
        Ok(config) => panic!("expected errors, loaded {config:?}"),
        Err(errors) => errors.0.into_iter().map(|e| (e.path, e.message)).collect(),
    }
}

/// A passthrough listener whose `tcp` block is `tcp` (indented by six spaces), `extra` lines
/// on the listener, and clusters `a` and `b`.
fn passthrough(tcp: &str, extra: &str) -> String {
    let tcp: String = tcp.lines().map(|line| format!("      {line}\n")).collect();
    format!(
        "listeners:\n  - name: edge\n    bind: 127.0.0.1:8443\n    tcp:\n{tcp}{extra}\
         clusters:\n  - name: a\n    endpoints: [{{ address: 'a.internal:443' }}]\n  \
         - name: b\n    endpoints: [{{ address: 'b.internal:443' }}]\n"
    )
}

#[test]
fn passthrough_defaults() {
    let text = passthrough("sni:\n  - { server_names: [a.example.com, '*.b.example.com'], cluster: a }", "");
    let config = load_str_with_env(&text, "test.yaml", &|_| None).unwrap_or_else(|errors| panic!("{errors}"));
    let tcp = config.listeners[0].tcp.as_ref().unwrap();
    assert_eq!(tcp.sni[0].server_names, ["a.example.com", "*.b.example.com"]);
    assert_eq!(tcp.cluster, None);
    assert_eq!(tcp.missing_sni, Fallback::Default);
    assert_eq!(tcp.not_tls, Fallback::Refuse);
    assert_eq!(tcp.hello_timeout.0, Duration::from_secs(5));
}

#[test]
fn the_reference_example_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/CONFIG.md");
    let text = std::fs::read_to_string(path).unwrap();
    let section = &text[text.find("### TLS passthrough\n").expect("the passthrough section")..];
    let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let config = load_str_with_env(example, "CONFIG.md", &|_| None).unwrap_or_else(|errors| panic!("{errors}"));
    let tcp = config.listeners[0].tcp.as_ref().unwrap();
    assert_eq!(tcp.sni.len(), 2);
    assert_eq!(tcp.missing_sni, Fallback::Refuse);
    assert!(config.listeners[0].tls.is_some());
}

#[test]
fn passthrough_errors_are_reported_at_their_fields() {
    let cases = [
        (
            passthrough("sni:\n  - { server_names: ['a.*.example.com'], cluster: a }", ""),
            "listeners[0].tcp.sni[0].server_names[0]",
            "is not a server name",
        ),
        (
            passthrough(
                "sni:\n  - { server_names: [a.example.com], cluster: a }\n  - { server_names: [A.example.com], cluster: b }",
                "",
            ),
            "listeners[0].tcp.sni[1].server_names[0]",
            "is already routed by",
        ),
        (passthrough("sni:\n  - { server_names: [], cluster: a }", ""), "listeners[0].tcp.sni[0].server_names", "at least one"),
        (passthrough("sni:\n  - { server_names: [a.test], cluster: c }", ""), "listeners[0].tcp.sni[0].cluster", "c"),
        (
            passthrough("sni:\n  - { server_names: [a.test], cluster: a }\nhello_timeout: 0s", ""),
            "listeners[0].tcp.hello_timeout",
            "",
        ),
        (
            passthrough(
                "cluster: b\nsni:\n  - { server_names: [a.test], cluster: a }",
                "    tls:\n      certificates: [{ cert: www.pem, key: www.key }]\n",
            ),
            "listeners[0].tls",
            "would terminate none",
        ),
    ];
    for (text, path, message) in cases {
        let errors = errors_of(&text);
        assert!(
            errors.iter().any(|(p, m)| p == path && m.contains(message)),
            "{path}: {message} in {errors:?}\n{text}"
        );
    }
    let errors = errors_of(&passthrough("sni:\n  - { server_names: [a.test], cluster: a, port: 443 }", ""));
    assert!(errors.iter().any(|(_, m)| m.contains("port")), "unknown fields are refused: {errors:?}");
    let errors = errors_of(&passthrough("cluster: a\nmissing_sni: drop", ""));
    assert!(errors.iter().any(|(p, _)| p.starts_with("listeners[0].tcp")), "{errors:?}");
}
