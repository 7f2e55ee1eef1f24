//! Endpoint addresses: `IP:PORT` literals and `HOST:PORT` names resolved through DNS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use strait_config::Cluster;

/// Longest a single name resolution may take.
pub(crate) const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// One resolved endpoint, before it gets its shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) addr: SocketAddr,
    pub(crate) weight: u32,
    pub(crate) backup: bool,
}

/// An endpoint address as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Ip(SocketAddr),
    Host(String, u16),
}

/// Last successful resolution of each `HOST:PORT`, used when a later one fails.
#[derive(Debug, Default)]
pub(crate) struct DnsCache {
    last_good: Mutex<HashMap<String, Vec<SocketAddr>>>,
}

// === impl DnsCache ===

impl DnsCache {
    fn get(&self, address: &str) -> Option<Vec<SocketAddr>> {
        self.last_good.lock().unwrap_or_else(|e| e.into_inner()).get(address).cloned()
    }

    fn put(&self, address: &str, addrs: &[SocketAddr]) {
        let mut map = self.last_good.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(address).map(Vec::as_slice) != Some(addrs) {
            map.insert(address.to_owned(), addrs.to_vec());
        }
    }
}

/// Splits `address` into an IP literal or a host name and port.
fn parse(address: &str) -> Result<Target, String> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(Target::Ip(addr));
    }
    let (host, port) = address.rsplit_once(':').ok_or_else(|| format!("`{address}` is not IP:PORT or HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| format!("`{address}` has an invalid port"))?;
    if host.is_empty() || host.contains(['[', ']', ':', '/', ' ']) {
        return Err(format!("`{address}` is not IP:PORT or HOST:PORT"));
    }
    Ok(Target::Host(host.to_owned(), port))
}

/// True when some endpoint of `cluster` is a host name.
pub(crate) fn has_host_names(cluster: &Cluster) -> bool {
    cluster.endpoints.iter().any(|e| matches!(parse(&e.address), Ok(Target::Host(..))))
}

/// All addresses of `host:port`, sorted and without duplicates, within [`RESOLVE_TIMEOUT`].
async fn lookup(host: String, port: u16) -> Result<Vec<SocketAddr>, String> {
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
        .await
        .map_err(|_| format!("no answer within {RESOLVE_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    let mut addrs: Vec<SocketAddr> = found.collect();
    addrs.sort_unstable();
    addrs.dedup();
    if addrs.is_empty() {
        return Err("no addresses".into());
    }
    Ok(addrs)
}

/// Resolves every endpoint of `cluster`, looking host names up concurrently.
///
/// A failed lookup falls back to the last good answer. Without one, `strict` makes it an
/// error naming the cluster and address; otherwise the endpoint is left out with a warning.
pub(crate) async fn resolve(cluster: &Cluster, cache: &DnsCache, strict: bool) -> Result<Vec<Resolved>, String> {
    let mut pending = Vec::with_capacity(cluster.endpoints.len());
    for endpoint in &cluster.endpoints {
        let target =
            parse(&endpoint.address).map_err(|e| format!("cluster `{}`: endpoint address {e}", cluster.name))?;
        let lookup = match target {
            Target::Ip(addr) => Err(addr),
            Target::Host(host, port) => Ok(tokio::spawn(lookup(host, port))),
        };
        pending.push((endpoint, lookup));
    }
    let mut resolved = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (endpoint, lookup) in pending {
        let addrs = match lookup {
            Err(addr) => vec![addr],
            Ok(task) => {
                let answer = task.await.unwrap_or_else(|e| Err(e.to_string()));
                match (answer, cache.get(&endpoint.address)) {
                    (Ok(addrs), _) => {
                        cache.put(&endpoint.address, &addrs);
                        addrs
                    }
                    (Err(error), Some(previous)) => {
                        tracing::warn!(
                            cluster = %cluster.name,
                            address = %endpoint.address,
                            %error,
                            "name resolution failed; keeping the previous addresses",
                        );
                        previous
                    }
                    (Err(error), None) if strict => {
                        return Err(format!(
                            "cluster `{}`: endpoint `{}` does not resolve: {error}",
                            cluster.name, endpoint.address
                        ));
                    }
                    (Err(error), None) => {
                        tracing::warn!(
                            cluster = %cluster.name,
                            address = %endpoint.address,
                            %error,
                            "name resolution failed",
                        );
                        Vec::new()
                    }
                }
            }
        };
        for addr in addrs {
            if seen.insert(addr) {
                resolved.push(Resolved { addr, weight: endpoint.weight, backup: endpoint.backup });
            }
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(parse("127.0.0.1:80"), Ok(Target::Ip("127.0.0.1:80".parse().unwrap())));
        assert_eq!(parse("[::1]:8080"), Ok(Target::Ip("[::1]:8080".parse().unwrap())));
        assert_eq!(parse("api.internal:9000"), Ok(Target::Host("api.internal".into(), 9000)));
        assert!(parse("api.internal").is_err());
        assert!(parse("api.internal:http").is_err());
        assert!(parse(":80").is_err());
        assert!(parse("::1:80").is_err());
    }

    #[tokio::test]
    async fn failed_lookups_fall_back_to_the_last_answer() {
        let mut cluster = Cluster {
            name: "cached".into(),
            endpoints: vec![strait_config::Endpoint {
                address: "no-such-host.invalid:80".into(),
                weight: 3,
                backup: true,
            }],
            balancer: Default::default(),
            hash_on: None,
            dns_refresh: strait_config::units::Dur::secs(30),
            host_header: "preserve".into(),
            keepalive: 0,
            timeouts: Default::default(),
            health: Default::default(),
            tls: None,
            protocol: Default::default(),
            filters: Vec::new(),
            proxy_protocol: None,
        };
        let cache = DnsCache::default();
        assert!(resolve(&cluster, &cache, true).await.is_err());
        assert_eq!(resolve(&cluster, &cache, false).await, Ok(Vec::new()));

        let previous: SocketAddr = "10.1.2.3:80".parse().unwrap();
        cache.put("no-such-host.invalid:80", &[previous]);
        let expected = vec![Resolved { addr: previous, weight: 3, backup: true }];
        assert_eq!(resolve(&cluster, &cache, true).await, Ok(expected));

        cluster.endpoints[0].address = "localhost:81".into();
        let found = resolve(&cluster, &cache, true).await.unwrap();
        assert!(!found.is_empty() && found.iter().all(|r| r.addr.ip().is_loopback()));
        assert!(cache.get("localhost:81").is_some());
    }
}
