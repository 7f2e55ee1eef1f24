//! Where a request goes, as the access rules see it: host name, IP literal and port.

use std::borrow::Cow;
use std::net::IpAddr;

use http::header::HOST;
use http::{request, Method};
use strait_http::context::ConnInfo;

/// The destination of a request: the target's authority (a forward proxy's absolute-form
/// URI or CONNECT authority, which the `Host` field carries too), or the `Host` field; inside
/// an inspected TLS tunnel, the tunnel's CONNECT target (where the request goes, whatever
/// `Host` the client wrote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Destination<'a> {
    /// The host in lower case, without a trailing dot, an IPv6 literal without brackets.
    pub(super) host: Cow<'a, str>,
    /// The host as an address, when it is an IP literal (names are not resolved here).
    pub(super) ip: Option<IpAddr>,
    /// The port given, else 80 for `http` and 443 for `https` (the listener's scheme for a
    /// request that names none).
    pub(super) port: u16,
}

impl<'a> Destination<'a> {
    /// The destination of `request`, received on `conn`.
    pub(super) fn of(request: &'a request::Parts, conn: &'a ConnInfo) -> Destination<'a> {
        let tunnel = conn.tls.as_ref().and_then(|tls| tls.inspected.as_ref());
        let authority = match tunnel {
            Some(tunnel) => tunnel.authority.as_str(),
            None => request
                .headers
                .get(HOST)
                .and_then(|value| value.to_str().ok())
                .or_else(|| request.uri.authority().map(|authority| authority.as_str()))
                .unwrap_or(""),
        };
        let (host, port) = split_authority(authority);
        let scheme = request.uri.scheme_str().unwrap_or(conn.scheme);
        let default_port =
            if request.method == Method::CONNECT || scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
        let port = port.unwrap_or(default_port);
        let host = host.strip_suffix('.').unwrap_or(host);
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        let ip = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        Destination { host, ip, port }
    }
}

/// `host[:port]` split, brackets taken off an IPv6 literal; a port that is not a number is
/// ignored (the parser refused such requests already).
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, rest)| rest);
    if let Some(rest) = authority.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else { return (rest, None) };
        return (host, after.strip_prefix(':').and_then(|port| port.parse().ok()));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()),
        None => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn destination_of(request: Request<()>) -> (String, Option<IpAddr>, u16) {
        let parts = request.into_parts().0;
        let conn = crate::consumer_auth::test_ctx("127.0.0.1").conn;
        let destination = Destination::of(&parts, &conn);
        (destination.host.into_owned(), destination.ip, destination.port)
    }

    #[test]
    fn the_host_and_port_come_from_the_target_or_the_host_field() {
        let get = |uri: &str, host: Option<&str>| {
            let mut builder = Request::get(uri);
            if let Some(host) = host {
                builder = builder.header("host", host);
            }
            destination_of(builder.body(()).unwrap())
        };
        assert_eq!(get("http://Blocked.Test./x", None), ("blocked.test".into(), None, 80));
        assert_eq!(get("http://a.test:8080/x", Some("a.test:8080")), ("a.test".into(), None, 8080));
        assert_eq!(get("https://a.test/", None), ("a.test".into(), None, 443));
        assert_eq!(get("/proxy.pac", Some("proxy.test:3128")), ("proxy.test".into(), None, 3128));
        assert_eq!(get("/proxy.pac", None), (String::new(), None, 80));
        let v6 = get("http://[::1]:81/", Some("[::1]:81"));
        assert_eq!(v6, ("::1".into(), Some("::1".parse().unwrap()), 81));
        let v4 = get("http://192.0.2.7/", None);
        assert_eq!((v4.1, v4.2), (Some("192.0.2.7".parse().unwrap()), 80));
        assert_eq!(get("http://2130706433/", None).1, None, "only literal addresses are addresses");
        let connect = Request::connect("mail.test:25").header("host", "mail.test:25").body(()).unwrap();
        assert_eq!(destination_of(connect), ("mail.test".into(), None, 25));
    }

    #[test]
    fn inside_an_inspected_tunnel_the_destination_is_the_tunnels() {
        use std::sync::Arc;
        use strait_http::context::{InspectedTunnel, TlsInfo};

        let mut conn = (*crate::consumer_auth::test_ctx("127.0.0.1").conn).clone();
        conn.scheme = "https";
        let tunnel = InspectedTunnel { authority: "bank.test:443".into(), consumer: None };
        conn.tls = Some(Box::new(TlsInfo { inspected: Some(Arc::new(tunnel)), ..TlsInfo::default() }));
        let parts = Request::get("/login").header("host", "allowed.test").body(()).unwrap().into_parts().0;
        let destination = Destination::of(&parts, &conn);
        assert_eq!((&*destination.host, destination.port), ("bank.test", 443));
    }
}
