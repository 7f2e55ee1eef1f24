//! Checks of single values: HTTP tokens, header names and values, host names, addresses.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// Whether `text` is a non-empty HTTP token (RFC 9110 `tchar`s), the syntax of methods and
/// header names.
pub fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Why `name` is not a valid HTTP header name, if it is not.
pub fn header_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("header name is empty".into())
    } else if !is_token(name) {
        Some(format!("`{name}` is not a valid header name: use letters, digits and `-`"))
    } else {
        None
    }
}

/// Why `value` is not a valid HTTP header value, if it is not.
pub fn header_value_problem(value: &str) -> Option<String> {
    let control = value.chars().find(|&c| (c.is_ascii_control() && c != '\t') || c == '\u{7f}')?;
    Some(format!(
        "header value `{}` contains the control character {:?}, which headers cannot carry",
        value.escape_debug(),
        control
    ))
}

/// Why `method` is not a valid request method, if it is not.
pub fn method_problem(method: &str) -> Option<String> {
    if !is_token(method) {
        Some(format!("`{method}` is not a valid HTTP method"))
    } else if method.bytes().any(|b| b.is_ascii_lowercase()) {
        Some(format!(
            "method `{method}` must be upper-case: methods are case-sensitive, write `{}`",
            method.to_ascii_uppercase()
        ))
    } else {
        None
    }
}

/// Why `host` is not a valid route host (`api.example.com`, `*.example.com`), if it is not.
pub fn host_pattern_problem(host: &str) -> Option<String> {
    if host.is_empty() {
        return Some("host is empty".into());
    }
    if host == "*" {
        return Some("`*` is not a host pattern: leave `hosts` out to match every host".into());
    }
    if let Some(literal) = host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        return match literal.parse::<Ipv6Addr>() {
            Ok(_) => None,
            Err(_) => Some(format!("`{host}` is not a valid IPv6 address")),
        };
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.contains('*') {
        return Some(format!("`{host}`: `*` is only allowed as a leading `*.` wildcard"));
    }
    if name.contains(':') {
        return Some(format!("`{host}` has a port: hosts match the name only, without the port"));
    }
    if name.len() > 253 {
        return Some(format!("host `{host}` is longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Some(format!("host `{host}` has an empty label"));
        }
        if label.len() > 63 {
            return Some(format!("host `{host}` has a label longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Some(format!("`{host}` is not a valid host name: use letters, digits, `-` and `.`"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("host `{host}` has a label that starts or ends with `-`"));
        }
    }
    None
}

/// Why `address` is not a valid endpoint address (`HOST:PORT`, `IP:PORT`, `[v6]:PORT`).
pub fn endpoint_address_problem(address: &str) -> Option<String> {
    if address.parse::<SocketAddr>().is_ok() {
        return port_problem(address, address.rsplit(':').next().unwrap_or_default());
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Some(format!("`{address}` has no port: write `HOST:PORT` or `[IPv6]:PORT`"));
    };
    if host.contains(':') && !host.starts_with('[') {
        return Some(format!("`{address}`: write IPv6 addresses in brackets, as `[{host}]:{port}`"));
    }
    if host.starts_with('[') {
        return Some(format!("`{address}` is not a valid `[IPv6]:PORT` address"));
    }
    if host.is_empty() || host.starts_with("*.") {
        return Some(format!("`{address}` has no valid host: write `HOST:PORT` or `[IPv6]:PORT`"));
    }
    if let Some(problem) = host_pattern_problem(host) {
        return Some(format!("`{address}`: {problem}"));
    }
    port_problem(address, port)
}

fn port_problem(address: &str, port: &str) -> Option<String> {
    match port.parse::<u16>() {
        Ok(0) => Some(format!("`{address}`: port 0 cannot be connected to")),
        Ok(_) => None,
        Err(_) => Some(format!("`{address}`: `{port}` is not a port number (1 to 65535)")),
    }
}

/// Why `entry` is neither an IP address nor a CIDR block, if it is neither.
pub fn ip_or_cidr_problem(entry: &str) -> Option<String> {
    if entry.parse::<IpAddr>().is_ok() || entry.parse::<IpNet>().is_ok() {
        None
    } else {
        Some(format!("`{entry}` is neither an IP address nor a CIDR block such as `10.0.0.0/8`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_methods() {
        assert!(is_token("X-Request-Id"));
        assert!(!is_token("Bad Header"));
        assert!(!is_token(""));
        assert!(method_problem("GET").is_none());
        assert!(method_problem("PURGE").is_none());
        assert!(method_problem("get").unwrap().contains("write `GET`"));
        assert!(method_problem("GE T").unwrap().contains("not a valid"));
    }

    #[test]
    fn header_names_and_values() {
        assert!(header_name_problem("x-api-key").is_none());
        assert!(header_name_problem("x api").is_some());
        assert!(header_name_problem("").is_some());
        assert!(header_value_problem("text/html; charset=utf-8").is_none());
        assert!(header_value_problem("a\tb é").is_none());
        assert!(header_value_problem("a\r\nb").is_some());
    }

    #[test]
    fn hosts() {
        for good in ["example.com", "*.example.com", "localhost", "example.com.", "10.0.0.1", "[::1]", "a_b.test"] {
            assert!(host_pattern_problem(good).is_none(), "{good}");
        }
        for bad in ["", "*", "a.*.com", "*example.com", "ex ample.com", "a..b", "example.com:80", "-a.com", "[zz]"] {
            assert!(host_pattern_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn endpoint_addresses() {
        for good in ["127.0.0.1:8080", "[::1]:80", "backend.internal:443", "localhost:1"] {
            assert!(endpoint_address_problem(good).is_none(), "{good}");
        }
        for bad in ["127.0.0.1", "host:0", "host:70000", "host:http", "::1:80", "[::1", ":80", "a b:80", "[zz]:80"] {
            assert!(endpoint_address_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn ips_and_cidrs() {
        assert!(ip_or_cidr_problem("10.0.0.1").is_none());
        assert!(ip_or_cidr_problem("10.0.0.0/8").is_none());
        assert!(ip_or_cidr_problem("fd00::/8").is_none());
        assert!(ip_or_cidr_problem("10.0.0.0/33").is_some());
        assert!(ip_or_cidr_problem("localhost").is_some());
    }
}
