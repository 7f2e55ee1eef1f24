//! The built-in demo upstream: answers with a description of the request it received.

use std::fmt::Write as _;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::filter::{LocalResponse, RequestCtx};
use crate::h1::RequestHead;
use crate::snapshot::EchoPlan;

/// Describes the request: echo name, request line, headers and body size.
pub fn answer(plan: &EchoPlan, head: &RequestHead, ctx: &RequestCtx, body: &[u8]) -> LocalResponse {
    let mut text = String::with_capacity(256);
    let _ = writeln!(text, "echo: {}", plan.name);
    let _ = writeln!(text, "client: {}", ctx.client_ip);
    let _ = writeln!(text, "{} {} {:?}", head.method, head.target_str(), head.version);
    for (name, value) in &head.headers {
        let _ = writeln!(text, "{}: {}", name, String::from_utf8_lossy(value.as_bytes()));
    }
    let _ = writeln!(text, "body-bytes: {}", body.len());
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if let Ok(name) = HeaderValue::from_str(&plan.name) {
        headers.insert("x-echo-name", name);
    }
    LocalResponse { status: StatusCode::OK, headers, body: Bytes::from(text), reason: None }
}
