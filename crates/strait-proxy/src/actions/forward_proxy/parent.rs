//! A tunnel through the parent proxy: its own CONNECT, with its credentials, and its answer.

use bytes::{BufMut, BytesMut};
use strait_http::Reason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::plan::ParentPlan;
use crate::upstream::client::SendOptions;

/// Longest answer head accepted from the parent.
const MAX_HEAD: usize = 16 * 1024;

/// Asks the parent on `stream` to connect to `host:port`; on its `2xx`, returns the stream
/// and whatever the parent sent after its head (already the destination's bytes).
pub(super) async fn connect_through(
    mut stream: TcpStream,
    host: &str,
    port: u16,
    parent: &ParentPlan,
    options: &SendOptions,
) -> Result<(TcpStream, BytesMut), Reason> {
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let mut request = BytesMut::with_capacity(128);
    request.put_slice(format!("CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n").as_bytes());
    if let Some(credentials) = &parent.authorization {
        request.put_slice(b"proxy-authorization: ");
        request.put_slice(credentials.as_bytes());
        request.put_slice(b"\r\n");
    }
    request.put_slice(b"\r\n");
    let exchange = async {
        stream.write_all(&request).await.map_err(|_| Reason::UpstreamReset)?;
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            if let Some(end) = head_end(&buf) {
                let status = status_of(&buf[..end]).ok_or(Reason::UpstreamBadResponse)?;
                if !(200..300).contains(&status) {
                    tracing::info!(status, host, port, "forward proxy: the parent refused the tunnel");
                    return Err(Reason::UpstreamBadResponse);
                }
                let _ = buf.split_to(end);
                return Ok(buf);
            }
            if buf.len() > MAX_HEAD {
                return Err(Reason::UpstreamBadResponse);
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Err(Reason::UpstreamReset),
                Ok(_) => {}
            }
        }
    };
    match tokio::time::timeout(options.response_header_timeout, exchange).await {
        Ok(Ok(early)) => Ok((stream, early)),
        Ok(Err(reason)) => Err(reason),
        Err(_) => Err(Reason::UpstreamTimeout),
    }
}

/// Where the head in `buf` ends (after its blank line), once it is complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
}

/// The status code of a response head.
fn status_of(head: &[u8]) -> Option<u16> {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => response.code,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parents_answer_head_is_found_and_read() {
        let head = b"HTTP/1.1 200 Connection established\r\nx: y\r\n\r\nTLS";
        let end = head_end(head).unwrap();
        assert_eq!(&head[end..], b"TLS");
        assert_eq!(status_of(&head[..end]), Some(200));
        assert_eq!(status_of(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"), Some(407));
        assert_eq!(status_of(b"garbage\r\n\r\n"), None);
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n"), None);
    }
}
