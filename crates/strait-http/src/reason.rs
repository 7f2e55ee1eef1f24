//! Reason codes: why Strait answered a request itself instead of an upstream.

use http::StatusCode;

/// Every reason Strait answers on its own behalf, with its status and meaning.
///
/// The code string is stable: it appears in the access log and, when
/// `server.reason_header` is on, in the `x-strait-reason` response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No route matches the request (404).
    NoRoute,
    /// The request is malformed or ambiguous (400).
    BadRequest,
    /// The request head is larger than `limits.max_header_bytes` or has too many headers (431).
    HeaderTooLarge,
    /// The request target is longer than `limits.max_uri_bytes` (414).
    UriTooLong,
    /// The request body is larger than `limits.max_body_bytes` or a `request_size_limiting` filter allows (413).
    BodyTooLarge,
    /// The request head did not arrive within `timeouts.client_header` (408).
    HeaderTimeout,
    /// The request uses a transfer coding Strait does not implement (501).
    UnsupportedTransferEncoding,
    /// The route does not accept this method, e.g. static files take GET and HEAD only (405).
    MethodNotAllowed,
    /// The route's cluster has no healthy endpoint (503).
    NoHealthyUpstream,
    /// Connecting to the upstream endpoint failed (502).
    UpstreamConnectFailed,
    /// Connecting to the upstream endpoint took longer than `timeouts.connect` (504).
    UpstreamConnectTimeout,
    /// The upstream did not answer within `timeouts.response_header` or the route's timeout (504).
    UpstreamTimeout,
    /// The upstream closed or reset the connection before a complete response head (502).
    UpstreamReset,
    /// The upstream sent a response that is not valid HTTP/1.x (502).
    UpstreamBadResponse,
    /// The client closed the connection or stopped sending its body (the status is logged only).
    ClientAborted,
    /// The client was too slow sending its body (408).
    ClientBodyTimeout,
    /// The client sent its body slower than `limits.min_request_body_rate` (408).
    ClientBodyTooSlow,
    /// The client took the response slower than `limits.min_response_body_rate`; the answer had
    /// started, so the connection (HTTP/1) or stream (HTTP/2) is closed instead (408, logged).
    ClientReadTooSlow,
    /// The exchange took longer than `timeouts.exchange` or the route's `exchange_timeout` (408).
    ExchangeTimeout,
    /// The requested static file does not exist (404).
    FileNotFound,
    /// The requested static path is outside the root or not allowed (403).
    Forbidden,
    /// The requested byte range cannot be served (416).
    RangeNotSatisfiable,
    /// Reading a static file failed (500).
    FileError,
    /// The server is shutting down (503).
    ShuttingDown,
    /// The authentication service refused the request (403, or its own 401).
    AuthDenied,
    /// The authentication service could not be asked or gave no usable answer (500, as nginx
    /// `auth_request` does).
    AuthUnavailable,
    /// A filter failed while transforming a body (500).
    FilterFailed,
    /// The TLS handshake with the upstream endpoint failed (502): untrusted certificate, wrong
    /// name, or no common protocol.
    UpstreamTlsFailed,
    /// The request asks for a protocol Strait does not relay: an HTTP/2 extended CONNECT whose
    /// `:protocol` is not `websocket` (501, as RFC 9220 §3 prescribes).
    UnsupportedProtocol,
    /// No credential, or one that is not valid (an authentication filter: `key_auth`, `basic_auth`, `jwt`).
    Unauthorized,
    /// The authenticated consumer may not use this route (`acl`).
    ConsumerForbidden,
    /// The client address is denied, or not allowed (`ip_restriction`).
    IpForbidden,
    /// A rate or concurrency limit refused the request (`rate_limiting`, `limit_req`, `concurrency_limit`).
    RateLimited,
    /// A `rate_limiting` filter with `fault_tolerant: false` could not reach its counters (Redis
    /// unreachable or too slow), so it refused the request (503).
    RateLimitStoreUnavailable,
    /// A request body without a declared length where the route requires one (`request_size_limiting`).
    LengthRequired,
    /// `Expect: 100-continue` for a body that is already known to be too large (`request_size_limiting`).
    ExpectationFailed,
    /// A CORS preflight from an origin, method or header the `cors` filter does not allow.
    CorsRejected,
    /// A circuit breaker is open: the upstream failed too often, and its cool-down is not over.
    CircuitOpen,
    /// A forward proxy's access rules (`http_access`) deny the request (403).
    ProxyAccessDenied,
    /// A forward proxy needs credentials, or those sent are not valid (`proxy_auth`, 407).
    ProxyAuthRequired,
    /// The SSRF guard refuses the destination: it resolves to a private, loopback, link-local
    /// or otherwise internal address that is not on the allow list (403).
    DestinationForbidden,
    /// The destination's name could not be resolved (502).
    DnsFailed,
    /// A layer 4 session carried no byte either way for its idle timeout and was closed.
    StreamIdleTimeout,
    /// A passthrough client's first bytes are not a TLS ClientHello, or the hello is malformed
    /// (400).
    TlsHelloInvalid,
    /// A passthrough client did not finish its ClientHello within `tcp.hello_timeout` (408).
    TlsHelloTimeout,
    /// No passthrough route takes the ClientHello's server name (or its lack of one), and the
    /// listener refuses such connections (403).
    NoSniRoute,
    /// A PROXY protocol header is malformed, incomplete or late (400).
    ProxyProtocolInvalid,
    /// A PROXY protocol header came from a peer not in `proxy_protocol.trusted`, or a trusted
    /// peer sent none (403).
    ProxyProtocolUntrusted,
    /// A UDP listener has `udp.max_sessions` sessions open: a new client's datagram is dropped
    /// (503).
    UdpSessionLimit,
}

impl Reason {
    /// The stable code written to logs and the reason header.
    pub const fn code(self) -> &'static str {
        match self {
            Reason::NoRoute => "no_route",
            Reason::BadRequest => "bad_request",
            Reason::HeaderTooLarge => "header_too_large",
            Reason::UriTooLong => "uri_too_long",
            Reason::BodyTooLarge => "body_too_large",
            Reason::HeaderTimeout => "header_timeout",
            Reason::UnsupportedTransferEncoding => "unsupported_transfer_encoding",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::NoHealthyUpstream => "no_healthy_upstream",
            Reason::UpstreamConnectFailed => "upstream_connect_failed",
            Reason::UpstreamConnectTimeout => "upstream_connect_timeout",
            Reason::UpstreamTimeout => "upstream_timeout",
            Reason::UpstreamReset => "upstream_reset",
            Reason::UpstreamBadResponse => "upstream_bad_response",
            Reason::ClientAborted => "client_aborted",
            Reason::ClientBodyTimeout => "client_body_timeout",
            Reason::ClientBodyTooSlow => "client_body_too_slow",
            Reason::ClientReadTooSlow => "client_read_too_slow",
            Reason::ExchangeTimeout => "exchange_timeout",
            Reason::FileNotFound => "file_not_found",
            Reason::Forbidden => "forbidden",
            Reason::RangeNotSatisfiable => "range_not_satisfiable",
            Reason::FileError => "file_error",
            Reason::ShuttingDown => "shutting_down",
            Reason::AuthDenied => "auth_denied",
            Reason::AuthUnavailable => "auth_unavailable",
            Reason::FilterFailed => "filter_failed",
            Reason::UpstreamTlsFailed => "upstream_tls_failed",
            Reason::UnsupportedProtocol => "unsupported_protocol",
            Reason::Unauthorized => "unauthorized",
            Reason::ConsumerForbidden => "consumer_forbidden",
            Reason::IpForbidden => "ip_forbidden",
            Reason::RateLimited => "rate_limited",
            Reason::RateLimitStoreUnavailable => "rate_limit_store_unavailable",
            Reason::LengthRequired => "length_required",
            Reason::ExpectationFailed => "expectation_failed",
            Reason::CorsRejected => "cors_rejected",
            Reason::CircuitOpen => "circuit_open",
            Reason::ProxyAccessDenied => "proxy_access_denied",
            Reason::ProxyAuthRequired => "proxy_auth_required",
            Reason::DestinationForbidden => "destination_forbidden",
            Reason::DnsFailed => "dns_failed",
            Reason::StreamIdleTimeout => "stream_idle_timeout",
            Reason::TlsHelloInvalid => "tls_hello_invalid",
            Reason::TlsHelloTimeout => "tls_hello_timeout",
            Reason::NoSniRoute => "no_sni_route",
            Reason::ProxyProtocolInvalid => "proxy_protocol_invalid",
            Reason::ProxyProtocolUntrusted => "proxy_protocol_untrusted",
            Reason::UdpSessionLimit => "udp_session_limit",
        }
    }

    /// The status code of the response Strait sends for this reason.
    pub const fn status(self) -> StatusCode {
        match self {
            Reason::NoRoute | Reason::FileNotFound => StatusCode::NOT_FOUND,
            Reason::BadRequest | Reason::ClientAborted => StatusCode::BAD_REQUEST,
            Reason::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Reason::UriTooLong => StatusCode::URI_TOO_LONG,
            Reason::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reason::HeaderTimeout
            | Reason::ClientBodyTimeout
            | Reason::ClientBodyTooSlow
            | Reason::ClientReadTooSlow
            | Reason::ExchangeTimeout => StatusCode::REQUEST_TIMEOUT,
            Reason::UnsupportedTransferEncoding | Reason::UnsupportedProtocol => StatusCode::NOT_IMPLEMENTED,
            Reason::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Reason::NoHealthyUpstream
            | Reason::ShuttingDown
            | Reason::CircuitOpen
            | Reason::RateLimitStoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Reason::UpstreamConnectFailed
            | Reason::UpstreamReset
            | Reason::UpstreamBadResponse
            | Reason::UpstreamTlsFailed => StatusCode::BAD_GATEWAY,
            Reason::UpstreamConnectTimeout | Reason::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Reason::Forbidden | Reason::AuthDenied => StatusCode::FORBIDDEN,
            Reason::AuthUnavailable | Reason::FilterFailed => StatusCode::INTERNAL_SERVER_ERROR,
            Reason::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            Reason::FileError => StatusCode::INTERNAL_SERVER_ERROR,
            Reason::Unauthorized => StatusCode::UNAUTHORIZED,
            Reason::ConsumerForbidden | Reason::IpForbidden | Reason::CorsRejected => StatusCode::FORBIDDEN,
            Reason::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Reason::ProxyAccessDenied | Reason::DestinationForbidden => StatusCode::FORBIDDEN,
            Reason::ProxyAuthRequired => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            Reason::DnsFailed => StatusCode::BAD_GATEWAY,
            Reason::StreamIdleTimeout | Reason::TlsHelloTimeout => StatusCode::REQUEST_TIMEOUT,
            Reason::TlsHelloInvalid | Reason::ProxyProtocolInvalid => StatusCode::BAD_REQUEST,
            Reason::NoSniRoute | Reason::ProxyProtocolUntrusted => StatusCode::FORBIDDEN,
            Reason::UdpSessionLimit => StatusCode::SERVICE_UNAVAILABLE,
            Reason::LengthRequired => StatusCode::LENGTH_REQUIRED,
            Reason::ExpectationFailed => StatusCode::EXPECTATION_FAILED,
        }
    }

    /// Every reason, for documentation and tests.
    pub const ALL: &'static [Reason] = &[
        Reason::NoRoute,
        Reason::BadRequest,
        Reason::HeaderTooLarge,
        Reason::UriTooLong,
        Reason::BodyTooLarge,
        Reason::HeaderTimeout,
        Reason::UnsupportedTransferEncoding,
        Reason::MethodNotAllowed,
        Reason::NoHealthyUpstream,
        Reason::UpstreamConnectFailed,
        Reason::UpstreamConnectTimeout,
        Reason::UpstreamTimeout,
        Reason::UpstreamReset,
        Reason::UpstreamBadResponse,
        Reason::ClientAborted,
        Reason::ClientBodyTimeout,
        Reason::ClientBodyTooSlow,
        Reason::ClientReadTooSlow,
        Reason::ExchangeTimeout,
        Reason::FileNotFound,
        Reason::Forbidden,
        Reason::RangeNotSatisfiable,
        Reason::FileError,
        Reason::ShuttingDown,
        Reason::AuthDenied,
        Reason::AuthUnavailable,
        Reason::FilterFailed,
        Reason::UpstreamTlsFailed,
        Reason::UnsupportedProtocol,
        Reason::Unauthorized,
        Reason::ConsumerForbidden,
        Reason::IpForbidden,
        Reason::RateLimited,
        Reason::RateLimitStoreUnavailable,
        Reason::LengthRequired,
        Reason::ExpectationFailed,
        Reason::CorsRejected,
        Reason::CircuitOpen,
        Reason::ProxyAccessDenied,
        Reason::ProxyAuthRequired,
        Reason::DestinationForbidden,
        Reason::DnsFailed,
        Reason::StreamIdleTimeout,
        Reason::TlsHelloInvalid,
        Reason::TlsHelloTimeout,
        Reason::NoSniRoute,
        Reason::ProxyProtocolInvalid,
        Reason::ProxyProtocolUntrusted,
        Reason::UdpSessionLimit,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_documented_with_their_status() {
        let doc = include_str!("../../../docs/REASONS.md");
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            assert!(seen.insert(reason.code()), "duplicate code {}", reason.code());
            let row = format!("| `{}` | {} |", reason.code(), reason.status().as_u16());
            assert!(doc.contains(&row), "docs/REASONS.md lacks `{row}`");
        }
    }
}
