//! The WebSocket handshake fields Strait computes itself when it carries a WebSocket between
//! HTTP/2 (RFC 8441, no key and no accept) and HTTP/1.1 (RFC 6455 §4, both).

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use sha1::{Digest, Sha1};

/// `Sec-WebSocket-Key`.
pub(crate) const SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
/// `Sec-WebSocket-Accept`.
pub(crate) const SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");
/// `Sec-WebSocket-Version`.
pub(crate) const SEC_WEBSOCKET_VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");

/// The GUID every `Sec-WebSocket-Accept` is derived with (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Marks an upgrade request whose `Sec-WebSocket-Key` Strait generated (the client asked over
/// HTTP/2 and sent none, RFC 8441 §5): the upstream's `Sec-WebSocket-Accept` is checked
/// against it and not relayed, and only a `101` opens the tunnel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnKey;

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64 (RFC 6455 §4.1). The key is a nonce
/// that proves the upstream understood the handshake, not a secret.
pub(crate) fn generate_key() -> HeaderValue {
    let value = base64(&fastrand::u128(..).to_le_bytes());
    HeaderValue::from_maybe_shared(Bytes::from(value)).expect("base64 is a valid header value")
}

/// The `Sec-WebSocket-Accept` that answers `key` (RFC 6455 §4.2.2).
pub(crate) fn accept_for(key: &[u8]) -> String {
    let mut hash = Sha1::new();
    hash.update(key);
    hash.update(GUID);
    base64(hash.finalize().as_slice())
}

/// Whether `response` carries the `Sec-WebSocket-Accept` that answers the key in `request`.
pub(crate) fn accepted(request: &HeaderMap, response: &HeaderMap) -> bool {
    let Some(key) = request.get(SEC_WEBSOCKET_KEY) else { return false };
    let mut accepts = response.get_all(SEC_WEBSOCKET_ACCEPT).iter();
    match (accepts.next(), accepts.next()) {
        (Some(accept), None) => accept.as_bytes() == accept_for(key.as_bytes()).as_bytes(),
        _ => false,
    }
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_matches_the_example_of_rfc_6455() {
        assert_eq!(accept_for(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn base64_pads_as_rfc_4648_shows() {
        for (input, encoded) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64(input.as_bytes()), encoded);
        }
    }

    #[test]
    fn generated_keys_are_16_bytes_in_base64_and_differ() {
        let (a, b) = (generate_key(), generate_key());
        assert_eq!(a.len(), 24);
        assert!(a.as_bytes().ends_with(b"=="));
        assert_ne!(a, b);
    }

    #[test]
    fn only_one_matching_accept_is_accepted() {
        let mut request = HeaderMap::new();
        request.insert(SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        let mut response = HeaderMap::new();
        assert!(!accepted(&request, &response));
        response.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(accepted(&request, &response));
        response.append(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(!accepted(&request, &response));
        response.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("wrong"));
        assert!(!accepted(&request, &response));
    }
}
