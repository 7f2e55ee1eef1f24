//! gRPC on the request path: Strait's own answers to gRPC requests are gRPC-shaped (HTTP 200
//! with `grpc-status` and `grpc-message`, as Envoy answers), and a client's `grpc-timeout`
//! bounds the upstream exchange.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use strait_http::{LocalResponse, Reason};

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Marks a request as gRPC (kept in the request context's extensions).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GrpcRequest;

/// Whether a request is gRPC or gRPC-Web (`application/grpc...`), whose clients may send
/// `grpc-timeout`.
pub(crate) fn is_grpc_family(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.len() >= 16 && v[..16].eq_ignore_ascii_case(b"application/grpc")
    })
}

/// Whether a request is gRPC: its content type is `application/grpc` or `application/grpc+...`.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.len() >= 16
            && v[..16].eq_ignore_ascii_case(b"application/grpc")
            && matches!(v.get(16), None | Some(b'+' | b';'))
    })
}

/// The deadline a gRPC client sent in `grpc-timeout` (`100m`, `5S`, `1H`...), if valid.
pub(crate) fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(&GRPC_TIMEOUT)?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The gRPC status code for an answer Strait makes itself.
fn code(status: StatusCode, reason: Option<Reason>) -> u8 {
    match reason {
        Some(Reason::NoRoute | Reason::UnsupportedProtocol) => 12,
        Some(Reason::UpstreamTimeout | Reason::UpstreamConnectTimeout | Reason::ExchangeTimeout) => 4,
        Some(Reason::BodyTooLarge | Reason::HeaderTooLarge | Reason::UriTooLong | Reason::RateLimited) => 8,
        Some(Reason::AuthDenied) if status == StatusCode::UNAUTHORIZED => 16,
        Some(Reason::AuthDenied | Reason::Forbidden) => 7,
        Some(Reason::BadRequest | Reason::MethodNotAllowed | Reason::UnsupportedTransferEncoding) => 13,
        Some(
            Reason::ClientAborted | Reason::ClientBodyTimeout | Reason::ClientBodyTooSlow | Reason::ClientReadTooSlow,
        ) => 1,
        Some(
            Reason::NoHealthyUpstream
            | Reason::UpstreamConnectFailed
            | Reason::UpstreamReset
            | Reason::UpstreamBadResponse
            | Reason::UpstreamTlsFailed
            | Reason::ShuttingDown
            | Reason::CircuitOpen
            | Reason::RateLimitStoreUnavailable,
        ) => 14,
        _ => match status.as_u16() {
            400 => 13,
            401 => 16,
            403 => 7,
            404 => 12,
            429 | 502..=504 => 14,
            200..=299 => 0,
            _ => 2,
        },
    }
}

/// Reshapes an answer for a gRPC client: HTTP 200, `grpc-status` and `grpc-message` (the
/// reason code), no body: a trailers-only response.
pub(crate) fn reshape(reply: &mut LocalResponse) {
    let grpc_status = code(reply.status, reply.reason);
    let message = match reply.reason {
        Some(reason) => reason.code().to_owned(),
        None => reply.status.canonical_reason().unwrap_or("").to_owned(),
    };
    reply.status = StatusCode::OK;
    reply.body = Bytes::new();
    reply.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    reply.headers.insert(GRPC_STATUS, HeaderValue::from(u16::from(grpc_status)));
    if let Ok(message) = HeaderValue::from_str(&message) {
        reply.headers.insert(GRPC_MESSAGE, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_web_clients_deadlines_are_read_too() {
        let mut headers = HeaderMap::new();
        for (value, family) in [
            ("application/grpc", true),
            ("application/grpc-web+proto", true),
            ("application/grpc-web-text", true),
            ("application/json", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_grpc_family(&headers), family, "{value}");
        }
        headers.remove(header::CONTENT_TYPE);
        assert!(!is_grpc_family(&headers));
    }

    #[test]
    fn grpc_content_types_are_recognized() {
        let mut headers = HeaderMap::new();
        for (value, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpcx", false),
            ("text/plain", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_grpc(&headers), grpc, "{value}");
        }
    }

    #[test]
    fn timeouts_parse_with_their_units() {
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("100m", Some(Duration::from_millis(100))),
            ("5S", Some(Duration::from_secs(5))),
            ("1H", Some(Duration::from_secs(3600))),
            ("12", None),
            ("m", None),
            ("123456789m", None),
        ] {
            headers.insert(GRPC_TIMEOUT, HeaderValue::from_static(value));
            assert_eq!(timeout(&headers), expected, "{value}");
        }
    }

    #[test]
    fn unavailable_upstreams_are_status_14() {
        let mut reply = LocalResponse::for_reason(Reason::NoHealthyUpstream);
        reshape(&mut reply);
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers["grpc-status"], "14");
        assert_eq!(reply.headers["grpc-message"], "no_healthy_upstream");
        assert!(reply.body.is_empty());
    }
}
