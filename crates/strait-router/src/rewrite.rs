//! Path rewrites applied before forwarding: strip a prefix, replace the matched prefix, or
//! substitute a regular expression.

use std::borrow::Cow;

use regex::Regex;
use strait_config::Rewrite;

use crate::path::after_prefix;

/// Compiled path rewrite.
///
/// - `strip_prefix` removes the prefix's whole segments (`/api` turns `/api/users` into
///   `/users` and `/api` into `/`); a path not starting with them is left alone.
/// - `replace_prefix` replaces the route's matched prefix: with prefix `/api` and
///   replacement `/v2`, `/api/users` becomes `/v2/users` and `/api` becomes `/v2`. Paths of
///   routes not matched by prefix are left alone.
/// - `regex` replaces every match of the (unanchored) pattern; `$1` or `${name}` in the
///   replacement insert groups (write `${1}x` when a letter follows the group).
///
/// Results always start with `/`: one is added when missing and an emptied path becomes `/`.
#[derive(Debug, Clone)]
pub struct PathRewrite {
    kind: RewriteKind,
}

#[derive(Debug, Clone)]
enum RewriteKind {
    StripPrefix(Box<str>),
    ReplacePrefix(Box<str>),
    Regex { pattern: Regex, replacement: Box<str> },
}

impl PathRewrite {
    /// Compiles a configured rewrite, which must set exactly one field.
    pub fn compile(rewrite: &Rewrite) -> Result<PathRewrite, String> {
        let kind = match (&rewrite.strip_prefix, &rewrite.replace_prefix, &rewrite.regex) {
            (Some(prefix), None, None) => {
                if !prefix.starts_with('/') {
                    return Err(format!("strip_prefix {prefix:?} must start with `/`"));
                }
                RewriteKind::StripPrefix(prefix.as_str().into())
            }
            (None, Some(replacement), None) => RewriteKind::ReplacePrefix(replacement.as_str().into()),
            (None, None, Some(regex)) => RewriteKind::Regex {
                pattern: Regex::new(&regex.pattern)
                    .map_err(|e| format!("invalid rewrite regex {:?}: {e}", regex.pattern))?,
                replacement: regex.replace.as_str().into(),
            },
            _ => return Err("a rewrite sets exactly one of strip_prefix, replace_prefix and regex".into()),
        };
        Ok(PathRewrite { kind })
    }

    /// Returns the new path (must start with '/'; an emptied path becomes "/").
    /// `matched_prefix` is the route's matched prefix, used by replace_prefix.
    pub fn apply<'p>(&self, path: &'p str, matched_prefix: Option<&str>) -> Cow<'p, str> {
        let rewritten = match &self.kind {
            RewriteKind::StripPrefix(prefix) => Cow::Borrowed(after_prefix(path, prefix).unwrap_or(path)),
            RewriteKind::ReplacePrefix(replacement) => {
                match matched_prefix.and_then(|prefix| after_prefix(path, prefix)) {
                    None => Cow::Borrowed(path),
                    Some("") => Cow::Owned(replacement.to_string()),
                    Some(rest) => Cow::Owned(format!("{}{rest}", replacement.trim_end_matches('/'))),
                }
            }
            RewriteKind::Regex { pattern, replacement } => pattern.replace_all(path, &**replacement),
        };
        with_leading_slash(rewritten)
    }
}

fn with_leading_slash(path: Cow<'_, str>) -> Cow<'_, str> {
    if path.starts_with('/') {
        path
    } else if path.is_empty() {
        Cow::Borrowed("/")
    } else {
        Cow::Owned(format!("/{path}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_config::RegexRewrite;

    fn strip(prefix: &str) -> PathRewrite {
        PathRewrite::compile(&Rewrite { strip_prefix: Some(prefix.into()), ..Default::default() }).unwrap()
    }

    fn replace(replacement: &str) -> PathRewrite {
        PathRewrite::compile(&Rewrite { replace_prefix: Some(replacement.into()), ..Default::default() }).unwrap()
    }

    fn regex(pattern: &str, replace: &str) -> PathRewrite {
        PathRewrite::compile(&Rewrite {
            regex: Some(RegexRewrite { pattern: pattern.into(), replace: replace.into() }),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn strips_whole_segments() {
        let api = strip("/api");
        assert_eq!(api.apply("/api/users", None), "/users");
        assert_eq!(api.apply("/api/", None), "/");
        assert_eq!(api.apply("/api", None), "/");
        assert_eq!(api.apply("/apix", None), "/apix");
        assert_eq!(api.apply("/other", None), "/other");
        assert!(matches!(api.apply("/api/users", None), Cow::Borrowed(_)));

        let api_slash = strip("/api/");
        assert_eq!(api_slash.apply("/api/users", None), "/users");
        assert_eq!(api_slash.apply("/api/", None), "/");
        assert_eq!(api_slash.apply("/api", None), "/api");

        assert_eq!(strip("/").apply("/users", None), "/users");
    }

    #[test]
    fn replaces_the_matched_prefix() {
        let v2 = replace("/v2");
        assert_eq!(v2.apply("/api/users", Some("/api")), "/v2/users");
        assert_eq!(v2.apply("/api", Some("/api")), "/v2");
        assert_eq!(v2.apply("/api/", Some("/api")), "/v2/");
        assert_eq!(v2.apply("/api/users", Some("/api/")), "/v2/users");
        assert_eq!(v2.apply("/users", Some("/")), "/v2/users");
        assert_eq!(v2.apply("/api/users", None), "/api/users");

        assert_eq!(replace("/v2/").apply("/api/users", Some("/api")), "/v2/users");
        assert_eq!(replace("/v2/").apply("/api", Some("/api")), "/v2/");
        assert_eq!(replace("/").apply("/api/users", Some("/api")), "/users");
        assert_eq!(replace("/").apply("/api", Some("/api")), "/");
        assert_eq!(replace("").apply("/api", Some("/api")), "/");
        assert_eq!(replace("v2").apply("/api/x", Some("/api")), "/v2/x");
    }

    #[test]
    fn substitutes_regex_groups() {
        let users = regex("^/users/([0-9]+)/profile$", "/profiles/$1");
        assert_eq!(users.apply("/users/42/profile", None), "/profiles/42");
        assert_eq!(users.apply("/users/x/profile", None), "/users/x/profile");

        let named = regex("^/(?P<lang>[a-z]{2})/(.*)$", "/${2}?lang=$lang");
        assert_eq!(named.apply("/en/docs", None), "/docs?lang=en");

        assert_eq!(regex("/+", "/").apply("//a///b", None), "/a/b");
        assert_eq!(regex("^/old", "").apply("/old", None), "/");
        assert_eq!(regex("^/old/", "").apply("/old/page", None), "/page");
    }

    #[test]
    fn rejects_bad_rewrites() {
        assert!(PathRewrite::compile(&Rewrite::default()).is_err());
        assert!(PathRewrite::compile(&Rewrite {
            strip_prefix: Some("/a".into()),
            replace_prefix: Some("/b".into()),
            regex: None,
        })
        .is_err());
        assert!(PathRewrite::compile(&Rewrite { strip_prefix: Some("api".into()), ..Default::default() }).is_err());
        assert!(PathRewrite::compile(&Rewrite {
            regex: Some(RegexRewrite { pattern: "(".into(), replace: "".into() }),
            ..Default::default()
        })
        .is_err());
    }
}
