//! Checks of clusters: unique names, endpoints, balancer options, health checks and TLS.

use std::collections::HashMap;

use super::{syntax, Checker};
use crate::model::{Balancer, Cluster, HashOn, Health};
use crate::path_index::{child_path, item_path};

impl Checker<'_> {
    /// Checks every cluster.
    pub(super) fn clusters(&mut self, clusters: &[Cluster]) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (position, cluster) in clusters.iter().enumerate() {
            let path = item_path("clusters", position);
            let name_path = child_path(&path, "name");
            if cluster.name.is_empty() {
                self.error(&name_path, "cluster name is empty");
            } else if let Some(first) = names.insert(&cluster.name, position) {
                names.insert(&cluster.name, first);
                self.error(&name_path, format!("cluster name `{}` is already used by clusters[{first}]", cluster.name));
            }
            self.cluster(&path, cluster);
        }
    }

    fn cluster(&mut self, path: &str, cluster: &Cluster) {
        let endpoints_path = child_path(path, "endpoints");
        if cluster.endpoints.is_empty() {
            self.error(&endpoints_path, "cluster has no endpoints");
        }
        for (position, endpoint) in cluster.endpoints.iter().enumerate() {
            let endpoint_path = item_path(&endpoints_path, position);
            self.check(&child_path(&endpoint_path, "address"), syntax::endpoint_address_problem(&endpoint.address));
            if endpoint.weight == 0 {
                self.error(&child_path(&endpoint_path, "weight"), "weight must be at least 1");
            }
        }
        if !cluster.endpoints.is_empty() && cluster.endpoints.iter().all(|endpoint| endpoint.backup) {
            self.error(&endpoints_path, "every endpoint is a backup: at least one must be a primary");
        }
        let hashing = matches!(cluster.balancer, Balancer::RingHash | Balancer::Maglev);
        if cluster.hash_on.is_some() && !hashing {
            self.error(
                &child_path(path, "hash_on"),
                "`hash_on` is only used by the `ring_hash` and `maglev` balancers",
            );
        }
        if let Some(HashOn::Header(name)) = &cluster.hash_on {
            self.check(&child_path(path, "hash_on.header"), syntax::header_name_problem(name));
        }
        if let Some(HashOn::Cookie(name)) = &cluster.hash_on {
            if name.is_empty() {
                self.error(&child_path(path, "hash_on.cookie"), "cookie name is empty");
            }
        }
        self.check_positive(&child_path(path, "dns_refresh"), cluster.dns_refresh);
        if cluster.host_header.is_empty() {
            self.error(&child_path(path, "host_header"), "is empty: use `preserve`, `endpoint` or a host name");
        } else {
            self.check(&child_path(path, "host_header"), syntax::header_value_problem(&cluster.host_header));
        }
        let timeouts = &cluster.timeouts;
        for (name, duration) in
            [("connect", timeouts.connect), ("response_header", timeouts.response_header), ("body", timeouts.body)]
        {
            self.check_positive(&child_path(&child_path(path, "timeouts"), name), duration);
        }
        self.health(&child_path(path, "health"), &cluster.health);
        if let Some(tls) = &cluster.tls {
            self.cluster_tls(&child_path(path, "tls"), tls);
        }
    }

    fn health(&mut self, path: &str, health: &Health) {
        if let Some(active) = &health.active {
            let active_path = child_path(path, "active");
            let field = |name: &str| child_path(&active_path, name);
            if !active.path.starts_with('/') {
                self.error(&field("path"), format!("path `{}` must start with `/`", active.path));
            }
            for (position, status) in active.expected_statuses.iter().enumerate() {
                self.check_status(&item_path(&field("expected_statuses"), position), *status);
            }
            self.check_positive(&field("interval"), active.interval);
            self.check_positive(&field("timeout"), active.timeout);
            if active.healthy_threshold == 0 {
                self.error(&field("healthy_threshold"), "must be at least 1");
            }
            if active.unhealthy_threshold == 0 {
                self.error(&field("unhealthy_threshold"), "must be at least 1");
            }
        }
        if let Some(passive) = &health.passive {
            let passive_path = child_path(path, "passive");
            if passive.max_fails == 0 {
                self.error(&child_path(&passive_path, "max_fails"), "must be at least 1");
            }
            self.check_positive(&child_path(&passive_path, "fail_timeout"), passive.fail_timeout);
        }
    }
}
