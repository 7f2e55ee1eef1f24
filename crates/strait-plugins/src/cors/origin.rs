//! Which origins a `cors` filter allows: `*`, exact origins, or `~` regular expressions.

use regex::Regex;

/// The compiled `origins` list.
#[derive(Debug, Clone)]
pub(crate) enum Origins {
    /// `*`: every origin.
    Any,
    /// Only these.
    Listed(Vec<OriginPattern>),
}

/// One entry of `origins` other than `*`.
#[derive(Debug, Clone)]
pub(crate) enum OriginPattern {
    /// An origin (`https://app.example.com`, or `null`), normalized: lower case, no default port.
    Exact(String),
    /// `~<regex>`: the whole `Origin` value must match.
    Pattern(Regex),
}

impl Origins {
    /// Compiles the configured entries; the error is the index of the bad entry and why.
    pub(crate) fn compile(entries: &[String]) -> Result<Origins, (usize, String)> {
        if entries.is_empty() {
            return Err((0, "list at least one origin, or `*` for every origin".to_owned()));
        }
        if let Some(star) = entries.iter().position(|e| e.trim() == "*") {
            if entries.len() > 1 {
                return Err((star, "`*` allows every origin: list it alone".to_owned()));
            }
            return Ok(Origins::Any);
        }
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| OriginPattern::parse(e).map_err(|m| (i, m)))
            .collect::<Result<_, _>>()
            .map(Origins::Listed)
    }

    /// Whether the request's `Origin` value is allowed.
    pub(crate) fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::Listed(patterns) => {
                let normalized = normalize(origin);
                patterns.iter().any(|pattern| match pattern {
                    OriginPattern::Exact(exact) => normalized.as_deref() == Some(exact.as_str()),
                    OriginPattern::Pattern(regex) => regex.is_match(origin),
                })
            }
        }
    }
}

impl OriginPattern {
    /// Parses one entry: `~regex` or an origin.
    fn parse(entry: &str) -> Result<OriginPattern, String> {
        let entry = entry.trim();
        if let Some(pattern) = entry.strip_prefix('~') {
            // Anchored at both ends: `~https://.*\.example\.com` must not allow
            // `https://example.com.evil.test` by matching a part of it.
            return Regex::new(&format!("^(?:{pattern})$"))
                .map(OriginPattern::Pattern)
                .map_err(|e| format!("invalid regular expression: {e}"));
        }
        normalize(entry).map(OriginPattern::Exact).ok_or_else(|| {
            format!(
                "`{entry}` is not an origin: write `scheme://host[:port]` without a path (`https://app.example.com`), `*`, or `~` and a regular expression"
            )
        })
    }
}

/// An origin as browsers serialize it (RFC 6454 §6.2): `scheme://host[:port]` in lower case,
/// without the scheme's default port; or `null`. `None` when `text` is not one.
fn normalize(text: &str) -> Option<String> {
    if text.eq_ignore_ascii_case("null") {
        return Some("null".to_owned());
    }
    let (scheme, rest) = text.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let mut host = rest.to_ascii_lowercase();
    // The port is what follows the last `:` outside an IPv6 literal (`[::1]:8080`).
    if let Some(colon) = host.rfind(':').filter(|&i| !host[i..].contains(']')) {
        let port = &host[colon + 1..];
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err() {
            return None;
        }
        let default = matches!((scheme.as_str(), port), ("http" | "ws", "80") | ("https" | "wss", "443"));
        if default {
            host.truncate(colon);
        }
    }
    if host.is_empty() || host.starts_with(':') {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(entries: &[&str]) -> Origins {
        Origins::compile(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn exact_origins_compare_as_browsers_serialize_them() {
        let list = origins(&["HTTPS://App.Example.com:443", "http://localhost:3000", "http://[::1]:8080"]);
        assert!(list.allows("https://app.example.com"));
        assert!(list.allows("http://localhost:3000"));
        assert!(list.allows("http://[::1]:8080"));
        assert!(!list.allows("http://app.example.com"), "the scheme counts");
        assert!(!list.allows("http://localhost:3001"), "the port counts");
        assert!(!list.allows("https://app.example.com.evil.test"));
        assert!(!list.allows("null"));
    }

    #[test]
    fn regex_entries_match_the_whole_origin() {
        let list = origins(&[r"~https://[a-z0-9-]+\.example\.com"]);
        assert!(list.allows("https://shop.example.com"));
        assert!(!list.allows("https://shop.example.com.evil.test"), "anchored at the end");
        assert!(!list.allows("xhttps://shop.example.com"), "anchored at the start");
        assert!(!list.allows("https://example.com"));
    }

    #[test]
    fn star_allows_every_origin_and_stands_alone() {
        assert!(matches!(origins(&["*"]), Origins::Any));
        assert!(origins(&["*"]).allows("https://anything.test"));
        let error = Origins::compile(&["https://a.test".into(), "*".into()]).unwrap_err();
        assert_eq!(error.0, 1);
    }

    #[test]
    fn bad_entries_are_refused_with_their_index() {
        let bad = |entries: &[&str]| Origins::compile(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>());
        assert_eq!(bad(&[]).unwrap_err().0, 0);
        assert_eq!(bad(&["https://a.test", "~(unclosed"]).unwrap_err().0, 1);
        assert!(bad(&["~(unclosed"]).unwrap_err().1.contains("regular expression"));
        for entry in ["example.com", "https://a.test/path", "https://", "https://a.test:99999", "https://a.test:x"] {
            assert!(bad(&[entry]).is_err(), "{entry}");
        }
    }
}
