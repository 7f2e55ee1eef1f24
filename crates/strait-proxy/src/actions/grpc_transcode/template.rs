//! `google.api.http` path templates: `/v1/{name=shelves/*}/books/{book}:verb`, with `*` for
//! one segment and `**` for the rest of the path.

/// One segment of a template.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// This text exactly.
    Literal(String),
    /// Any one segment (`*`).
    One,
    /// Any number of segments, none included (`**`).
    Rest,
}

/// A variable: the field it sets and the template segments it covers.
#[derive(Debug, Clone, PartialEq)]
struct Variable {
    field: Vec<String>,
    start: usize,
    end: usize,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Template {
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
}

/// The field paths of a template's variables and the values a path gave them.
pub(super) type Bindings = Vec<(Vec<String>, String)>;

impl Template {
    /// Parses a template such as `/v1/{name=messages/*}:cancel`.
    pub(super) fn parse(text: &str) -> Result<Template, String> {
        let body = text.strip_prefix('/').ok_or_else(|| format!("path `{text}` does not start with `/`"))?;
        // The verb follows the last `:` outside braces after the last `/`.
        let mut depth = 0;
        let mut verb_at = None;
        for (at, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                '/' if depth == 0 => verb_at = None,
                ':' if depth == 0 => verb_at = Some(at),
                _ => {}
            }
        }
        let (path, verb) = match verb_at {
            Some(at) => (&body[..at], Some(body[at + 1..].to_owned())),
            None => (body, None),
        };
        if verb.as_deref() == Some("") {
            return Err(format!("path `{text}` has an empty verb"));
        }
        let mut template = Template { segments: Vec::new(), variables: Vec::new(), verb };
        let mut rest = path;
        while !rest.is_empty() || template.segments.is_empty() {
            if let Some(inner) = rest.strip_prefix('{') {
                let close = inner.find('}').ok_or_else(|| format!("path `{text}` has an unclosed `{{`"))?;
                let (field, pattern) = match inner[..close].split_once('=') {
                    Some((field, pattern)) => (field, pattern),
                    None => (&inner[..close], "*"),
                };
                let field: Vec<String> = field.split('.').map(str::to_owned).collect();
                if field
                    .iter()
                    .any(|name| name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                {
                    return Err(format!("path `{text}` has a bad variable `{}`", &inner[..close]));
                }
                let start = template.segments.len();
                for part in pattern.split('/') {
                    template.segments.push(segment(part, text)?);
                }
                template.variables.push(Variable { field, start, end: template.segments.len() });
                rest = &inner[close + 1..];
            } else {
                let end = rest.find('/').unwrap_or(rest.len());
                template.segments.push(segment(&rest[..end], text)?);
                rest = &rest[end..];
            }
            match rest.strip_prefix('/') {
                Some(next) if !next.is_empty() => rest = next,
                Some(_) => return Err(format!("path `{text}` ends with `/`")),
                None if rest.is_empty() => break,
                None => return Err(format!("path `{text}` has text after a variable")),
            }
        }
        let rests = template.segments.iter().filter(|s| **s == Segment::Rest).count();
        if rests > 1 || (rests == 1 && template.segments.last() != Some(&Segment::Rest)) {
            return Err(format!("path `{text}`: `**` may only be the last segment"));
        }
        Ok(template)
    }

    /// The field paths of the variables.
    pub(super) fn fields(&self) -> impl Iterator<Item = &[String]> {
        self.variables.iter().map(|v| v.field.as_slice())
    }

    /// Matches a request path (still percent-encoded); the variables' decoded values.
    pub(super) fn matches(&self, path: &str) -> Option<Bindings> {
        let path = path.strip_prefix('/')?;
        let path = match &self.verb {
            Some(verb) => path.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => path,
        };
        let parts: Vec<&str> = if path.is_empty() { Vec::new() } else { path.split('/').collect() };
        // Segment `i` matches part `i`; only `**`, always last, takes the rest.
        for (index, segment) in self.segments.iter().enumerate() {
            let part = parts.get(index);
            let fits = match segment {
                Segment::Literal(text) => part.is_some_and(|p| percent_decode(p) == *text),
                Segment::One => part.is_some_and(|p| !p.is_empty()),
                Segment::Rest => true,
            };
            if !fits {
                return None;
            }
        }
        let taken = match self.segments.last() {
            Some(Segment::Rest) => parts.len().max(self.segments.len() - 1),
            _ if parts.len() == self.segments.len() => parts.len(),
            _ => return None,
        };
        let mut bindings = Vec::with_capacity(self.variables.len());
        for variable in &self.variables {
            let end = if variable.end == self.segments.len() { taken } else { variable.end };
            let value: Vec<String> = parts[variable.start.min(end)..end].iter().map(|p| percent_decode(p)).collect();
            bindings.push((variable.field.clone(), value.join("/")));
        }
        Some(bindings)
    }
}

/// One segment of `template`'s text.
fn segment(text: &str, template: &str) -> Result<Segment, String> {
    match text {
        "*" => Ok(Segment::One),
        "**" => Ok(Segment::Rest),
        "" => Err(format!("path `{template}` has an empty segment")),
        _ if text.contains(['{', '}', '=', '*']) => Err(format!("path `{template}` has a bad segment `{text}`")),
        _ => Ok(Segment::Literal(text.to_owned())),
    }
}

/// `%XX` escapes decoded (invalid UTF-8 is replaced); `+` stays `+` in paths.
pub(super) fn percent_decode(raw: &str) -> String {
    decode(raw, false)
}

/// `%XX` escapes decoded, and `+` as a space when `plus_is_space` (query strings).
pub(super) fn decode(raw: &str, plus_is_space: bool) -> String {
    let bytes = raw.as_bytes();
    let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
            (b'+', _, _) if plus_is_space => out.push(b' '),
            (byte, _, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(template: &str, path: &str) -> Option<Vec<(String, String)>> {
        let template = Template::parse(template).unwrap();
        template.matches(path).map(|b| b.into_iter().map(|(f, v)| (f.join("."), v)).collect())
    }

    #[test]
    fn simple_variables_take_one_segment() {
        assert_eq!(bound("/v1/users/{id}", "/v1/users/42"), Some(vec![("id".into(), "42".into())]));
        assert_eq!(bound("/v1/users/{id}", "/v1/users/42/x"), None);
        assert_eq!(bound("/v1/users/{id}", "/v1/users"), None);
        assert_eq!(bound("/v1/users/{id}", "/v1/users/"), None);
        assert_eq!(bound("/v1/users/{user.id}", "/v1/users/a%20b"), Some(vec![("user.id".into(), "a b".into())]));
    }

    #[test]
    fn variables_with_patterns_keep_their_slashes() {
        assert_eq!(
            bound("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books/2"),
            Some(vec![("name".into(), "shelves/1/books/2".into())])
        );
        assert_eq!(bound("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/novels/2"), None);
        assert_eq!(bound("/files/{path=**}", "/files/a/b/c.txt"), Some(vec![("path".into(), "a/b/c.txt".into())]));
        assert_eq!(bound("/files/{path=**}", "/files"), Some(vec![("path".into(), "".into())]));
        assert_eq!(bound("/static/**", "/static/x/y"), Some(vec![]));
    }

    #[test]
    fn verbs_are_matched_and_stripped() {
        assert_eq!(
            bound("/v1/{name=messages/*}:cancel", "/v1/messages/7:cancel"),
            Some(vec![("name".into(), "messages/7".into())])
        );
        assert_eq!(bound("/v1/{name=messages/*}:cancel", "/v1/messages/7"), None);
        assert_eq!(bound("/v1/{name=messages/*}:cancel", "/v1/messages/7:undo"), None);
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in ["v1/x", "/v1/{id", "/v1/**/x", "/v1/", "/v1/{a-b}", "/v1/x:", "/v1//x", "/v1/{id}x"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
