//! The one place answers are written: response filters, `Date`, request id and reason code,
//! then head, body and trailers through the connection's [`ResponseSink`].

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{response, HeaderMap, StatusCode};
use http_body::Body;
use strait_http::{LocalResponse, Phases, RequestCtx};

use super::sink::{BodySize, ResponseSink, SinkClosed};
use crate::body::{BodyError, Full};
use crate::chain::{filter_chunk, Chain};
use crate::snapshot::Snapshot;

/// The reason header on Strait's own answers.
const REASON_HEADER: HeaderName = HeaderName::from_static("x-strait-reason");
/// The request id header.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Sends an answer Strait made itself: local-reply filters, reason code, request id, `Date`,
/// then [`send`]. Returns whether the whole answer was sent.
pub(crate) async fn send_local<S: ResponseSink>(
    sink: &mut S,
    chain: &mut Chain,
    ctx: &mut RequestCtx,
    snapshot: &Snapshot,
    mut reply: LocalResponse,
) -> bool {
    if ctx.extensions.get::<crate::grpc::GrpcRequest>().is_some() {
        crate::grpc::reshape(&mut reply);
    }
    chain.local_reply(&mut reply, ctx).await;
    let LocalResponse { status, mut headers, body, reason } = reply;
    if reason.is_some() {
        ctx.reason = reason;
    }
    if let (Some(reason), true) = (reason, snapshot.server.reason_header) {
        headers.insert(REASON_HEADER, HeaderValue::from_static(reason.code()));
    }
    if let Some(id) = &ctx.request_id {
        headers.insert(REQUEST_ID, id.clone());
    }
    headers.insert(header::DATE, crate::date::now());
    let mut response = response::Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    send(sink, chain, ctx, response).await
}

/// Sends a response: response-header filters, then the head, then the body (through the
/// response-body filters) and trailers. Returns whether the whole response was sent.
pub(crate) async fn send<S, B>(
    sink: &mut S,
    chain: &mut Chain,
    ctx: &mut RequestCtx,
    response: response::Response<B>,
) -> bool
where
    S: ResponseSink,
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let (mut head, mut body) = response.into_parts();
    // Fields set for an answer that was never sent (its send ran out of time) are not this one's.
    ctx.response_fields.clear();
    if chain.has(Phases::RESPONSE_HEADERS) {
        // Read by the filters that see or replace bodies; the others do not pay for it.
        if let Some(length) = body.size_hint().exact().filter(|_| chain.has(Phases::RESPONSE_BODY)) {
            head.extensions.insert(strait_http::context::ResponseLength(length));
        }
        chain.response_headers(&mut head, ctx).await;
        remove_framing(&mut head.headers);
    }
    if chain.has(Phases::RESPONSE_BODY) && !ctx.response_fields.is_empty() {
        // The body filters read the head's fields.
        ctx.response_fields.move_into(&mut head.headers);
    }
    // No body goes out for HEAD: nothing to filter, and the framing stays the upstream's.
    let mut filters = if sink.sends_body() { chain.response_body(&head, ctx) } else { Vec::new() };
    let bodiless = is_bodiless(head.status);
    let size = if bodiless {
        BodySize::Empty
    } else if !filters.is_empty() {
        head.headers.remove(header::CONTENT_LENGTH);
        BodySize::Unknown
    } else {
        match body.size_hint().exact() {
            Some(0) if body.is_end_stream() => BodySize::Empty,
            Some(n) => BodySize::Exact(n),
            None => BodySize::Unknown,
        }
    };
    ctx.status = head.status;
    if sink.keeps_content_type() {
        let added = ctx.response_fields.get(&header::CONTENT_TYPE);
        ctx.response_content_type = added.or_else(|| head.headers.get(header::CONTENT_TYPE)).cloned();
    }
    let sent = sink.head(&mut head, &mut ctx.response_fields, size).await;
    ctx.response_fields.clear();
    if let Err(closed) = sent {
        note_closed(ctx, closed);
        return false;
    }
    // The head is out: its map, unless the sink took it, serves the next response (its values
    // no longer hold the upstream's read buffer either).
    crate::buffers::recycle_headers(std::mem::take(&mut head.headers));
    if bodiless || !sink.sends_body() {
        return match sink.finish().await {
            Ok(()) => true,
            Err(closed) => {
                note_closed(ctx, closed);
                false
            }
        };
    }
    loop {
        // Take what is ready; before waiting for more, write out what the sink holds back.
        let ready = poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
        let next = match ready {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if let Err(closed) = sink.flush().await {
                    note_closed(ctx, closed);
                    return false;
                }
                crate::body::next_frame(&mut body).await
            }
        };
        let frame = match next {
            None => break,
            Some(Err(BodyError(reason))) => {
                ctx.reason = Some(reason);
                return false;
            }
            Some(Ok(frame)) => frame,
        };
        let sent = match frame.into_data() {
            Ok(mut data) => {
                if !filters.is_empty() {
                    // Boxed: only filtered responses pay for the filters' state.
                    let boxed = Box::pin(filter_chunk(std::mem::take(&mut filters), data, false));
                    let (back, result) = boxed.await;
                    filters = back;
                    data = match result {
                        Ok(data) => data,
                        Err(reason) => {
                            ctx.reason = Some(reason);
                            return false;
                        }
                    };
                }
                ctx.bytes_sent += data.len() as u64;
                if data.is_empty() {
                    Ok(())
                } else {
                    sink.data(data).await
                }
            }
            Err(frame) => match frame.into_trailers() {
                Ok(trailers) => {
                    if !filters.is_empty() {
                        let boxed = Box::pin(flush_filters(sink, &mut filters, ctx));
                        if !boxed.await {
                            return false;
                        }
                    }
                    sink.trailers(trailers).await
                }
                Err(_) => Ok(()),
            },
        };
        if let Err(closed) = sent {
            note_closed(ctx, closed);
            return false;
        }
    }
    if !filters.is_empty() {
        let boxed = Box::pin(flush_filters(sink, &mut filters, ctx));
        if !boxed.await {
            return false;
        }
    }
    if let Err(closed) = sink.finish().await {
        note_closed(ctx, closed);
        return false;
    }
    true
}

/// Records why the client's side closed: a client that went away leaves an earlier reason in
/// place (a 404's `no_route`), a client below its minimum rate replaces it.
fn note_closed(ctx: &mut RequestCtx, SinkClosed(reason): SinkClosed) {
    match reason {
        strait_http::Reason::ClientAborted => {
            ctx.reason.get_or_insert(reason);
        }
        _ => ctx.reason = Some(reason),
    }
}

/// Ends the response-body filters (their last output goes to the client); a no-op once done.
async fn flush_filters<S: ResponseSink>(
    sink: &mut S,
    filters: &mut Vec<Box<dyn strait_http::BodyFilter>>,
    ctx: &mut RequestCtx,
) -> bool {
    if filters.is_empty() {
        return true;
    }
    let boxed = Box::pin(filter_chunk(std::mem::take(filters), Bytes::new(), true));
    let (_, result) = boxed.await;
    match result {
        Ok(data) if data.is_empty() => true,
        Ok(data) => {
            ctx.bytes_sent += data.len() as u64;
            match sink.data(data).await {
                Ok(()) => true,
                Err(closed) => {
                    note_closed(ctx, closed);
                    false
                }
            }
        }
        Err(reason) => {
            ctx.reason = Some(reason);
            false
        }
    }
}

/// 1xx, 204 and 304 answers carry no body and no length (RFC 9110 §8.6, §15.3.5, §15.4.5).
pub(crate) fn is_bodiless(status: StatusCode) -> bool {
    status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED
}

/// Removes the fields only a connection may write, after filters had the headers in hand.
pub(crate) fn remove_framing(headers: &mut HeaderMap) {
    const FRAMING: [HeaderName; 5] =
        [header::TRANSFER_ENCODING, header::CONNECTION, header::TE, header::TRAILER, header::UPGRADE];
    // One look at the names present costs less than six removals, and they are rarely there
    // (a `Proxy-*` field, hop-by-hop but kept here, only costs the removals).
    let present = headers.keys().any(crate::h1::is_hop_by_hop);
    if !present {
        return;
    }
    for name in FRAMING {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}
