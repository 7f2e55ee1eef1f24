//! Checks of layer 4 listeners: TCP forwarding, TLS passthrough routes, UDP forwarding and the
//! PROXY protocol.

use std::collections::{HashMap, HashSet};

use super::{syntax, Checker};
use crate::model::{Config, Listener, Route, TcpForward, UdpForward};
use crate::path_index::{child_path, item_path};

impl Checker<'_> {
    /// Checks the layer 4 parts of the listener at `path`, and that they fit its other fields.
    pub(super) fn listener_l4(&mut self, path: &str, listener: &Listener, cluster_names: &HashSet<&str>) {
        if let Some(accept) = &listener.proxy_protocol {
            let accept_path = child_path(path, "proxy_protocol");
            if listener.udp.is_some() {
                self.error(&accept_path, "the PROXY protocol is accepted on TCP listeners only");
            }
            if accept.trusted.is_empty() {
                self.error(
                    &child_path(&accept_path, "trusted"),
                    "list the load balancers allowed to send PROXY headers (addresses or CIDR blocks)",
                );
            }
            for (position, entry) in accept.trusted.iter().enumerate() {
                self.check(
                    &item_path(&child_path(&accept_path, "trusted"), position),
                    syntax::ip_or_cidr_problem(entry),
                );
            }
            self.check_positive(&child_path(&accept_path, "timeout"), accept.timeout);
        }
        match (&listener.tcp, &listener.udp) {
            (Some(_), Some(_)) => {
                self.error(&child_path(path, "udp"), "a listener forwards either `tcp` or `udp`, not both");
            }
            (Some(tcp), None) => self.tcp_forward(path, listener, tcp, cluster_names),
            (None, Some(udp)) => self.udp_forward(path, listener, udp, cluster_names),
            (None, None) => {}
        }
    }

    /// Reports clusters that layer 4 listeners name but whose settings they cannot honour:
    /// TLS towards the endpoints (a TCP listener relays bytes as they are).
    pub(super) fn l4_clusters(&mut self, config: &Config) {
        for (position, listener) in config.listeners.iter().enumerate() {
            let path = item_path("listeners", position);
            let mut named: Vec<(String, &str)> = Vec::new();
            if let Some(tcp) = &listener.tcp {
                let tcp_path = child_path(&path, "tcp");
                if let Some(cluster) = &tcp.cluster {
                    named.push((child_path(&tcp_path, "cluster"), cluster));
                }
                for (index, route) in tcp.sni.iter().enumerate() {
                    named.push((
                        child_path(&item_path(&child_path(&tcp_path, "sni"), index), "cluster"),
                        &route.cluster,
                    ));
                }
            }
            if let Some(udp) = &listener.udp {
                named.push((child_path(&child_path(&path, "udp"), "cluster"), &udp.cluster));
            }
            for (field, name) in named {
                if config.clusters.iter().any(|cluster| cluster.name == name && cluster.tls.is_some()) {
                    self.error(
                        &field,
                        format!(
                            "cluster `{name}` has `tls`, but layer 4 listeners relay bytes as they are: \
                             remove its `tls` (a TLS client's bytes stay TLS end to end) or use another cluster"
                        ),
                    );
                }
            }
        }
    }

    fn tcp_forward(&mut self, path: &str, listener: &Listener, tcp: &TcpForward, cluster_names: &HashSet<&str>) {
        let tcp_path = child_path(path, "tcp");
        if listener.tls.is_some() && tcp.sni.is_empty() {
            self.error(
                &child_path(path, "tls"),
                "a `tcp` listener terminates TLS only beside passthrough: add `tcp.sni` routes, or remove `tls`",
            );
        }
        if listener.tls.is_some() && !tcp.sni.is_empty() && tcp.cluster.is_some() {
            self.error(
                &child_path(path, "tls"),
                "names no `tcp.sni` route takes go to `tcp.cluster`, so `tls` would terminate none: remove one of them",
            );
        }
        if listener.tls.is_none() && !listener.routes.is_empty() {
            self.error(
                &child_path(path, "routes"),
                "a `tcp` listener forwards bytes, not HTTP requests: routes serve only the names `tcp.sni` \
                 terminates, which needs `tls`",
            );
        }
        if listener.http2 && listener.tls.is_none() {
            self.error(&child_path(path, "http2"), "a `tcp` listener does not serve HTTP");
        }
        if tcp.cluster.is_none() && tcp.sni.is_empty() {
            self.error(&tcp_path, "name the `cluster` connections go to, or `sni` routes");
        }
        if let Some(cluster) = &tcp.cluster {
            self.cluster_reference(&child_path(&tcp_path, "cluster"), cluster, cluster_names);
        }
        let sni_path = child_path(&tcp_path, "sni");
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (position, route) in tcp.sni.iter().enumerate() {
            let route_path = item_path(&sni_path, position);
            self.cluster_reference(&child_path(&route_path, "cluster"), &route.cluster, cluster_names);
            let names_path = child_path(&route_path, "server_names");
            if route.server_names.is_empty() {
                self.error(&names_path, "list at least one server name");
            }
            for (index, name) in route.server_names.iter().enumerate() {
                let name_path = item_path(&names_path, index);
                if let Some(problem) = server_name_problem(name) {
                    self.error(&name_path, problem);
                    continue;
                }
                if let Some(first) = seen.insert(name.to_ascii_lowercase(), position) {
                    self.error(&name_path, format!("`{name}` is already routed by {}", item_path(&sni_path, first)));
                }
            }
        }
        self.check_positive(&child_path(&tcp_path, "hello_timeout"), tcp.hello_timeout);
        self.check_positive(&child_path(&tcp_path, "idle_timeout"), tcp.idle_timeout);
        if tcp.connect_attempts == 0 {
            self.error(&child_path(&tcp_path, "connect_attempts"), "must be at least 1");
        }
    }

    fn udp_forward(&mut self, path: &str, listener: &Listener, udp: &UdpForward, cluster_names: &HashSet<&str>) {
        let udp_path = child_path(path, "udp");
        for (field, set) in [
            ("tls", listener.tls.is_some()),
            ("http2", listener.http2),
            ("routes", !listener.routes.is_empty()),
            ("filters", !listener.filters.is_empty()),
        ] {
            if set {
                self.error(&child_path(path, field), "a `udp` listener forwards datagrams: remove this field");
            }
        }
        self.cluster_reference(&child_path(&udp_path, "cluster"), &udp.cluster, cluster_names);
        self.check_positive(&child_path(&udp_path, "idle_timeout"), udp.idle_timeout);
        if udp.max_sessions == 0 {
            self.error(&child_path(&udp_path, "max_sessions"), "must be at least 1");
        }
    }
}

impl Checker<'_> {
    /// Reports HTTP routes and UDP listeners that forward to a cluster sending PROXY headers:
    /// the header is written on TCP listeners' upstream connections only (HTTP connections are
    /// pooled and shared between clients).
    pub(super) fn proxy_protocol_clusters(&mut self, config: &Config) {
        let sending: HashSet<&str> =
            config.clusters.iter().filter(|c| c.proxy_protocol.is_some()).map(|c| c.name.as_str()).collect();
        if sending.is_empty() {
            return;
        }
        for (position, listener) in config.listeners.iter().enumerate() {
            let listener_path = item_path("listeners", position);
            if let Some(udp) = listener.udp.as_ref().filter(|udp| sending.contains(udp.cluster.as_str())) {
                self.error(
                    &child_path(&child_path(&listener_path, "udp"), "cluster"),
                    format!(
                        "cluster `{}` has `proxy_protocol`, which is sent on TCP listeners' connections only; \
                         forward datagrams to a cluster without it",
                        udp.cluster
                    ),
                );
            }
            let routes_path = child_path(&listener_path, "routes");
            for (index, route) in listener.routes.iter().enumerate() {
                for (field, cluster) in http_cluster_references(route) {
                    if sending.contains(cluster) {
                        self.error(
                            &child_path(&item_path(&routes_path, index), &field),
                            format!(
                                "cluster `{cluster}` has `proxy_protocol`, which is sent on TCP listeners' \
                                 connections only; forward HTTP to a cluster without it"
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// The clusters `route` sends HTTP requests to, with the field (relative to the route) naming each.
fn http_cluster_references(route: &Route) -> Vec<(String, &str)> {
    let mut references = Vec::new();
    if let Some(forward) = &route.forward {
        references.push(("forward.cluster".to_owned(), forward.cluster.as_str()));
    }
    for (position, share) in route.split.iter().flatten().enumerate() {
        references.push((child_path(&item_path("split", position), "cluster"), share.cluster.as_str()));
    }
    if let Some(aggregate) = &route.aggregate {
        for (position, call) in aggregate.calls.iter().enumerate() {
            references.push((child_path(&item_path("aggregate.calls", position), "cluster"), call.cluster.as_str()));
        }
    }
    if let Some(transcode) = &route.grpc_transcode {
        references.push(("grpc_transcode.cluster".to_owned(), transcode.cluster.as_str()));
    }
    references
}

/// Why `name` cannot be a passthrough server name, if it cannot: a DNS name, or `*.` and one.
fn server_name_problem(name: &str) -> Option<String> {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    let valid = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    (!valid).then(|| format!("`{name}` is not a server name (`host.example.com`, or `*.example.com`)"))
}

#[cfg(test)]
mod tests {
    use super::server_name_problem;

    #[test]
    fn server_names_are_dns_names_or_leading_wildcards() {
        for good in ["db.example.com", "*.example.com", "localhost", "a-b_c.example"] {
            assert_eq!(server_name_problem(good), None, "{good}");
        }
        for bad in ["", "*", "*.", "a.*.example.com", "ex ample.com", "a..b", "*example.com", "db.example.com."] {
            assert!(server_name_problem(bad).is_some(), "{bad}");
        }
    }
}
