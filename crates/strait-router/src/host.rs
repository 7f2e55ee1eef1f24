//! Host patterns (exact names and leading wildcards) and the index of per-host route groups.

use crate::hash::FastMap;

/// Longest host name lower-cased on the stack; longer ones (invalid in DNS) allocate.
const STACK_HOST_LEN: usize = 256;

/// A configured host pattern, lower-cased and without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// The host equals this name.
    Exact(Box<str>),
    /// The host ends with this suffix, which starts with `.` (`*.example.com` → `.example.com`).
    Wildcard(Box<str>),
}

impl HostPattern {
    /// Parses `api.example.com` or `*.example.com`.
    pub(crate) fn parse(host: &str) -> Result<HostPattern, String> {
        let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        if name.is_empty() {
            return Err("empty host name".into());
        }
        match name.strip_prefix('*') {
            Some(suffix) if suffix.len() > 1 && suffix.starts_with('.') => {
                if suffix.contains('*') || suffix.starts_with("..") {
                    return Err(format!("invalid wildcard host {host:?}"));
                }
                Ok(HostPattern::Wildcard(suffix.into()))
            }
            Some(_) => Err(format!("invalid wildcard host {host:?}: only a leading `*.` is allowed")),
            None if name.contains('*') => {
                Err(format!("invalid wildcard host {host:?}: only a leading `*.` is allowed"))
            }
            None => Ok(HostPattern::Exact(name.into())),
        }
    }
}

/// Route groups by host pattern, plus the group of routes without hosts.
#[derive(Debug, Default)]
pub(crate) struct HostIndex<G> {
    exact: FastMap<Box<str>, G>,
    wildcard: FastMap<Box<str>, G>,
    any_host: G,
}

impl<G: Default> HostIndex<G> {
    /// The group of `pattern`, or of routes without hosts for `None`, created when missing.
    pub(crate) fn group_mut(&mut self, pattern: Option<&HostPattern>) -> &mut G {
        match pattern {
            None => &mut self.any_host,
            Some(HostPattern::Exact(name)) => self.exact.entry(name.clone()).or_default(),
            Some(HostPattern::Wildcard(suffix)) => self.wildcard.entry(suffix.clone()).or_default(),
        }
    }
}

impl<G> HostIndex<G> {
    /// Every group, in no particular order.
    pub(crate) fn groups_mut(&mut self) -> impl Iterator<Item = &mut G> {
        self.exact.values_mut().chain(self.wildcard.values_mut()).chain(std::iter::once(&mut self.any_host))
    }

    /// Calls `visit` on the groups matching `host`, most specific first, until it returns
    /// `Some`.
    pub(crate) fn find_map<'s, R>(&'s self, host: &str, mut visit: impl FnMut(&'s G) -> Option<R>) -> Option<R> {
        if !self.exact.is_empty() || !self.wildcard.is_empty() {
            let found = with_normalized_host(host, |host| {
                if let Some(group) = self.exact.get(host) {
                    if let Some(found) = visit(group) {
                        return Some(found);
                    }
                }
                if self.wildcard.is_empty() {
                    return None;
                }
                host.match_indices('.')
                    .filter(|&(dot, _)| dot > 0)
                    .filter_map(|(dot, _)| self.wildcard.get(&host[dot..]))
                    .find_map(&mut visit)
            });
            if found.is_some() {
                return found;
            }
        }
        visit(&self.any_host)
    }
}

/// Calls `f` with `host` lower-cased and without a trailing dot, allocating only for
/// upper-case names longer than [`STACK_HOST_LEN`].
fn with_normalized_host<R>(host: &str, f: impl FnOnce(&str) -> R) -> R {
    let host = host.strip_suffix('.').unwrap_or(host);
    if !host.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(host);
    }
    if host.len() <= STACK_HOST_LEN {
        let mut buf = [0u8; STACK_HOST_LEN];
        let lowered = &mut buf[..host.len()];
        lowered.copy_from_slice(host.as_bytes());
        lowered.make_ascii_lowercase();
        if let Ok(lowered) = std::str::from_utf8(lowered) {
            return f(lowered);
        }
    }
    f(&host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_and_wildcard_hosts() {
        assert_eq!(HostPattern::parse("API.Example.com."), Ok(HostPattern::Exact("api.example.com".into())));
        assert_eq!(HostPattern::parse("*.Example.com"), Ok(HostPattern::Wildcard(".example.com".into())));
        for bad in ["", ".", "*", "*.", "*example.com", "a.*.com", "*.*.com", "*..com"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn normalizes_request_hosts() {
        assert_eq!(with_normalized_host("Api.EXAMPLE.com.", str::to_owned), "api.example.com");
        assert_eq!(with_normalized_host("plain", str::to_owned), "plain");
        let long = "A".repeat(STACK_HOST_LEN + 10);
        assert_eq!(with_normalized_host(&long, str::to_owned), long.to_ascii_lowercase());
    }

    #[test]
    fn visits_groups_from_most_to_least_specific() {
        let mut index: HostIndex<Vec<&str>> = HostIndex::default();
        for (pattern, name) in [("a.b.example.com", "exact"), ("*.b.example.com", "wild-b"), ("*.example.com", "wild")]
        {
            let pattern = HostPattern::parse(pattern).unwrap();
            index.group_mut(Some(&pattern)).push(name);
        }
        index.group_mut(None).push("any");
        let visited = |host: &str| {
            let mut seen = Vec::new();
            index.find_map(host, |group| -> Option<()> {
                seen.extend(group.iter().copied());
                None
            });
            seen
        };
        assert_eq!(visited("A.b.Example.com"), ["exact", "wild-b", "wild", "any"]);
        assert_eq!(visited("x.a.b.example.com"), ["wild-b", "wild", "any"]);
        assert_eq!(visited("b.example.com"), ["wild", "any"]);
        assert_eq!(visited("example.com"), ["any"]);
        assert_eq!(visited(".example.com"), ["any"]);
        assert_eq!(visited(""), ["any"]);
    }
}
