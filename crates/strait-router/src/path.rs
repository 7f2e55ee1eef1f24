//! Path conditions and the per-host index that orders candidates by path specificity.

use regex::Regex;
use strait_config::PathMatch;

use crate::hash::FastMap;

/// A compiled path condition.
#[derive(Debug, Clone)]
pub(crate) enum PathCondition {
    /// No path condition.
    Any,
    /// The path equals this.
    Exact(Box<str>),
    /// The path starts with these whole segments.
    Prefix(Box<str>),
    /// The path matches this anchored expression, written as configured.
    Regex { pattern: Box<str>, regex: Regex },
}

impl PathCondition {
    /// Compiles a configured path condition, which must set exactly one field.
    pub(crate) fn compile(path: Option<&PathMatch>) -> Result<PathCondition, String> {
        let Some(path) = path else {
            return Ok(PathCondition::Any);
        };
        match (&path.exact, &path.prefix, &path.regex) {
            (Some(exact), None, None) => Ok(PathCondition::Exact(exact.as_str().into())),
            (None, Some(prefix), None) => {
                if !prefix.starts_with('/') {
                    return Err(format!("path prefix {prefix:?} must start with `/`"));
                }
                Ok(PathCondition::Prefix(prefix.as_str().into()))
            }
            (None, None, Some(pattern)) => {
                let regex = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("invalid path regex {pattern:?}: {e}"))?;
                Ok(PathCondition::Regex { pattern: pattern.as_str().into(), regex })
            }
            _ => Err("a path condition sets exactly one of exact, prefix and regex".into()),
        }
    }
}

/// The part of `path` after `prefix`'s segments (empty or starting with `/`), or `None`
/// when `path` does not start with those whole segments.
pub(crate) fn after_prefix<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    match prefix.strip_suffix('/') {
        Some(stem) => path.starts_with(prefix).then(|| &path[stem.len()..]),
        None => {
            let rest = path.strip_prefix(prefix)?;
            (rest.is_empty() || rest.starts_with('/')).then_some(rest)
        }
    }
}

/// Routes with the same path condition, in the order they are tried.
type Candidates = Vec<usize>;

/// One host group's routes, indexed by path condition.
#[derive(Debug, Default)]
pub(crate) struct PathIndex {
    exact: FastMap<Box<str>, Candidates>,
    prefixes: FastMap<Box<str>, Candidates>,
    longest_prefix: usize,
    regexes: Vec<(Box<str>, Regex, Candidates)>,
    any_path: Candidates,
}

impl PathIndex {
    /// Adds route `id` under `condition`; call [`PathIndex::sort`] once all are added.
    pub(crate) fn insert(&mut self, condition: &PathCondition, id: usize) {
        match condition {
            PathCondition::Any => self.any_path.push(id),
            PathCondition::Exact(path) => self.exact.entry(path.clone()).or_default().push(id),
            PathCondition::Prefix(prefix) => {
                self.longest_prefix = self.longest_prefix.max(prefix.len());
                self.prefixes.entry(prefix.clone()).or_default().push(id);
            }
            PathCondition::Regex { pattern, regex } => match self.regexes.iter_mut().find(|(p, _, _)| p == pattern) {
                Some((_, _, ids)) => ids.push(id),
                None => self.regexes.push((pattern.clone(), regex.clone(), vec![id])),
            },
        }
    }

    /// Orders the routes of each path condition by `rank`, keeping insertion order on ties.
    pub(crate) fn sort<K: Ord>(&mut self, rank: impl Fn(usize) -> K) {
        let lists = self
            .exact
            .values_mut()
            .chain(self.prefixes.values_mut())
            .chain(self.regexes.iter_mut().map(|(_, _, ids)| ids))
            .chain(std::iter::once(&mut self.any_path));
        for ids in lists {
            ids.sort_by_key(|&id| rank(id));
        }
    }

    /// The first route, in precedence order, whose path condition holds for `path` and that
    /// `accept` takes, with the configured prefix when it matched by prefix.
    pub(crate) fn find(&self, path: &str, mut accept: impl FnMut(usize) -> bool) -> Option<(usize, Option<&str>)> {
        if let Some(ids) = self.exact.get(path) {
            if let Some(&id) = ids.iter().find(|&&id| accept(id)) {
                return Some((id, None));
            }
        }
        if let Some((id, prefix)) = self.find_prefix(path, &mut accept) {
            return Some((id, Some(prefix)));
        }
        for (_, regex, ids) in &self.regexes {
            if regex.is_match(path) {
                if let Some(&id) = ids.iter().find(|&&id| accept(id)) {
                    return Some((id, None));
                }
            }
        }
        let id = self.any_path.iter().copied().find(|&id| accept(id))?;
        Some((id, None))
    }

    /// Looks up every prefix that can match `path`, longest first: the path itself, then at
    /// each `/` from the end the part up to and including it and the part before it.
    fn find_prefix(&self, path: &str, accept: &mut impl FnMut(usize) -> bool) -> Option<(usize, &str)> {
        if self.prefixes.is_empty() {
            return None;
        }
        let mut try_prefix = |candidate: &str| {
            if candidate.len() > self.longest_prefix {
                return None;
            }
            let (prefix, ids) = self.prefixes.get_key_value(candidate)?;
            let id = ids.iter().copied().find(|&id| accept(id))?;
            Some((id, &**prefix))
        };
        if !path.ends_with('/') {
            if let Some(found) = try_prefix(path) {
                return Some(found);
            }
        }
        let bytes = path.as_bytes();
        let mut end = path.len();
        while let Some(slash) = path[..end].rfind('/') {
            if slash == 0 {
                break;
            }
            if let Some(found) = try_prefix(&path[..=slash]) {
                return Some(found);
            }
            // After `//` the part before this slash is the next candidate ending in `/`.
            if bytes[slash - 1] != b'/' {
                if let Some(found) = try_prefix(&path[..slash]) {
                    return Some(found);
                }
            }
            end = slash;
        }
        try_prefix("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &str) -> PathCondition {
        PathCondition::compile(Some(&PathMatch { prefix: Some(p.into()), ..Default::default() })).unwrap()
    }

    #[test]
    fn after_prefix_follows_segments() {
        assert_eq!(after_prefix("/api", "/api"), Some(""));
        assert_eq!(after_prefix("/api/", "/api"), Some("/"));
        assert_eq!(after_prefix("/api/x", "/api"), Some("/x"));
        assert_eq!(after_prefix("/apix", "/api"), None);
        assert_eq!(after_prefix("/api", "/api/"), None);
        assert_eq!(after_prefix("/api/", "/api/"), Some("/"));
        assert_eq!(after_prefix("/api/x", "/api/"), Some("/x"));
        assert_eq!(after_prefix("/anything", "/"), Some("/anything"));
    }

    #[test]
    fn prefix_lookup_agrees_with_linear_scan() {
        let prefixes = ["/", "/a", "/a/", "/a/b", "/a/b/", "/ab", "/a//", "/a//b", "/a/b/c", "/b", "/b/"];
        let mut index = PathIndex::default();
        for (id, p) in prefixes.iter().enumerate() {
            index.insert(&prefix(p), id);
        }
        let paths = [
            "/", "/a", "/a/", "/ab", "/abc", "/a/b", "/a/bc", "/a/b/", "/a/b/c", "/a/b/c/d", "/a//", "/a//b",
            "/a//b/c", "/a///", "//", "/b", "/b/x", "/c", "", "*",
        ];
        for path in paths {
            // Every matching prefix in the order the index offers them.
            let mut offered = Vec::new();
            index.find(path, |id| {
                offered.push(prefixes[id]);
                false
            });
            let mut expected: Vec<&str> =
                prefixes.iter().copied().filter(|p| *p == "/" || after_prefix(path, p).is_some()).collect();
            expected.sort_by_key(|p| std::cmp::Reverse(p.len()));
            assert_eq!(offered, expected, "path {path:?}");
        }
    }

    #[test]
    fn tries_exact_then_prefix_then_regex_then_any() {
        let regex =
            PathCondition::compile(Some(&PathMatch { regex: Some("/a/.*".into()), ..Default::default() })).unwrap();
        let exact =
            PathCondition::compile(Some(&PathMatch { exact: Some("/a/b".into()), ..Default::default() })).unwrap();
        let mut index = PathIndex::default();
        index.insert(&PathCondition::Any, 0);
        index.insert(&regex, 1);
        index.insert(&prefix("/a"), 2);
        index.insert(&exact, 3);
        index.insert(&prefix("/a/b"), 4);
        let mut offered = Vec::new();
        index.find("/a/b", |id| {
            offered.push(id);
            false
        });
        assert_eq!(offered, [3, 4, 2, 1, 0]);
    }

    #[test]
    fn rejects_bad_conditions() {
        assert!(PathCondition::compile(Some(&PathMatch::default())).is_err());
        assert!(PathCondition::compile(Some(&PathMatch {
            exact: Some("/a".into()),
            prefix: Some("/a".into()),
            regex: None,
        }))
        .is_err());
        assert!(PathCondition::compile(Some(&PathMatch { prefix: Some("api".into()), ..Default::default() })).is_err());
        assert!(PathCondition::compile(Some(&PathMatch { regex: Some("(".into()), ..Default::default() })).is_err());
    }
}
