//! Redirect answers (nginx `return 301 https://$host$request_uri`).

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::HeaderMap;

use crate::filter::LocalResponse;
use crate::h1::RequestHead;
use crate::reason::Reason;
use crate::snapshot::RedirectPlan;

/// Builds the redirect for a request: configured parts replace the request's own.
pub fn answer(plan: &RedirectPlan, head: &RequestHead) -> LocalResponse {
    let scheme = plan.scheme.as_deref().unwrap_or("http");
    let host = plan.host.as_deref().unwrap_or_else(|| head.host_name());
    if host.is_empty() {
        // An HTTP/1.0 request without Host, and no host configured: no absolute URL to send.
        return LocalResponse::for_reason(Reason::BadRequest);
    }
    let path = plan.path.as_deref().unwrap_or_else(|| head.path());
    let mut location = format!("{scheme}://{host}{path}");
    if let Some(query) = head.query() {
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
