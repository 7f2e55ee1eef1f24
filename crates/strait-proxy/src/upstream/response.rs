//! The body of an upstream response, whichever protocol it came over.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::{h1, h2};
use crate::body::BodyError;

/// A response body from an upstream, streaming; the request body `B` may still be going up.
pub(crate) enum UpstreamBody<B> {
    /// Over an HTTP/1.1 connection.
    Http1(h1::UpstreamBody<B>),
    /// Over an HTTP/2 stream.
    Http2(h2::UpstreamBody<B>),
}

impl<B> UpstreamBody<B>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    /// The connection after a `101 Switching Protocols` (HTTP/1.1 only).
    pub(crate) fn into_upgraded(self) -> Option<super::Upgraded> {
        match self {
            UpstreamBody::Http1(body) => body.into_upgraded(),
            UpstreamBody::Http2(_) => None,
        }
    }

    /// The request body back, if it was never touched (a retry on another endpoint).
    pub(crate) fn into_request_body(self) -> Option<B> {
        match self {
            UpstreamBody::Http1(body) => body.into_request_body(),
            UpstreamBody::Http2(body) => body.into_request_body(),
        }
    }
}

impl<B> Body for UpstreamBody<B>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            UpstreamBody::Http1(body) => Pin::new(body).poll_frame(cx),
            UpstreamBody::Http2(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Http1(body) => body.is_end_stream(),
            UpstreamBody::Http2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Http1(body) => body.size_hint(),
            UpstreamBody::Http2(body) => body.size_hint(),
        }
    }
}
