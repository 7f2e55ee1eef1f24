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
///
/// # Cost
///
/// A lookup is linear in the length of the host, whatever the number of patterns: the exact
/// name is hashed once, and wildcard suffixes are found by walking the host's labels once from
/// the right through a tree of labels (each label hashed once), so a host of many labels
/// cannot make the lookup hash every suffix (quadratic in the host's length). It allocates
/// nothing.
#[derive(Debug)]
pub(crate) struct HostIndex<G> {
    exact: FastMap<Box<str>, G>,
    wildcard: LabelTree<G>,
    any_host: G,
}

impl<G: Default> Default for HostIndex<G> {
    fn default() -> Self {
        HostIndex { exact: FastMap::default(), wildcard: LabelTree::default(), any_host: G::default() }
    }
}

impl<G: Default> HostIndex<G> {
    /// The group of `pattern`, or of routes without hosts for `None`, created when missing.
    pub(crate) fn group_mut(&mut self, pattern: Option<&HostPattern>) -> &mut G {
        match pattern {
            None => &mut self.any_host,
            Some(HostPattern::Exact(name)) => self.exact.entry(name.clone()).or_default(),
            Some(HostPattern::Wildcard(suffix)) => self.wildcard.group_mut(suffix),
        }
    }
}

impl<G> HostIndex<G> {
    /// Every group, in no particular order.
    pub(crate) fn groups_mut(&mut self) -> impl Iterator<Item = &mut G> {
        self.exact
            .values_mut()
            .chain(self.wildcard.nodes.iter_mut().filter_map(|node| node.group.as_mut()))
            .chain(std::iter::once(&mut self.any_host))
    }

    /// Calls `visit` on the groups matching `host`, most specific first, until it returns
    /// `Some`.
    pub(crate) fn find_map<'s, R>(&'s self, host: &str, mut visit: impl FnMut(&'s G) -> Option<R>) -> Option<R> {
        if !self.exact.is_empty() || self.wildcard.has_groups() {
            let found = with_normalized_host(host, |host| {
                if let Some(group) = self.exact.get(host) {
                    if let Some(found) = visit(group) {
                        return Some(found);
                    }
                }
                self.wildcard.find_map(host, &mut visit)
            });
            if found.is_some() {
                return found;
            }
        }
        visit(&self.any_host)
    }
}

/// Wildcard groups in a tree of labels read from the right: `*.eu.example.com` is the group of
/// the node `com` → `example` → `eu`.
#[derive(Debug)]
struct LabelTree<G> {
    /// The nodes; the root (no label) comes first.
    nodes: Vec<LabelNode<G>>,
}

#[derive(Debug)]
struct LabelNode<G> {
    /// The node one label up (towards the root); `None` for the root.
    parent: Option<u32>,
    /// The nodes one label further left, by label.
    children: FastMap<Box<str>, u32>,
    /// The group of the wildcard ending here.
    group: Option<G>,
}

impl<G> LabelNode<G> {
    fn new(parent: Option<u32>) -> Self {
        LabelNode { parent, children: FastMap::default(), group: None }
    }
}

impl<G> Default for LabelTree<G> {
    fn default() -> Self {
        LabelTree { nodes: vec![LabelNode::new(None)] }
    }
}

impl<G> LabelTree<G> {
    /// Whether any wildcard was added.
    fn has_groups(&self) -> bool {
        self.nodes.len() > 1
    }

    /// The group of the wildcard whose suffix is `suffix` (`.example.com`), created when missing.
    fn group_mut(&mut self, suffix: &str) -> &mut G
    where
        G: Default,
    {
        let mut node = 0;
        for label in suffix.strip_prefix('.').unwrap_or(suffix).rsplit('.') {
            node = match self.nodes[node].children.get(label) {
                Some(&child) => child as usize,
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(LabelNode::new(Some(node as u32)));
                    self.nodes[node].children.insert(label.into(), child as u32);
                    child
                }
            };
        }
        self.nodes[node].group.get_or_insert_with(G::default)
    }

    /// Calls `visit` on the groups of the wildcards matching `host` (lower-cased, without a
    /// trailing dot), longest first, until it returns `Some`.
    ///
    /// A wildcard matches when the host ends with its suffix and has at least one character
    /// before it. The host's labels are walked once from the right down to the deepest node
    /// that matches; the groups are then visited back up the parent links.
    fn find_map<'s, R>(&'s self, host: &str, visit: &mut impl FnMut(&'s G) -> Option<R>) -> Option<R> {
        let mut node = 0;
        let mut deepest = None;
        let mut rest = host;
        loop {
            let (before, label) = match rest.rfind('.') {
                Some(dot) => (Some(&rest[..dot]), &rest[dot + 1..]),
                None => (None, rest),
            };
            #[cfg(test)]
            tests::LABEL_PROBES.with(|probes| probes.set(probes.get() + 1));
            let Some(&child) = self.nodes[node].children.get(label) else { break };
            node = child as usize;
            // `*.example.com` needs something before `.example.com`.
            let Some(before) = before.filter(|before| !before.is_empty()) else { break };
            if self.nodes[node].group.is_some() {
                deepest = Some(node);
            }
            rest = before;
        }
        let mut at = deepest;
        while let Some(index) = at {
            let node = &self.nodes[index];
            if let Some(found) = node.group.as_ref().and_then(&mut *visit) {
                return Some(found);
            }
            at = node.parent.map(|parent| parent as usize);
        }
        None
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
    use std::cell::Cell;

    thread_local! {
        /// Label look-ups made by [`LabelTree::find_map`] on this thread.
        pub(super) static LABEL_PROBES: Cell<usize> = const { Cell::new(0) };
    }

    /// An index with a group per pattern, named by the pattern.
    fn index_of(patterns: &[String]) -> HostIndex<Vec<String>> {
        let mut index: HostIndex<Vec<String>> = HostIndex::default();
        for pattern in patterns {
            index.group_mut(Some(&HostPattern::parse(pattern).unwrap())).push(pattern.clone());
        }
        index
    }

    /// The groups visited for `host` in order, and the label look-ups it took.
    fn visit_all(index: &HostIndex<Vec<String>>, host: &str) -> (Vec<String>, usize) {
        let mut seen = Vec::new();
        LABEL_PROBES.with(|probes| probes.set(0));
        index.find_map(host, |group| -> Option<()> {
            seen.extend(group.iter().cloned());
            None
        });
        (seen, LABEL_PROBES.with(Cell::get))
    }

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

    #[test]
    fn wildcards_match_only_with_a_label_before_the_suffix() {
        let index = index_of(&["*.example.com".into(), "*.a..com".into(), "*.com".into()]);
        let visited = |host: &str| visit_all(&index, host).0;
        assert_eq!(visited("x.example.com"), ["*.example.com", "*.com"]);
        assert_eq!(visited("x..example.com"), ["*.example.com", "*.com"]);
        assert_eq!(visited("example.com"), ["*.com"]);
        assert_eq!(visited(".example.com"), ["*.com"]);
        assert_eq!(visited("x.a..com"), ["*.a..com", "*.com"]);
        assert_eq!(visited("a..com"), ["*.com"]);
        assert_eq!(visited("com"), Vec::<String>::new());
        assert_eq!(visited(".com"), Vec::<String>::new());
        assert_eq!(visited("examplecom"), Vec::<String>::new());
    }

    #[test]
    fn deep_hosts_and_many_wildcards_take_one_look_up_per_label() {
        // A wildcard at every depth of `a.a.….a.example.com`, and thousands beside them.
        let depth = 200;
        let mut patterns: Vec<String> = (1..depth).map(|n| format!("*.{}example.com", "a.".repeat(n))).collect();
        patterns.extend((0..10_000 - patterns.len()).map(|i| format!("*.s{i}.example.com")));
        assert_eq!(patterns.len(), 10_000);
        let index = index_of(&patterns);
        let host = format!("{}example.com", "a.".repeat(depth));
        assert_eq!(host.split('.').count(), depth + 2);
        let (seen, probes) = visit_all(&index, &host);
        let longest_first: Vec<String> = patterns[..depth - 1].iter().rev().cloned().collect();
        assert_eq!(seen, longest_first, "every matching wildcard, the longest first");
        assert!(probes <= depth + 2, "{probes} look-ups for {} labels", depth + 2);
        let (seen, probes) = visit_all(&index, &format!("x.s42.{}", "b.".repeat(depth) + "example.com"));
        assert!(seen.is_empty());
        assert!(probes <= 3, "a miss stops at the first unknown label ({probes} look-ups)");
        let (seen, _) = visit_all(&index, "x.s42.example.com");
        assert_eq!(seen, ["*.s42.example.com"]);
    }
}
