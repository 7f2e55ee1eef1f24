//! Active health checks: an HTTP GET or a TCP connect to each endpoint on a timer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strait_config::{ActiveHealth, HealthKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

use crate::endpoint::EndpointState;

/// Starts probing `endpoint` on `runtime`; the first probe runs at once.
pub(crate) fn spawn(runtime: &Handle, config: Arc<ActiveHealth>, endpoint: Arc<EndpointState>) -> AbortHandle {
    runtime.spawn(run(config, endpoint)).abort_handle()
}

/// Probes forever, turning the endpoint unhealthy or healthy after enough consecutive results.
async fn run(config: Arc<ActiveHealth>, endpoint: Arc<EndpointState>) {
    let request = match config.kind {
        HealthKind::Http => Some(request(&config, endpoint.addr)),
        HealthKind::Tcp => None,
    };
    let mut ticker = tokio::time::interval(config.interval.0.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let timeout = config.timeout.0.max(Duration::from_millis(1));
    let (mut successes, mut failures) = (0u32, 0u32);
    let mut healthy = true;
    loop {
        ticker.tick().await;
        let outcome = match tokio::time::timeout(timeout, probe(endpoint.addr, request.as_deref(), &config)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        };
        match outcome {
            Ok(()) => {
                successes = successes.saturating_add(1);
                failures = 0;
                if !healthy && successes >= config.healthy_threshold.max(1) {
                    healthy = true;
                    if endpoint.set_active_healthy(true) {
                        tracing::info!(
                            cluster = %endpoint.cluster(),
                            endpoint = %endpoint.addr,
                            "endpoint is healthy",
                        );
                    }
                }
            }
            Err(reason) => {
                failures = failures.saturating_add(1);
                successes = 0;
                tracing::debug!(
                    cluster = %endpoint.cluster(),
                    endpoint = %endpoint.addr,
                    %reason,
                    "health probe failed",
                );
                if healthy && failures >= config.unhealthy_threshold.max(1) {
                    healthy = false;
                    if endpoint.set_active_healthy(false) {
                        tracing::info!(
                            cluster = %endpoint.cluster(),
                            endpoint = %endpoint.addr,
                            %reason,
                            "endpoint is unhealthy",
                        );
                    }
                }
            }
        }
    }
}

/// The HTTP probe request.
fn request(config: &ActiveHealth, addr: SocketAddr) -> Vec<u8> {
    let host = match &config.host {
        Some(host) if !host.is_empty() => host.clone(),
        _ => addr.to_string(),
    };
    let path = if config.path.is_empty() { "/" } else { config.path.as_str() };
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: strait-health\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

/// One probe: a connect, and with `request` an HTTP exchange whose status must be expected.
async fn probe(addr: SocketAddr, request: Option<&[u8]>, config: &ActiveHealth) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let Some(request) = request else {
        return Ok(());
    };
    stream.write_all(request).await.map_err(|e| format!("write: {e}"))?;
    let status = read_status(&mut stream).await?;
    let expected = if config.expected_statuses.is_empty() {
        (200..400).contains(&status)
    } else {
        config.expected_statuses.contains(&status)
    };
    if expected {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

/// Reads the start of the response until its status code is known.
async fn read_status(stream: &mut TcpStream) -> Result<u16, String> {
    let mut buf = [0u8; 64];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..]).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before a status line".into());
        }
        len += n;
        if let Some(status) = parse_status(&buf[..len])? {
            return Ok(status);
        }
    }
}

/// The status of `HTTP/1.x NNN`, `None` while more bytes are needed.
fn parse_status(head: &[u8]) -> Result<Option<u16>, String> {
    const PREFIX: &[u8] = b"HTTP/1.";
    let checked = head.len().min(PREFIX.len());
    if head[..checked] != PREFIX[..checked] {
        return Err("not an HTTP/1 response".into());
    }
    if head.len() < 12 {
        return Ok(None);
    }
    let digits = &head[9..12];
    if head[8] != b' ' || !digits.iter().all(u8::is_ascii_digit) {
        return Err("malformed status line".into());
    }
    Ok(Some(digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Ok(Some(200)));
        assert_eq!(parse_status(b"HTTP/1.0 503"), Ok(Some(503)));
        assert_eq!(parse_status(b"HTTP/1.1 2"), Ok(None));
        assert_eq!(parse_status(b"HTT"), Ok(None));
        assert!(parse_status(b"SSH-2.0").is_err());
        assert!(parse_status(b"HTTP/1.1 2x0 OK").is_err());
    }

    #[test]
    fn probe_request_names_the_host() {
        let config = ActiveHealth { path: "/healthz".into(), ..ActiveHealth::default() };
        let text = String::from_utf8(request(&config, "10.0.0.1:8080".parse().unwrap())).unwrap();
        assert!(text.starts_with("GET /healthz HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n"));
        assert!(text.ends_with("Connection: close\r\n\r\n"));
    }
}
