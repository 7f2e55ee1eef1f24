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
/// How long a name that did not resolve is answered `dns_failed` without asking again.
const DNS_NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Most lookups one worker has waiting on the resolver threads at once; beyond, `dns_failed`
/// at once (a resolver that never answers cannot fill the blocking pool).
const DNS_IN_FLIGHT: usize = 64;

thread_local! {
    /// Resolved names of this worker: addresses and when they were looked up.
    static DNS_CACHE: RefCell<HashMap<String, (Vec<IpAddr>, Instant)>> = RefCell::new(HashMap::new());
    /// Lookups of this worker waiting on the resolver.
    static DNS_WAITING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one lookup waiting on the resolver for as long as it lives.
struct Waiting;

impl Waiting {
    fn start() -> Option<Waiting> {
        DNS_WAITING.with(|n| (n.get() < DNS_IN_FLIGHT).then(|| n.set(n.get() + 1))).map(|()| Waiting)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        DNS_WAITING.with(|n| n.set(n.get().saturating_sub(1)));
    }
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

/// With a parent proxy, names are the parent's to resolve; a destination written as an
/// address (`10.0.0.1`, or a numeric spelling such as `2130706433` or `0x7f000001`) is still
/// judged here, so the parent is not asked for what the guard refuses.
pub(super) async fn check_address_for_parent(
    host: &str,
    port: u16,
    guard: &Guard,
    timeout: Duration,
) -> Result<(), Reason> {
    let numeric = host.parse::<IpAddr>().is_ok()
        || (!host.is_empty() && host.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b'x' || b == b'X'));
    if !numeric {
        return Ok(());
    }
    match lookup(host, timeout).await {
        Ok(ips) if ips.iter().all(|ip| guard.permits(SocketAddr::new(*ip, port))) => Ok(()),
        Ok(_) => Err(Reason::DestinationForbidden),
        // Not an address after all (a name made of hex letters, such as `cafe`): the parent's.
        Err(_) => Ok(()),
    }
}

/// The addresses of `host`: an IP literal as it is, a name through the worker's cache or the
/// system resolver.
async fn lookup(host: &str, timeout: Duration) -> Result<Vec<IpAddr>, Reason> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let now = Instant::now();
    let cached = DNS_CACHE.with(|cache| {
        cache
            .borrow()
            .get(host)
            .filter(|(ips, at)| now.duration_since(*at) < if ips.is_empty() { DNS_NEGATIVE_TTL } else { DNS_TTL })
            .map(|(ips, _)| ips.clone())
    });
    match cached {
        Some(ips) if ips.is_empty() => return Err(Reason::DnsFailed),
        Some(ips) => return Ok(ips),
        None => {}
    }
    let Some(waiting) = Waiting::start() else {
        tracing::info!(host, "forward proxy: too many names resolving at once");
        return Err(Reason::DnsFailed);
    };
    let resolved = tokio::time::timeout(timeout, tokio::net::lookup_host((host, 0))).await;
    drop(waiting);
    let ips: Vec<IpAddr> = match resolved {
        Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
        _ => Vec::new(),
    };
    if ips.is_empty() {
        tracing::debug!(host, "forward proxy: name did not resolve");
    }
    DNS_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= DNS_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(host.to_string(), (ips.clone(), now));
    });
    if ips.is_empty() {
        return Err(Reason::DnsFailed);
    }
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
