//! TLS passthrough (sniproxy, HAProxy `req.ssl_sni`): the ClientHello is peeked at, so its
//! bytes stay in the socket, and the server name chooses the cluster the untouched stream goes
//! to; names no route takes go to the default cluster, or have their TLS terminated by the
//! listener and its routes serve them.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use strait_config::Fallback;
use strait_http::Reason;
use strait_observe::AccessLog;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

use super::drain::ListenerDrain;
use super::hello::{scan, Scan, MAX_HELLO_BYTES};
use super::log::Session;
use super::tcp::forward;
use super::TcpPlan;
use crate::shared::Shared;

/// What a passthrough client sent first.
#[derive(Debug, PartialEq, Eq)]
enum First {
    /// A ClientHello, with the server name it asked for (lower case).
    Hello(Option<String>),
    /// Bytes that are not a TLS handshake.
    NotTls,
    /// A TLS handshake that is not a well-formed ClientHello, and why.
    Invalid(&'static str),
    /// Nothing: the client closed (or reset) the connection first.
    Closed,
    /// No whole ClientHello within the hello timeout.
    TimedOut,
}

/// Serves a connection of a listener with `tcp.sni` routes: to the cluster its server name
/// chooses, else as `missing_sni`, `not_tls` and the default say. `shared` serves the names the
/// listener terminates.
pub(crate) async fn serve(
    client: TcpStream,
    mut session: Session,
    plan: Arc<TcpPlan>,
    access_log: AccessLog,
    shared: &Arc<Shared>,
    drain: &ListenerDrain,
) {
    let fallback = match first_bytes(&client, plan.hello_timeout).await {
        First::Hello(Some(name)) => {
            let route = plan.sni.find(&name).cloned();
            session.server_name = Some(name);
            if let Some(cluster) = route {
                return forward(client, session, &cluster, &plan, &access_log, drain).await;
            }
            Fallback::Default
        }
        First::Hello(None) => plan.missing_sni,
        First::NotTls => {
            match (plan.not_tls, &plan.default_cluster) {
                (Fallback::Default, Some(cluster)) => {
                    forward(client, session, cluster, &plan, &access_log, drain).await
                }
                _ => session.refused(&access_log, Reason::TlsHelloInvalid),
            }
            return;
        }
        First::Invalid(why) => {
            tracing::debug!(client = %session.client, why, "passthrough client sent a malformed ClientHello");
            return session.refused(&access_log, Reason::TlsHelloInvalid);
        }
        First::Closed => return session.refused(&access_log, Reason::ClientAborted),
        First::TimedOut => return session.refused(&access_log, Reason::TlsHelloTimeout),
    };
    match (fallback, &plan.default_cluster, &plan.terminate) {
        (Fallback::Refuse, _, _) | (Fallback::Default, None, None) => {
            session.refused(&access_log, Reason::NoSniRoute);
        }
        (Fallback::Default, Some(cluster), _) => forward(client, session, cluster, &plan, &access_log, drain).await,
        (Fallback::Default, None, Some(tls)) => {
            // The HTTP requests of a terminated connection are logged in the access log. Boxed:
            // the task of a passed-through connection is not sized for an HTTPS session.
            let acceptor = tls.acceptor();
            let served = crate::driver::serve_tls(client, session.client, session.listener, shared.clone(), acceptor);
            Box::pin(served).await;
        }
    }
}

/// Peeks at the client's first bytes until they are a whole ClientHello or something else,
/// within `timeout`; the bytes stay in the socket.
async fn first_bytes(client: &TcpStream, timeout: Duration) -> First {
    let mut buffer = crate::buffers::read();
    let first = tokio::time::timeout(timeout, peek_hello(client, &mut buffer)).await.unwrap_or(First::TimedOut);
    crate::buffers::recycle_read(buffer);
    first
}

/// Peeks into `buffer` (grown once if a hello needs more room than it has) until the bytes
/// there decide what the client sent. Between two peeks at a hello still incomplete, it waits
/// for the socket's next arrival (not a timer), so a slow client costs one wake-up per segment.
async fn peek_hello(client: &TcpStream, buffer: &mut BytesMut) -> First {
    let mut peer_done = false;
    loop {
        let mut room = ReadBuf::uninit(buffer.spare_capacity_mut());
        match std::future::poll_fn(|cx| client.poll_peek(cx, &mut room)).await {
            Ok(0) | Err(_) => return First::Closed,
            Ok(_) => {}
        }
        let (peeked, full) = (room.filled().len(), room.remaining() == 0);
        match scan(room.filled_mut()) {
            Scan::Hello(hello) => {
                tracing::trace!(server_name = hello.server_name, alpn = ?hello.alpn, "passthrough ClientHello");
                return First::Hello(hello.server_name.map(str::to_ascii_lowercase));
            }
            Scan::NotTls => return First::NotTls,
            Scan::Invalid(why) => return First::Invalid(why),
            Scan::Incomplete if full && peeked >= MAX_HELLO_BYTES => {
                return First::Invalid("the ClientHello does not fit in 16 KiB");
            }
            Scan::Incomplete if full => {
                buffer.reserve(MAX_HELLO_BYTES);
                continue;
            }
            // The client ended its side with half a hello: nothing more will come.
            Scan::Incomplete if peer_done => return First::Closed,
            Scan::Incomplete => {}
        }
        match crate::proxy_protocol::wait_for_more(client).await {
            Ok(more) => peer_done = !more,
            Err(_) => return First::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::{first_bytes, First};

    /// A connected pair: the accepted side and the client side.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        (accepted, client)
    }

    /// A hello for `name` with a padding extension of `padding` bytes, in one record.
    fn big_hello(name: &str, padding: usize) -> Vec<u8> {
        let mut extensions = Vec::new();
        let mut list = vec![0u8];
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name.as_bytes());
        extensions.extend_from_slice(&[0, 0]);
        extensions.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
        extensions.extend_from_slice(&(list.len() as u16).to_be_bytes());
        extensions.extend_from_slice(&list);
        extensions.extend_from_slice(&[0, 21]);
        extensions.extend_from_slice(&(padding as u16).to_be_bytes());
        extensions.extend(std::iter::repeat_n(0u8, padding));
        let mut body = vec![3, 3];
        body.extend_from_slice(&[1; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(&extensions);
        let mut bytes = vec![22, 3, 1];
        bytes.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&body);
        bytes
    }

    #[tokio::test]
    async fn a_hello_in_pieces_is_waited_for_and_stays_in_the_socket() {
        let (accepted, mut client) = pair().await;
        let hello = big_hello("slow.example.com", 100);
        let writer = {
            let hello = hello.clone();
            tokio::spawn(async move {
                for piece in hello.chunks(9) {
                    client.write_all(piece).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                client
            })
        };
        assert_eq!(
            first_bytes(&accepted, Duration::from_secs(10)).await,
            First::Hello(Some("slow.example.com".into()))
        );
        let _client = writer.await.unwrap();
        let mut still_there = vec![0u8; hello.len()];
        let mut read = 0;
        while read < hello.len() {
            accepted.readable().await.unwrap();
            read += accepted.try_read(&mut still_there[read..]).unwrap_or(0);
        }
        assert_eq!(still_there, hello, "the hello is read again from the socket");
    }

    #[tokio::test]
    async fn a_hello_larger_than_the_spare_buffer_is_read_and_one_over_16_kib_is_not() {
        let (accepted, mut client) = pair().await;
        client.write_all(&big_hello("big.example.com", 12_000)).await.unwrap();
        assert_eq!(first_bytes(&accepted, Duration::from_secs(10)).await, First::Hello(Some("big.example.com".into())));
        let (accepted, mut client) = pair().await;
        // A hello under 16 KiB in records of 10 bytes: the record headers take it past the
        // room a hello gets.
        let hello = big_hello("huge.example.com", 15_000);
        let message = &hello[5..];
        for piece in message.chunks(10) {
            let mut record = vec![22, 3, 1];
            record.extend_from_slice(&(piece.len() as u16).to_be_bytes());
            record.extend_from_slice(piece);
            client.write_all(&record).await.unwrap();
        }
        assert!(matches!(first_bytes(&accepted, Duration::from_secs(10)).await, First::Invalid(_)));
    }

    #[tokio::test]
    async fn part_of_a_hello_times_out_and_a_close_is_seen() {
        let (accepted, mut client) = pair().await;
        client.write_all(&big_hello("late.example.com", 0)[..20]).await.unwrap();
        assert_eq!(first_bytes(&accepted, Duration::from_millis(100)).await, First::TimedOut);
        let (accepted, client) = pair().await;
        drop(client);
        assert_eq!(first_bytes(&accepted, Duration::from_secs(10)).await, First::Closed);
    }
}
