//! Redirect answers (nginx `return 301 https://$host$request_uri`).

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{request, HeaderMap};
use strait_http::{LocalResponse, Reason};

use crate::snapshot::RedirectPlan;

/// Builds the redirect for a request: configured parts replace the request's own. When the
/// scheme stays, the request's port stays too (`Host: a:8080` → `http://a:8080/new`); a new
/// scheme gets the host name alone, as nginx's `$host` does.
pub fn answer(plan: &RedirectPlan, request: &request::Parts) -> LocalResponse {
    let scheme = plan.scheme.as_deref().unwrap_or("http");
    let request_host = request.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let host = match (&plan.host, &plan.scheme) {
        (Some(host), _) => host.as_str(),
        (None, Some(_)) => crate::h1::request::strip_port(request_host),
        (None, None) => request_host,
    };
    if host.is_empty() {
        // An HTTP/1.0 request without Host, and no host configured: no absolute URL to send.
        return LocalResponse::for_reason(Reason::BadRequest);
    }
    let path = plan.path.as_deref().unwrap_or_else(|| request.uri.path());
    let mut location = format!("{scheme}://{host}{path}");
    if let Some(query) = request.uri.query() {
        location.push('?');
        location.push_str(query);
    }
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    let body = format!("{} {}: {location}\n", plan.status.as_str(), plan.status.canonical_reason().unwrap_or(""));
    LocalResponse { status: plan.status, headers, body: Bytes::from(body), reason: None }
}
