//! Bodies on the neutral request path: every body is an `http_body::Body` of `Bytes` whose
//! error is the [`Reason`] the exchange reports when it fails.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use strait_http::Reason;

/// Why a body stopped early, as the reason code the exchange logs or answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyError(pub Reason);

/// A body held whole in memory (local answers, sub-request bodies).
#[derive(Debug, Default)]
pub(crate) struct Full(Option<Bytes>);

impl Full {
    /// A body of `bytes` (an empty one ends at once).
    pub(crate) fn new(bytes: Bytes) -> Full {
        Full((!bytes.is_empty()).then_some(bytes))
    }
}

impl Body for Full {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Poll::Ready(self.0.take().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// Reads a whole body into memory, refusing more than `max` bytes. Trailers are returned too.
pub(crate) async fn collect<B>(body: &mut B, max: u64) -> Result<(Bytes, Option<HeaderMap>), BodyError>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let mut data = bytes::BytesMut::new();
    let mut trailers = None;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
        let frame = frame?;
        match frame.into_data() {
            Ok(chunk) => {
                if (data.len() + chunk.len()) as u64 > max {
                    return Err(BodyError(Reason::BodyTooLarge));
                }
                data.extend_from_slice(&chunk);
            }
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    Ok((data.freeze(), trailers))
}

/// The next frame of a body (a poll-once helper for `async` code).
pub(crate) async fn next_frame<B>(body: &mut B) -> Option<Result<Frame<Bytes>, BodyError>>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
}

/// One of two body types, as one type (a body with or without request-body filters).
pub(crate) enum Either<L, R> {
    /// The first kind.
    Left(L),
    /// The second kind.
    Right(R),
}

impl<L, R> Body for Either<L, R>
where
    L: Body<Data = Bytes, Error = BodyError> + Unpin,
    R: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Either::Left(body) => Pin::new(body).poll_frame(cx),
            Either::Right(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Either::Left(body) => body.is_end_stream(),
            Either::Right(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Either::Left(body) => body.size_hint(),
            Either::Right(body) => body.size_hint(),
        }
    }
}

/// The timer of a body that waits for its source: armed when a read has to wait, disarmed when
/// bytes arrive, so only a silence longer than the timeout counts (nginx `client_body_timeout`).
///
/// A client's body may also be metered ([`RateMeter`]): the same timer then fires at whichever
/// comes first, the silence timeout or the moment the body's average rate falls below the
/// minimum, so the rate costs no timer of its own. The clock is read only when a wait starts
/// (and, with a meter, when it ends).
#[derive(Default)]
pub(crate) struct ReadTimer {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
    /// The armed deadline is the meter's, not the silence timeout's.
    rate_first: bool,
}

/// Why a wait for a body's source ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Nothing arrived for the whole timeout.
    Silent,
    /// The body's average rate fell below its minimum.
    TooSlow,
}

impl ReadTimer {
    /// A read is waiting: `true` when it has waited `timeout` since it started to.
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>, timeout: Duration) -> bool {
        self.poll_wait(cx, timeout, None).is_some()
    }

    /// A read is waiting on a body metered by `meter` (when there is one): why the body ends,
    /// if the wait has gone on too long.
    pub(crate) fn poll_wait(
        &mut self,
        cx: &mut Context<'_>,
        timeout: Duration,
        meter: Option<&mut RateMeter>,
    ) -> Option<Expired> {
        use std::future::Future;
        if !self.armed {
            let now = tokio::time::Instant::now();
            let mut deadline = now + timeout;
            self.rate_first = false;
            if let Some(meter) = meter {
                meter.wait_begins(now);
                if let Some(slow) = meter.deadline().filter(|slow| *slow < deadline) {
                    deadline = slow;
                    self.rate_first = true;
                }
            }
            match self.sleep.as_mut() {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        let sleep = self.sleep.as_mut().expect("armed above");
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) if self.rate_first => Some(Expired::TooSlow),
            Poll::Ready(()) => Some(Expired::Silent),
            Poll::Pending => None,
        }
    }

    /// Bytes arrived: the next wait starts afresh.
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }

    /// Bytes arrived on a metered body: the wait (if one was under way) ends now.
    pub(crate) fn disarm_metered(&mut self, meter: Option<&mut RateMeter>) {
        if self.armed {
            if let Some(meter) = meter {
                meter.wait_ends(tokio::time::Instant::now());
            }
            self.armed = false;
        }
    }
}

/// Measures how fast a client moves a body (Kestrel `MinRequestBodyDataRate` and
/// `MinResponseDataRate`): bytes per second, averaged over the time the proxy spent waiting on
/// the client, checked once that time passes the grace period. Time the proxy spends elsewhere
/// (an upstream that is slow to take the body or to send the response) is not the client's,
/// and does not count.
#[derive(Debug, Clone)]
pub(crate) struct RateMeter {
    /// The least average rate.
    bytes_per_second: u64,
    /// Waiting allowed before the rate is checked.
    grace: Duration,
    /// Bytes moved so far.
    bytes: u64,
    /// Time spent waiting on the client in earlier waits.
    waited: Duration,
    /// When the current wait began (none yet: no clock is read for a body that never waits).
    since: Option<tokio::time::Instant>,
}

impl RateMeter {
    /// A meter for one body, from `server.limits.min_*_rate`.
    pub(crate) fn new(rate: &strait_config::MinRate) -> RateMeter {
        RateMeter {
            bytes_per_second: rate.bytes_per_second.0.max(1),
            grace: rate.grace.0,
            bytes: 0,
            waited: Duration::ZERO,
            since: None,
        }
    }

    /// A meter for each body when `rate` is set, none otherwise.
    pub(crate) fn for_rate(rate: Option<&strait_config::MinRate>) -> Option<Box<RateMeter>> {
        // Boxed: the bodies and sinks holding it move with every request, metered or not.
        rate.map(|rate| Box::new(RateMeter::new(rate)))
    }

    /// `n` more bytes moved.
    pub(crate) fn count(&mut self, n: usize) {
        self.bytes += n as u64;
    }

    /// A wait on the client starts at `now`.
    pub(crate) fn wait_begins(&mut self, now: tokio::time::Instant) {
        self.since = Some(now);
    }

    /// The current wait ended at `now`.
    pub(crate) fn wait_ends(&mut self, now: tokio::time::Instant) {
        if let Some(since) = self.since {
            self.waited += now.saturating_duration_since(since);
        }
    }

    /// The waiting the bytes moved so far allow in all: the grace period, or the time they
    /// take at the least rate when that is longer.
    fn allowance(&self) -> Duration {
        let nanos = u128::from(self.bytes) * 1_000_000_000 / u128::from(self.bytes_per_second);
        self.grace.max(Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }

    /// When the current wait, if nothing more moves, takes the average below the least rate
    /// (`None` when that is too far away to be a deadline).
    pub(crate) fn deadline(&self) -> Option<tokio::time::Instant> {
        let left = self.allowance().saturating_sub(self.waited);
        self.since?.checked_add(left)
    }

    /// Whether, at `now` in the current wait, the average is below the least rate.
    pub(crate) fn too_slow(&self, now: tokio::time::Instant) -> bool {
        let current = self.since.map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        self.waited + current >= self.allowance()
    }
}

/// The request trailers passed upstream: those in `allowed`, never framing, routing or
/// credential fields (`server.request_trailers`); `None` when none is left.
pub(crate) fn allowed_trailers(trailers: HeaderMap, allowed: &[http::HeaderName]) -> Option<HeaderMap> {
    let mut kept = HeaderMap::new();
    for (name, value) in &trailers {
        if allowed.contains(name) && !crate::h1::decode::is_forbidden_trailer(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    (!kept.is_empty()).then_some(kept)
}

/// Waits while `poll` is pending, on one timer: at most `limit` without progress
/// (`ClientAborted`) and never below `meter`'s minimum rate (`ClientReadTooSlow`); the rate is
/// looked at only when that timer fires. `poll` counts what it moves on the meter it is given.
pub(crate) async fn metered_wait<T>(
    limit: Duration,
    meter: &mut RateMeter,
    mut poll: impl FnMut(&mut Context<'_>, &mut RateMeter) -> Poll<T>,
) -> Result<T, Reason> {
    let now = tokio::time::Instant::now();
    let silence = now + limit;
    meter.wait_begins(now);
    let next = |meter: &RateMeter| meter.deadline().map_or(silence, |slow| slow.min(silence));
    let mut sleep = std::pin::pin!(tokio::time::sleep_until(next(meter)));
    let outcome = std::future::poll_fn(|cx| loop {
        if let Poll::Ready(value) = poll(cx, meter) {
            return Poll::Ready(Ok(value));
        }
        if std::future::Future::poll(sleep.as_mut(), cx).is_pending() {
            return Poll::Pending;
        }
        let now = tokio::time::Instant::now();
        if now >= silence {
            return Poll::Ready(Err(Reason::ClientAborted));
        }
        if meter.too_slow(now) {
            return Poll::Ready(Err(Reason::ClientReadTooSlow));
        }
        sleep.as_mut().reset(next(meter));
    })
    .await;
    meter.wait_ends(tokio::time::Instant::now());
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn meter(bytes_per_second: u64, grace_ms: u64) -> RateMeter {
        RateMeter::new(&strait_config::MinRate {
            bytes_per_second: strait_config::units::ByteSize(bytes_per_second),
            grace: strait_config::units::Dur(Duration::from_millis(grace_ms)),
        })
    }

    #[test]
    fn the_first_wait_may_last_the_grace_period() {
        let mut meter = meter(100, 300);
        let start = Instant::now();
        meter.wait_begins(start);
        assert_eq!(meter.deadline(), Some(start + Duration::from_millis(300)));
        assert!(!meter.too_slow(start + Duration::from_millis(299)));
        assert!(meter.too_slow(start + Duration::from_millis(300)));
    }

    #[test]
    fn bytes_buy_waiting_at_the_least_rate_and_earlier_waits_use_it_up() {
        let mut meter = meter(100, 300);
        let start = Instant::now();
        meter.wait_begins(start);
        meter.wait_ends(start + Duration::from_millis(200));
        // 100 bytes at 100 B/s allow one second of waiting in all; 200 ms are used.
        meter.count(100);
        let later = start + Duration::from_secs(5);
        meter.wait_begins(later);
        assert_eq!(meter.deadline(), Some(later + Duration::from_millis(800)));
        assert!(!meter.too_slow(later + Duration::from_millis(799)));
        assert!(meter.too_slow(later + Duration::from_millis(800)));
    }

    #[test]
    fn a_wait_past_the_allowance_is_due_at_once() {
        let mut meter = meter(10, 100);
        let start = Instant::now();
        meter.wait_begins(start);
        meter.wait_ends(start + Duration::from_secs(2));
        meter.count(5);
        let later = start + Duration::from_secs(3);
        meter.wait_begins(later);
        assert_eq!(meter.deadline(), Some(later));
        assert!(meter.too_slow(later));
    }
}
