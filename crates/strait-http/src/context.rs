//! What is known about one request as it moves through the phases.

use std::cell::Cell;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::header::HeaderValue;
use http::{Extensions, StatusCode, Version};

use crate::consumer::{Consumer, VerifiedToken};
use crate::fields::AddedFields;
use crate::reason::Reason;
use crate::subrequest::Subrequests;

/// The connection a request arrived on, as the exchange sees it.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The transport peer.
    pub peer: SocketAddr,
    /// The listener's name.
    pub listener: Arc<str>,
    /// `https` on TLS listeners, `http` otherwise.
    pub scheme: &'static str,
    /// The protocol: HTTP/1.0, HTTP/1.1 or HTTP/2.
    pub version: Version,
    /// What the TLS handshake established, on TLS listeners (boxed: a plain connection keeps
    /// only the pointer's room, for as long as it stays open).
    pub tls: Option<Box<TlsInfo>>,
}

/// The TLS session of a connection.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    /// The server name the client asked for (SNI).
    pub server_name: Option<String>,
    /// The application protocol agreed by ALPN.
    pub alpn: Option<Vec<u8>>,
    /// The verified client certificate, with mutual TLS.
    pub client_cert: Option<ClientCert>,
    /// Set when this session is a forward proxy's TLS inspection of a CONNECT tunnel.
    pub inspected: Option<Arc<InspectedTunnel>>,
}

/// A CONNECT tunnel whose TLS the forward proxy terminated (TLS inspection): the requests
/// inside go to `authority`, on behalf of whoever opened the tunnel.
#[derive(Debug, Clone)]
pub struct InspectedTunnel {
    /// The CONNECT target, `host:port`.
    pub authority: String,
    /// The consumer (proxy user) that opened the tunnel, if one was identified: the requests
    /// inside carry no `Proxy-Authorization` of their own.
    pub consumer: Option<Consumer>,
}

/// Who a verified client certificate says the peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// Subject distinguished name.
    pub subject: String,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// URI subject alternative names (SPIFFE ids).
    pub uris: Vec<String>,
    /// SHA-256 fingerprint of the certificate, lowercase hex.
    pub fingerprint_sha256: String,
}

/// The length of a response body, when it is known before the body is sent; the exchange puts
/// it in the response's extensions for the response phases of chains with a response-body
/// filter (framing fields are not in the headers filters see).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLength(pub u64);

/// The length of a request body as its framing declares it (`Content-Length`, or 0 for a
/// request without a body), known before the body is read; the exchange puts it in the
/// request's extensions for the request phases of chains with a request-body filter. A body sent without
/// a declared length (chunked, or HTTP/2 DATA without `content-length`) has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLength(pub u64);

/// The client sent `Expect: 100-continue` and waits for `100 Continue` before it sends its
/// body. The HTTP/1 driver answers the expectation itself (on the first read of the body, never
/// after a final answer) and keeps this marker in the request's extensions, as the field is not
/// among the headers filters see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectContinue;

/// A request to switch protocols (`Upgrade: websocket` with `Connection: upgrade` over
/// HTTP/1.1), kept in the request's extensions; the upstream gets the same offer.
#[derive(Debug, Clone)]
pub struct UpgradeRequest(pub http::HeaderValue);

/// The `Proxy-Authorization` field a client sent to a forward proxy. The HTTP/1 driver keeps it
/// here, out of the headers (it is hop-by-hop and never forwarded), for `proxy_auth` to check.
#[derive(Debug, Clone)]
pub struct ProxyAuthorization(pub http::HeaderValue);

/// The request went to its origin through the forward proxy's parent proxy (Squid
/// `cache_peer ... parent`): put in [`RequestCtx::extensions`] by the forward proxy when it
/// sent the request to its parent; the squid access log then writes `FIRSTUP_PARENT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViaParentProxy;

/// The request URI as received, kept in [`RequestCtx::extensions`] when a route rewrote it.
#[derive(Debug, Clone)]
pub struct OriginalUri(pub http::Uri);

/// Everything known about one request; filters read it and leave typed values for later
/// phases in [`RequestCtx::extensions`] (an authenticated consumer, a rate-limit key...).
pub struct RequestCtx {
    /// When the request head was complete.
    pub start: Instant,
    /// The connection.
    pub conn: Rc<ConnInfo>,
    /// The client address (from `X-Forwarded-For` when the peer is a trusted proxy).
    pub client_ip: IpAddr,
    /// Chosen route's name.
    pub route: Option<Arc<str>>,
    /// Chosen cluster's name.
    pub cluster: Option<Arc<str>>,
    /// Upstream endpoint of the last attempt.
    pub upstream_addr: Option<SocketAddr>,
    /// Time from sending the request upstream to its response head.
    pub upstream_time: Option<Duration>,
    /// Status sent to the client.
    pub status: StatusCode,
    /// Response body bytes sent to the client.
    pub bytes_sent: u64,
    /// Why Strait answered itself (or why the exchange failed), if it did.
    pub reason: Option<Reason>,
    /// Request id (received or generated).
    pub request_id: Option<HeaderValue>,
    /// Upstream attempts made.
    pub attempts: u32,
    /// The consumer an authentication filter identified ([`RequestCtx::identify`]).
    pub consumer: Option<Consumer>,
    /// The claims of the request's verified bearer token.
    pub token: Option<VerifiedToken>,
    /// What a response cache did for this request (`HIT`, `MISS`, `EXPIRED`, `STALE`,
    /// `REVALIDATED`, `BYPASS`), for the access log.
    pub cache_status: Option<&'static str>,
    /// The response's `Content-Type`, kept only when the access log records it (the squid
    /// format).
    pub response_content_type: Option<HeaderValue>,
    /// Fields the response-header filters add to the response without reading the map: set
    /// here, they cost no hashing; the exchange moves them into the map before any other
    /// filter or a protocol other than HTTP/1 reads it.
    pub response_fields: AddedFields,
    /// Typed values filters hand to later phases and other filters.
    pub extensions: Extensions,
    /// Calls to upstreams on this worker's pools, for filters that need a sub-request.
    pub subrequests: Option<Arc<dyn Subrequests>>,
    /// The wall-clock time of the arrival, once something asked ([`RequestCtx::unix_time`]).
    unix_time: Cell<Option<Duration>>,
}

impl RequestCtx {
    /// A context for a request that just arrived on `conn` from `client_ip`.
    pub fn new(conn: Rc<ConnInfo>, client_ip: IpAddr) -> RequestCtx {
        RequestCtx {
            start: Instant::now(),
            conn,
            client_ip,
            route: None,
            cluster: None,
            upstream_addr: None,
            upstream_time: None,
            status: StatusCode::OK,
            bytes_sent: 0,
            reason: None,
            request_id: None,
            attempts: 0,
            consumer: None,
            token: None,
            cache_status: None,
            response_content_type: None,
            response_fields: AddedFields::default(),
            extensions: Extensions::new(),
            subrequests: None,
            unix_time: Cell::new(None),
        }
    }

    /// The wall-clock time the request arrived ([`RequestCtx::start`]), since the Unix epoch:
    /// worked out on the first call, then the same for every filter and the access log, so a
    /// token's expiry, a rate limit's window and the log line agree, however long earlier
    /// filters waited, and the clock is read once for all of them.
    pub fn unix_time(&self) -> Duration {
        if let Some(time) = self.unix_time.get() {
            return time;
        }
        let time = wall_time_at(self.start);
        self.unix_time.set(Some(time));
        time
    }

    /// The arrival time [`RequestCtx::unix_time`] worked out, if something asked.
    pub fn unix_time_if_read(&self) -> Option<Duration> {
        self.unix_time.get()
    }

    /// The transport peer.
    pub fn peer(&self) -> SocketAddr {
        self.conn.peer
    }

    /// Records `consumer` as the request's, for later filters and the log, and sets its
    /// `x-consumer-*` headers in `headers` for the upstream (removing any the client sent, so
    /// they cannot be forged). `anonymous` marks the stand-in consumer of a failed
    /// authentication.
    pub fn identify(&mut self, headers: &mut http::HeaderMap, consumer: Consumer, anonymous: bool) {
        consumer.set_identity_headers(headers, anonymous);
        self.consumer = Some(consumer);
    }
}

/// Both clocks read together: the wall-clock time (since the Unix epoch) at a monotonic
/// instant, so that an instant shortly after converts by adding the difference.
#[derive(Debug, Clone, Copy)]
struct ClockPair {
    at: Instant,
    wall: Duration,
}

/// How long a worker converts instants with one [`ClockPair`]: a step of the wall clock (a
/// time sync, an operator) shows in the conversions within this.
const CLOCK_PAIR_SERVES: Duration = Duration::from_millis(100);

thread_local! {
    /// This worker's last [`ClockPair`].
    static CLOCK_PAIR: Cell<Option<ClockPair>> = const { Cell::new(None) };
}

/// The wall-clock time of `instant` (a request's arrival), since the Unix epoch: from this
/// worker's recent reading of both clocks when there is one, so most requests read neither.
fn wall_time_at(instant: Instant) -> Duration {
    if let Some(pair) = CLOCK_PAIR.get() {
        match instant.checked_duration_since(pair.at) {
            Some(since) if since < CLOCK_PAIR_SERVES => return pair.wall + since,
            Some(_) => {}
            // An arrival before the reading (its request asked late).
            None => {
                let before = pair.at.duration_since(instant);
                if before < CLOCK_PAIR_SERVES {
                    return pair.wall.saturating_sub(before);
                }
            }
        }
    }
    let at = Instant::now();
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    CLOCK_PAIR.set(Some(ClockPair { at, wall }));
    wall.saturating_sub(at.saturating_duration_since(instant))
}

impl fmt::Debug for RequestCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestCtx")
            .field("peer", &self.conn.peer)
            .field("listener", &self.conn.listener)
            .field("client_ip", &self.client_ip)
            .field("route", &self.route)
            .field("cluster", &self.cluster)
            .field("status", &self.status)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_is_the_arrival_and_the_same_for_every_reader() {
        let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let conn = ConnInfo { peer, listener: "web".into(), scheme: "http", version: Version::HTTP_11, tls: None };
        let ctx = RequestCtx::new(Rc::new(conn), peer.ip());
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(ctx.unix_time_if_read(), None);
        // Asked late (a filter before it waited): still the arrival, not the time of asking.
        std::thread::sleep(Duration::from_millis(200));
        let first = ctx.unix_time();
        assert!(first < before + Duration::from_millis(100), "{first:?} is the arrival, about {before:?}");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(ctx.unix_time(), first);
        assert_eq!(ctx.unix_time_if_read(), Some(first));
    }

    #[test]
    fn arrivals_convert_to_wall_time_from_one_reading_of_the_clocks() {
        let wall = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        // Absolute readings are compared loosely (a loaded machine may stop the thread
        // between two of them); differences between conversions are exact.
        let slack = Duration::from_secs(1);
        let before = wall();
        let first = Instant::now();
        let first_wall = wall_time_at(first);
        assert!(before <= first_wall + slack && first_wall <= wall() + slack, "{before:?} {first_wall:?}");
        // A later arrival within the reading's time: converted with it, its distance kept.
        let second = first + Duration::from_millis(20);
        assert_eq!(wall_time_at(second) - first_wall, Duration::from_millis(20));
        // Once the reading is old, the clocks are read again.
        std::thread::sleep(CLOCK_PAIR_SERVES);
        let third = Instant::now();
        let third_wall = wall_time_at(third);
        assert!(third_wall.abs_diff(wall()) < slack, "{third_wall:?}");
        // An arrival shortly before the new reading (its request asked late) converts with it.
        let earlier = third - Duration::from_millis(10);
        assert_eq!(third_wall - wall_time_at(earlier), Duration::from_millis(10));
    }
}
