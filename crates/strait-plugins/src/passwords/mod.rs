//! What the Basic authentication filters (`basic_auth`, `proxy_auth`) share: stored passwords
//! (bcrypt hashes or plain text), the user name and password of a `Basic` field, htpasswd
//! files, and checking a password with a memory of the credentials verified lately.
//!
//! bcrypt is slow on purpose, so it runs on a blocking thread, at most as many at once as the
//! machine has cores, and each filter remembers the credentials it verified lately (see
//! [`verified`]): a keep-alive client pays bcrypt once, not on every request.

pub(crate) mod htpasswd;
mod stored;
mod verified;

use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use strait_http::Phase;
use tokio::sync::Semaphore;

use self::stored::bcrypt_matches;
pub(crate) use self::stored::StoredPassword;
use self::verified::Verified;

/// How many verified credentials each filter remembers.
pub const VERIFIED_CAPACITY: usize = 1024;

/// Why a `Basic` field's credentials are refused.
pub(crate) const INVALID: &str = "invalid authentication credentials";

/// Why a field is not `Basic` credentials at all.
pub(crate) const NOT_BASIC: &str = "no basic-auth credentials found in request";

/// Base64 as RFC 7617 uses it, also accepting a value whose `=` padding was left out.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The user name and password of a `Basic base64(user:password)` field value (the scheme is
/// case-insensitive), or why there are none ([`NOT_BASIC`] or [`INVALID`]).
pub(crate) fn basic_credentials(field: &[u8]) -> Result<(String, Vec<u8>), &'static str> {
    let scheme_end = field.iter().position(|&b| b == b' ').ok_or(INVALID)?;
    if !field[..scheme_end].eq_ignore_ascii_case(b"basic") {
        return Err(NOT_BASIC);
    }
    let encoded = field[scheme_end..].trim_ascii();
    let decoded = BASE64.decode(encoded).map_err(|_| INVALID)?;
    let colon = decoded.iter().position(|&b| b == b':').ok_or(INVALID)?;
    let user = std::str::from_utf8(&decoded[..colon]).map_err(|_| INVALID)?.to_owned();
    Ok((user, decoded[colon + 1..].to_vec()))
}

/// Checks given passwords against stored ones for one configured filter: plain passwords at
/// once, bcrypt hashes on a blocking thread unless verified lately.
#[derive(Debug)]
pub(crate) struct PasswordCheck {
    /// Credentials whose bcrypt check succeeded lately.
    verified: Verified,
    /// Bounds the bcrypt checks running at once, so a flood of wrong passwords cannot occupy
    /// more threads than the machine has cores.
    bcrypt_slots: Semaphore,
}

impl PasswordCheck {
    /// A check remembering [`VERIFIED_CAPACITY`] credentials, running at most one bcrypt check
    /// per core at once.
    pub(crate) fn new() -> PasswordCheck {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordCheck { verified: Verified::new(VERIFIED_CAPACITY), bcrypt_slots: Semaphore::new(cores) }
    }

    /// Whether `user`'s `given` password matches `stored`: ready at once for a plain password
    /// or a bcrypt credential verified lately, a future otherwise.
    pub(crate) fn matches<'a>(&'a self, stored: &'a StoredPassword, user: &str, given: Vec<u8>) -> Phase<'a, bool> {
        let StoredPassword::Bcrypt(hash) = stored else {
            return Phase::Ready(stored.plain_matches(&given));
        };
        let entry = Verified::entry(hash, user, &given);
        if self.verified.contains(&entry) {
            return Phase::Ready(true);
        }
        Phase::wait(async move {
            let matches = bcrypt_matches(given, hash.clone(), &self.bcrypt_slots).await;
            if matches {
                self.verified.insert(entry);
            }
            matches
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(text: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(text))
    }

    #[test]
    fn basic_fields_are_decoded_or_refused_with_a_reason() {
        let (user, password) = basic_credentials(encoded("alice:a:b").as_bytes()).unwrap();
        assert_eq!((user.as_str(), &password[..]), ("alice", &b"a:b"[..]));
        let unpadded = encoded("bob:builder").trim_end_matches('=').replace("Basic ", "bAsIc   ");
        assert_eq!(basic_credentials(unpadded.as_bytes()).unwrap().0, "bob");
        for (field, why) in
            [("Bearer abc", NOT_BASIC), ("Basic", INVALID), ("Basic !!!", INVALID), (&*encoded("no colon"), INVALID)]
        {
            assert_eq!(basic_credentials(field.as_bytes()).unwrap_err(), why, "{field}");
        }
    }

    #[test]
    fn a_bcrypt_match_is_remembered_and_a_mismatch_is_not() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let check = PasswordCheck::new();
        let stored = StoredPassword::parse(&bcrypt::hash("secret", 4).unwrap(), "p").unwrap();
        for _ in 0..2 {
            let wrong = check.matches(&stored, "alice", b"Secret".to_vec());
            assert!(matches!(wrong, Phase::Wait(_)), "a wrong password is checked every time");
            assert!(!runtime.block_on(wrong.resolve()));
        }
        assert!(runtime.block_on(check.matches(&stored, "alice", b"secret".to_vec()).resolve()));
        assert!(matches!(check.matches(&stored, "alice", b"secret".to_vec()), Phase::Ready(true)));
        assert!(matches!(check.matches(&stored, "bob", b"secret".to_vec()), Phase::Wait(_)), "per user");
        let plain = StoredPassword::parse("builder", "p").unwrap();
        assert!(matches!(check.matches(&plain, "bob", b"builder".to_vec()), Phase::Ready(true)));
        assert!(matches!(check.matches(&plain, "bob", b"builder!".to_vec()), Phase::Ready(false)));
    }
}
