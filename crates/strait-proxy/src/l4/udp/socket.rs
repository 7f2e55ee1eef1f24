//! UDP sockets: the listener's, one per worker bound with `SO_REUSEPORT`; one connected socket
//! per session towards its endpoint; and the worker's buffer every datagram is read into.

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

/// Size of the worker's datagram buffer: the largest UDP payload fits.
const DATAGRAM_BUFFER: usize = 64 * 1024;
/// Receive buffer asked of the kernel for a listener's sockets, so a burst of datagrams waits
/// for the worker instead of being dropped (the kernel caps it at `net.core.rmem_max`).
const LISTENER_RECV_BUFFER: usize = 4 * 1024 * 1024;

thread_local! {
    /// The worker's datagram buffer, borrowed only between two awaits.
    static BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; DATAGRAM_BUFFER].into_boxed_slice());
}

/// Runs `work` with the worker's datagram buffer (never across an await).
pub(super) fn with_buffer<R>(work: impl FnOnce(&mut [u8]) -> R) -> R {
    BUFFER.with_borrow_mut(|buffer| work(buffer))
}

/// Binds `count` UDP sockets to `addr` with `SO_REUSEPORT`, returning them and the bound
/// address; port 0 is resolved by the first socket and reused by the others.
pub(crate) fn bind_reuseport(addr: SocketAddr, count: usize) -> io::Result<(Vec<std::net::UdpSocket>, SocketAddr)> {
    let mut sockets = Vec::with_capacity(count);
    let mut local = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        if local.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_nonblocking(true)?;
        // Best effort: a smaller buffer only drops more of a burst.
        let _ = socket.set_recv_buffer_size(LISTENER_RECV_BUFFER);
        socket.bind(&local.into())?;
        let socket: std::net::UdpSocket = socket.into();
        local = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok((sockets, local))
}

/// A socket of an ephemeral local port connected to `endpoint`, so that only its datagrams
/// are received and an ICMP refusal comes back as an error.
pub(super) fn connect_upstream(endpoint: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    let local: SocketAddr = match endpoint {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(local)?;
    socket.connect(endpoint)?;
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket)
}

/// Sends `datagram` on the connected `socket` now, with no wait for readiness (a full send
/// buffer is `WouldBlock`: the datagram is dropped, as the network may drop it).
pub(super) fn send(socket: &tokio::net::UdpSocket, datagram: &[u8]) -> io::Result<usize> {
    SockRef::from(socket).send(datagram)
}

/// Sends `datagram` from `socket` to `to` now, with no wait for readiness.
pub(super) fn send_to(socket: &tokio::net::UdpSocket, datagram: &[u8], to: &SockAddr) -> io::Result<usize> {
    SockRef::from(socket).send_to(datagram, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reuseport_sockets_share_one_port_and_a_connected_socket_reaches_them() {
        let (sockets, local) = bind_reuseport("127.0.0.1:0".parse().unwrap(), 2).unwrap();
        assert_ne!(local.port(), 0);
        assert!(sockets.iter().all(|s| s.local_addr().unwrap() == local));
        let upstream = connect_upstream(local).unwrap();
        assert_eq!(send(&upstream, b"ping").unwrap(), 4);
        // The kernel hands the datagram to one socket of the group: poll both, bounded.
        let mut buffer = [0u8; 16];
        let started = std::time::Instant::now();
        let (len, from) = loop {
            if let Some(got) = sockets.iter().find_map(|s| s.recv_from(&mut buffer).ok()) {
                break got;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "no datagram arrived");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(&buffer[..len], b"ping");
        assert_eq!(from.port(), upstream.local_addr().unwrap().port());
    }
}
