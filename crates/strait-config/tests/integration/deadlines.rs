//! Whole-exchange deadlines and minimum data rates: their defaults (off), the values they
//! take, and the errors for values that would refuse every request, with file, line, column
//! and field path.

use std::time::Duration;

use crate::support;
use strait_config::units::{ByteSize, Dur};
use strait_config::{Config, MinRate};

/// Loads `text` as `deadlines.yaml`.
fn load(text: &str) -> Result<Config, Vec<String>> {
    support::load_as("deadlines.yaml", text)
}

/// Asserts that loading `text` fails with exactly `expected` error lines, in order.
#[track_caller]
fn assert_errors(text: &str, expected: &[&str]) {
    support::assert_errors_as("deadlines.yaml", text, expected);
}

#[test]
fn deadlines_and_rates_are_off_by_default() {
    let config = load("").unwrap();
    assert!(config.server.timeouts.exchange.0.is_zero());
    assert_eq!(config.server.limits.min_request_body_rate, None);
    assert_eq!(config.server.limits.min_response_body_rate, None);
}

#[test]
fn deadlines_and_rates_load() {
    let text = "\
server:
  timeouts: { exchange: 5m }
  limits:
    min_request_body_rate: { bytes_per_second: 240, grace: 5s }
    min_response_body_rate: { bytes_per_second: 1KiB }
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - exchange_timeout: 0
        echo: {}
      - exchange_timeout: 1.5s
        echo: {}
";
    let config = load(text).unwrap_or_else(|errors| panic!("{errors:?}"));
    let server = &config.server;
    assert_eq!(server.timeouts.exchange, Dur::secs(300));
    assert_eq!(
        server.limits.min_request_body_rate,
        Some(MinRate { bytes_per_second: ByteSize(240), grace: Dur::secs(5) })
    );
    // The grace period defaults to Kestrel's 5 s.
    assert_eq!(
        server.limits.min_response_body_rate,
        Some(MinRate { bytes_per_second: ByteSize(1024), grace: Dur::secs(5) })
    );
    let routes = &config.listeners[0].routes;
    assert_eq!(routes[0].exchange_timeout, Some(Dur::secs(0)));
    assert_eq!(routes[1].exchange_timeout, Some(Dur(Duration::from_millis(1500))));
}

#[test]
fn rates_that_refuse_everything_are_errors_where_written() {
    let text = "\
server:
  limits:
    min_request_body_rate:
      bytes_per_second: 0
      grace: 0s
    min_response_body_rate: { bytes_per_second: 100, grace: 0 }
";
    assert_errors(
        text,
        &[
            "deadlines.yaml:4:25: server.limits.min_request_body_rate.bytes_per_second: must be at least 1 (remove \
             the whole entry to turn the check off)",
            "deadlines.yaml:5:14: server.limits.min_request_body_rate.grace: must be greater than zero",
            "deadlines.yaml:6:61: server.limits.min_response_body_rate.grace: must be greater than zero",
        ],
    );
}

#[test]
fn a_rate_without_bytes_per_second_is_an_error() {
    let lines = load("server:\n  limits:\n    min_request_body_rate: { grace: 5s }\n").unwrap_err();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0]
            .starts_with("deadlines.yaml:3:28: server.limits.min_request_body_rate: missing field `bytes_per_second`"),
        "{lines:?}"
    );
}

#[test]
fn a_misspelt_rate_field_points_at_the_key() {
    let lines =
        load("server:\n  limits:\n    min_response_body_rate: { bytes_per_second: 10, gracee: 1s }\n").unwrap_err();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "deadlines.yaml:3:53: server.limits.min_response_body_rate.gracee: unknown field `gracee`, expected"
        ),
        "{lines:?}"
    );
}

#[test]
fn a_rate_that_is_not_a_size_is_an_error_at_its_value() {
    let lines = load("server:\n  limits:\n    min_request_body_rate: { bytes_per_second: fast }\n").unwrap_err();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("deadlines.yaml:3:48: server.limits.min_request_body_rate.bytes_per_second: invalid size"),
        "{lines:?}"
    );
}

#[test]
fn an_exchange_limit_too_long_to_be_a_deadline_is_an_error() {
    assert_errors(
        "server:\n  timeouts:\n    exchange: 36501d\n",
        &["deadlines.yaml:3:15: server.timeouts.exchange: duration `36501d` is too long: the most is 36500d (100 years)"],
    );
    let route = "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - exchange_timeout: -1s\n        echo: {}\n";
    let lines = load(route).unwrap_err();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("deadlines.yaml:5:27: listeners[0].routes[0].exchange_timeout: "), "{lines:?}");
}
