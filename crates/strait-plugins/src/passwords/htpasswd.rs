//! htpasswd files (`user:hash` lines, as `htpasswd -B` writes them), bcrypt hashes only.

use std::collections::HashMap;
use std::path::Path;

use strait_http::PluginError;

use super::StoredPassword;

/// The users of an htpasswd file and their bcrypt hashes, read from `path`; errors name
/// `field` (the config field that gave the path) and the file's line.
pub(crate) fn read(path: &Path, field: &str) -> Result<HashMap<String, StoredPassword>, PluginError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| PluginError::at(field, format!("cannot read `{}`: {error}", path.display())))?;
    parse(&text, &path.display().to_string(), field)
}

/// [`read`] of the file's text; `name` is the file's name in errors.
pub(crate) fn parse(text: &str, name: &str, field: &str) -> Result<HashMap<String, StoredPassword>, PluginError> {
    let mut users = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let at = |message: String| PluginError::at(field, format!("{name}:{}: {message}", index + 1));
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(at("expected `user:hash`".into()));
        };
        if user.is_empty() {
            return Err(at("empty user name".into()));
        }
        let password = match StoredPassword::classify(hash) {
            Ok(password @ StoredPassword::Bcrypt(_)) => password,
            Ok(StoredPassword::Plain(_)) => {
                return Err(at(format!("user `{user}` has no bcrypt hash; make one with `htpasswd -B`")))
            }
            Err(why) => return Err(at(format!("the password of `{user}` {why}"))),
        };
        if users.insert(user.to_owned(), password).is_some() {
            return Err(at(format!("user `{user}` appears twice")));
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_hashes_are_read_and_other_lines_refused_with_their_line() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let text = format!("# staff\nalice:{hash}\n\n  bob:{hash}  \n");
        let users = parse(&text, "users", "htpasswd").unwrap();
        assert_eq!(users.len(), 2);
        assert!(matches!(users["bob"], StoredPassword::Bcrypt(_)));
        for (text, message) in [
            (format!("alice:{hash}\nbob"), "users:2: expected `user:hash`"),
            (format!(":{hash}"), "users:1: empty user name"),
            ("alice:plain".to_owned(), "users:1: user `alice` has no bcrypt hash"),
            ("alice:$apr1$abc$def".to_owned(), "users:1: the password of `alice` looks like an Apache MD5 hash"),
            (format!("alice:{hash}\nalice:{hash}"), "users:2: user `alice` appears twice"),
        ] {
            let error = parse(&text, "users", "htpasswd").unwrap_err();
            assert_eq!(error.path, "htpasswd");
            assert!(error.message.starts_with(message), "{text:?}: {}", error.message);
        }
        let missing = read(Path::new("/nonexistent/users"), "htpasswd").unwrap_err();
        assert!(missing.message.starts_with("cannot read `/nonexistent/users`"), "{}", missing.message);
    }
}
