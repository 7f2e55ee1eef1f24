//! What the authentication filters (`key_auth`, `basic_auth`) share: the anonymous consumer,
//! the 401 answer with its challenge, and the digests secrets are looked up and compared by.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use sha2::{Digest, Sha256};
use strait_http::consumer::Consumer;
use strait_http::registry::BuildEnv;
use strait_http::{Flow, LocalResponse, PluginError, Reason, RequestCtx};
use subtle::ConstantTimeEq;

/// The SHA-256 of a secret: what API keys are looked up by and plain passwords compared as,
/// so no comparison ever runs over the secret itself.
pub(crate) type SecretDigest = [u8; 32];

/// The SHA-256 of `parts`, one after the other.
pub(crate) fn sha256(parts: &[&[u8]]) -> SecretDigest {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Whether two digests are equal, in a time that does not depend on where they differ.
pub(crate) fn digests_equal(a: &SecretDigest, b: &SecretDigest) -> bool {
    a.ct_eq(b).into()
}

/// The consumer a filter's `anonymous` field names, looked up in the configuration's
/// `consumers` (an unknown name is an error on that field).
pub(crate) fn anonymous_consumer(name: Option<&str>, env: &BuildEnv<'_>) -> Result<Option<Consumer>, PluginError> {
    let Some(name) = name else { return Ok(None) };
    match env.config.consumers.iter().find(|c| c.username == name) {
        Some(spec) => Ok(Some(Consumer::from_config(spec, None))),
        None => {
            let known: Vec<&str> = env.config.consumers.iter().map(|c| c.username.as_str()).collect();
            let known = if known.is_empty() { "none are configured".to_owned() } else { known.join(", ") };
            Err(PluginError::at("anonymous", format!("unknown consumer `{name}`; consumers: {known}")))
        }
    }
}

/// `<scheme> realm="<realm>"`, the challenge of a filter's 401 answers; `realm` must be
/// printable ASCII without quotes or backslashes.
pub(crate) fn challenge(scheme: &str, realm: &str) -> Result<HeaderValue, PluginError> {
    let printable = |c: char| c.is_ascii_graphic() || c == ' ';
    if realm.is_empty() || !realm.chars().all(|c| printable(c) && c != '"' && c != '\\') {
        return Err(PluginError::at("realm", "must be printable ASCII, not empty, without `\"` or `\\`"));
    }
    HeaderValue::from_str(&format!("{scheme} realm=\"{realm}\"")).map_err(|_| PluginError::at("realm", "invalid"))
}

/// What an authentication filter does with a request that has no valid credential.
#[derive(Debug, Clone)]
pub(crate) struct Unauthenticated {
    /// The `WWW-Authenticate` value of the 401 answer.
    pub(crate) challenge: HeaderValue,
    /// The consumer such requests go on as, instead of being refused.
    pub(crate) anonymous: Option<Consumer>,
}

impl Unauthenticated {
    /// Whether the filter has nothing to do: it has an anonymous consumer and an earlier filter
    /// already identified a consumer by a credential (so several authentication filters with
    /// `anonymous` accept a request that any one of them accepts, as in Kong).
    pub(crate) fn already_authenticated(&self, ctx: &RequestCtx) -> bool {
        self.anonymous.is_some() && ctx.consumer.as_ref().is_some_and(|c| c.credential.is_some())
    }

    /// Goes on as the anonymous consumer (`x-anonymous-consumer: true`) if there is one;
    /// otherwise answers 401 `unauthorized` with the challenge and `why` in the body.
    pub(crate) fn refuse(&self, headers: &mut HeaderMap, ctx: &mut RequestCtx, why: &str) -> Flow {
        if let Some(anonymous) = &self.anonymous {
            ctx.identify(headers, anonymous.clone(), true);
            return Flow::Continue;
        }
        let mut answer = LocalResponse::for_reason(Reason::Unauthorized);
        let status = answer.status;
        let status_text = status.canonical_reason().unwrap_or("");
        answer.body =
            Bytes::from(format!("{} {status_text}: {}: {why}\n", status.as_str(), Reason::Unauthorized.code()));
        answer.headers.insert(WWW_AUTHENTICATE, self.challenge.clone());
        Flow::respond(answer)
    }
}

/// A request context for unit tests, from 127.0.0.1.
#[cfg(test)]
pub(crate) fn test_ctx(client_ip: &str) -> RequestCtx {
    use std::rc::Rc;
    use strait_http::context::ConnInfo;

    let peer = "127.0.0.1:5000".parse().unwrap();
    let conn = ConnInfo { peer, listener: "web".into(), scheme: "http", version: http::Version::HTTP_11, tls: None };
    RequestCtx::new(Rc::new(conn), client_ip.parse().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realms_that_would_break_the_challenge_are_refused() {
        assert_eq!(challenge("Key", "strait").unwrap(), "Key realm=\"strait\"");
        assert_eq!(challenge("Basic", "my api").unwrap(), "Basic realm=\"my api\"");
        for bad in ["", "a\"b", "a\\b", "naïve", "a\nb"] {
            assert_eq!(challenge("Basic", bad).unwrap_err().path, "realm", "{bad:?}");
        }
    }

    #[test]
    fn digests_compare_equal_only_when_equal() {
        let a = sha256(&[b"alice", b":", b"secret"]);
        assert!(digests_equal(&a, &sha256(&[b"alice:secret"])));
        assert!(!digests_equal(&a, &sha256(&[b"alice:secreT"])));
    }

    #[test]
    fn refusal_is_a_401_with_the_challenge_unless_anonymous() {
        let config = strait_config::Config {
            consumers: vec![strait_config::Consumer { username: "guest".into(), ..Default::default() }],
            ..Default::default()
        };
        let env = BuildEnv { config: &config };
        let unknown = anonymous_consumer(Some("nobody"), &env).unwrap_err();
        assert_eq!(unknown.path, "anonymous");
        assert!(unknown.message.contains("unknown consumer `nobody`; consumers: guest"), "{}", unknown.message);

        let mut refusal = Unauthenticated { challenge: challenge("Key", "strait").unwrap(), anonymous: None };
        let mut headers = HeaderMap::new();
        let mut ctx = test_ctx("127.0.0.1");
        let Flow::Respond(answer) = refusal.refuse(&mut headers, &mut ctx, "no API key found in request") else {
            panic!("refused")
        };
        assert_eq!(answer.status, 401);
        assert_eq!(answer.headers[WWW_AUTHENTICATE], "Key realm=\"strait\"");
        assert_eq!(answer.body, "401 Unauthorized: unauthorized: no API key found in request\n");

        refusal.anonymous = anonymous_consumer(Some("guest"), &env).unwrap();
        assert!(matches!(refusal.refuse(&mut headers, &mut ctx, "-"), Flow::Continue));
        assert_eq!(headers["x-consumer-username"], "guest");
        assert_eq!(headers["x-anonymous-consumer"], "true");
        assert!(!refusal.already_authenticated(&ctx), "the anonymous consumer is no authentication");
    }
}
