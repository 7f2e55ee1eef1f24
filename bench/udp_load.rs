//! A UDP echo server and a UDP load generator for bench/udp.sh, with the standard library only
//! (built with `rustc -O`): every socket on loopback, every run bounded in time and count.
//!
//!   udp_load echo ADDR                                   echoes every datagram to its sender
//!   udp_load probe TARGET                                exits 0 once a datagram came back
//!   udp_load send TARGET SOCKETS WINDOW SECONDS [SIZE]   SOCKETS clients (threads), each with
//!       WINDOW datagrams of SIZE bytes outstanding, for SECONDS; prints the replies per second
#![forbid(unsafe_code)]

use std::net::UdpSocket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Datagrams any one client sends at most, whatever the duration.
const MAX_PER_CLIENT: u64 = 50_000_000;
/// A client that waited this long for a reply counts its window lost and sends it again.
const LOST_AFTER: Duration = Duration::from_millis(20);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("echo") if args.len() == 3 => echo(&args[2]),
        Some("probe") if args.len() == 3 => std::process::exit(if probe(&args[2]) { 0 } else { 1 }),
        Some("send") if args.len() >= 6 => {
            let number = |i: usize, default: u64| args.get(i).map_or(default, |a| a.parse().expect("a number"));
            send(&args[2], number(3, 8), number(4, 32), number(5, 5), number(6, 64) as usize);
        }
        _ => {
            eprintln!("usage: udp_load echo ADDR | udp_load probe TARGET | udp_load send TARGET SOCKETS WINDOW SECONDS [SIZE]");
            std::process::exit(2);
        }
    }
}

/// Echoes every datagram arriving on `addr` back to its sender, until killed.
fn echo(addr: &str) {
    let socket = UdpSocket::bind(addr).expect("bind the echo socket");
    let mut buffer = vec![0u8; 65536];
    loop {
        if let Ok((len, peer)) = socket.recv_from(&mut buffer) {
            let _ = socket.send_to(&buffer[..len], peer);
        }
    }
}

/// Whether one datagram sent to `target` comes back within 200 ms.
fn probe(target: &str) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a client socket");
    let mut buffer = [0u8; 16];
    socket.connect(target).is_ok()
        && socket.set_read_timeout(Some(Duration::from_millis(200))).is_ok()
        && socket.send(b"probe").is_ok()
        && socket.recv(&mut buffer).is_ok()
}

/// Runs `clients` senders against `target` for `seconds` and prints what came back.
fn send(target: &str, clients: u64, window: u64, seconds: u64, size: usize) {
    let replies = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (target, replies, sent) = (target.to_owned(), replies.clone(), sent.clone());
            std::thread::spawn(move || client(&target, window, size, deadline, &replies, &sent))
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client thread");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (replies, sent) = (replies.load(Ordering::Relaxed), sent.load(Ordering::Relaxed));
    println!("sent={sent} replies={replies} seconds={elapsed:.2} rate={:.0}", replies as f64 / elapsed);
}

/// One client: keeps `window` datagrams outstanding until `deadline`.
fn client(target: &str, window: u64, size: usize, deadline: Instant, replies: &AtomicU64, sent: &AtomicU64) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a client socket");
    socket.connect(target).expect("connect to the target");
    socket.set_read_timeout(Some(LOST_AFTER)).expect("a read timeout");
    let datagram = vec![b'q'; size];
    let mut buffer = vec![0u8; 65536];
    let (mut mine_sent, mut mine_replies) = (0u64, 0u64);
    let mut refill = window;
    while Instant::now() < deadline && mine_sent < MAX_PER_CLIENT {
        for _ in 0..refill {
            if socket.send(&datagram).is_ok() {
                mine_sent += 1;
            }
        }
        refill = match socket.recv(&mut buffer) {
            Ok(_) => {
                mine_replies += 1;
                1
            }
            // Lost datagrams (or a refused port): fill the window again.
            Err(_) => window,
        };
    }
    replies.fetch_add(mine_replies, Ordering::Relaxed);
    sent.fetch_add(mine_sent, Ordering::Relaxed);
}
