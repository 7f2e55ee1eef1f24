//! Secret references: a whole string value `{vault://env/NAME}` (Kong's env vault) or
//! `{vault://file/PATH}` is replaced by the secret it names, and error messages never show it.

use std::path::Path;

/// Text that stands for a secret in error messages.
pub(crate) const REDACTED: &str = "<secret>";

/// The secret `text` refers to, when `text` is a reference: `Some(Ok(secret))`, or
/// `Some(Err(message))` when it cannot be read; `None` for any other text.
///
/// `env/NAME` reads the environment variable NAME, upper-cased with `-` read as `_` as Kong
/// does (`{vault://env/db-password}` reads `DB_PASSWORD`). `file/PATH` reads the file, relative
/// to `base` (the configuration file's directory) unless absolute, without its final newline.
pub(crate) fn resolve(
    text: &str,
    base: Option<&Path>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<Result<String, String>> {
    let reference = text.strip_prefix("{vault://")?.strip_suffix('}')?;
    Some(if let Some(name) = reference.strip_prefix("env/") {
        let variable = name.to_ascii_uppercase().replace('-', "_");
        let valid = !variable.is_empty() && variable.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        match lookup(&variable) {
            _ if !valid => Err(format!("`{text}`: `{name}` is not an environment variable name")),
            Some(value) => Ok(value),
            None => Err(format!("`{text}`: environment variable `{variable}` is not set")),
        }
    } else if let Some(file) = reference.strip_prefix("file/") {
        let path = match base {
            Some(base) if Path::new(file).is_relative() => base.join(file),
            _ => Path::new(file).to_path_buf(),
        };
        match std::fs::read_to_string(&path) {
            Ok(content) => {
                let content = content.strip_suffix('\n').unwrap_or(&content);
                Ok(content.strip_suffix('\r').unwrap_or(content).to_owned())
            }
            Err(error) => Err(format!("`{text}`: cannot read `{}`: {error}", path.display())),
        }
    } else {
        Err(format!("`{text}` is not a known vault: write `{{vault://env/NAME}}` or `{{vault://file/PATH}}`"))
    })
}

/// `message` with every secret of `secrets` replaced by [`REDACTED`]: as it is, and as Rust's
/// `{:?}` and JSON escape it (serde's messages quote values that way); longest first, so a
/// secret that contains another is hidden whole.
pub(crate) fn redact(message: &str, secrets: &[String]) -> String {
    let mut forms: Vec<String> = Vec::new();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let debug = format!("{secret:?}");
        let json = serde_json::to_string(secret).unwrap_or_default();
        for form in [secret.clone(), trim_quotes(&debug), trim_quotes(&json)] {
            if !form.is_empty() && !forms.contains(&form) {
                forms.push(form);
            }
        }
    }
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    let mut message = message.to_owned();
    for form in &forms {
        if message.contains(form.as_str()) {
            message = message.replace(form.as_str(), REDACTED);
        }
    }
    message
}

/// `text` without its surrounding double quotes.
fn trim_quotes(text: &str) -> String {
    text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "DB_PASSWORD").then(|| "s3cr3t".to_owned())
    }

    #[test]
    fn env_and_file_references_resolve() {
        assert_eq!(resolve("{vault://env/db-password}", None, &lookup), Some(Ok("s3cr3t".into())));
        assert!(resolve("{vault://env/missing}", None, &lookup).unwrap().unwrap_err().contains("`MISSING` is not set"));
        let dir = std::env::temp_dir().join(format!("strait-secret-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("key"), "from-file\n").unwrap();
        assert_eq!(resolve("{vault://file/key}", Some(&dir), &lookup), Some(Ok("from-file".into())));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(resolve("{vault://aws/x}", None, &lookup).unwrap().is_err());
        assert_eq!(resolve("plain {vault://env/x}", None, &lookup), None);
    }

    #[test]
    fn redaction_hides_every_secret() {
        let secrets = vec!["s3cr3t".to_owned(), String::new()];
        assert_eq!(redact("invalid value \"s3cr3t\" (s3cr3t)", &secrets), "invalid value \"<secret>\" (<secret>)");
        // Escaped as serde quotes it, and a secret inside another.
        let secrets = vec!["abc".to_owned(), "line1\n\"q\"".to_owned(), "abcdef".to_owned()];
        let message = format!("got {:?} and abcdef", "line1\n\"q\"");
        assert_eq!(redact(&message, &secrets), "got \"<secret>\" and <secret>");
    }
}
