//! What the test modules share: loading a text as a named file, and checking its error lines.

use strait_config::{load_str_with_env, Config, ConfigErrors};

/// Loads `text` as the file `name` (no environment): the configuration, or its error lines
/// as users read them (`name:line:column: field: message`).
pub fn load_as(name: &str, text: &str) -> Result<Config, Vec<String>> {
    load_str_with_env(text, name, &|_| None)
        .map_err(|errors| ConfigErrors(errors.0).to_string().lines().map(str::to_owned).collect())
}

/// Asserts that loading `text` as `name` fails with exactly `expected` error lines, in order.
#[track_caller]
pub fn assert_errors_as(name: &str, text: &str, expected: &[&str]) {
    match load_as(name, text) {
        Ok(config) => panic!("expected errors, loaded {config:?}"),
        Err(lines) => assert_eq!(lines, expected, "for:\n{text}"),
    }
}
