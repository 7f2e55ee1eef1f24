//! Layer 4 listeners that cannot work are refused at load time with file, line and field: TCP
//! and UDP forwarding that names no cluster or an unknown one, HTTP fields on them, bad
//! passthrough names, and PROXY protocol settings without trusted peers.

use crate::support;

/// Loads `text` as `l4.yaml`; the error lines, or none.
fn error_lines(text: &str) -> Vec<String> {
    support::load_as("l4.yaml", text).err().unwrap_or_default()
}

/// Clusters `pool` (plain) and `secure` (with TLS) after the listeners in `listeners`.
fn with_clusters(listeners: &str) -> String {
    format!(
        "listeners:\n{listeners}clusters:\n  - name: pool\n    endpoints: [{{ address: '127.0.0.1:5432' }}]\n\
         \x20 - name: secure\n    endpoints: [{{ address: '127.0.0.1:5433' }}]\n    tls: {{ insecure_skip_verify: true }}\n"
    )
}

#[test]
fn valid_tcp_passthrough_and_udp_listeners_load() {
    let text = with_clusters(
        "  - name: db\n    bind: 127.0.0.1:5432\n    tcp: { cluster: pool, idle_timeout: 1h }\n\
         \x20 - name: edge\n    bind: 127.0.0.1:8443\n    tcp:\n      sni:\n        - server_names: [db.example.com, '*.example.org']\n          cluster: pool\n\
         \x20 - name: dns\n    bind: 127.0.0.1:5432\n    udp: { cluster: pool, responses: 1 }\n    \n",
    );
    assert_eq!(error_lines(&text), Vec::<String>::new());
}

#[test]
fn forwarding_without_a_known_cluster_is_refused_at_its_field() {
    let text = with_clusters(
        "  - name: db\n    bind: 127.0.0.1:0\n    tcp: { idle_timeout: 0s }\n\
         \x20 - name: dns\n    bind: 127.0.0.1:0\n    udp: { cluster: nowhere, max_sessions: 0 }\n",
    );
    let errors = error_lines(&text);
    assert_eq!(
        errors,
        [
            "l4.yaml:4:10: listeners[0].tcp: name the `cluster` connections go to, or `sni` routes",
            "l4.yaml:4:26: listeners[0].tcp.idle_timeout: must be greater than zero",
            "l4.yaml:7:21: listeners[1].udp.cluster: unknown cluster `nowhere` (defined clusters: `pool`, `secure`)",
            "l4.yaml:7:44: listeners[1].udp.max_sessions: must be at least 1",
        ],
        "{errors:#?}"
    );
}

#[test]
fn http_fields_on_layer_4_listeners_and_bad_server_names_are_refused() {
    let text = with_clusters(
        "  - name: db\n    bind: 127.0.0.1:0\n    routes: [{ direct: { status: 200 } }]\n    tcp: { cluster: pool }\n\
         \x20 - name: edge\n    bind: 127.0.0.1:0\n    tcp:\n      sni:\n        - server_names: ['a.*.example.com', db.example.com]\n          cluster: pool\n        - server_names: [DB.example.com]\n          cluster: pool\n\
         \x20 - name: dns\n    bind: 127.0.0.1:0\n    http2: true\n    udp: { cluster: pool }\n",
    );
    let errors = error_lines(&text);
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].starts_with("l4.yaml:4:13: listeners[0].routes: a `tcp` listener forwards bytes"), "{errors:#?}");
    assert!(errors[1].starts_with("l4.yaml:10:26: listeners[1].tcp.sni[0].server_names[0]: `a.*.example.com` is not"));
    assert_eq!(errors[2], "l4.yaml:12:26: listeners[1].tcp.sni[1].server_names[0]: `DB.example.com` is already routed by listeners[1].tcp.sni[0]");
    assert!(errors[3].starts_with("l4.yaml:16:12: listeners[2].http2: a `udp` listener forwards datagrams"));
}

#[test]
fn a_tls_cluster_behind_a_tcp_listener_and_proxy_protocol_without_trusted_peers_are_refused() {
    let text = with_clusters(
        "  - name: db\n    bind: 127.0.0.1:0\n    tcp: { cluster: secure }\n    proxy_protocol: { trusted: [] }\n\
         \x20 - name: web\n    bind: 127.0.0.1:0\n    proxy_protocol: { trusted: [10.0.0.0/33] }\n",
    );
    let errors = error_lines(&text);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].starts_with("l4.yaml:4:21: listeners[0].tcp.cluster: cluster `secure` has `tls`"), "{errors:#?}");
    assert!(errors[1].starts_with("l4.yaml:5:32: listeners[0].proxy_protocol.trusted: list the load balancers"));
    assert!(errors[2].starts_with("l4.yaml:8:33: listeners[1].proxy_protocol.trusted[0]:"), "{errors:#?}");
}
