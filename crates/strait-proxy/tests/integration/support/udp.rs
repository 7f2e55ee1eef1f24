//! UDP peers for layer 4 tests: an echo server (counting what it received, from whom), a
//! client socket, and a real DNS resolver (`dnsmasq`) on a free loopback port.

use std::collections::HashSet;
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::WAIT;

/// A UDP echo server on loopback: every datagram is sent back `copies` times to its sender;
/// stopped on drop.
pub struct UdpEcho {
    addr: SocketAddr,
    received: Arc<AtomicUsize>,
    peers: Arc<Mutex<HashSet<SocketAddr>>>,
    stop: Arc<AtomicBool>,
}

impl UdpEcho {
    /// An echo server answering each datagram once.
    pub fn start() -> UdpEcho {
        UdpEcho::answering_times(1)
    }

    /// An echo server answering each datagram `copies` times.
    pub fn answering_times(copies: usize) -> UdpEcho {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = socket.local_addr().unwrap();
        let echo = UdpEcho { addr, received: Arc::default(), peers: Arc::default(), stop: Arc::default() };
        let (received, peers, stop) = (echo.received.clone(), echo.peers.clone(), echo.stop.clone());
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                let Ok((len, peer)) = socket.recv_from(&mut buffer) else { continue };
                received.fetch_add(1, Ordering::Relaxed);
                peers.lock().unwrap().insert(peer);
                for _ in 0..copies {
                    let _ = socket.send_to(&buffer[..len], peer);
                }
            }
        });
        echo
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Datagrams received.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }

    /// Distinct source addresses it received from (Strait's session sockets).
    pub fn peers(&self) -> usize {
        self.peers.lock().unwrap().len()
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A loopback UDP address that nothing listens on (datagrams to it are refused).
pub fn closed_udp_port() -> SocketAddr {
    // On a loopback address no test binds, so no other test's socket can take the port.
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    SocketAddr::from(([127, 77, 0, 1], port))
}

/// A client socket on `ip` (any loopback address), with reads bounded by `WAIT`.
pub fn udp_client(ip: &str) -> UdpSocket {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket
}

/// Sends `datagram` from `client` to `to` and returns the reply and where it came from.
pub fn udp_exchange(client: &UdpSocket, to: SocketAddr, datagram: &[u8]) -> (Vec<u8>, SocketAddr) {
    client.send_to(datagram, to).unwrap();
    let mut buffer = vec![0u8; 65536];
    let (len, from) = client.recv_from(&mut buffer).unwrap_or_else(|e| panic!("no reply to {datagram:?}: {e}"));
    buffer.truncate(len);
    (buffer, from)
}

/// Whether a datagram arrives at `client` within `within` (for checks that one does not).
pub fn udp_reply_within(client: &UdpSocket, within: Duration) -> Option<Vec<u8>> {
    client.set_read_timeout(Some(within)).unwrap();
    let mut buffer = vec![0u8; 65536];
    let got = client.recv_from(&mut buffer).ok().map(|(len, _)| buffer[..len].to_vec());
    client.set_read_timeout(Some(WAIT)).unwrap();
    got
}

/// A `dnsmasq` resolver owned by the test, answering `example.test` with 192.0.2.1 on UDP and
/// TCP; killed on drop.
pub struct Dnsmasq {
    port: u16,
    child: Child,
}

impl Dnsmasq {
    /// Starts one on a free loopback port, in the foreground; panics with a clear message when
    /// it cannot (`scripts/test.sh` installs `dnsmasq`).
    pub fn start() -> Dnsmasq {
        let mut last_error = String::new();
        // A port read back from the kernel may be taken again before dnsmasq binds it (UDP
        // and TCP): try a few.
        for _ in 0..5 {
            let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            match Dnsmasq::launch(port) {
                Ok(dnsmasq) => return dnsmasq,
                Err(error) => last_error = error,
            }
        }
        panic!("dnsmasq did not start: {last_error}");
    }

    /// Runs dnsmasq on `port` until it answers; its error output when it exits or does not.
    fn launch(port: u16) -> Result<Dnsmasq, String> {
        // It lives in /usr/sbin, which a user's PATH may lack.
        let program = if Path::new("/usr/sbin/dnsmasq").exists() { "/usr/sbin/dnsmasq" } else { "dnsmasq" };
        let child = Command::new(program)
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--pid-file=",
                "--user=root",
                "--address=/example.test/192.0.2.1",
            ])
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run dnsmasq (scripts/test.sh installs it): {e}"));
        let mut dnsmasq = Dnsmasq { port, child };
        let started = Instant::now();
        while started.elapsed() < WAIT {
            if let Ok(Some(_)) = dnsmasq.child.try_wait() {
                break;
            }
            if dig(dnsmasq.addr(), &[]).trim() == "192.0.2.1" {
                return Ok(dnsmasq);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = dnsmasq.child.kill();
        let mut error = String::new();
        if let Some(mut stderr) = dnsmasq.child.stderr.take() {
            let _ = stderr.read_to_string(&mut error);
        }
        Err(error)
    }

    /// Its address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dig @server example.test +short` with one try of at most 2 seconds, and `extra`
/// options (`+tcp`); its standard output (panics when `dig` is missing).
pub fn dig(server: SocketAddr, extra: &[&str]) -> String {
    let output = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "example.test", "+short", "+tries=1", "+time=2"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run dig (scripts/test.sh installs bind9-dnsutils): {e}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}
