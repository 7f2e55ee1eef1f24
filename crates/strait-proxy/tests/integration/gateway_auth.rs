//! The gateway's authentication and access filters end to end: `key_auth`, `basic_auth`,
//! `acl` after an authentication filter, `ip_restriction`; what the backend receives (the
//! consumer's `x-consumer-*` fields, never a forged one, never a hidden credential), every
//! refusal's status and headers, and configuration errors with their file position.

use crate::support;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use support::{pki, Backend, Proxy, RawConn, RawResponse, Reply};

/// alice (admin, staff) and bob (staff) have an API key and a basic-auth user each; alice's
/// password is a bcrypt hash (`alice_hash`), bob's is plain text; guest has no credentials.
fn consumers(alice_hash: &str) -> String {
    format!(
        "consumers:
  - username: alice
    custom_id: c-alice
    groups: [admin, staff]
    credentials:
      key_auth: [{{ key: k-alice }}]
      basic_auth: [{{ username: alice, password: \"{alice_hash}\" }}]
  - username: bob
    groups: [staff]
    credentials:
      key_auth: [{{ key: k-bob }}]
      basic_auth: [{{ username: bob, password: builder }}]
  - username: guest
"
    )
}

/// A proxy with one route per `(path prefix, filters)` to `backend`, and the consumers.
fn gateway(backend: &Backend, server: &str, routes: &[(&str, &str)]) -> Proxy {
    let hash = bcrypt::hash("wonderland", 4).unwrap();
    let routes: String = routes
        .iter()
        .map(|(prefix, filters)| {
            format!("      - match: {{ path: {{ prefix: {prefix} }} }}\n        filters: {filters}\n        forward: {{ cluster: app }}\n")
        })
        .collect();
    Proxy::start(&format!(
        "{server}listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    http2: true\n    routes:\n{routes}clusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n{}",
        backend.addr,
        consumers(&hash)
    ))
}

/// A GET of `target` with `headers`, on a new connection.
fn get(proxy: &Proxy, target: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    support::raw_request(proxy.addr("web"), request.as_bytes()).expect("a response")
}

fn basic(user_password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password))
}

/// The request the backend received last.
fn last(backend: &Backend) -> support::Recorded {
    backend.requests().pop().expect("the backend got a request")
}

/// Asserts `response` is a refusal with this status and reason that never reached `backend`
/// (which had received `before` requests), and returns it.
fn refused(response: RawResponse, status: u16, reason: &str, backend: &Backend, before: usize) -> RawResponse {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.header("x-strait-reason"), Some(reason));
    assert_eq!(backend.count(), before, "a refused request never reaches the backend");
    response
}

/// Asserts the backend saw `username` as the consumer, with no forged identity fields left.
fn assert_consumer(recorded: &support::Recorded, username: &str) {
    let headers = &recorded.headers;
    assert_eq!(headers.get_all("x-consumer-username").iter().collect::<Vec<_>>(), [username], "{headers:?}");
}

#[test]
fn key_auth_takes_a_key_from_the_header_or_the_query_and_names_the_consumer_upstream() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = gateway(
        &backend,
        "",
        &[
            ("/kept", "[{ name: key_auth }]"),
            ("/hidden", "[{ name: key_auth, config: { key_names: [apikey, x-api-key], hide_credentials: true } }]"),
            ("/header-only", "[{ name: key_auth, config: { key_in_query: false } }]"),
        ],
    );
    // A key in the query; the client's own identity fields never reach the backend.
    let forged = [("x-consumer-username", "mallory"), ("x-consumer-groups", "root"), ("x-anonymous-consumer", "true")];
    assert_eq!(get(&proxy, "/kept?apikey=k-alice", &forged).status, 200);
    let seen = last(&backend);
    assert_consumer(&seen, "alice");
    assert_eq!(seen.headers["x-consumer-custom-id"], "c-alice");
    assert_eq!(seen.headers["x-consumer-groups"], "admin, staff");
    assert_eq!(seen.headers["x-credential-identifier"], "alice#0", "a label, not the key");
    assert!(seen.headers.get("x-anonymous-consumer").is_none());
    assert_eq!(seen.uri, "/kept?apikey=k-alice", "not hidden unless asked");
    // A key in the header.
    assert_eq!(get(&proxy, "/kept", &[("apikey", "k-bob")]).status, 200);
    let seen = last(&backend);
    assert_consumer(&seen, "bob");
    assert_eq!(seen.headers["apikey"], "k-bob");
    // Hidden credentials: the query parameter and the header are gone, the rest is as sent.
    assert_eq!(get(&proxy, "/hidden?x=%41&apikey=k-alice&y=2", &[]).status, 200);
    let seen = last(&backend);
    assert_consumer(&seen, "alice");
    assert_eq!(seen.uri, "/hidden?x=%41&y=2");
    assert_eq!(get(&proxy, "/hidden", &[("X-Api-Key", "k-bob")]).status, 200);
    let seen = last(&backend);
    assert_consumer(&seen, "bob");
    assert!(seen.headers.get("x-api-key").is_none(), "{:?}", seen.headers);
    // Where keys are looked for follows the switches.
    assert_eq!(get(&proxy, "/header-only", &[("apikey", "k-bob")]).status, 200);
    let before = backend.count();
    let no_key = refused(get(&proxy, "/header-only?apikey=k-bob", &[]), 401, "unauthorized", &backend, before);
    assert!(no_key.text().contains("no API key found in request"), "{}", no_key.text());
    // No key, a wrong key, two keys.
    for (target, headers, why) in [
        ("/kept", &[][..], "no API key found in request"),
        ("/kept", &[("apikey", "k-carol")][..], "invalid authentication credentials"),
        ("/hidden?apikey=k-alice-", &[][..], "invalid authentication credentials"),
        ("/kept?apikey=k-alice&apikey=k-bob", &[][..], "duplicate API key found"),
    ] {
        let response = refused(get(&proxy, target, headers), 401, "unauthorized", &backend, before);
        assert_eq!(response.header("www-authenticate"), Some("Key realm=\"strait\""), "{target}");
        assert!(response.text().contains(why), "{target}: {}", response.text());
    }
}

#[test]
fn key_auth_lets_requests_without_a_valid_key_go_on_as_the_anonymous_consumer() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = gateway(&backend, "", &[("/", "[{ name: key_auth, config: { anonymous: guest, realm: api } }]")]);
    for headers in [&[][..], &[("apikey", "k-wrong")][..]] {
        assert_eq!(get(&proxy, "/", headers).status, 200);
        let seen = last(&backend);
        assert_consumer(&seen, "guest");
        assert_eq!(seen.headers["x-anonymous-consumer"], "true");
        assert!(seen.headers.get("x-credential-identifier").is_none());
    }
    assert_eq!(get(&proxy, "/", &[("apikey", "k-alice"), ("x-anonymous-consumer", "true")]).status, 200);
    let seen = last(&backend);
    assert_consumer(&seen, "alice");
    assert!(seen.headers.get("x-anonymous-consumer").is_none(), "the client's field is removed");
}

#[test]
fn basic_auth_checks_bcrypt_and_plain_passwords() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = gateway(
        &backend,
        "",
        &[
            ("/basic", "[{ name: basic_auth }]"),
            ("/hidden", "[{ name: basic_auth, config: { hide_credentials: true, realm: admin } }]"),
            ("/guest", "[{ name: basic_auth, config: { anonymous: guest } }]"),
        ],
    );
    // A bcrypt user, three times on one keep-alive connection.
    let alice = basic("alice:wonderland");
    let mut conn = RawConn::connect(proxy.addr("web"));
    for _ in 0..3 {
        let request = format!("GET /basic HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: {alice}\r\nX-Consumer-Username: mallory\r\n\r\n");
        conn.send(request.as_bytes());
        assert_eq!(conn.read_response().expect("a response").status, 200);
        let seen = last(&backend);
        assert_consumer(&seen, "alice");
        assert_eq!(seen.headers["x-credential-identifier"], "alice");
        assert_eq!(seen.headers["authorization"], alice.as_str(), "kept unless hidden");
    }
    assert_eq!(backend.count(), 3);
    // A plain-text user with hidden credentials, from curl.
    let url = format!("http://{}/hidden", proxy.addr("web"));
    assert_eq!(support::curl(&["-u", "bob:builder", &url]).status, 200);
    let seen = last(&backend);
    assert_consumer(&seen, "bob");
    assert!(seen.headers.get("authorization").is_none(), "{:?}", seen.headers);
    // Refusals carry the realm's challenge.
    let before = backend.count();
    for (target, authorization, realm, why) in [
        ("/basic", None, "strait", "no basic-auth credentials found"),
        ("/hidden", None, "admin", "no basic-auth credentials found"),
        ("/basic", Some(basic("alice:Wonderland")), "strait", "invalid authentication credentials"),
        ("/basic", Some(basic("bob:builder2")), "strait", "invalid authentication credentials"),
        ("/hidden", Some(basic("carol:builder")), "admin", "invalid authentication credentials"),
        ("/basic", Some("Basic not-base64!".to_owned()), "strait", "invalid authentication credentials"),
    ] {
        let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("authorization", a.as_str())).collect();
        let response = refused(get(&proxy, target, &headers), 401, "unauthorized", &backend, before);
        assert_eq!(response.header("www-authenticate"), Some(format!("Basic realm=\"{realm}\"").as_str()));
        assert!(response.text().contains(why), "{target} {authorization:?}: {}", response.text());
    }
    // The anonymous consumer.
    assert_eq!(get(&proxy, "/guest", &[("authorization", &basic("alice:wrong"))]).status, 200);
    let seen = last(&backend);
    assert_consumer(&seen, "guest");
    assert_eq!(seen.headers["x-anonymous-consumer"], "true");
}

#[test]
fn over_http2_credentials_are_found_and_hidden_the_same_way() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = gateway(
        &backend,
        "",
        &[
            ("/key", "[{ name: key_auth, config: { hide_credentials: true } }]"),
            ("/basic", "[{ name: basic_auth, config: { hide_credentials: true } }]"),
        ],
    );
    let request = |target: &str, headers: &[(&str, &str)]| {
        let mut builder = http::Request::get(format!("http://gateway.test{target}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Full::new(Bytes::new())).unwrap()
    };
    let alice = basic("alice:wonderland");
    let requests = vec![
        request("/key?apikey=k-bob&x=1", &[("x-consumer-username", "mallory")]),
        request("/basic", &[("authorization", &alice)]),
        request("/key", &[]),
    ];
    let addr = proxy.addr("web");
    let got = pki::runtime().block_on(async move {
        pki::http2_requests(tokio::net::TcpStream::connect(addr).await.unwrap(), requests).await
    });
    let statuses: Vec<u16> = got.iter().map(|g| g.parts.status.as_u16()).collect();
    assert_eq!(statuses, [200, 200, 401]);
    assert_eq!(got[2].parts.headers["www-authenticate"], "Key realm=\"strait\"");
    let seen = backend.requests();
    assert_eq!(seen.len(), 2);
    let key = seen.iter().find(|r| r.uri.starts_with("/key")).expect("the key request");
    assert_eq!(key.uri, "/key?x=1", "the key is hidden, the rest kept");
    assert_consumer(key, "bob");
    let basic = seen.iter().find(|r| r.uri == "/basic").expect("the basic-auth request");
    assert_consumer(basic, "alice");
    assert!(basic.headers.get("authorization").is_none());
}

#[test]
fn acl_after_key_auth_allows_or_denies_by_consumer_group() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = gateway(
        &backend,
        "",
        &[
            ("/admin", "[{ name: key_auth }, { name: acl, config: { allow: [admin] } }]"),
            ("/public", "[{ name: key_auth }, { name: acl, config: { deny: [admin], hide_groups_header: true } }]"),
            ("/maybe", "[{ name: key_auth, config: { anonymous: guest } }, { name: acl, config: { allow: [admin] } }]"),
            ("/no-auth", "[{ name: acl, config: { allow: [admin] } }]"),
        ],
    );
    assert_eq!(get(&proxy, "/admin", &[("apikey", "k-alice")]).status, 200);
    let seen = last(&backend);
    assert_consumer(&seen, "alice");
    assert_eq!(seen.headers["x-consumer-groups"], "admin, staff");
    assert_eq!(get(&proxy, "/public", &[("apikey", "k-bob")]).status, 200);
    let seen = last(&backend);
    assert_consumer(&seen, "bob");
    assert!(seen.headers.get("x-consumer-groups").is_none(), "hidden: {:?}", seen.headers);
    assert_eq!(get(&proxy, "/maybe", &[("apikey", "k-alice")]).status, 200);

    let before = backend.count();
    for (target, key) in [("/admin", "k-bob"), ("/public", "k-alice")] {
        let response = refused(get(&proxy, target, &[("apikey", key)]), 403, "consumer_forbidden", &backend, before);
        assert!(response.header("www-authenticate").is_none());
    }
    // The anonymous consumer has no groups.
    refused(get(&proxy, "/maybe", &[]), 403, "consumer_forbidden", &backend, before);
    // No key: key_auth answers before acl runs.
    let response = refused(get(&proxy, "/admin", &[]), 401, "unauthorized", &backend, before);
    assert_eq!(response.header("www-authenticate"), Some("Key realm=\"strait\""));
    // Without an authentication filter there is no consumer, whatever the client claims.
    let claims = [("x-consumer-username", "alice"), ("x-consumer-groups", "admin")];
    let response = refused(get(&proxy, "/no-auth", &claims), 401, "unauthorized", &backend, before);
    assert!(response.header("www-authenticate").is_none());
}

#[test]
fn ip_restriction_allows_and_denies_addresses_and_ranges() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = gateway(
        &backend,
        "",
        &[
            ("/allow-range", "[{ name: ip_restriction, config: { allow: [127.0.0.0/8] } }]"),
            ("/allow-ip", "[{ name: ip_restriction, config: { allow: [127.0.0.1] } }]"),
            ("/allow-other", "[{ name: ip_restriction, config: { allow: [10.0.0.0/8, \"2001:db8::/32\"] } }]"),
            ("/deny-ip", "[{ name: ip_restriction, config: { deny: [127.0.0.1] } }]"),
            ("/deny-v6", "[{ name: ip_restriction, config: { deny: [\"::1\", \"fe80::/10\"] } }]"),
            ("/deny-wins", "[{ name: ip_restriction, config: { allow: [127.0.0.0/8], deny: [127.0.0.1/32] } }]"),
            (
                "/custom",
                "[{ name: ip_restriction, config: { deny: [127.0.0.0/24], status: 404, message: nothing here } }]",
            ),
        ],
    );
    for target in ["/allow-range", "/allow-ip", "/deny-v6"] {
        assert_eq!(get(&proxy, target, &[]).status, 200, "{target}");
        assert_eq!(last(&backend).uri, target);
    }
    let before = backend.count();
    for target in ["/allow-other", "/deny-ip", "/deny-wins"] {
        let response = refused(get(&proxy, target, &[]), 403, "ip_forbidden", &backend, before);
        assert_eq!(response.text(), "403 Forbidden: ip_forbidden\n", "{target}");
    }
    let custom = refused(get(&proxy, "/custom", &[]), 404, "ip_forbidden", &backend, before);
    assert_eq!(custom.text(), "nothing here\n");
}

#[test]
fn ip_restriction_checks_the_address_a_trusted_proxy_forwarded() {
    let backend = Backend::start(|_| Reply::text("ok"));
    let proxy = gateway(
        &backend,
        "server:\n  trusted_proxies: [127.0.0.1]\n",
        &[("/office", "[{ name: ip_restriction, config: { allow: [10.0.0.0/8], deny: [10.6.6.0/24] } }]")],
    );
    assert_eq!(get(&proxy, "/office", &[("x-forwarded-for", "10.1.2.3")]).status, 200);
    assert_eq!(last(&backend).headers["x-real-ip"], "10.1.2.3");
    let before = backend.count();
    for forwarded in [&[("x-forwarded-for", "192.0.2.1")][..], &[("x-forwarded-for", "10.6.6.6")][..], &[][..]] {
        refused(get(&proxy, "/office", forwarded), 403, "ip_forbidden", &backend, before);
    }
}

#[test]
fn configuration_errors_name_file_line_and_field() {
    let text = "consumers:
  - username: alice
    credentials:
      basic_auth: [{ username: alice, password: \"$apr1$salt$hash\" }]
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - direct: { body: x }
        filters:
          - name: key_auth
            config:
              anonymous: nobody
          - name: acl
            config:
              allow: [admin]
              deny: [banned]
          - name: ip_restriction
            config:
              allow: [127.0.0.1, 10.0.0.0/33]
          - name: basic_auth
";
    let config = strait_config::load_str(text, "auth.yaml").unwrap();
    let errors = strait_proxy::check(&config).unwrap_err().to_string();
    let filters = "listeners[0].routes[0].filters";
    for expected in [
        format!("auth.yaml:13:26: {filters}[0].config.anonymous: unknown consumer `nobody`; consumers: alice"),
        format!("auth.yaml:17:21: {filters}[1].config.deny: `allow` and `deny` cannot both be set"),
        format!("auth.yaml:20:34: {filters}[2].config.allow[1]: `10.0.0.0/33` is not an IP address or CIDR range"),
        format!("{filters}[3].config: consumers[0].credentials.basic_auth[0].password looks like an Apache MD5 hash"),
    ] {
        assert!(errors.contains(&expected), "missing `{expected}` in:\n{errors}");
    }
}
