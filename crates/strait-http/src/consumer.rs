//! The consumer an authentication filter identified: known to the filters after it (ACLs,
//! rate limits, consumer-scoped filters), to the access log and, as headers, to the upstream.

use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

/// `x-consumer-username`: the consumer's username, sent upstream (Kong's header names).
pub const CONSUMER_USERNAME: HeaderName = HeaderName::from_static("x-consumer-username");
/// `x-consumer-custom-id`: the consumer's `custom_id`, when it has one.
pub const CONSUMER_CUSTOM_ID: HeaderName = HeaderName::from_static("x-consumer-custom-id");
/// `x-consumer-groups`: the consumer's groups, comma-separated.
pub const CONSUMER_GROUPS: HeaderName = HeaderName::from_static("x-consumer-groups");
/// `x-credential-identifier`: which credential identified the consumer.
pub const CREDENTIAL_IDENTIFIER: HeaderName = HeaderName::from_static("x-credential-identifier");
/// `x-anonymous-consumer: true` when authentication failed and the anonymous consumer was used.
pub const ANONYMOUS_CONSUMER: HeaderName = HeaderName::from_static("x-anonymous-consumer");

/// Every header [`set_identity_headers`] sets: a client's own fields of these names are
/// removed first.
const IDENTITY_HEADERS: [HeaderName; 5] =
    [CONSUMER_USERNAME, CONSUMER_CUSTOM_ID, CONSUMER_GROUPS, CREDENTIAL_IDENTIFIER, ANONYMOUS_CONSUMER];

/// Who made the request, in [`crate::RequestCtx::consumer`] once a filter authenticated it.
/// Made with [`Consumer::new`] (or [`Consumer::from_config`]) and [`Consumer::with_credential`],
/// which also make its header values once, so identifying a request copies no text. One
/// shared pointer: a request that takes the consumer of a cached token counts one reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer(Arc<Identity>);

/// What a [`Consumer`] is: its fields, read through the consumer.
#[derive(Debug, PartialEq, Eq)]
pub struct Identity {
    /// The consumer's unique name.
    pub username: Arc<str>,
    /// Its identifier in another system.
    pub custom_id: Option<Arc<str>>,
    /// Its groups.
    pub groups: Arc<[Arc<str>]>,
    /// The credential that identified it; `None` for the anonymous consumer.
    pub credential: Option<Credential>,
    /// The `x-consumer-*` and `x-credential-identifier` values for the upstream.
    values: IdentityValues,
}

impl std::ops::Deref for Consumer {
    type Target = Identity;

    fn deref(&self) -> &Identity {
        &self.0
    }
}

/// A consumer's identity header values, made once.
#[derive(Debug, PartialEq, Eq)]
struct IdentityValues {
    username: Option<HeaderValue>,
    custom_id: Option<HeaderValue>,
    groups: Option<HeaderValue>,
    credential: Option<HeaderValue>,
}

/// A credential that identified a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The filter kind that checked it: `key_auth`, `basic_auth`, `jwt`.
    pub kind: &'static str,
    /// Which credential: the basic-auth user name, the JWT key; for API keys, a digest-free
    /// label (`<username>#<index>`), so the key itself is never logged or sent upstream.
    pub id: Arc<str>,
}

impl Consumer {
    /// A consumer named `username`, identified by `credential`.
    pub fn new(
        username: Arc<str>,
        custom_id: Option<Arc<str>>,
        groups: Arc<[Arc<str>]>,
        credential: Option<Credential>,
    ) -> Consumer {
        let value = |text: &str| HeaderValue::from_str(text).ok();
        let joined = groups.iter().map(|g| &**g).collect::<Vec<_>>().join(", ");
        let values = IdentityValues {
            username: value(&username),
            custom_id: custom_id.as_deref().and_then(value),
            groups: if groups.is_empty() { None } else { value(&joined) },
            credential: credential.as_ref().and_then(|c| value(&c.id)),
        };
        Consumer(Arc::new(Identity { username, custom_id, groups, credential, values }))
    }

    /// The consumer configured as `spec`, identified by `credential`.
    pub fn from_config(spec: &strait_config::Consumer, credential: Option<Credential>) -> Consumer {
        Consumer::new(
            spec.username.as_str().into(),
            spec.custom_id.as_deref().map(Arc::from),
            spec.groups.iter().map(|g| Arc::from(g.as_str())).collect(),
            credential,
        )
    }

    /// The same consumer identified by `credential` instead.
    pub fn with_credential(self, credential: Option<Credential>) -> Consumer {
        Consumer::new(self.username.clone(), self.custom_id.clone(), self.groups.clone(), credential)
    }

    /// Whether the consumer is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| &**g == group)
    }

    /// Sets its `x-consumer-*` headers in `headers`, after removing any the client sent (so
    /// they cannot be forged). `anonymous` marks the stand-in consumer of a failed
    /// authentication.
    pub fn set_identity_headers(&self, headers: &mut HeaderMap, anonymous: bool) {
        // A look at every name costs less than five removals, and clients rarely send these.
        let forged = headers.keys().any(|name| match name.as_str().as_bytes() {
            [b'x', b'-', rest @ ..] => {
                rest.starts_with(b"consumer-") || rest.starts_with(b"credential-") || rest.starts_with(b"anonymous-")
            }
            _ => false,
        });
        if forged {
            for name in &IDENTITY_HEADERS {
                headers.remove(name);
            }
        }
        let values = &self.values;
        let fields = [
            (CONSUMER_USERNAME, &values.username),
            (CONSUMER_CUSTOM_ID, &values.custom_id),
            (CONSUMER_GROUPS, &values.groups),
            (CREDENTIAL_IDENTIFIER, &values.credential),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                headers.insert(name, value.clone());
            }
        }
        if anonymous {
            headers.insert(ANONYMOUS_CONSUMER, HeaderValue::from_static("true"));
        }
    }
}

/// The claims of the request's verified bearer token (a `jwt` filter's), in
/// [`crate::RequestCtx::token`] for later filters.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The key that verified it (the credential's `key`, or the JWKS `kid`).
    pub key: Arc<str>,
    /// The token's payload.
    pub claims: Arc<Map<String, Value>>,
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::context::{ConnInfo, RequestCtx};

    fn ctx() -> RequestCtx {
        let peer = "127.0.0.1:5000".parse().unwrap();
        let conn =
            ConnInfo { peer, listener: "web".into(), scheme: "http", version: http::Version::HTTP_11, tls: None };
        RequestCtx::new(Rc::new(conn), peer.ip())
    }

    #[test]
    fn identify_replaces_forged_identity_headers_and_records_the_consumer() {
        let spec = strait_config::Consumer {
            username: "alice".into(),
            custom_id: Some("c-1".into()),
            groups: vec!["admin".into(), "staff".into()],
            ..Default::default()
        };
        let credential = Credential { kind: "basic_auth", id: "alice".into() };
        let mut headers = HeaderMap::new();
        headers.insert(CONSUMER_USERNAME, HeaderValue::from_static("mallory"));
        headers.insert(ANONYMOUS_CONSUMER, HeaderValue::from_static("true"));
        let mut ctx = ctx();
        ctx.identify(&mut headers, Consumer::from_config(&spec, Some(credential)), false);
        assert_eq!(headers[CONSUMER_USERNAME], "alice");
        assert_eq!(headers[CONSUMER_CUSTOM_ID], "c-1");
        assert_eq!(headers[CONSUMER_GROUPS], "admin, staff");
        assert_eq!(headers[CREDENTIAL_IDENTIFIER], "alice");
        assert!(!headers.contains_key(ANONYMOUS_CONSUMER));
        let consumer = ctx.consumer.as_ref().expect("recorded");
        assert!(consumer.in_group("staff") && !consumer.in_group("root"));
        // Without forged fields, the consumer's are set all the same.
        let mut clean = HeaderMap::new();
        consumer.clone().with_credential(None).set_identity_headers(&mut clean, true);
        assert_eq!(clean[CONSUMER_USERNAME], "alice");
        assert!(!clean.contains_key(CREDENTIAL_IDENTIFIER));
        assert_eq!(clean[ANONYMOUS_CONSUMER], "true");
    }
}
