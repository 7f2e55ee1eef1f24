//! The byte streams connection drivers run over: TCP today, TLS and Unix sockets beside it.
//!
//! A driver is generic over [`Transport`], so each transport gets its own compiled copy of the
//! HTTP/1 driver with no dynamic dispatch on the plain path. Besides reading and writing, a
//! transport answers the two questions the idle-connection work needs: wait until the peer
//! sends something without holding a buffer ([`Transport::readable`]), and forget stale
//! readiness after a short read ([`Transport::note_read`]).

use std::future::Future;
use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A connected byte stream a connection driver can serve.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + 'static {
    /// Resolves when a read may make progress (bytes, EOF or an error), holding no buffer.
    /// It may resolve spuriously; the read that follows decides.
    fn readable(&self) -> impl Future<Output = io::Result<()>>;

    /// Reads what is available now into `buf` without waiting (`WouldBlock` if nothing is).
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize>;

    /// Records that a read of `read` bytes had room for `room`: a short read drained the
    /// socket, so the next wait can go straight to the event loop.
    fn note_read(&self, read: usize, room: usize);
}

impl Transport for TcpStream {
    fn readable(&self) -> impl Future<Output = io::Result<()>> {
        TcpStream::readable(self)
    }

    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        TcpStream::try_read_buf(self, buf)
    }

    fn note_read(&self, read: usize, room: usize) {
        crate::readiness::note_read(self, read, room);
    }
}
