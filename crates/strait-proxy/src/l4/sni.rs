//! Passthrough routes by TLS server name: exact names first, then the longest matching `*.`
//! wildcard, compared without regard to case.

use std::collections::HashMap;

/// The targets (clusters) of a listener's `tcp.sni` routes, by server name.
#[derive(Debug)]
pub(crate) struct SniTable<T> {
    /// Exact names, lower case.
    exact: HashMap<String, T>,
    /// Wildcards as their suffix with the leading dot (`.example.com`), longest first.
    wildcards: Vec<(String, T)>,
}

impl<T> SniTable<T> {
    /// A table over `(name, target)` pairs in route order; the first route naming a name wins.
    pub(crate) fn new<'a>(routes: impl IntoIterator<Item = (&'a str, T)>) -> SniTable<T> {
        let mut table = SniTable { exact: HashMap::new(), wildcards: Vec::new() };
        for (name, cluster) in routes {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix('*') {
                Some(suffix) => {
                    if !table.wildcards.iter().any(|(known, _)| *known == suffix) {
                        table.wildcards.push((suffix.to_owned(), cluster));
                    }
                }
                None => {
                    table.exact.entry(name).or_insert(cluster);
                }
            }
        }
        // Stable: among equal lengths the earlier route stays first.
        table.wildcards.sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        table
    }

    /// Whether the listener routes by server name at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcards.is_empty()
    }

    /// The cluster for `server_name`, if a route takes it. A wildcard needs at least one label
    /// in front of its suffix (`*.example.com` takes `a.example.com` and `a.b.example.com`,
    /// not `example.com`).
    pub(crate) fn find(&self, server_name: &str) -> Option<&T> {
        let lower;
        let name = if server_name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = server_name.to_ascii_lowercase();
            lower.as_str()
        } else {
            server_name
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Some(cluster) = self.exact.get(name) {
            return Some(cluster);
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix.as_str()))
            .map(|(_, cluster)| cluster)
    }
}

#[cfg(test)]
mod tests {
    use super::SniTable;

    fn table() -> SniTable<&'static str> {
        SniTable::new([
            ("db.example.com", "db"),
            ("*.example.com", "any"),
            ("*.eu.example.com", "eu"),
            ("DB.example.com", "second"),
            ("*.example.com", "second-wildcard"),
        ])
    }

    #[test]
    fn exact_names_win_over_wildcards_and_the_first_route_wins() {
        let table = table();
        assert_eq!(table.find("db.example.com"), Some(&"db"));
        assert_eq!(table.find("Db.Example.COM"), Some(&"db"));
        assert_eq!(table.find("db.example.com."), Some(&"db"));
        assert_eq!(table.find("www.example.com"), Some(&"any"));
    }

    #[test]
    fn the_longest_wildcard_wins_and_needs_a_label_in_front() {
        let table = table();
        assert_eq!(table.find("a.eu.example.com"), Some(&"eu"));
        assert_eq!(table.find("a.b.example.com"), Some(&"any"));
        assert_eq!(table.find("eu.example.com"), Some(&"any"));
        assert_eq!(table.find("example.com"), None);
        assert_eq!(table.find("badexample.com"), None);
        assert_eq!(table.find(".example.com"), None);
    }
}
