//! The byte streams connection drivers run over: TCP today, TLS and Unix sockets beside it.
//!
//! A driver is generic over [`Transport`], so each transport gets its own compiled copy of the
//! HTTP/1 driver with no dynamic dispatch on the plain path. Besides reading and writing, a
//! transport answers the two questions the idle-connection work needs: wait until the peer
//! sends something without holding a buffer ([`Transport::readable`]), and forget stale
//! readiness after a short read ([`Transport::note_read`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

/// A connected byte stream a connection driver can serve.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + 'static {
    /// Resolves when a read may make progress (bytes, EOF or an error), holding no buffer.
    /// It may resolve spuriously; the read that follows decides.
    fn readable(&mut self) -> impl Future<Output = io::Result<()>>;

    /// Reads what is available now into `buf` without waiting (`WouldBlock` if nothing is).
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize>;

    /// Records that a read of `read` bytes had room for `room`: a short read drained the
    /// socket, so the next wait can go straight to the event loop.
    fn note_read(&self, read: usize, room: usize);

    /// The plain TCP connection this is, if it is one (a CONNECT tunnel's TLS is inspected on
    /// plain listeners only).
    fn into_tcp(self) -> Result<TcpStream, Self>
    where
        Self: Sized;
}

impl Transport for TcpStream {
    fn readable(&mut self) -> impl Future<Output = io::Result<()>> {
        TcpStream::readable(self)
    }

    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        TcpStream::try_read_buf(self, buf)
    }

    fn note_read(&self, read: usize, room: usize) {
        crate::readiness::note_read(self, read, room);
    }

    fn into_tcp(self) -> Result<TcpStream, Self> {
        Ok(self)
    }
}

/// A TLS connection accepted on a listener.
pub(crate) type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

impl Transport for TlsStream {
    async fn readable(&mut self) -> io::Result<()> {
        // Records already received may hold plaintext no socket event will announce again.
        let (_, session) = self.get_mut();
        if session.process_new_packets().is_ok_and(|state| state.plaintext_bytes_to_read() > 0) {
            return Ok(());
        }
        self.get_ref().0.readable().await
    }

    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        // One poll without a task to wake: the idle wait above does the waiting.
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut std::pin::pin!(self.read_buf(buf))).as_mut().poll(&mut cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn note_read(&self, _read: usize, _room: usize) {
        // rustls reads the socket in records of its own: a short plaintext read says nothing
        // about the socket.
    }

    fn into_tcp(self) -> Result<TcpStream, Self> {
        Err(self)
    }
}
