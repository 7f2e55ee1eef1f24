//! What a limit counts by (`limit_by`): each request's key in the counter store.

use std::fmt::{self, Write};
use std::ops::Deref;

use http::header::HeaderName;
use http::request;
use serde::Deserialize;
use smallvec::SmallVec;
use strait_http::{PluginError, RequestCtx};

/// Which requests share a counter, as Kong's `limit_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitBy {
    /// The authenticated consumer; the client address when there is none.
    Consumer,
    /// The credential that identified the consumer; the client address when there is none.
    Credential,
    /// The client address.
    Ip,
    /// The value of the request field `header_name`; the client address when it is absent.
    Header,
    /// Requests for exactly `path` share one counter; any other request counts by client address.
    Path,
    /// The route (by name): on a route's chain, one counter for the whole route.
    Route,
    /// The cluster the route forwards to (Kong's service).
    Service,
}

/// A compiled `limit_by`: how to find a request's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// See [`LimitBy::Consumer`].
    Consumer,
    /// See [`LimitBy::Credential`].
    Credential,
    /// See [`LimitBy::Ip`].
    Ip,
    /// See [`LimitBy::Header`].
    Header(HeaderName),
    /// See [`LimitBy::Path`].
    Path(String),
    /// See [`LimitBy::Route`].
    Route,
    /// See [`LimitBy::Service`].
    Service,
}

impl KeySource {
    /// Checks `limit_by` with its companions `header_name` and `path` (each required by its
    /// own kind and refused with any other).
    pub fn compile(limit_by: LimitBy, header_name: Option<&str>, path: Option<&str>) -> Result<KeySource, PluginError> {
        if header_name.is_some() && limit_by != LimitBy::Header {
            return Err(PluginError::at("header_name", "only used with `limit_by: header`"));
        }
        if path.is_some() && limit_by != LimitBy::Path {
            return Err(PluginError::at("path", "only used with `limit_by: path`"));
        }
        Ok(match limit_by {
            LimitBy::Consumer => KeySource::Consumer,
            LimitBy::Credential => KeySource::Credential,
            LimitBy::Ip => KeySource::Ip,
            LimitBy::Route => KeySource::Route,
            LimitBy::Service => KeySource::Service,
            LimitBy::Header => {
                let name =
                    header_name.ok_or_else(|| PluginError::at("header_name", "required with `limit_by: header`"))?;
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| PluginError::at("header_name", format!("invalid header name `{name}`")))?;
                KeySource::Header(name)
            }
            LimitBy::Path => {
                let path = path.ok_or_else(|| PluginError::at("path", "required with `limit_by: path`"))?;
                if !path.starts_with('/') {
                    return Err(PluginError::at("path", "must start with `/`"));
                }
                KeySource::Path(path.to_owned())
            }
        })
    }

    /// What it counts by, as text that names it fully (`header:x-api-key`): part of the
    /// identity of a filter's counters in a shared store.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Consumer => "consumer".into(),
            KeySource::Credential => "credential".into(),
            KeySource::Ip => "ip".into(),
            KeySource::Header(name) => format!("header:{name}"),
            KeySource::Path(path) => format!("path:{path}"),
            KeySource::Route => "route".into(),
            KeySource::Service => "service".into(),
        }
    }

    /// The key of `request`: a kind prefix and a value (`consumer:alice`, `ip:10.0.0.1`), so
    /// a consumer named like an address never shares the address's counter.
    pub fn key(&self, request: &request::Parts, ctx: &RequestCtx) -> Key {
        let mut key = Key::default();
        let found = match self {
            KeySource::Consumer => {
                ctx.consumer.as_ref().map(|c| key.push_all(&[b"consumer:", c.username.as_bytes()])).is_some()
            }
            KeySource::Credential => ctx
                .consumer
                .as_ref()
                .and_then(|c| c.credential.as_ref())
                .map(|credential| {
                    key.push_all(&[b"credential:", credential.kind.as_bytes(), b":", credential.id.as_bytes()])
                })
                .is_some(),
            KeySource::Ip => false,
            KeySource::Header(name) => {
                request.headers.get(name).map(|value| key.push_all(&[b"header:", value.as_bytes()])).is_some()
            }
            KeySource::Path(path) => request.uri.path() == path && key.push_all(&[b"path:", path.as_bytes()]),
            KeySource::Route => key.push_all(&[b"route:", ctx.route.as_deref().unwrap_or("").as_bytes()]),
            KeySource::Service => key.push_all(&[b"service:", ctx.cluster.as_deref().unwrap_or("").as_bytes()]),
        };
        if !found {
            let _ = write!(key, "ip:{}", ctx.client_ip);
        }
        key
    }
}

/// A request's counter key: bytes (a header's value as it came), inline up to 48 bytes (a
/// consumer's name, an address), so finding it allocates nothing for nearly every request.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Key(SmallVec<[u8; 48]>);

impl Key {
    /// Appends each of `parts`; true, so a match arm that found its value says so.
    fn push_all(&mut self, parts: &[&[u8]]) -> bool {
        for part in parts {
            self.0.extend_from_slice(part);
        }
        true
    }

    /// The key's bytes: not necessarily text (a header's value), hashed and sent as they are.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Write for Key {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(&self.0), f)
    }
}

#[cfg(test)]
impl PartialEq<&str> for Key {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::rc::Rc;

    use http::Request;
    use strait_http::consumer::Credential;
    use strait_http::context::ConnInfo;

    use super::*;

    /// A request context from `ip`.
    pub(crate) fn ctx_from(ip: &str) -> RequestCtx {
        let peer = std::net::SocketAddr::new(ip.parse().unwrap(), 5000);
        let conn =
            ConnInfo { peer, listener: "web".into(), scheme: "http", version: http::Version::HTTP_11, tls: None };
        RequestCtx::new(Rc::new(conn), peer.ip())
    }

    /// `ctx` with the consumer `username`, identified by a `key_auth` credential.
    pub(crate) fn with_consumer(mut ctx: RequestCtx, username: &str) -> RequestCtx {
        let spec = strait_config::Consumer { username: username.into(), ..Default::default() };
        let credential = Credential { kind: "key_auth", id: format!("{username}#0").into() };
        ctx.consumer = Some(strait_http::Consumer::from_config(&spec, Some(credential)));
        ctx
    }

    /// A GET of `uri` with `headers`.
    pub(crate) fn get(uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = Request::get(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn source(limit_by: LimitBy) -> KeySource {
        KeySource::compile(limit_by, None, None).unwrap()
    }

    #[test]
    fn consumer_and_credential_fall_back_to_the_client_address() {
        let request = get("/", &[]);
        let anonymous = ctx_from("10.0.0.1");
        let alice = with_consumer(ctx_from("10.0.0.1"), "alice");
        assert_eq!(source(LimitBy::Consumer).key(&request, &anonymous), "ip:10.0.0.1");
        assert_eq!(source(LimitBy::Consumer).key(&request, &alice), "consumer:alice");
        assert_eq!(source(LimitBy::Credential).key(&request, &anonymous), "ip:10.0.0.1");
        assert_eq!(source(LimitBy::Credential).key(&request, &alice), "credential:key_auth:alice#0");
        assert_eq!(source(LimitBy::Ip).key(&request, &alice), "ip:10.0.0.1");
    }

    #[test]
    fn header_and_path_keys_fall_back_to_the_client_address() {
        let header = KeySource::compile(LimitBy::Header, Some("X-Api-Key"), None).unwrap();
        let ctx = ctx_from("10.0.0.2");
        assert_eq!(header.key(&get("/", &[("x-api-key", "k1")]), &ctx), "header:k1");
        assert_eq!(header.key(&get("/", &[]), &ctx), "ip:10.0.0.2");
        let path = KeySource::compile(LimitBy::Path, None, Some("/login")).unwrap();
        assert_eq!(path.key(&get("/login?next=/", &[]), &ctx), "path:/login");
        assert_eq!(path.key(&get("/login/x", &[]), &ctx), "ip:10.0.0.2");
    }

    #[test]
    fn long_keys_and_values_that_are_not_text_keep_their_bytes() {
        let long = "k".repeat(200);
        let header = KeySource::compile(LimitBy::Header, Some("x-api-key"), None).unwrap();
        let ctx = ctx_from("10.0.0.2");
        assert_eq!(
            header.key(&get("/", &[("x-api-key", &long)]), &ctx).as_bytes(),
            format!("header:{long}").as_bytes()
        );
        let mut request = get("/", &[]);
        request.headers.insert("x-api-key", http::HeaderValue::from_bytes(b"a\xffb").unwrap());
        assert_eq!(header.key(&request, &ctx).as_bytes(), b"header:a\xffb");
        // Two values that are not text do not share a counter.
        request.headers.insert("x-api-key", http::HeaderValue::from_bytes(b"a\xfeb").unwrap());
        assert_eq!(header.key(&request, &ctx).as_bytes(), b"header:a\xfeb");
    }

    #[test]
    fn route_and_service_keys_name_them() {
        let mut ctx = ctx_from("10.0.0.3");
        ctx.route = Some("api".into());
        ctx.cluster = Some("app".into());
        assert_eq!(source(LimitBy::Route).key(&get("/", &[]), &ctx), "route:api");
        assert_eq!(source(LimitBy::Service).key(&get("/", &[]), &ctx), "service:app");
    }

    #[test]
    fn companions_are_required_by_their_kind_and_refused_otherwise() {
        let error = KeySource::compile(LimitBy::Header, None, None).unwrap_err();
        assert_eq!((error.path.as_str(), error.message.as_str()), ("header_name", "required with `limit_by: header`"));
        let error = KeySource::compile(LimitBy::Header, Some("bad name"), None).unwrap_err();
        assert_eq!(error.path, "header_name");
        let error = KeySource::compile(LimitBy::Path, None, Some("login")).unwrap_err();
        assert_eq!((error.path.as_str(), error.message.as_str()), ("path", "must start with `/`"));
        let error = KeySource::compile(LimitBy::Ip, Some("x-key"), None).unwrap_err();
        assert_eq!(error.path, "header_name");
        let error = KeySource::compile(LimitBy::Consumer, None, Some("/x")).unwrap_err();
        assert_eq!(error.path, "path");
    }
}
