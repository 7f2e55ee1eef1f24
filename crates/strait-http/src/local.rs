//! Answers Strait makes itself: errors, redirects, fixed responses.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::reason::Reason;

/// A response Strait generates itself; framing headers are added when it is sent.
#[derive(Debug, Clone)]
pub struct LocalResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers (never framing: `content-length` and the like are the connection's business).
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// Why Strait answered, when it is an error or refusal.
    pub reason: Option<Reason>,
}

impl LocalResponse {
    /// The standard answer for a reason: its status and a one-line text body.
    pub fn for_reason(reason: Reason) -> LocalResponse {
        let status = reason.status();
        let body = format!("{} {}: {}\n", status.as_str(), status.canonical_reason().unwrap_or(""), reason.code());
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        LocalResponse { status, headers, body: Bytes::from(body), reason: Some(reason) }
    }

    /// A response with a status, one content type and a body.
    pub fn new(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> LocalResponse {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        LocalResponse { status, headers, body: body.into(), reason: None }
    }
}
