//! The consumer an authentication filter identified: known to the filters after it (ACLs,
//! rate limits, consumer-scoped filters), to the access log and, as headers, to the upstream.

use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::context::RequestCtx;

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

/// Every header [`identify`] sets: a client's own fields of these names are removed first.
const IDENTITY_HEADERS: [HeaderName; 5] =
    [CONSUMER_USERNAME, CONSUMER_CUSTOM_ID, CONSUMER_GROUPS, CREDENTIAL_IDENTIFIER, ANONYMOUS_CONSUMER];

/// Who made the request, in [`RequestCtx::extensions`] once a filter authenticated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// The consumer's unique name.
    pub username: Arc<str>,
    /// Its identifier in another system.
    pub custom_id: Option<Arc<str>>,
    /// Its groups.
    pub groups: Arc<[Arc<str>]>,
    /// The credential that identified it; `None` for the anonymous consumer.
    pub credential: Option<Credential>,
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
    /// The consumer configured as `spec`, identified by `credential`.
    pub fn from_config(spec: &strait_config::Consumer, credential: Option<Credential>) -> Consumer {
        Consumer {
            username: spec.username.as_str().into(),
            custom_id: spec.custom_id.as_deref().map(Arc::from),
            groups: spec.groups.iter().map(|g| Arc::from(g.as_str())).collect(),
            credential,
        }
    }

    /// Whether the consumer is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| &**g == group)
    }

    /// The consumer of the request, if a filter identified one.
    pub fn of(ctx: &RequestCtx) -> Option<&Consumer> {
        ctx.extensions.get::<Consumer>()
    }
}

/// Records `consumer` as the request's: in `ctx.extensions` for later filters and the log, and
/// as `x-consumer-*` headers for the upstream (after removing any the client sent, so they
/// cannot be forged). `anonymous` marks the stand-in consumer of a failed authentication.
pub fn identify(headers: &mut HeaderMap, ctx: &mut RequestCtx, consumer: Consumer, anonymous: bool) {
    for name in &IDENTITY_HEADERS {
        headers.remove(name);
    }
    let value = |text: &str| HeaderValue::from_str(text).ok();
    if let Some(username) = value(&consumer.username) {
        headers.insert(CONSUMER_USERNAME, username);
    }
    if let Some(custom_id) = consumer.custom_id.as_deref().and_then(value) {
        headers.insert(CONSUMER_CUSTOM_ID, custom_id);
    }
    if !consumer.groups.is_empty() {
        let groups = consumer.groups.iter().map(|g| &**g).collect::<Vec<_>>().join(", ");
        if let Some(groups) = value(&groups) {
            headers.insert(CONSUMER_GROUPS, groups);
        }
    }
    if let Some(id) = consumer.credential.as_ref().and_then(|c| value(&c.id)) {
        headers.insert(CREDENTIAL_IDENTIFIER, id);
    }
    if anonymous {
        headers.insert(ANONYMOUS_CONSUMER, HeaderValue::from_static("true"));
    }
    ctx.extensions.insert(consumer);
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::context::ConnInfo;

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
        identify(&mut headers, &mut ctx, Consumer::from_config(&spec, Some(credential)), false);
        assert_eq!(headers[CONSUMER_USERNAME], "alice");
        assert_eq!(headers[CONSUMER_CUSTOM_ID], "c-1");
        assert_eq!(headers[CONSUMER_GROUPS], "admin, staff");
        assert_eq!(headers[CREDENTIAL_IDENTIFIER], "alice");
        assert!(!headers.contains_key(ANONYMOUS_CONSUMER));
        let consumer = Consumer::of(&ctx).expect("recorded");
        assert!(consumer.in_group("staff") && !consumer.in_group("root"));
    }
}
