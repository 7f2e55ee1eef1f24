//! The YAML examples of `docs/CONFIG.md` load.

use std::path::Path;

use strait_config::load_str_with_env;

/// The YAML code blocks of the configuration reference, in order.
fn yaml_blocks() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/CONFIG.md");
    let text = std::fs::read_to_string(&path).expect("docs/CONFIG.md is readable");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn complete_example_loads() {
    let blocks = yaml_blocks();
    let example = blocks.last().expect("the reference ends with a complete example");
    let config = load_str_with_env(example, "CONFIG.md", &|_| None).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.listeners[0].bind, "0.0.0.0:8080");
    assert_eq!(config.listeners[0].routes.len(), 6);
    assert_eq!(config.clusters.len(), 3);
    assert_eq!(config.clusters[2].endpoints[0].address, "shop-canary.internal:80");
}

#[test]
fn precedence_example_routes_load() {
    let blocks = yaml_blocks();
    let routes = blocks.iter().find(|block| block.starts_with("routes:")).expect("precedence example");
    let indented: String = routes.lines().map(|line| format!("    {line}\n")).collect();
    let text = format!(
        "listeners:\n  - name: web\n    bind: 0.0.0.0:80\n{indented}clusters:\n{}",
        ["api", "admin", "web"]
            .iter()
            .map(|name| format!("  - name: {name}\n    endpoints: [{{ address: '127.0.0.1:9000' }}]\n"))
            .collect::<String>()
    );
    let config = load_str_with_env(&text, "CONFIG.md", &|_| None).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.listeners[0].routes.len(), 3);
}
