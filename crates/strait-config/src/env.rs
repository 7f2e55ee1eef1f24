//! `${VAR}` and `${VAR:-default}` references in configuration strings.

/// Expands environment references in `text`, looking variables up with `lookup`.
///
/// `${VAR}` is replaced by the variable's value and is an error when it is unset;
/// `${VAR:-default}` uses `default` when the variable is unset or empty; `$${` is a literal
/// `${`. A `$` not followed by `{` is kept as it is.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if !text.contains("${") {
        return Ok(text.to_owned());
    }
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        output.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(escaped) = after.strip_prefix("$${") {
            output.push_str("${");
            rest = escaped;
        } else if let Some(reference) = after.strip_prefix("${") {
            let end = reference
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in `{text}`: close it with `}}` or write `$${{`"))?;
            output.push_str(&resolve(&reference[..end], lookup)?);
            rest = &reference[end + 1..];
        } else {
            output.push('$');
            rest = &after[1..];
        }
    }
    output.push_str(rest);
    Ok(output)
}

/// Resolves the inside of one `${...}` reference.
fn resolve(reference: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match reference.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (reference, None),
    };
    if !is_variable_name(name) {
        return Err(format!(
            "`${{{reference}}}` is not a valid reference: write `${{NAME}}` or `${{NAME:-default}}` \
             with NAME made of letters, digits and `_`"
        ));
    }
    match (lookup(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(format!(
            "environment variable `{name}` is not set; set it or give a default with `${{{name}:-default}}`"
        )),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.internal".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_expand() {
        assert_eq!(expand("${HOST}:5432", &lookup).unwrap(), "db.internal:5432");
        assert_eq!(expand("${PORT:-8080}", &lookup).unwrap(), "8080");
        assert_eq!(expand("${HOST:-other}", &lookup).unwrap(), "db.internal");
        assert_eq!(expand("${EMPTY:-fallback}", &lookup).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY}", &lookup).unwrap(), "");
        assert_eq!(expand("${MISSING:-}", &lookup).unwrap(), "");
        assert_eq!(expand("a${HOST}b${HOST}c", &lookup).unwrap(), "adb.internalbdb.internalc");
    }

    #[test]
    fn text_without_references_is_kept() {
        assert_eq!(expand("price: $5 {x}", &lookup).unwrap(), "price: $5 {x}");
        assert_eq!(expand("ends with $", &lookup).unwrap(), "ends with $");
        assert_eq!(expand("$$5", &lookup).unwrap(), "$$5");
    }

    #[test]
    fn double_dollar_escapes() {
        assert_eq!(expand("$${HOST}", &lookup).unwrap(), "${HOST}");
        assert_eq!(expand("$${HOST} ${HOST}", &lookup).unwrap(), "${HOST} db.internal");
    }

    #[test]
    fn bad_references_are_errors() {
        assert!(expand("${MISSING}", &lookup).unwrap_err().contains("`MISSING` is not set"));
        assert!(expand("${HOST", &lookup).unwrap_err().contains("unterminated"));
        assert!(expand("${1BAD}", &lookup).unwrap_err().contains("not a valid reference"));
        assert!(expand("${}", &lookup).unwrap_err().contains("not a valid reference"));
    }
}
