//! Moving a TCP session's bytes both ways: each direction's end passed on as a half-close (or,
//! without half-close, the session ended at the first end), the session ended after the idle
//! timeout without a byte either way, or at the drain deadline of a removed listener.
//!
//! A direction starts by copying through a small recycled buffer; once a read fills it (a bulk
//! transfer), it goes on through a 16 KiB buffer or, with `splice`, by `splice(2)` through a
//! pipe, socket to socket inside the kernel without being copied into the process (about a
//! third less CPU per byte, at some throughput on loopback: see `docs/BENCHMARKS.md`).

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::pin::pin;

use bytes::BytesMut;
use rustix::pipe::{pipe_with, splice, PipeFlags, SpliceFlags};
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::drain::ListenerDrain;
use super::TcpPlan;

/// Size of the buffer a bulk transfer is copied through (NGINX `proxy_buffer_size`).
const COPY_BUFFER: usize = 16 * 1024;
/// Most bytes moved by one splice call: 16 KiB kept the transfer as fast as copying on
/// loopback (64 KiB chunks were 10% slower) at half the CPU time.
const SPLICE_CHUNK: usize = 16 * 1024;

/// How a relay ended and what it carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Relayed {
    /// Bytes from the client to the upstream.
    pub up: u64,
    /// Bytes from the upstream to the client.
    pub down: u64,
    /// Why it ended early, if it did (`None`: both sides closed).
    pub ended_by: Option<Ended>,
}

/// Why a relay ended before both sides closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// No byte either way for the idle timeout.
    Idle,
    /// The client side failed (reset, or a write that could not complete).
    Client,
    /// The upstream side failed.
    Upstream,
    /// The listener was removed and its drain deadline passed.
    Drained,
}

/// What the two directions of one relay share: the time of the last progress either way,
/// whether one direction has ended, and the writes under way.
struct Activity {
    /// When a byte last moved either way.
    last: Cell<Instant>,
    /// A direction has passed its end on.
    one_ended: Cell<bool>,
    /// Each direction's end is passed on as a half-close; without, the first end ends the
    /// session (the other direction finishes the write it has begun, and reads no more).
    half_close: bool,
    /// Writes begun and not yet done (bytes read that the destination has not all taken).
    writing: Cell<u8>,
}

impl Activity {
    /// Notes progress now.
    fn touch(&self) {
        self.last.set(Instant::now());
    }

    /// A direction stops reading: the session ends at the first end and one has come.
    fn stopping(&self) -> bool {
        !self.half_close && self.one_ended.get()
    }
}

/// Relays between `client` and `upstream` until both directions ended (or, without the
/// plan's half-close, one did), the idle timeout passed without traffic, or `drain` (when
/// the listener goes away) reaches its deadline; bulk transfers move by splice when the plan
/// says so.
pub(super) async fn relay(
    mut client: TcpStream,
    mut upstream: TcpStream,
    plan: &TcpPlan,
    drain: &ListenerDrain,
) -> Relayed {
    let (idle, splice) = (plan.idle_timeout, plan.splice);
    let activity = Activity {
        last: Cell::new(Instant::now()),
        one_ended: Cell::new(false),
        half_close: plan.half_close,
        writing: Cell::new(0),
    };
    let (up, down) = (Cell::new(0u64), Cell::new(0u64));
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let to_upstream = direction(client_read, upstream_write, &activity, &up, splice, (Ended::Client, Ended::Upstream));
    let to_client = direction(upstream_read, client_write, &activity, &down, splice, (Ended::Upstream, Ended::Client));
    let both = async {
        if activity.half_close {
            tokio::try_join!(to_upstream, to_client).map(|_| ())
        } else {
            until_first_end(to_upstream, to_client, &activity).await
        }
    };
    let idle_out = async {
        loop {
            let due = activity.last.get() + idle;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    };
    let ended_by = tokio::select! {
        result = both => result.err(),
        () = idle_out => Some(Ended::Idle),
        () = drain.deadline() => Some(Ended::Drained),
    };
    Relayed { up: up.get(), down: down.get(), ended_by }
}

/// Runs both directions until one ends, then the other only while it finishes a write it
/// had begun (it reads no more); the first failure ends both.
async fn until_first_end<F>(a: F, b: F, activity: &Activity) -> Result<(), Ended>
where
    F: Future<Output = Result<(), Ended>>,
{
    let (mut a, mut b) = (pin!(a), pin!(b));
    let rest = tokio::select! {
        ended = &mut a => { ended?; b }
        ended = &mut b => { ended?; a }
    };
    if activity.writing.get() == 0 {
        // Waiting for a read: dropped, nothing taken from the source is lost.
        return Ok(());
    }
    rest.await
}

/// Which side of a direction failed.
enum Failed {
    /// Reading from the source.
    Read,
    /// Writing to the destination.
    Write,
}

/// One direction, its failure told as the side of the session it happened on: `sides` is
/// (the source's side, the destination's side).
async fn direction(
    from: ReadHalf<'_>,
    to: WriteHalf<'_>,
    activity: &Activity,
    carried: &Cell<u64>,
    splice: bool,
    sides: (Ended, Ended),
) -> Result<(), Ended> {
    pump(from, to, activity, carried, splice).await.map_err(|failed| match failed {
        Failed::Read => sides.0,
        Failed::Write => sides.1,
    })
}

/// Moves bytes from `from` to `to` until `from` ends, then half-closes `to`.
///
/// The first phase reads into a small recycled buffer through the stream's `AsyncRead`, which
/// takes a short read as the end of what the socket holds (no extra `recv` that would only say
/// so): a short session costs no allocation. A read that fills it marks a bulk transfer, which
/// goes on through a 16 KiB buffer, or by splice when `splice` is set.
async fn pump(
    mut from: ReadHalf<'_>,
    to: WriteHalf<'_>,
    activity: &Activity,
    carried: &Cell<u64>,
    splice: bool,
) -> Result<(), Failed> {
    let mut buf = crate::buffers::read();
    let capacity = buf.capacity();
    loop {
        let n = from.read_buf(&mut buf).await.map_err(|_| Failed::Read)?;
        if n == 0 {
            crate::buffers::recycle_read(buf);
            return finish(to.as_ref(), activity);
        }
        write_all(to.as_ref(), &buf, activity).await?;
        carried.set(carried.get() + n as u64);
        let full = buf.len() == capacity;
        buf.clear();
        if activity.stopping() {
            crate::buffers::recycle_read(buf);
            return Ok(());
        }
        if full {
            break;
        }
    }
    crate::buffers::recycle_read(buf);
    let (from, to) = (from.as_ref(), to.as_ref());
    if splice {
        // Without a pipe (out of descriptors), keep copying.
        if let Ok((pipe_out, pipe_in)) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC) {
            return splice_rest(from, to, (&pipe_out, &pipe_in), activity, carried).await;
        }
    }
    copy_rest(from, to, activity, carried).await
}

/// Copies the rest of a bulk direction through a 16 KiB buffer.
async fn copy_rest(from: &TcpStream, to: &TcpStream, activity: &Activity, carried: &Cell<u64>) -> Result<(), Failed> {
    let mut buf = BytesMut::with_capacity(COPY_BUFFER);
    loop {
        from.readable().await.map_err(|_| Failed::Read)?;
        match from.try_read_buf(&mut buf) {
            Ok(0) => return finish(to, activity),
            Ok(n) => {
                write_all(to, &buf, activity).await?;
                carried.set(carried.get() + n as u64);
                buf.clear();
                if activity.stopping() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Err(Failed::Read),
        }
    }
}

/// Splices the rest of the direction: socket → pipe, then pipe → socket until it is empty.
async fn splice_rest(
    from: &TcpStream,
    to: &TcpStream,
    (pipe_out, pipe_in): (&OwnedFd, &OwnedFd),
    activity: &Activity,
    carried: &Cell<u64>,
) -> Result<(), Failed> {
    let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    loop {
        from.readable().await.map_err(|_| Failed::Read)?;
        let filled = from.try_io(Interest::READABLE, || {
            splice(from, None, pipe_in, None, SPLICE_CHUNK, flags).map_err(io::Error::from)
        });
        let mut pending = match filled {
            Ok(0) => return finish(to, activity),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return Err(Failed::Read),
        };
        activity.touch();
        let _writing = Writing::begin(activity);
        while pending > 0 {
            to.writable().await.map_err(|_| Failed::Write)?;
            let drained = to.try_io(Interest::WRITABLE, || {
                splice(pipe_out, None, to, None, pending, flags).map_err(io::Error::from)
            });
            match drained {
                // A pipe with bytes that moves none: the destination is gone.
                Ok(0) => return Err(Failed::Write),
                Ok(n) => {
                    pending -= n;
                    carried.set(carried.get() + n as u64);
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(Failed::Write),
            }
        }
        if activity.stopping() {
            return Ok(());
        }
    }
}

/// A write under way, counted in [`Activity::writing`] while it lives.
struct Writing<'a>(&'a Activity);

impl<'a> Writing<'a> {
    /// Counts a write from now until the guard is dropped.
    fn begin(activity: &'a Activity) -> Writing<'a> {
        activity.writing.set(activity.writing.get() + 1);
        Writing(activity)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.writing.set(self.0.writing.get() - 1);
    }
}

/// Writes all of `bytes` (just read) to `to`, marking progress as it goes.
async fn write_all(to: &TcpStream, mut bytes: &[u8], activity: &Activity) -> Result<(), Failed> {
    activity.touch();
    let mut waited = false;
    while !bytes.is_empty() {
        match to.try_write(bytes) {
            Ok(n) => {
                bytes = &bytes[n..];
                // A write that took it all at once is progress the read already marked.
                if waited || !bytes.is_empty() {
                    activity.touch();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let _writing = Writing::begin(activity);
                to.writable().await.map_err(|_| Failed::Write)?;
                waited = true;
            }
            Err(_) => return Err(Failed::Write),
        }
    }
    Ok(())
}

/// Passes the end of a direction on: the destination's write side is shut down, unless the
/// other direction has ended already or the session ends at its first end: then the session
/// closes both sockets next (the close sends the same FIN; the destination's own end has been
/// read, or the session was to end anyway).
fn finish(to: &TcpStream, activity: &Activity) -> Result<(), Failed> {
    if activity.one_ended.replace(true) || !activity.half_close {
        return Ok(());
    }
    // The peer may already be gone; the other direction then reports it.
    let _ = socket2::SockRef::from(to).shutdown(Shutdown::Write);
    Ok(())
}
