//! Socket readiness bookkeeping that saves a `recv` call per request.
//!
//! Tokio learns that a socket is readable from epoll; after a `try_read_buf` it forgets that only
//! when a read returns `WouldBlock`. A read that returned fewer bytes than it had room for already
//! emptied the receive queue, so the next read would fail with `EAGAIN`: forgetting readiness
//! right away lets the next wait go straight to epoll instead (Tokio's own `poll_read` does the
//! same after a short read; this covers the `try_read_buf` path). New data raises a new epoll event, and a
//! peer's close stays visible (Tokio never clears the closed state), so nothing is missed.

use std::io;

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Records that a read of `read` bytes had room for `room`; a short read means drained.
pub(crate) fn note_read(stream: &TcpStream, read: usize, room: usize) {
    if read > 0 && read < room {
        let _ = stream.try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
    }
}
