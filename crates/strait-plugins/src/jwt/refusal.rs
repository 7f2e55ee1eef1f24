//! Why a token was refused, and the 401 answer that says so (RFC 6750 §3).

use http::header::{self, HeaderValue};
use strait_http::{LocalResponse, Reason};

/// Why a request did not authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No token in any configured place.
    NoToken,
    /// Different tokens in several places (or several header fields).
    MultipleTokens,
    /// Not three base64url parts, or a header or payload that is not a JSON object.
    Malformed,
    /// The `alg` header names no algorithm this filter verifies (`none` among them).
    UnsupportedAlgorithm,
    /// A `crit` header: no extension is understood, so any critical one is refused (RFC 7515 §4.1.11).
    UnsupportedCritical,
    /// The claim (or `kid` header) that names the key is absent or not a string.
    NoKeyClaim(String),
    /// No configured key has that name.
    UnknownKey,
    /// The token's `alg` is not the algorithm configured for its key.
    AlgorithmMismatch,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// A claim that must be present is not.
    MissingClaim(String),
    /// A claim has the wrong type (`exp` that is not a number).
    InvalidClaim(String),
    /// `exp` is further away than `maximum_expiration`.
    TooLongLived,
    /// `iss` is not one of `issuers`.
    WrongIssuer,
    /// No `aud` value is one of `audiences`.
    WrongAudience,
}

impl Refusal {
    /// The `error_description` of the challenge; plain ASCII without quotes or backslashes.
    pub fn description(&self) -> String {
        match self {
            Refusal::NoToken => "no token".into(),
            Refusal::MultipleTokens => "multiple tokens provided".into(),
            Refusal::Malformed => "the token is malformed".into(),
            Refusal::UnsupportedAlgorithm => "the token's algorithm is not supported".into(),
            Refusal::UnsupportedCritical => "the token has critical header parameters that are not understood".into(),
            Refusal::NoKeyClaim(name) => format!("the token has no {} naming its key", safe(name)),
            Refusal::UnknownKey => "no key is known for the token".into(),
            Refusal::AlgorithmMismatch => "the token's algorithm is not its key's".into(),
            Refusal::BadSignature => "invalid signature".into(),
            Refusal::Expired => "the token has expired".into(),
            Refusal::NotYetValid => "the token is not valid yet".into(),
            Refusal::MissingClaim(name) => format!("the token lacks the {} claim", safe(name)),
            Refusal::InvalidClaim(name) => format!("the {} claim is not valid", safe(name)),
            Refusal::TooLongLived => "the token expires too far in the future".into(),
            Refusal::WrongIssuer => "the token's issuer is not accepted".into(),
            Refusal::WrongAudience => "the token is not meant for this audience".into(),
        }
    }

    /// The 401 answer: reason `unauthorized` with a `WWW-Authenticate: Bearer` challenge,
    /// carrying `error="invalid_token"` unless no token was sent at all, and a body line
    /// saying why, as the other authentication filters answer.
    pub fn response(&self, realm: Option<&str>) -> LocalResponse {
        let mut challenge = String::from("Bearer");
        let mut separator = " ";
        if let Some(realm) = realm {
            challenge.push_str(&format!(" realm=\"{realm}\""));
            separator = ", ";
        }
        if *self != Refusal::NoToken {
            challenge
                .push_str(&format!("{separator}error=\"invalid_token\", error_description=\"{}\"", self.description()));
        }
        let mut response = LocalResponse::for_reason(Reason::Unauthorized);
        let status = response.status;
        let status_text = status.canonical_reason().unwrap_or("");
        response.body =
            format!("{} {status_text}: {}: {}\n", status.as_str(), Reason::Unauthorized.code(), self.description())
                .into();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// `text` with only the characters an `error_description` may hold (RFC 6750 §3).
fn safe(text: &str) -> String {
    text.chars().filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\').take(64).collect()
}

/// Whether `realm` can stand in a quoted string as it is.
pub fn realm_is_valid(realm: &str) -> bool {
    safe(realm) == realm && !realm.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_token_gets_a_bare_challenge_and_a_bad_token_an_invalid_token_error() {
        let none = Refusal::NoToken.response(None);
        assert_eq!(none.status, 401);
        assert_eq!(none.reason, Some(Reason::Unauthorized));
        assert_eq!(none.headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(none.body, "401 Unauthorized: unauthorized: no token\n");
        let realm = Refusal::NoToken.response(Some("api"));
        assert_eq!(realm.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"api\"");
        let expired = Refusal::Expired.response(Some("api"));
        assert_eq!(
            expired.headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"the token has expired\""
        );
        let quoted = Refusal::MissingClaim("a\"b\\c".into()).response(None);
        assert_eq!(
            quoted.headers[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\", error_description=\"the token lacks the abc claim\""
        );
    }
}
