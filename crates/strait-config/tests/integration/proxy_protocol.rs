//! The PROXY protocol settings: accepted on listeners from trusted peers, sent by clusters on
//! TCP listeners' connections; their defaults and their errors with file, line and field.

use std::time::Duration;

use crate::support;
use strait_config::{Config, ProxyProtocolVersion};

/// Loads `text` as `pp.yaml`.
fn load(text: &str) -> Result<Config, Vec<String>> {
    support::load_as("pp.yaml", text)
}

/// Asserts that loading `text` fails with exactly `expected` error lines, in order.
#[track_caller]
fn assert_errors(text: &str, expected: &[&str]) {
    support::assert_errors_as("pp.yaml", text, expected);
}

#[test]
fn accepting_and_sending_load_with_their_defaults() {
    let text = "\
listeners:
  - name: web
    bind: 127.0.0.1:0
    proxy_protocol: { trusted: [10.0.0.0/8, 192.0.2.1] }
    routes:
      - forward: { cluster: app }
  - name: db
    bind: 127.0.0.1:0
    proxy_protocol: { trusted: [\"fd00::/8\"], timeout: 500ms }
    tcp: { cluster: pool }
clusters:
  - name: app
    endpoints: [{ address: 127.0.0.1:8080 }]
  - name: pool
    proxy_protocol: v2
    endpoints: [{ address: 127.0.0.1:5432 }]
";
    let config = load(text).unwrap_or_else(|errors| panic!("{errors:?}"));
    let web = config.listeners[0].proxy_protocol.as_ref().unwrap();
    assert_eq!(web.trusted, ["10.0.0.0/8", "192.0.2.1"]);
    assert_eq!(web.timeout.0, Duration::from_secs(5), "HAProxy's `timeout client` for the header");
    assert_eq!(config.listeners[1].proxy_protocol.as_ref().unwrap().timeout.0, Duration::from_millis(500));
    assert_eq!(config.clusters[0].proxy_protocol, None);
    assert_eq!(config.clusters[1].proxy_protocol, Some(ProxyProtocolVersion::V2));
}

#[test]
fn http_routes_and_udp_listeners_cannot_forward_to_a_cluster_sending_headers() {
    let text = "\
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - forward: { cluster: pool }
      - split:
          - { cluster: app, weight: 1 }
          - { cluster: pool, weight: 1 }
  - name: db
    bind: 127.0.0.1:0
    tcp: { cluster: pool }
  - name: dns
    bind: 127.0.0.1:0
    udp: { cluster: pool }
clusters:
  - name: app
    endpoints: [{ address: 127.0.0.1:8080 }]
  - name: pool
    proxy_protocol: v1
    endpoints: [{ address: 127.0.0.1:5432 }]
";
    let message = "cluster `pool` has `proxy_protocol`, which is sent on TCP listeners' connections only; \
                   forward HTTP to a cluster without it";
    assert_errors(
        text,
        &[
            &format!("pp.yaml:5:29: listeners[0].routes[0].forward.cluster: {message}"),
            &format!("pp.yaml:8:24: listeners[0].routes[1].split[1].cluster: {message}"),
            "pp.yaml:14:21: listeners[2].udp.cluster: cluster `pool` has `proxy_protocol`, which is sent on TCP \
             listeners' connections only; forward datagrams to a cluster without it",
        ],
    );
}

#[test]
fn accepting_needs_trusted_peers_a_timeout_and_a_tcp_listener() {
    let text = "\
listeners:
  - name: web
    bind: 127.0.0.1:0
    proxy_protocol: { trusted: [], timeout: 0s }
    routes:
      - echo: {}
  - name: dns
    bind: 127.0.0.1:0
    proxy_protocol: { trusted: [10.0.0.0/33, lb.internal] }
    udp: { cluster: resolvers }
clusters:
  - name: resolvers
    endpoints: [{ address: 127.0.0.1:53 }]
";
    assert_errors(
        text,
        &[
            "pp.yaml:4:32: listeners[0].proxy_protocol.trusted: list the load balancers allowed to send PROXY \
             headers (addresses or CIDR blocks)",
            "pp.yaml:4:45: listeners[0].proxy_protocol.timeout: must be greater than zero",
            "pp.yaml:9:21: listeners[1].proxy_protocol: the PROXY protocol is accepted on TCP listeners only",
            "pp.yaml:9:33: listeners[1].proxy_protocol.trusted[0]: `10.0.0.0/33` is neither an IP address nor a \
             CIDR block such as `10.0.0.0/8`",
            "pp.yaml:9:46: listeners[1].proxy_protocol.trusted[1]: `lb.internal` is neither an IP address nor a \
             CIDR block such as `10.0.0.0/8`",
        ],
    );
}

#[test]
fn unknown_fields_and_versions_are_refused() {
    let text = "\
listeners:
  - name: web
    bind: 127.0.0.1:0
    proxy_protocol: { trusted: [10.0.0.1], versions: [v1] }
    routes:
      - echo: {}
";
    let errors = load(text).unwrap_err();
    assert!(errors[0].starts_with("pp.yaml:4:"), "{errors:?}");
    assert!(errors[0].contains("versions"), "{errors:?}");
    let text = "\
clusters:
  - name: pool
    proxy_protocol: v3
    endpoints: [{ address: 127.0.0.1:5432 }]
";
    let errors = load(text).unwrap_err();
    assert!(errors[0].starts_with("pp.yaml:3:"), "{errors:?}");
    assert!(errors[0].contains("v3"), "{errors:?}");
}
