//! Cache keys: the primary key (method, host, path, query and listed request headers) and the
//! secondary key a response's `Vary` adds (the request's values of the fields it names).

use std::fmt::Write;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{request, Method};

/// What goes into the primary key besides method, host and path.
#[derive(Debug, Clone, Default)]
pub struct KeyOptions {
    /// Leave the query string out.
    pub ignore_query: bool,
    /// Request headers whose values are part of the key.
    pub headers: Vec<HeaderName>,
}

/// The primary key of `request`. `HEAD` shares `GET`'s key, so a `HEAD` is answered from
/// the stored `GET`.
pub fn primary(request: &request::Parts, options: &KeyOptions) -> String {
    let method = if request.method == Method::HEAD { Method::GET.as_str() } else { request.method.as_str() };
    let query = if options.ignore_query { None } else { request.uri.query() };
    let mut key = resource(method, host(request), request.uri.path(), query);
    for name in &options.headers {
        let _ = write!(key, "\n{}:", name.as_str());
        for value in request.headers.get_all(name) {
            key.push_str(&String::from_utf8_lossy(value.as_bytes()));
            key.push(',');
        }
    }
    key
}

/// The primary key of a `GET` of `path` (with `query`) on `host`, before any request header:
/// what an unsafe request to the same resource invalidates.
pub fn resource(method: &str, host: &str, path: &str, query: Option<&str>) -> String {
    let mut key = String::with_capacity(method.len() + host.len() + path.len() + 8);
    key.push_str(method);
    key.push(' ');
    key.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    key.push_str(path);
    if let Some(query) = query {
        key.push('?');
        key.push_str(query);
    }
    key
}

/// The request's host: its `Host` field, or the target's authority.
pub fn host(request: &request::Parts) -> &str {
    request
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri.authority().map(|a| a.as_str()))
        .unwrap_or("")
}

/// The request field values a stored response varies on, by field name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaryKey(Vec<(HeaderName, Vec<HeaderValue>)>);

impl VaryKey {
    /// The values in `request` of the fields the response's `Vary` names; `None` for
    /// `Vary: *` (the response is not reusable) or an unreadable field name.
    pub fn capture(response: &HeaderMap, request: &HeaderMap) -> Option<VaryKey> {
        let mut fields = Vec::new();
        for value in response.get_all(header::VARY) {
            for name in value.to_str().ok()?.split(',') {
                let name = name.trim();
                if name.is_empty() {
                    continue;
                }
                if name == "*" {
                    return None;
                }
                let name = HeaderName::try_from(name).ok()?;
                if fields.iter().any(|(known, _)| *known == name) {
                    continue;
                }
                let values = request.get_all(&name).iter().cloned().collect();
                fields.push((name, values));
            }
        }
        Some(VaryKey(fields))
    }

    /// Whether `request` has the same values for every field this key names.
    pub fn matches(&self, request: &HeaderMap) -> bool {
        self.0.iter().all(|(name, values)| request.get_all(name).iter().eq(values.iter()))
    }

    /// The fields and the request's values of each, in `Vary` order.
    pub fn fields(&self) -> &[(HeaderName, Vec<HeaderValue>)] {
        &self.0
    }

    /// A key made of `fields` read back from a stored entry.
    pub fn from_fields(fields: Vec<(HeaderName, Vec<HeaderValue>)>) -> VaryKey {
        VaryKey(fields)
    }

    /// Bytes this key takes in the store.
    pub fn size(&self) -> usize {
        self.0.iter().map(|(name, values)| name.as_str().len() + values.iter().map(|v| v.len()).sum::<usize>()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, fields: &[(&'static str, &'static str)]) -> request::Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in fields {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn head_shares_the_get_key_and_the_query_counts_unless_ignored() {
        let get = request("GET", "/a?x=1", &[("host", "Api.Test")]);
        let head = request("HEAD", "/a?x=1", &[("host", "api.test")]);
        let options = KeyOptions::default();
        assert_eq!(primary(&get, &options), "GET api.test/a?x=1");
        assert_eq!(primary(&head, &options), primary(&get, &options));
        let other_query = request("GET", "/a?x=2", &[("host", "api.test")]);
        assert_ne!(primary(&other_query, &options), primary(&get, &options));
        let ignoring = KeyOptions { ignore_query: true, headers: Vec::new() };
        assert_eq!(primary(&other_query, &ignoring), primary(&get, &ignoring));
    }

    #[test]
    fn listed_headers_are_part_of_the_key() {
        let options = KeyOptions { ignore_query: false, headers: vec![HeaderName::from_static("x-tenant")] };
        let a = request("GET", "/", &[("host", "h"), ("x-tenant", "a")]);
        let b = request("GET", "/", &[("host", "h"), ("x-tenant", "b")]);
        assert_ne!(primary(&a, &options), primary(&b, &options));
    }

    #[test]
    fn vary_captures_the_named_request_fields() {
        let mut response = HeaderMap::new();
        response.insert(header::VARY, HeaderValue::from_static("Accept-Encoding, accept-encoding"));
        let gzip = request("GET", "/", &[("accept-encoding", "gzip")]);
        let plain = request("GET", "/", &[]);
        let key = VaryKey::capture(&response, &gzip.headers).unwrap();
        assert!(key.matches(&gzip.headers));
        assert!(!key.matches(&plain.headers));
        response.insert(header::VARY, HeaderValue::from_static("*"));
        assert_eq!(VaryKey::capture(&response, &gzip.headers), None);
    }
}
