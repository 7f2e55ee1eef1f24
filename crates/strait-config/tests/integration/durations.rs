//! Durations that would break serving are refused at load time, with file, line, column and
//! field path: zero where time must pass, and values too long to be a deadline.

use strait_config::load_str_with_env;

use crate::support;

/// Loads `text` as `durations.yaml`, expecting failure; returns the error lines.
fn error_lines(text: &str) -> Vec<String> {
    support::load_as("durations.yaml", text).expect_err("expected errors")
}

/// Asserts that loading `text` fails with exactly `expected` error lines, in order.
#[track_caller]
fn assert_errors(text: &str, expected: &[&str]) {
    support::assert_errors_as("durations.yaml", text, expected);
}

/// A listener with one forwarding route (route fields after `    routes:\n      - `), and a
/// cluster with `cluster` as extra lines (indented 4).
fn with_route_and_cluster(route: &str, cluster: &str) -> String {
    format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - forward: {{ cluster: app }}\n{route}\
         clusters:\n  - name: app\n    endpoints: [{{ address: '127.0.0.1:9000' }}]\n{cluster}"
    )
}

#[test]
fn zero_server_timeouts_are_refused_where_written() {
    let text = "\
server:
  timeouts:
    client_header: 0s
    client_body: 0
    idle: 0ms
";
    assert_errors(
        text,
        &[
            "durations.yaml:3:20: server.timeouts.client_header: must be greater than zero",
            "durations.yaml:4:18: server.timeouts.client_body: must be greater than zero",
            "durations.yaml:5:11: server.timeouts.idle: must be greater than zero",
        ],
    );
}

#[test]
fn zero_drain_timeout_means_stop_at_once() {
    let config = load_str_with_env("server:\n  drain_timeout: 0s\n", "durations.yaml", &|_| None)
        .unwrap_or_else(|errors| panic!("{errors}"));
    assert!(config.server.drain_timeout.0.is_zero());
}

#[test]
fn zero_cluster_timeouts_and_health_intervals_are_refused() {
    let cluster = concat!(
        "    dns_refresh: 0s\n",
        "    timeouts: { connect: 0s, response_header: 0ms, body: 0 }\n",
        "    health:\n",
        "      active: { interval: 0s, timeout: 0s }\n",
    );
    assert_errors(
        &with_route_and_cluster("", cluster),
        &[
            "durations.yaml:9:18: clusters[0].dns_refresh: must be greater than zero",
            "durations.yaml:10:26: clusters[0].timeouts.connect: must be greater than zero",
            "durations.yaml:10:47: clusters[0].timeouts.response_header: must be greater than zero",
            "durations.yaml:10:58: clusters[0].timeouts.body: must be greater than zero",
            "durations.yaml:12:27: clusters[0].health.active.interval: must be greater than zero",
            "durations.yaml:12:40: clusters[0].health.active.timeout: must be greater than zero",
        ],
    );
}

#[test]
fn zero_route_timeout_is_refused() {
    assert_errors(
        &with_route_and_cluster("        timeout: 0s\n", ""),
        &["durations.yaml:6:18: listeners[0].routes[0].timeout: must be greater than zero"],
    );
}

#[test]
fn huge_duration_strings_are_errors_not_overflows() {
    for (value, column) in [("99999999999999999999h", 18), ("18446744073709551615s", 18), ("\"36501d\"", 18)] {
        let lines = error_lines(&format!("server:\n  drain_timeout: {value}\n"));
        let shown = value.trim_matches('"');
        assert_eq!(
            lines,
            [format!(
                "durations.yaml:2:{column}: server.drain_timeout: duration `{shown}` is too long: the most is 36500d \
                 (100 years)"
            )]
        );
    }
}

#[test]
fn huge_bare_numbers_of_seconds_are_errors_not_overflows() {
    let lines = error_lines("server:\n  timeouts:\n    idle: 18446744073709551615\n");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("durations.yaml:3:11: server.timeouts.idle: "), "{lines:?}");
    assert!(lines[0].ends_with("seconds is too long: the most is 36500d (100 years)"), "{lines:?}");
}

#[test]
fn huge_route_timeout_is_reported_at_the_route() {
    let lines = error_lines(&with_route_and_cluster("        timeout: 18446744073709551615d\n", ""));
    assert_eq!(
        lines,
        ["durations.yaml:6:18: listeners[0].routes[0].timeout: duration `18446744073709551615d` is too long: the \
          most is 36500d (100 years)"]
    );
}

#[test]
fn the_longest_duration_loads() {
    let config = load_str_with_env("server:\n  drain_timeout: 36500d\n", "durations.yaml", &|_| None)
        .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.server.drain_timeout, strait_config::units::Dur::MAX);
}
