//! The built-in demo upstream: answers with a description of the request it received.

use std::fmt::Write as _;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{request, HeaderMap, StatusCode};
use strait_http::{LocalResponse, RequestCtx};

use crate::snapshot::EchoPlan;

/// Describes the request: echo name, request line, headers and body size.
pub fn answer(plan: &EchoPlan, request: &request::Parts, ctx: &RequestCtx, body: &[u8]) -> LocalResponse {
    let mut text = String::with_capacity(256);
    let _ = writeln!(text, "echo: {}", plan.name);
    let _ = writeln!(text, "client: {}", ctx.client_ip);
    let _ = writeln!(text, "{} {} {:?}", request.method, request.uri, request.version);
    for (name, value) in &request.headers {
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
