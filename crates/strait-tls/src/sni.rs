//! Choosing a listener's certificate by the name the client asked for (SNI).
//!
//! Exact names win, then the `*.` wildcard of the name's parent domain (a wildcard covers
//! exactly one label: `*.example.com` matches `a.example.com`, not `example.com` nor
//! `a.b.example.com`), then the default: the first certificate. Names compare
//! case-insensitively and a trailing dot is ignored. A lookup is at most two hash map probes,
//! however many names the listener has.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Values looked up by server name: exact names, one-label wildcards, and a default.
#[derive(Debug, Clone)]
pub struct ServerNames<T> {
    exact: HashMap<String, T>,
    /// Keyed by the parent domain: `example.com` for `*.example.com`.
    wildcard: HashMap<String, T>,
    default: T,
}

impl<T> ServerNames<T> {
    /// A table that answers `default` for every name until names are added.
    pub fn new(default: T) -> ServerNames<T> {
        ServerNames { exact: HashMap::new(), wildcard: HashMap::new(), default }
    }

    /// Answers `value` for `pattern` (`api.example.com` or `*.example.com`). A pattern already
    /// added keeps its first value; returns whether this one was added.
    pub fn insert(&mut self, pattern: &str, value: T) -> bool {
        let pattern = normalize(pattern);
        let (map, key) = match pattern.strip_prefix("*.") {
            Some(parent) => (&mut self.wildcard, parent),
            None => (&mut self.exact, pattern.as_ref()),
        };
        if key.is_empty() || map.contains_key(key) {
            return false;
        }
        map.insert(key.to_owned(), value);
        true
    }

    /// The value for a client that asked for `server_name` (`None`: the client sent no SNI).
    pub fn find(&self, server_name: Option<&str>) -> &T {
        let Some(name) = server_name else { return &self.default };
        let name = normalize(name);
        if let Some(value) = self.exact.get(name.as_ref()) {
            return value;
        }
        let parent = name.split_once('.').filter(|(label, _)| !label.is_empty()).map(|(_, parent)| parent);
        parent.and_then(|parent| self.wildcard.get(parent)).unwrap_or(&self.default)
    }

    /// The value answered when no name matches.
    pub fn default_value(&self) -> &T {
        &self.default
    }
}

/// `name` in lower case without a trailing dot, copied only when it has to change.
fn normalize(name: &str) -> Cow<'_, str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// The rustls certificate resolver of a listener.
pub(crate) struct SniResolver {
    names: ServerNames<Arc<CertifiedKey>>,
}

impl SniResolver {
    /// A resolver over `names`.
    pub fn new(names: ServerNames<Arc<CertifiedKey>>) -> SniResolver {
        SniResolver { names }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.names.find(client_hello.server_name())))
    }
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut exact: Vec<&String> = self.names.exact.keys().collect();
        exact.sort();
        let mut wildcard: Vec<String> = self.names.wildcard.keys().map(|parent| format!("*.{parent}")).collect();
        wildcard.sort();
        f.debug_struct("SniResolver").field("exact", &exact).field("wildcard", &wildcard).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ServerNames<&'static str> {
        let mut names = ServerNames::new("default");
        assert!(names.insert("api.example.com", "api"));
        assert!(names.insert("*.example.com", "wild"));
        assert!(names.insert("*.eu.example.com", "wild-eu"));
        assert!(names.insert("Shop.Example.ORG.", "shop"));
        names
    }

    #[test]
    fn exact_names_win_over_wildcards() {
        let names = table();
        assert_eq!(*names.find(Some("api.example.com")), "api");
        assert_eq!(*names.find(Some("www.example.com")), "wild");
        assert_eq!(*names.find(Some("x.eu.example.com")), "wild-eu");
    }

    #[test]
    fn a_wildcard_covers_exactly_one_label() {
        let names = table();
        assert_eq!(*names.find(Some("example.com")), "default");
        assert_eq!(*names.find(Some("a.b.example.com")), "default");
        assert_eq!(*names.find(Some(".example.com")), "default");
    }

    #[test]
    fn names_compare_case_insensitively_without_trailing_dot() {
        let names = table();
        assert_eq!(*names.find(Some("API.EXAMPLE.COM")), "api");
        assert_eq!(*names.find(Some("api.example.com.")), "api");
        assert_eq!(*names.find(Some("shop.example.org")), "shop");
        assert_eq!(*names.find(Some("WWW.Example.com")), "wild");
    }

    #[test]
    fn no_sni_and_unknown_names_get_the_default() {
        let names = table();
        assert_eq!(*names.find(None), "default");
        assert_eq!(*names.find(Some("other.test")), "default");
        assert_eq!(*names.find(Some("localhost")), "default");
    }

    #[test]
    fn the_first_value_of_a_name_is_kept() {
        let mut names = table();
        assert!(!names.insert("API.example.com", "second"));
        assert!(!names.insert("*.example.com", "second"));
        assert_eq!(*names.find(Some("api.example.com")), "api");
    }
}
