//! HTTP/1.x wire format: request and response heads, body framing and decoding, encoding.
//!
//! Heads are parsed with `httparse` into `http` types so that HTTP/2 shares one request model.
//! Hop-by-hop headers never enter that model: the parser removes them and records what they
//! meant (framing, keep-alive, `Expect`, `Upgrade`) in typed fields.

pub mod decode;
pub mod encode;
pub mod request;
pub mod response;

pub use decode::BodyFraming;
pub use request::{parse_request_head, HeadLimits, RequestHead};
pub use response::{parse_response_head, ResponseHead};

/// Header names that are hop-by-hop besides those named in `Connection` and `Proxy-*`.
pub(crate) fn is_hop_by_hop(name: &http::HeaderName) -> bool {
    use http::header;
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::PROXY_AUTHORIZATION
        || name == header::PROXY_AUTHENTICATE
        || name.as_str() == "keep-alive"
        || name.as_str().starts_with("proxy-")
}

/// Fields that describe a connection or a message's framing rather than its content: never
/// copied from the neutral model onto the wire, whoever put them there.
pub(crate) fn is_framing(name: &http::HeaderName) -> bool {
    name == http::header::CONTENT_LENGTH || is_hop_by_hop(name)
}

/// Splits a comma-separated header value into trimmed, non-empty tokens.
pub(crate) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(trim_ows).filter(|t| !t.is_empty())
}

/// Removes optional whitespace (spaces and tabs) around a value.
pub(crate) fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}
