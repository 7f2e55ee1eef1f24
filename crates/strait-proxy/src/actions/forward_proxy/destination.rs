//! Where a proxied request goes: the host and port it names, resolved to addresses (through a
//! short per-worker cache) and sifted by the SSRF guard.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use http::{header, request};
use strait_http::Reason;

use super::plan::Guard;

/// How long a resolved name is reused (Squid keeps them far longer; a short time bounds how
/// stale an answer can be without a TTL from `getaddrinfo`).
const DNS_TTL: Duration = Duration::from_secs(30);
/// Most names cached per worker; the cache starts over when full.
const DNS_CACHE_SIZE: usize = 4096;

thread_local! {
    /// Resolved names of this worker: addresses and when they were looked up.
    static DNS_CACHE: RefCell<HashMap<String, (Vec<IpAddr>, Instant)>> = RefCell::new(HashMap::new());
}

/// Splits `host:port` (`[v6]:port`, or a host without port) into the host (brackets removed)
/// and the port; `None` when the port is not a number.
pub(super) fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

/// The host and port a request is for: the `Host` field (the driver made it the target's
/// authority), with the scheme's port when it names none.
pub(super) fn of_request(parts: &request::Parts, default_port: u16) -> Result<(String, u16), Reason> {
    let authority = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).ok_or(Reason::BadRequest)?;
    let (host, port) = split_authority(authority).ok_or(Reason::BadRequest)?;
    if host.is_empty() {
        return Err(Reason::BadRequest);
    }
    Ok((host.to_string(), port.unwrap_or(default_port)))
}

/// Resolves `host` and keeps the addresses `guard` permits, in resolver order.
///
/// `dns_failed` when the name does not resolve in time, `destination_forbidden` when it
/// resolves only to addresses the guard refuses.
pub(super) async fn resolve(
    host: &str,
    port: u16,
    guard: &Guard,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, Reason> {
    let ips = lookup(host, timeout).await?;
    let permitted: Vec<SocketAddr> =
        ips.into_iter().map(|ip| SocketAddr::new(ip, port)).filter(|addr| guard.permits(*addr)).collect();
    if permitted.is_empty() {
        tracing::info!(host, port, "forward proxy: destination refused by the SSRF guard");
        return Err(Reason::DestinationForbidden);
    }
    Ok(permitted)
}

/// The addresses of `host`: an IP literal as it is, a name through the worker's cache or the
/// system resolver.
async fn lookup(host: &str, timeout: Duration) -> Result<Vec<IpAddr>, Reason> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let now = Instant::now();
    let cached = DNS_CACHE.with(|cache| {
        cache.borrow().get(host).filter(|(_, at)| now.duration_since(*at) < DNS_TTL).map(|(ips, _)| ips.clone())
    });
    if let Some(ips) = cached {
        return Ok(ips);
    }
    let resolved = tokio::time::timeout(timeout, tokio::net::lookup_host((host, 0))).await;
    let ips: Vec<IpAddr> = match resolved {
        Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
        _ => Vec::new(),
    };
    if ips.is_empty() {
        tracing::debug!(host, "forward proxy: name did not resolve");
        return Err(Reason::DnsFailed);
    }
    DNS_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= DNS_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(host.to_string(), (ips.clone(), now));
    });
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split_authority("example.test:8080"), Some(("example.test", Some(8080))));
        assert_eq!(split_authority("example.test"), Some(("example.test", None)));
        assert_eq!(split_authority("[::1]:443"), Some(("::1", Some(443))));
        assert_eq!(split_authority("[::1]"), Some(("::1", None)));
        assert_eq!(split_authority("example.test:x"), None);
        assert_eq!(split_authority("[::1]x"), None);
    }
}
