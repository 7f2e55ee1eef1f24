//! Bodies on the neutral request path: every body is an `http_body::Body` of `Bytes` whose
//! error is the [`Reason`] the exchange reports when it fails.

use std::pin::Pin;
use std::task::{Context, Poll};

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
#[derive(Default)]
pub(crate) struct ReadTimer {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
}

impl ReadTimer {
    /// A read is waiting: `true` when it has waited `timeout` since it started to.
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>, timeout: std::time::Duration) -> bool {
        use std::future::Future;
        let deadline = tokio::time::Instant::now() + timeout;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            sleep.as_mut().reset(deadline);
            self.armed = true;
        }
        sleep.as_mut().poll(cx).is_ready()
    }

    /// Bytes arrived: the next wait starts afresh.
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
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
