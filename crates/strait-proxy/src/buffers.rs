//! Per-worker recycling of I/O buffers and header maps, so a request does not allocate and
//! free its read and write buffers and its two header maps each time.
//!
//! A buffer larger than glibc's thread cache (about 1 KiB) is an expensive allocation; every
//! request needs a few of them (the client's head, the answer's head). Each worker keeps a short
//! stack of spare buffers per size class. A buffer is kept only when its free room is its own:
//! either no other handle shares its memory any more (header values are slices of the read
//! buffer), or the room left after the shared part is large enough; reuse never overwrites
//! bytes in use. Stacks and buffer sizes are bounded, so an idle worker holds at most about
//! 1.5 MiB of spares.

use std::cell::RefCell;

use bytes::BytesMut;
use http::HeaderMap;

/// Buffers of this capacity read request heads (nginx's `client_header_buffer_size` is 1 KiB
/// with 8 KiB for large heads; one size that fits nearly every head, grown when needed).
pub(crate) const READ: usize = 4096;
/// Buffers of this capacity collect a response head or an upstream request head.
pub(crate) const WRITE: usize = 1024;
/// Spare buffers kept per class and worker.
const KEEP: usize = 64;
/// Larger buffers are not kept (a large body's buffer would tie up memory).
pub(crate) const MAX_KEPT: usize = 16 * 1024;
/// Header maps with room for more fields than this are not kept.
const MAX_KEPT_FIELDS: usize = 32;

/// The spare buffers of one worker.
#[derive(Default)]
struct Spares {
    read: Vec<BytesMut>,
    write: Vec<BytesMut>,
    headers: Vec<HeaderMap>,
}

thread_local! {
    static SPARES: RefCell<Spares> = RefCell::new(Spares::default());
}

/// An empty buffer with room for at least [`READ`] bytes.
pub(crate) fn read() -> BytesMut {
    SPARES.with(|s| s.borrow_mut().read.pop()).unwrap_or_else(|| BytesMut::with_capacity(READ))
}

/// An empty buffer with room for at least [`WRITE`] bytes.
pub(crate) fn write() -> BytesMut {
    SPARES.with(|s| s.borrow_mut().write.pop()).unwrap_or_else(|| BytesMut::with_capacity(WRITE))
}

/// Gives back a buffer taken with [`read`] (or any other) when its bytes are no longer needed;
/// it is kept when no other handle shares its memory and its size is ordinary.
pub(crate) fn recycle_read(buf: BytesMut) {
    recycle(buf, READ, |s| &mut s.read);
}

/// Gives back a buffer taken with [`write`] (or any other) once written out.
pub(crate) fn recycle_write(buf: BytesMut) {
    recycle(buf, WRITE, |s| &mut s.write);
}

/// An empty header map with room for at least `fields` fields.
pub(crate) fn headers(fields: usize) -> HeaderMap {
    match SPARES.with(|s| s.borrow_mut().headers.pop()) {
        Some(mut map) => {
            map.reserve(fields);
            map
        }
        None => HeaderMap::with_capacity(fields),
    }
}

/// Gives back a header map whose request or response is done with.
pub(crate) fn recycle_headers(mut map: HeaderMap) {
    if map.capacity() == 0 || map.capacity() > MAX_KEPT_FIELDS {
        return;
    }
    map.clear();
    SPARES.with(|s| {
        let mut spares = s.borrow_mut();
        if spares.headers.len() < KEEP {
            spares.headers.push(map);
        }
    });
}

fn recycle(mut buf: BytesMut, min: usize, class: fn(&mut Spares) -> &mut Vec<BytesMut>) {
    if buf.capacity() == 0 || buf.capacity() > MAX_KEPT {
        return;
    }
    buf.clear();
    // Without allocating: succeeds when the room left is enough, or when this is the only
    // handle to the memory (then its start is reclaimed).
    if !buf.try_reclaim(min) || buf.capacity() > MAX_KEPT {
        // Not reusable without allocating, or its memory, reclaimed whole, is a large body's.
        return;
    }
    SPARES.with(|s| {
        let mut spares = s.borrow_mut();
        let stack = class(&mut spares);
        if stack.len() < KEEP {
            stack.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_is_reused_and_empty() {
        let mut buf = read();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let addr = buf.as_ptr();
        recycle_read(buf);
        let again = read();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), addr);
        assert!(again.capacity() >= READ);
    }

    #[test]
    fn a_buffer_still_shared_with_live_bytes_is_not_overwritten() {
        let mut buf = BytesMut::with_capacity(READ);
        buf.extend_from_slice(&[b'x'; READ - 100]);
        let head = buf.split_to(READ - 100).freeze();
        // `buf` now has 100 bytes of room, and `head` still uses the memory before it.
        let tail = buf.as_ptr();
        recycle_read(buf);
        let mut next = read();
        assert_ne!(next.as_ptr(), tail);
        next.extend_from_slice(&[b'y'; READ]);
        assert!(head.iter().all(|b| *b == b'x'));
    }

    #[test]
    fn a_recycled_header_map_comes_back_empty() {
        let mut map = headers(4);
        map.insert(http::header::HOST, http::HeaderValue::from_static("example.com"));
        recycle_headers(map);
        let again = headers(4);
        assert!(again.is_empty());
        assert!(again.capacity() >= 4);
    }

    #[test]
    fn large_buffers_are_not_kept() {
        // Told apart by capacity, not address: the allocator may hand the freed memory out again.
        recycle_write(BytesMut::with_capacity(MAX_KEPT * 2));
        let next = write();
        assert!(next.capacity() < MAX_KEPT * 2, "a {} byte buffer was kept", next.capacity());
    }
}
