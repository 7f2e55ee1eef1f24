//! Taking PROXY headers from a listener's trusted peers before the connection is served.
//!
//! A trusted peer must open with a whole header within the timeout; its source becomes the
//! client. Any other peer is served as usual, unless it opens with a PROXY signature (a
//! client must not name itself). Exactly the header's bytes are read: what follows stays in
//! the socket for HTTP, TLS or the TCP relay.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use strait_config::AcceptProxyProtocol;
use strait_http::Reason;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::TcpStream;

use super::parse::{parse, Parsed};
use super::{Endpoints, V1_MAX_LEN, V1_SIGNATURE, V2_SIGNATURE};

/// How a listener accepts PROXY headers (`listeners[].proxy_protocol`).
#[derive(Debug)]
pub(crate) struct AcceptPlan {
    /// The load balancers allowed to send headers.
    trusted: Vec<IpNet>,
    /// Time a trusted peer has to send its whole header (and an untrusted one its first bytes).
    timeout: Duration,
}

impl AcceptPlan {
    /// Compiles the `proxy_protocol` block of `listener` (validation checked the entries).
    pub(crate) fn compile(listener: &str, config: &AcceptProxyProtocol) -> Result<AcceptPlan, String> {
        let trusted = config
            .trusted
            .iter()
            .map(|entry| {
                entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                    format!("listener `{listener}`: proxy_protocol.trusted: `{entry}` is not an address or CIDR block")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(AcceptPlan { trusted, timeout: config.timeout.0 })
    }

    /// Whether `ip` may send PROXY headers.
    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }
}

/// Why a connection was closed before it was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    /// `proxy_protocol_invalid` or `proxy_protocol_untrusted`.
    pub reason: Reason,
    /// What was wrong, for the debug trace.
    pub detail: &'static str,
}

/// Reads the PROXY header `peer` opens `stream` with, as `plan` asks: the endpoints it names
/// (`None` when the real peer stays the client: an untrusted peer without a header, a v1
/// `UNKNOWN` or v2 `LOCAL` header), or why the connection must close.
pub(crate) async fn accept(
    stream: &mut TcpStream,
    peer: SocketAddr,
    plan: &AcceptPlan,
) -> Result<Option<Endpoints>, Refused> {
    let trusted = plan.trusts(peer.ip());
    match tokio::time::timeout(plan.timeout, read_header(stream, trusted)).await {
        Ok(result) => result,
        Err(_) if trusted => Err(invalid("no whole header within the timeout")),
        // A client that waits for the server to speak first (SMTP, MySQL...).
        Err(_) => Ok(None),
    }
}

/// For an HTTP listener (with `plan`, its `proxy_protocol`): the client of a connection from
/// `peer` (a trusted header's source, or the peer), or `None` when the connection must close
/// (traced at debug level).
pub(crate) async fn http_client(
    stream: &mut TcpStream,
    peer: SocketAddr,
    plan: Option<&AcceptPlan>,
) -> Option<SocketAddr> {
    let Some(plan) = plan else { return Some(peer) };
    match accept(stream, peer, plan).await {
        Ok(endpoints) => Some(endpoints.map_or(peer, |endpoints| endpoints.source)),
        Err(refused) => {
            tracing::debug!(%peer, reason = refused.reason.code(), detail = refused.detail, "connection closed");
            None
        }
    }
}

/// `proxy_protocol_invalid` with `detail`.
fn invalid(detail: &'static str) -> Refused {
    Refused { reason: Reason::ProxyProtocolInvalid, detail }
}

/// Waits until the first bytes tell whether a header is there, then reads exactly it.
async fn read_header(stream: &mut TcpStream, trusted: bool) -> Result<Option<Endpoints>, Refused> {
    let mut seen = [0u8; V1_MAX_LEN];
    // Whether the peer ended its side: what the socket holds now is all there will be.
    let mut ended = false;
    loop {
        let n = stream.peek(&mut seen).await.map_err(|_| invalid("the connection failed"))?;
        if n == 0 {
            return closed_early(trusted);
        }
        let bytes = &seen[..n];
        if !trusted {
            match signature(bytes) {
                Some(true) => {
                    return Err(Refused {
                        reason: Reason::ProxyProtocolUntrusted,
                        detail: "a PROXY header from a peer not in `trusted`",
                    });
                }
                Some(false) => return Ok(None),
                None => {}
            }
        } else {
            match parse(bytes).map_err(|malformed| invalid(malformed.0))? {
                Parsed::Absent => {
                    return Err(Refused {
                        reason: Reason::ProxyProtocolUntrusted,
                        detail: "a trusted peer opened without a PROXY header",
                    });
                }
                Parsed::Complete { len, endpoints } => {
                    stream.read_exact(&mut seen[..len]).await.map_err(|_| invalid("the connection failed"))?;
                    return Ok(endpoints);
                }
                Parsed::Partial { len: Some(len) } if len > seen.len() => return read_long_v2(stream, len).await,
                Parsed::Partial { .. } => {}
            }
        }
        if ended {
            return closed_early(trusted);
        }
        ended = !wait_for_more(stream).await.map_err(|_| invalid("the connection failed"))?;
    }
}

/// A peer that ended its side before its first bytes told anything: a trusted one sent no
/// whole header; an untrusted one is served (and its protocol's driver sees the end).
fn closed_early(trusted: bool) -> Result<Option<Endpoints>, Refused> {
    if trusted {
        Err(invalid("closed before a whole header"))
    } else {
        Ok(None)
    }
}

/// Whether `bytes` start with a PROXY signature; `None` while they are a prefix of one.
fn signature(bytes: &[u8]) -> Option<bool> {
    if bytes.starts_with(V1_SIGNATURE) || bytes.starts_with(&V2_SIGNATURE) {
        Some(true)
    } else if V1_SIGNATURE.starts_with(bytes) || V2_SIGNATURE.starts_with(bytes) {
        None
    } else {
        Some(false)
    }
}

/// Reads a version 2 header of `len` bytes, longer than a peek holds (large TLVs).
async fn read_long_v2(stream: &mut TcpStream, len: usize) -> Result<Option<Endpoints>, Refused> {
    let mut header = vec![0u8; len];
    stream.read_exact(&mut header).await.map_err(|_| invalid("closed before a whole header"))?;
    match parse(&header).map_err(|malformed| invalid(malformed.0))? {
        Parsed::Complete { endpoints, .. } => Ok(endpoints),
        _ => Err(invalid("a header that does not end where its length says")),
    }
}

/// Waits until bytes beyond those just peeked arrive: the readiness the peek left is
/// forgotten first, so the wait is for the next arrival rather than a loop over the same bytes.
/// `false` when the peer ended its side instead (that stays visible, so waiting again would
/// not wait): one more peek sees everything it sent.
pub(crate) async fn wait_for_more(stream: &TcpStream) -> io::Result<bool> {
    let _ = stream.try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
    let ready = stream.ready(Interest::READABLE).await?;
    Ok(!ready.is_read_closed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn plan(trusted: &[&str], timeout: Duration) -> AcceptPlan {
        let config = AcceptProxyProtocol {
            trusted: trusted.iter().map(|t| t.to_string()).collect(),
            timeout: strait_config::units::Dur(timeout),
        };
        AcceptPlan::compile("l", &config).unwrap()
    }

    /// A connected pair over loopback: (client side, server side, the server's view of the peer).
    async fn pair() -> (TcpStream, TcpStream, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        (client, server, peer)
    }

    /// What is left in `server` after the header: everything `client` sent after it.
    async fn rest(client: TcpStream, server: &mut TcpStream) -> Vec<u8> {
        drop(client);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        rest
    }

    #[test]
    fn trust_covers_addresses_and_blocks_and_mapped_ipv4() {
        let plan = plan(&["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"], Duration::from_secs(1));
        for ip in ["10.1.2.3", "192.0.2.1", "2001:db8::5", "::ffff:10.0.0.1"] {
            assert!(plan.trusts(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.2.2", "11.0.0.1", "2001:db9::1"] {
            assert!(!plan.trusts(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_header_split_over_writes_is_read_whole_and_nothing_more() {
        let (mut client, mut server, peer) = pair().await;
        let plan = plan(&["127.0.0.1"], Duration::from_secs(10));
        let writer = tokio::spawn(async move {
            for part in [&b"PRO"[..], b"XY TCP4 192.0.2.7 ", b"198.51.100.1 50000 443\r", b"\nGET / HTTP/1.1\r\n"] {
                client.write_all(part).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            client
        });
        let endpoints = accept(&mut server, peer, &plan).await.unwrap().unwrap();
        assert_eq!(endpoints.source, "192.0.2.7:50000".parse().unwrap());
        assert_eq!(endpoints.destination, "198.51.100.1:443".parse().unwrap());
        let client = writer.await.unwrap();
        assert_eq!(rest(client, &mut server).await, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_long_v2_header_is_read_past_the_peek() {
        let (mut client, mut server, peer) = pair().await;
        let plan = plan(&["127.0.0.0/8"], Duration::from_secs(10));
        let mut header = V2_SIGNATURE.to_vec();
        header.extend_from_slice(&[0x21, 0x11, 0x01, 0x0f]);
        header.extend_from_slice(&[192, 0, 2, 7, 198, 51, 100, 1, 0, 1, 0, 2]);
        header.extend_from_slice(&[0xee, 0x01, 0x00]);
        header.extend_from_slice(&[b'x'; 256]);
        header.extend_from_slice(b"after");
        client.write_all(&header).await.unwrap();
        let endpoints = accept(&mut server, peer, &plan).await.unwrap().unwrap();
        assert_eq!(endpoints.source, "192.0.2.7:1".parse().unwrap());
        assert_eq!(rest(client, &mut server).await, b"after");
    }

    #[tokio::test]
    async fn untrusted_peers_are_served_without_a_header_and_refused_with_one() {
        let plan = plan(&["127.0.0.2"], Duration::from_secs(10));
        let (mut client, mut server, peer) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert_eq!(accept(&mut server, peer, &plan).await, Ok(None));
        assert_eq!(rest(client, &mut server).await, b"GET / HTTP/1.1\r\n", "nothing was consumed");
        for opening in [&b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r\n"[..], &V2_SIGNATURE] {
            let (mut client, mut server, peer) = pair().await;
            client.write_all(opening).await.unwrap();
            let refused = accept(&mut server, peer, &plan).await.unwrap_err();
            assert_eq!(refused.reason, Reason::ProxyProtocolUntrusted);
        }
    }

    #[tokio::test]
    async fn a_peer_that_ends_its_side_is_answered_at_once_not_at_the_timeout() {
        let plan = plan(&["127.0.0.2"], Duration::from_secs(30));
        let (mut client, mut server, peer) = pair().await;
        client.write_all(b"PRO").await.unwrap();
        client.shutdown().await.unwrap();
        let answered = tokio::time::timeout(Duration::from_secs(10), accept(&mut server, peer, &plan)).await;
        assert_eq!(answered, Ok(Ok(None)), "an untrusted peer's end is served");
        let plan = self::plan(&["127.0.0.1"], Duration::from_secs(30));
        let (mut client, mut server, peer) = pair().await;
        client.write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 1").await.unwrap();
        client.shutdown().await.unwrap();
        let answered = tokio::time::timeout(Duration::from_secs(10), accept(&mut server, peer, &plan)).await;
        assert_eq!(answered, Ok(Err(invalid("closed before a whole header"))));
        // The rest of a header and the end arriving together still make a whole header.
        let (mut client, mut server, peer) = pair().await;
        client.write_all(b"PROXY TCP4 192.0.2.7 ").await.unwrap();
        let finish = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            client.write_all(b"198.51.100.1 1 2\r\n").await.unwrap();
            client.shutdown().await.unwrap();
            client
        });
        let answered = tokio::time::timeout(Duration::from_secs(10), accept(&mut server, peer, &plan)).await;
        assert!(matches!(answered, Ok(Ok(Some(_)))), "{answered:?}");
        drop(finish.await.unwrap());
    }

    #[tokio::test]
    async fn trusted_peers_without_a_whole_header_are_refused() {
        let plan = plan(&["127.0.0.1"], Duration::from_millis(200));
        let (mut client, mut server, peer) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert_eq!(accept(&mut server, peer, &plan).await.unwrap_err().reason, Reason::ProxyProtocolUntrusted);
        let (mut client, mut server, peer) = pair().await;
        client.write_all(b"PROXY TCP4 192.0.2.7").await.unwrap();
        assert_eq!(accept(&mut server, peer, &plan).await.unwrap_err().reason, Reason::ProxyProtocolInvalid, "late");
        let (mut client, mut server, peer) = pair().await;
        client.write_all(b"PROXY TCP4 192.0.2.7").await.unwrap();
        drop(client);
        assert_eq!(accept(&mut server, peer, &plan).await, Err(invalid("closed before a whole header")), "cut");
        let (mut client, mut server, peer) = pair().await;
        client.write_all(b"PROXY TCP4 192.0.2.7 x 1 2\r\n").await.unwrap();
        assert_eq!(accept(&mut server, peer, &plan).await.unwrap_err().reason, Reason::ProxyProtocolInvalid);
        drop(client);
    }
}
