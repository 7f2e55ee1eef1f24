//! Who may use the forward proxy and what the origin learns: `http_access` rules (403 pages
//! naming the rule, CONNECT held to SSL ports), `proxy_auth` (407, then the user in the
//! rules, credentials never forwarded) and `privacy` (X-Forwarded-For modes, Via, removed
//! fields), with curl `-x` and raw requests as the clients.

use std::io::{Read, Write};
use std::net::SocketAddr;

use crate::support::{curl, echo_server, open_tunnel, raw_request, Backend, Proxy, RawResponse, Reply};

/// A forward proxy on listener `proxy` with these listener filters (YAML list items, indented
/// for `filters:`), whose SSRF guard lets `origin` through.
fn forward_proxy(origin: SocketAddr, filters: &str) -> Proxy {
    Proxy::start(&format!(
        r#"
listeners:
  - name: proxy
    bind: 127.0.0.1:0
    filters:
{filters}
    routes:
      - forward_proxy:
          ssrf_guard: {{ allow: ["{origin}"] }}
"#
    ))
}

fn proxy_url(proxy: &Proxy) -> String {
    format!("http://{}", proxy.addr("proxy"))
}

/// The rules of the example: blocked sites for everyone, then the local network, then no one.
const RULES: &str = r#"      - name: http_access
        config:
          acls:
            local: { src: [127.0.0.0/8, "::1"] }
            blocked_sites: { dstdomain: [.blocked.test] }
          rules:
            - deny: [blocked_sites]
            - allow: [local]
            - deny: [all]"#;

#[test]
fn a_denial_is_a_403_page_naming_the_rule_and_the_rest_goes_through() {
    let origin = Backend::start(|_| Reply::text("origin page"));
    let proxy = forward_proxy(origin.addr, RULES);
    let blocked = curl(&["-x", &proxy_url(&proxy), "http://www.blocked.test/feed"]);
    assert_eq!(blocked.status, 403, "{}", blocked.text());
    assert_eq!(blocked.header("x-strait-reason"), Some("proxy_access_denied"));
    assert_eq!(blocked.text(), "403 Forbidden: proxy_access_denied: rules[0]: deny blocked_sites\n");
    let tunnel =
        raw_request(proxy.addr("proxy"), b"CONNECT blocked.test:443 HTTP/1.1\r\nHost: blocked.test:443\r\n\r\n");
    let tunnel = tunnel.expect("an answer");
    assert_eq!(tunnel.status, 403);
    assert!(tunnel.text().contains("rules[0]: deny blocked_sites"), "{}", tunnel.text());
    let allowed = curl(&["-x", &proxy_url(&proxy), &format!("http://{}/page", origin.addr)]);
    assert_eq!((allowed.status, allowed.text()), (200, "origin page".to_owned()));
    assert_eq!(origin.count(), 1, "only the allowed request reached the origin");
}

#[test]
fn what_no_rule_allows_is_denied_and_says_so() {
    let origin = Backend::start(|_| Reply::text("must not be reached"));
    let rules = r#"      - name: http_access
        config:
          acls: { elsewhere: { src: [10.0.0.0/8] } }
          rules: [{ allow: [elsewhere] }]"#;
    let proxy = forward_proxy(origin.addr, rules);
    let got = curl(&["-x", &proxy_url(&proxy), &format!("http://{}/", origin.addr)]);
    assert_eq!(got.status, 403);
    assert_eq!(got.text(), "403 Forbidden: proxy_access_denied: no rule matched (the default is deny)\n");
    assert_eq!(origin.count(), 0);
}

/// Sends `CONNECT target` and returns the status of the answer; on a 200, checks that the
/// tunnel carries bytes both ways.
fn connect(proxy: &Proxy, target: SocketAddr) -> (u16, String) {
    let (mut stream, head) = open_tunnel(proxy.addr("proxy"), target, b"");
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    if status == 200 {
        stream.write_all(b"ping").unwrap();
        let mut echoed = [0u8; 4];
        stream.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"ping");
        return (status, String::new());
    }
    let length: usize = head
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

#[test]
fn connect_to_a_port_other_than_443_needs_a_rule_naming_the_port() {
    let echo = echo_server();
    let proxy = forward_proxy(echo, RULES);
    let (status, page) = connect(&proxy, echo);
    assert_eq!(status, 403, "`allow local` does not open tunnels to any port");
    assert!(page.starts_with("403 Forbidden: proxy_access_denied: rules[2]: deny all (`rules[1]: allow local` matched, but a CONNECT to a port outside SSL_ports is allowed only by a rule with a port ACL)"), "{page}");
    let opened = format!(
        r#"      - name: http_access
        config:
          acls:
            local: {{ src: [127.0.0.0/8] }}
            echo_port: {{ port: [{}] }}
          rules:
            - allow: [local, CONNECT, echo_port]
            - allow: [local]"#,
        echo.port()
    );
    let proxy = forward_proxy(echo, &opened);
    assert_eq!(connect(&proxy, echo).0, 200, "a rule naming the port opens the tunnel");
}

#[test]
fn empty_rules_are_squids_safe_default() {
    let echo = echo_server();
    let proxy = forward_proxy(echo, "      - name: http_access");
    let (status, page) = connect(&proxy, echo);
    assert_eq!(status, 403);
    assert!(page.contains("default rules[1]: deny CONNECT !SSL_ports"), "{page}");
    let origin = Backend::start(|_| Reply::text("local clients are allowed"));
    let proxy = forward_proxy(origin.addr, "      - name: http_access");
    let got = curl(&["-x", &proxy_url(&proxy), &format!("http://{}/", origin.addr)]);
    assert_eq!((got.status, got.text()), (200, "local clients are allowed".to_owned()));
}

/// An htpasswd file with alice (`wonderland`, in group staff) and bob (`builder`).
fn htpasswd(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("users");
    let text =
        format!("alice:{}\nbob:{}\n", bcrypt::hash("wonderland", 4).unwrap(), bcrypt::hash("builder", 4).unwrap());
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn proxy_auth_answers_407_then_lets_valid_users_through_without_telling_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Backend::start(|_| Reply::text("hello user"));
    let filters = format!(
        r#"      - name: proxy_auth
        config: {{ htpasswd: "{}", realm: office }}
      - name: http_access
        config:
          rules: [{{ allow: [localhost] }}]"#,
        htpasswd(&dir)
    );
    let proxy = forward_proxy(origin.addr, &filters);
    let url = format!("http://{}/", origin.addr);
    let anonymous = curl(&["-x", &proxy_url(&proxy), &url]);
    assert_eq!(anonymous.status, 407);
    assert_eq!(anonymous.header("proxy-authenticate"), Some("Basic realm=\"office\""));
    assert_eq!(anonymous.header("x-strait-reason"), Some("proxy_auth_required"));
    let wrong = curl(&["-x", &proxy_url(&proxy), "--proxy-user", "alice:wrong", &url]);
    assert_eq!(wrong.status, 407);
    for _ in 0..2 {
        let signed_in = curl(&["-x", &proxy_url(&proxy), "--proxy-user", "alice:wonderland", &url]);
        assert_eq!((signed_in.status, signed_in.text()), (200, "hello user".to_owned()));
    }
    let seen = origin.requests();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert!(!request.headers.contains_key("proxy-authorization"), "{:?}", request.headers);
        assert!(request.headers.keys().all(|name| !name.as_str().starts_with("x-consumer")), "{:?}", request.headers);
        assert!(!request.headers.contains_key("x-credential-identifier"));
    }
    // A CONNECT is challenged too.
    let answer =
        raw_request(proxy.addr("proxy"), b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n");
    let RawResponse { status, .. } = answer.expect("an answer");
    assert_eq!(status, 407);
}

#[test]
fn rules_decide_by_user_and_group_and_challenge_only_when_they_need_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Backend::start(|_| Reply::text("staff only"));
    let filters = format!(
        r#"      - name: proxy_auth
        config: {{ htpasswd: "{}", required: false, groups: {{ staff: [alice] }} }}
      - name: http_access
        config:
          acls:
            public: {{ dstdomain: [public.test] }}
            staff: {{ proxy_auth_group: [staff] }}
          rules:
            - deny: [public]
            - allow: [localhost, staff]
            - deny: [all]"#,
        htpasswd(&dir)
    );
    let proxy = forward_proxy(origin.addr, &filters);
    let url = format!("http://{}/", origin.addr);
    let no_user = curl(&["-x", &proxy_url(&proxy), &url]);
    assert_eq!(no_user.status, 407, "{}", no_user.text());
    assert_eq!(no_user.header("proxy-authenticate"), Some("Basic realm=\"strait\""));
    assert!(no_user.text().contains("rules[1]: allow localhost staff needs an authenticated user"));
    let decided_without_user = curl(&["-x", &proxy_url(&proxy), "http://public.test/"]);
    assert_eq!(decided_without_user.status, 403, "a rule before the user's decides without a challenge");
    let staff = curl(&["-x", &proxy_url(&proxy), "--proxy-user", "alice:wonderland", &url]);
    assert_eq!(staff.status, 200);
    let not_staff = curl(&["-x", &proxy_url(&proxy), "--proxy-user", "bob:builder", &url]);
    assert_eq!(not_staff.status, 403);
    assert!(not_staff.text().contains("rules[2]: deny all"), "{}", not_staff.text());
    assert_eq!(origin.count(), 1);
}

/// What the origin saw of one request sent with identifying fields, through a proxy with a
/// `privacy` filter configured as `config`.
fn seen_by_origin(config: &str) -> (http::HeaderMap, RawResponse) {
    let origin = Backend::start(|_| Reply::text("ok"));
    let proxy = forward_proxy(origin.addr, &format!("      - name: privacy\n        config: {config}"));
    let got = curl(&[
        "-x",
        &proxy_url(&proxy),
        "-H",
        "X-Forwarded-For: 6.6.6.6",
        "-H",
        "Forwarded: for=6.6.6.6",
        "-H",
        "X-Real-IP: 6.6.6.6",
        "-H",
        "Referer: http://secret.test/",
        "-H",
        "Cookie: a=1",
        &format!("http://{}/", origin.addr),
    ]);
    assert_eq!(got.status, 200);
    let seen = origin.requests();
    assert_eq!(seen.len(), 1);
    (seen[0].headers.clone(), got)
}

#[test]
fn privacy_modes_decide_what_the_origin_sees() {
    let (deleted, response) = seen_by_origin("{}");
    for name in ["x-forwarded-for", "forwarded", "x-real-ip", "via"] {
        assert!(!deleted.contains_key(name), "{name}: {deleted:?}");
    }
    assert!(response.header("via").is_none());
    assert_eq!(deleted["referer"], "http://secret.test/");
    let (on, _) = seen_by_origin("{ forwarded_for: on }");
    assert_eq!(on["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
    assert!(!on.contains_key("forwarded") && !on.contains_key("x-real-ip"));
    let (off, _) = seen_by_origin("{ forwarded_for: off }");
    assert_eq!(off["x-forwarded-for"], "6.6.6.6, unknown");
    let (truncated, _) = seen_by_origin("{ forwarded_for: truncate }");
    assert_eq!(truncated["x-forwarded-for"], "127.0.0.1");
    let (transparent, _) = seen_by_origin("{ forwarded_for: transparent }");
    assert_eq!(transparent["x-forwarded-for"], "6.6.6.6");
    assert_eq!(transparent["x-real-ip"], "6.6.6.6");
    let (via, response) = seen_by_origin("{ via: true, remove: [Referer, Cookie] }");
    assert_eq!(via["via"], "1.1 strait");
    assert_eq!(response.header("via"), Some("1.1 strait"));
    assert!(!via.contains_key("referer") && !via.contains_key("cookie"), "{via:?}");
    let (paranoid, _) = seen_by_origin("{ paranoid: true }");
    assert!(!paranoid.contains_key("user-agent") && !paranoid.contains_key("cookie"), "{paranoid:?}");
    assert!(paranoid.contains_key("host") && paranoid.contains_key("accept"), "{paranoid:?}");
}

#[test]
fn inside_an_inspected_tunnel_the_rules_see_each_request_as_the_tunnels_user() {
    let origin_pki = crate::support::pki::Pki::new("origin ca");
    let leaf = origin_pki.server("origin", &["localhost"]);
    let origin = Proxy::start(&format!(
        "listeners:\n  - name: tls\n    bind: 127.0.0.1:0\n    tls:\n      certificates:\n        - {{ cert: \"{}\", key: \"{}\" }}\n    routes:\n      - echo: {{ name: origin }}\n",
        leaf.cert.display(),
        leaf.key.display()
    ));
    let port = origin.addr("tls").port();
    let inspection_pki = crate::support::pki::Pki::new("inspection ca");
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&format!(
        r#"
listeners:
  - name: proxy
    bind: 127.0.0.1:0
    filters:
      - name: proxy_auth
        config: {{ htpasswd: "{users}" }}
      - name: http_access
        config:
          acls:
            uploads: {{ method: [POST] }}
            alice: {{ proxy_auth: [alice] }}
            origin_port: {{ port: [{port}] }}
          rules:
            - deny: [uploads]
            - allow: [localhost, CONNECT, origin_port, alice]
            - allow: [localhost, alice]
            - deny: [all]
    routes:
      - forward_proxy:
          ssrf_guard: {{ allow: ["127.0.0.1:{port}"] }}
          tls_inspection:
            ca_cert: "{ca}"
            ca_key: "{key}"
            origin_ca: "{origin_ca}"
            domains: [localhost]
"#,
        users = htpasswd(&dir),
        ca = inspection_pki.ca_file().display(),
        key = inspection_pki.ca_key_file().display(),
        origin_ca = origin_pki.ca_file().display(),
    ));
    let url = format!("https://localhost:{port}/inside");
    let ca = inspection_pki.ca_file();
    let through = |user: &str, extra: &[&str]| {
        let mut args = vec!["--suppress-connect-headers", "-x", &*proxy_url(&proxy)]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        args.extend(["--proxy-user", user, "--cacert", ca.to_str().unwrap()].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(url.clone());
        curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // The inner GET carries no Proxy-Authorization: it is allowed as alice's, who opened the tunnel.
    let get = through("alice:wonderland", &[]);
    assert_eq!(get.status, 200, "{}", get.text());
    assert!(get.text().contains("GET /inside"), "{}", get.text());
    assert!(!get.text().to_ascii_lowercase().contains("proxy-authorization"), "{}", get.text());
    // A POST is seen only once decrypted, and denied by its own rule.
    let post = through("alice:wonderland", &["-d", "x=1"]);
    assert_eq!(post.status, 403);
    assert_eq!(post.text(), "403 Forbidden: proxy_access_denied: rules[0]: deny uploads\n");
}
