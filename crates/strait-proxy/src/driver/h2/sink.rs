//! The HTTP/2 response sink: a HEADERS frame, DATA frames within the peer's flow-control
//! window, trailers; for a WebSocket, `200` on a stream that stays open for the relay.

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{response, HeaderMap, HeaderName, Response, StatusCode};
use strait_http::{AddedFields, Reason};

use crate::body::RateMeter;
use crate::exchange::{BodySize, ResponseSink, SinkClosed};
use crate::snapshot::ServerPlan;
use crate::upstream::Upgraded;

/// Writes one response on an HTTP/2 stream.
pub(super) struct H2Sink {
    respond: Option<h2::server::SendResponse<Bytes>>,
    stream: Option<h2::SendStream<Bytes>>,
    head_request: bool,
    ended: bool,
    /// A small chunk held back so the last one can carry END_STREAM (one frame fewer).
    held: Option<Bytes>,
    /// Longest wait for the client to open its window.
    write_timeout: Duration,
    /// The upstream connection a WebSocket switched to (boxed: other streams carry a pointer).
    upgraded: Option<Box<Upgraded>>,
    /// Measures how fast the client takes the response, when it has a minimum.
    meter: Option<Box<RateMeter>>,
    /// The access log records the response's `Content-Type`.
    keep_content_type: bool,
}

/// Chunks up to this size are queued without waiting for window capacity: `h2` sends them as
/// the window allows, and a response this small needs no back-pressure.
const QUEUE_WITHOUT_CAPACITY: usize = 16 * 1024;

impl H2Sink {
    /// A sink answering on `respond`.
    pub(super) fn new(respond: h2::server::SendResponse<Bytes>, head_request: bool, server: &ServerPlan) -> H2Sink {
        H2Sink {
            respond: Some(respond),
            stream: None,
            head_request,
            ended: false,
            held: None,
            write_timeout: server.client_body_timeout,
            upgraded: None,
            meter: RateMeter::for_rate(server.min_response_body_rate.as_ref()),
            keep_content_type: false,
        }
    }

    /// Has the exchange keep the response's `Content-Type` for the access log.
    pub(super) fn keeping_content_type(mut self, keep: bool) -> H2Sink {
        self.keep_content_type = keep;
        self
    }

    /// After a WebSocket switched protocols: the stream's sending half and the upstream
    /// connection, to relay between.
    pub(super) fn into_tunnel(self) -> Option<(h2::SendStream<Bytes>, Upgraded)> {
        Some((self.stream?, *self.upgraded?))
    }

    async fn send(&mut self, mut data: Bytes, end: bool) -> Result<(), SinkClosed> {
        let Some(stream) = self.stream.as_mut() else { return Err(SinkClosed::GONE) };
        // A metered response always waits for the window: that wait is what the meter measures.
        if data.len() <= QUEUE_WITHOUT_CAPACITY && self.meter.is_none() {
            stream.send_data(data, end).map_err(|_| SinkClosed::GONE)?;
            self.ended = end;
            return Ok(());
        }
        while !data.is_empty() {
            stream.reserve_capacity(data.len());
            let granted = match wait_capacity(stream, self.write_timeout, self.meter.as_deref_mut()).await {
                Ok(0) => continue,
                Ok(n) => n,
                Err(reason) => {
                    stream.send_reset(h2::Reason::CANCEL);
                    return Err(SinkClosed(reason));
                }
            };
            let chunk = data.split_to(granted.min(data.len()));
            let last = end && data.is_empty();
            stream.send_data(chunk, last).map_err(|_| SinkClosed::GONE)?;
            if last {
                self.ended = true;
            }
        }
        if end && !self.ended {
            stream.send_data(Bytes::new(), true).map_err(|_| SinkClosed::GONE)?;
            self.ended = true;
        }
        Ok(())
    }
}

/// Waits for window capacity on `stream`: at most `limit`, and, when the response is metered,
/// no longer than the client's minimum rate allows. Capacity that is there already needs no
/// timer and no clock.
async fn wait_capacity(
    stream: &mut h2::SendStream<Bytes>,
    limit: Duration,
    meter: Option<&mut RateMeter>,
) -> Result<usize, Reason> {
    let granted = |polled: Option<Result<usize, h2::Error>>| polled.and_then(Result::ok).ok_or(Reason::ClientAborted);
    if let Poll::Ready(polled) = poll_fn(|cx| Poll::Ready(stream.poll_capacity(cx))).await {
        return granted(polled);
    }
    let Some(meter) = meter else {
        return match tokio::time::timeout(limit, poll_fn(|cx| stream.poll_capacity(cx))).await {
            Ok(polled) => granted(polled),
            Err(_) => Err(Reason::ClientAborted),
        };
    };
    let outcome =
        crate::body::metered_wait(limit, &mut *meter, |cx, _| stream.poll_capacity(cx)).await.and_then(granted);
    if let Ok(n) = outcome {
        meter.count(n);
    }
    outcome
}

impl ResponseSink for H2Sink {
    async fn head(
        &mut self,
        head: &mut response::Parts,
        added: &mut AddedFields,
        size: BodySize,
    ) -> Result<(), SinkClosed> {
        let Some(mut respond) = self.respond.take() else { return Err(SinkClosed::GONE) };
        // The h2 encoder takes one map.
        added.move_into(&mut head.headers);
        // HTTP/2 has no `101` (RFC 9113 §8.6): a WebSocket's switch is a `200` whose stream
        // stays open (RFC 8441 §5), and the response as the exchange sees it ends here.
        let tunnel = head.status == StatusCode::SWITCHING_PROTOCOLS
            && head.extensions.get::<strait_http::context::UpgradeRequest>().is_some();
        let head_request = self.head_request;
        // HTTP/2 carries no connection-specific fields (RFC 9113 §8.2.2); the length is the
        // stream's own, below.
        let dropped =
            |name: &HeaderName| crate::h1::is_framing(name) && !(name == header::CONTENT_LENGTH && head_request);
        // The head's own map goes out when it has nothing to drop (the usual case: upstream
        // heads and Strait's answers carry no framing fields), saving a copy of every field.
        let mut headers = if head.headers.keys().any(dropped) {
            let mut kept = HeaderMap::with_capacity(head.headers.len() + 1);
            for (name, value) in &head.headers {
                if !dropped(name) {
                    kept.append(name.clone(), value.clone());
                }
            }
            kept
        } else {
            std::mem::take(&mut head.headers)
        };
        if let BodySize::Exact(n) = size {
            if !head_request || n > 0 {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
        }
        let mut response = Response::new(());
        *response.status_mut() = if tunnel { StatusCode::OK } else { head.status };
        *response.headers_mut() = headers;
        if tunnel {
            let stream = respond.send_response(response, false).map_err(|_| SinkClosed::GONE)?;
            self.ended = true;
            self.stream = Some(stream);
            return Ok(());
        }
        let end = size == BodySize::Empty || self.head_request || crate::exchange::respond::is_bodiless(head.status);
        let stream = respond.send_response(response, end).map_err(|_| SinkClosed::GONE)?;
        self.ended = end;
        self.stream = Some(stream);
        Ok(())
    }

    async fn data(&mut self, data: Bytes) -> Result<(), SinkClosed> {
        if self.ended || data.is_empty() {
            return Ok(());
        }
        if let Some(held) = self.held.take() {
            self.send(held, false).await?;
        }
        if data.len() <= QUEUE_WITHOUT_CAPACITY {
            self.held = Some(data);
            return Ok(());
        }
        self.send(data, false).await
    }

    async fn trailers(&mut self, trailers: HeaderMap) -> Result<(), SinkClosed> {
        if self.ended {
            return Ok(());
        }
        if let Some(held) = self.held.take() {
            self.send(held, false).await?;
        }
        let Some(stream) = self.stream.as_mut() else { return Err(SinkClosed::GONE) };
        let mut kept = HeaderMap::new();
        for (name, value) in &trailers {
            if !crate::h1::is_framing(name) {
                kept.append(name.clone(), value.clone());
            }
        }
        stream.send_trailers(kept).map_err(|_| SinkClosed::GONE)?;
        self.ended = true;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkClosed> {
        // The connection task writes frames as they are queued; a held chunk goes now.
        match self.held.take() {
            Some(held) => self.send(held, false).await,
            None => Ok(()),
        }
    }

    async fn finish(&mut self) -> Result<(), SinkClosed> {
        if self.ended {
            return Ok(());
        }
        let last = self.held.take().unwrap_or_default();
        self.send(last, true).await
    }

    fn sends_body(&self) -> bool {
        !self.head_request
    }

    fn keeps_content_type(&self) -> bool {
        self.keep_content_type
    }

    fn upgrade(&mut self, upgraded: Upgraded) -> bool {
        if self.stream.is_none() {
            return false;
        }
        self.upgraded = Some(Box::new(upgraded));
        true
    }

    fn interrupt(&mut self) -> bool {
        if self.respond.is_some() {
            // No HEADERS yet: another answer can take this one's place.
            return true;
        }
        if let (Some(stream), false) = (self.stream.as_mut(), self.ended) {
            stream.send_reset(h2::Reason::CANCEL);
        }
        false
    }
}
