//! Checks of consumers: unique names, credentials that identify one consumer each and carry
//! the key their algorithm needs, and filters scoped to a consumer that exists.

use std::collections::HashMap;

use super::Checker;
use crate::model::{Config, Consumer, FilterSpec, JwtCredential};
use crate::path_index::{child_path, item_path};

/// Where a value was first seen: its consumer's index.
type Seen<'a> = HashMap<&'a str, usize>;

impl Checker<'_> {
    /// Checks every consumer and that no credential belongs to two of them.
    pub(super) fn consumers(&mut self, consumers: &[Consumer]) {
        let (mut names, mut keys, mut users, mut jwt_keys) = (Seen::new(), Seen::new(), Seen::new(), Seen::new());
        for (position, consumer) in consumers.iter().enumerate() {
            let path = item_path("consumers", position);
            self.unique(&child_path(&path, "username"), &consumer.username, position, &mut names, "consumer username");
            let credentials = child_path(&path, "credentials");
            for (i, key) in consumer.credentials.key_auth.iter().enumerate() {
                let key_path = child_path(&item_path(&child_path(&credentials, "key_auth"), i), "key");
                self.unique(&key_path, &key.key, position, &mut keys, "API key");
            }
            for (i, user) in consumer.credentials.basic_auth.iter().enumerate() {
                let user_path = item_path(&child_path(&credentials, "basic_auth"), i);
                self.unique(
                    &child_path(&user_path, "username"),
                    &user.username,
                    position,
                    &mut users,
                    "basic-auth user",
                );
                if user.password.is_empty() {
                    self.error(&child_path(&user_path, "password"), "password is empty");
                }
            }
            for (i, jwt) in consumer.credentials.jwt.iter().enumerate() {
                let jwt_path = item_path(&child_path(&credentials, "jwt"), i);
                self.unique(&child_path(&jwt_path, "key"), &jwt.key, position, &mut jwt_keys, "JWT key");
                self.jwt_credential(&jwt_path, jwt);
            }
        }
    }

    /// Reports an empty `value`, or one already seen for another consumer (or this one). The
    /// value itself is named only when it is not a secret (an API key is one).
    fn unique<'a>(&mut self, path: &str, value: &'a str, consumer: usize, seen: &mut Seen<'a>, what: &str) {
        if value.is_empty() {
            self.error(path, format!("{what} is empty"));
        } else if let Some(first) = seen.insert(value, consumer) {
            seen.insert(value, first);
            let shown = if what == "API key" { String::new() } else { format!(" `{value}`") };
            self.error(path, format!("{what}{shown} is already used by consumers[{first}]"));
        }
    }

    fn jwt_credential(&mut self, path: &str, jwt: &JwtCredential) {
        let algorithm = jwt.algorithm;
        if algorithm.is_hmac() {
            match &jwt.secret {
                None => self.error(&child_path(path, "secret"), format!("{algorithm:?} needs a `secret`")),
                Some(secret) if secret.is_empty() => self.error(&child_path(path, "secret"), "secret is empty"),
                Some(_) => {}
            }
            if jwt.rsa_public_key.is_some() {
                let message =
                    format!("{algorithm:?} uses `secret`; a public key would let an RS token be checked as HS");
                self.error(&child_path(path, "rsa_public_key"), message);
            }
        } else {
            match &jwt.rsa_public_key {
                None => {
                    self.error(&child_path(path, "rsa_public_key"), format!("{algorithm:?} needs `rsa_public_key`"))
                }
                Some(pem) if !pem.contains("-----BEGIN PUBLIC KEY-----") => {
                    self.error(&child_path(path, "rsa_public_key"), "not a PEM public key (-----BEGIN PUBLIC KEY-----)")
                }
                Some(_) => {}
            }
            if jwt.secret.is_some() {
                self.error(&child_path(path, "secret"), format!("{algorithm:?} uses `rsa_public_key`, not a secret"));
            }
        }
    }

    /// Checks the `consumer` of every filter entry: it names a consumer, and only on the lists
    /// where a consumer can be known (route, cluster, top-level).
    pub(super) fn filter_consumers(&mut self, config: &Config) {
        let known: HashMap<&str, usize> =
            config.consumers.iter().enumerate().map(|(i, c)| (c.username.as_str(), i)).collect();
        let scoped = |checker: &mut Self, filters: &[FilterSpec], path: &str| {
            for (i, filter) in filters.iter().enumerate() {
                let Some(name) = &filter.consumer else { continue };
                if !known.contains_key(name.as_str()) {
                    let field = child_path(&item_path(path, i), "consumer");
                    checker.error(&field, format!("unknown consumer `{name}`"));
                }
            }
        };
        scoped(self, &config.filters, "filters");
        // A top-level entry for a consumer is in the same scope as the consumer's own filters.
        for (i, filter) in config.filters.iter().enumerate() {
            let Some(&c) = filter.consumer.as_deref().and_then(|name| known.get(name)) else { continue };
            if config.consumers[c].filters.iter().any(|own| own.name == filter.name) {
                let message =
                    format!("consumers[{c}].filters has a `{}` filter already: keep one of the two", filter.name);
                self.error(&child_path(&item_path("filters", i), "consumer"), message);
            }
        }
        for (c, cluster) in config.clusters.iter().enumerate() {
            scoped(self, &cluster.filters, &child_path(&item_path("clusters", c), "filters"));
        }
        for (l, listener) in config.listeners.iter().enumerate() {
            let listener_path = item_path("listeners", l);
            for (r, route) in listener.routes.iter().enumerate() {
                let path = child_path(&item_path(&child_path(&listener_path, "routes"), r), "filters");
                scoped(self, &route.filters, &path);
            }
            let message = "a listener's filters run before any consumer is identified: \
                           scope this filter to a route, a cluster or the top-level `filters`";
            self.no_consumer(&listener.filters, &child_path(&listener_path, "filters"), message);
        }
        for (c, consumer) in config.consumers.iter().enumerate() {
            let message = "a consumer's filters are that consumer's already: remove `consumer`";
            self.no_consumer(&consumer.filters, &child_path(&item_path("consumers", c), "filters"), message);
        }
    }

    /// Reports every entry of `filters` (at `path`) that names a consumer.
    fn no_consumer(&mut self, filters: &[FilterSpec], path: &str, message: &str) {
        for (i, filter) in filters.iter().enumerate() {
            if filter.consumer.is_some() {
                self.error(&child_path(&item_path(path, i), "consumer"), message);
            }
        }
    }
}
