//! The proxy auto-config file (`FindProxyForURL`), written from the route's own settings.

use std::net::IpAddr;

use bytes::Bytes;
use http::header;
use http::{request, StatusCode};
use ipnet::IpNet;
use strait_config::PacFile;
use strait_http::LocalResponse;

/// The PAC file of a forward-proxy route.
#[derive(Debug)]
pub(crate) struct PacPlan {
    /// The path it is served at.
    pub path: String,
    /// The proxy clients are told to use; `None`: the address they reached this one at.
    proxy: Option<String>,
    /// The script's rules before the final `PROXY` answer.
    direct_rules: String,
}

impl PacPlan {
    /// Checks the settings and writes the rules once.
    pub(crate) fn compile(pac: &PacFile) -> Result<PacPlan, String> {
        if !pac.path.starts_with('/') {
            return Err(format!("path `{}` must start with `/`", pac.path));
        }
        if let Some(proxy) = &pac.proxy {
            let valid = super::destination::split_authority(proxy).is_some_and(|(h, p)| !h.is_empty() && p.is_some());
            if !valid || !is_script_safe(proxy) {
                return Err(format!("proxy `{proxy}`: expected host:port"));
            }
        }
        let mut direct_rules = String::from("  if (isPlainHostName(host)) return \"DIRECT\";\n");
        for entry in &pac.direct {
            if !is_script_safe(entry) || entry.is_empty() {
                return Err(format!("direct entry `{entry}`: expected a host name, `.domain` or a CIDR block"));
            }
            if let Ok(net) = entry.parse::<IpNet>() {
                let IpNet::V4(v4) = net else {
                    // `isInNet` takes IPv4 masks; IPv6 blocks match as literal prefixes only.
                    return Err(format!("direct entry `{entry}`: PAC files match IPv4 blocks only"));
                };
                direct_rules.push_str(&format!(
                    "  if (isInNet(host, \"{}\", \"{}\")) return \"DIRECT\";\n",
                    v4.network(),
                    v4.netmask()
                ));
            } else if entry.parse::<IpAddr>().is_ok() {
                direct_rules.push_str(&format!("  if (host == \"{entry}\") return \"DIRECT\";\n"));
            } else if let Some(domain) = entry.strip_prefix('.') {
                direct_rules.push_str(&format!(
                    "  if (host == \"{domain}\" || dnsDomainIs(host, \".{domain}\")) return \"DIRECT\";\n"
                ));
            } else {
                direct_rules.push_str(&format!("  if (host == \"{entry}\") return \"DIRECT\";\n"));
            }
        }
        Ok(PacPlan { path: pac.path.clone(), proxy: pac.proxy.clone(), direct_rules })
    }

    /// The file, naming the configured proxy or else the one the client asked this from.
    pub(crate) fn answer(&self, parts: &request::Parts) -> LocalResponse {
        let asked = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| is_script_safe(h));
        let Some(proxy) = self.proxy.as_deref().or(asked) else {
            return LocalResponse::for_reason(strait_http::Reason::BadRequest);
        };
        let script =
            format!("function FindProxyForURL(url, host) {{\n{}  return \"PROXY {proxy}\";\n}}\n", self.direct_rules);
        LocalResponse::new(StatusCode::OK, "application/x-ns-proxy-autoconfig", Bytes::from(script))
    }
}

/// Whether `text` can go inside a JavaScript string literal as it is (host names, addresses,
/// ports: nothing that could end the string or the script).
fn is_script_safe(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'/' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &str) -> request::Parts {
        http::Request::builder().uri("/proxy.pac").header("host", host).body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_file_sends_listed_hosts_direct_and_the_rest_through_the_proxy() {
        let pac = PacFile {
            path: "/proxy.pac".into(),
            proxy: None,
            direct: vec![".corp.example".into(), "intranet".into(), "10.0.0.0/8".into()],
        };
        let plan = PacPlan::compile(&pac).unwrap();
        let answer = plan.answer(&request("proxy.example:3128"));
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers[header::CONTENT_TYPE], "application/x-ns-proxy-autoconfig");
        let text = std::str::from_utf8(&answer.body).unwrap();
        assert!(text.starts_with("function FindProxyForURL(url, host) {"), "{text}");
        assert!(text.contains("isPlainHostName(host)"), "{text}");
        assert!(text.contains("dnsDomainIs(host, \".corp.example\")"), "{text}");
        assert!(text.contains("isInNet(host, \"10.0.0.0\", \"255.0.0.0\")"), "{text}");
        assert!(text.contains("return \"PROXY proxy.example:3128\";"), "{text}");
    }

    #[test]
    fn a_configured_proxy_wins_and_unsafe_text_is_refused() {
        let pac = PacFile { path: "/p.pac".into(), proxy: Some("proxy.corp:8080".into()), direct: vec![] };
        let answer = PacPlan::compile(&pac).unwrap().answer(&request("10.1.1.1:3128"));
        assert!(std::str::from_utf8(&answer.body).unwrap().contains("PROXY proxy.corp:8080"));
        let bad = PacFile { path: "/p.pac".into(), proxy: None, direct: vec!["a\"; alert(1); \"".into()] };
        assert!(PacPlan::compile(&bad).is_err());
        let v6 = PacFile { path: "/p.pac".into(), proxy: None, direct: vec!["fd00::/8".into()] };
        assert!(PacPlan::compile(&v6).is_err());
        let forged = PacPlan::compile(&PacFile::default()).unwrap().answer(&request("x\"y"));
        assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    }
}
