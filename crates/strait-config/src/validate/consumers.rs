//! Checks of consumers: unique names, and credentials that identify one consumer each and
//! carry the key their algorithm needs.

use std::collections::HashMap;

use super::Checker;
use crate::model::{Consumer, JwtCredential};
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
}
