//! A configured password (a bcrypt hash or plain text) and checking a given one against it.

use std::str::FromStr;
use std::sync::Arc;

use strait_http::PluginError;
use tokio::sync::Semaphore;

use crate::consumer_auth::{digests_equal, sha256, SecretDigest};

/// How a password is configured.
#[derive(Debug)]
pub(crate) enum StoredPassword {
    /// A bcrypt hash (`$2a$`, `$2b$` or `$2y$`, as `htpasswd -B` writes).
    Bcrypt(Arc<str>),
    /// Plain text, kept as its SHA-256 and compared in constant time.
    Plain(SecretDigest),
}

/// Prefixes of the bcrypt hashes understood.
const BCRYPT_PREFIXES: [&str; 3] = ["$2a$", "$2b$", "$2y$"];

/// Prefixes of other password hashes (`htpasswd` without `-B`, crypt(3)), refused rather than
/// taken for plain text.
const OTHER_HASHES: [(&str, &str); 6] = [
    ("$apr1$", "an Apache MD5 hash"),
    ("$1$", "an MD5-crypt hash"),
    ("$5$", "a SHA-256-crypt hash"),
    ("$6$", "a SHA-512-crypt hash"),
    ("$2x$", "a bcrypt hash of the flawed `2x` variant"),
    ("{SHA}", "an unsalted SHA-1 hash"),
];

impl StoredPassword {
    /// Reads a configured password; `path` names it (`consumers[0].credentials.basic_auth[1]`)
    /// in errors.
    pub(crate) fn parse(password: &str, path: &str) -> Result<StoredPassword, PluginError> {
        StoredPassword::classify(password).map_err(|why| PluginError::at("", format!("{path}.password {why}")))
    }

    /// Reads a password, or says what is wrong with it (`is not a valid bcrypt hash`).
    pub(crate) fn classify(password: &str) -> Result<StoredPassword, String> {
        if BCRYPT_PREFIXES.iter().any(|prefix| password.starts_with(prefix)) {
            let parts = bcrypt::HashParts::from_str(password).map_err(|_| "is not a valid bcrypt hash".to_owned())?;
            if !(4..=31).contains(&parts.get_cost()) {
                return Err(format!("has bcrypt cost {}, not between 4 and 31", parts.get_cost()));
            }
            return Ok(StoredPassword::Bcrypt(password.into()));
        }
        if let Some((_, kind)) = OTHER_HASHES.iter().find(|(prefix, _)| password.starts_with(prefix)) {
            return Err(format!("looks like {kind}; only bcrypt hashes (`htpasswd -B`) or plain text are understood"));
        }
        Ok(StoredPassword::Plain(sha256(&[password.as_bytes()])))
    }

    /// Whether a plain password equals `given` (false for a bcrypt hash: see [`bcrypt_matches`]).
    pub(crate) fn plain_matches(&self, given: &[u8]) -> bool {
        match self {
            StoredPassword::Plain(digest) => digests_equal(digest, &sha256(&[given])),
            StoredPassword::Bcrypt(_) => false,
        }
    }
}

/// Whether `given` matches the bcrypt `hash`. bcrypt takes milliseconds on purpose, so it
/// runs on Tokio's blocking threads, at most as many at once as `slots` allows, and the
/// worker goes on serving other requests meanwhile (outside a runtime it runs in place).
pub(crate) async fn bcrypt_matches(given: Vec<u8>, hash: Arc<str>, slots: &Semaphore) -> bool {
    let Ok(_slot) = slots.acquire().await else { return false };
    let verify = move || bcrypt::verify(&given, &hash).unwrap_or(false);
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.spawn_blocking(verify).await.unwrap_or(false),
        Err(_) => verify(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_told_from_plain_text() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        for variant in ["$2a$", "$2b$", "$2y$"] {
            let written = format!("{variant}{}", &hash[4..]);
            assert!(matches!(StoredPassword::parse(&written, "p").unwrap(), StoredPassword::Bcrypt(_)), "{written}");
        }
        let plain = StoredPassword::parse("hunter2", "p").unwrap();
        assert!(plain.plain_matches(b"hunter2") && !plain.plain_matches(b"hunter3") && !plain.plain_matches(b""));
        let broken = StoredPassword::parse("$2b$04$short", "consumers[0].credentials.basic_auth[0]").unwrap_err();
        assert_eq!(broken.message, "consumers[0].credentials.basic_auth[0].password is not a valid bcrypt hash");
        let md5 = StoredPassword::parse("$apr1$abc$def", "p").unwrap_err();
        assert!(md5.message.contains("Apache MD5"), "{}", md5.message);
        let cheap = format!("$2b$03{}", &hash[6..]);
        assert!(StoredPassword::parse(&cheap, "p").unwrap_err().message.contains("cost 3"));
    }

    #[test]
    fn bcrypt_is_checked_on_a_blocking_thread_or_in_place() {
        use std::future::Future;

        let hash: Arc<str> = bcrypt::hash("secret", 4).unwrap().into();
        let slots = Semaphore::new(1);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(runtime.block_on(bcrypt_matches(b"secret".to_vec(), hash.clone(), &slots)));
        assert!(!runtime.block_on(bcrypt_matches(b"Secret".to_vec(), hash.clone(), &slots)));
        // Outside a runtime, in place: ready at the first poll.
        let mut in_place = std::pin::pin!(bcrypt_matches(b"secret".to_vec(), hash, &slots));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert_eq!(in_place.as_mut().poll(&mut context), std::task::Poll::Ready(true));
    }
}
