//! The `static` action end to end: types, validators, ranges, caching, directories, traversal.

use crate::support;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use support::{curl, hex, Proxy, RawConn, RawResponse};

const SECRET: &str = "TOP SECRET";

/// A document root inside a temporary directory, with secrets next to it, and a proxy
/// serving it: `/assets/...` (prefix stripped, `expires: 30d`), `/alias/...` (read from
/// `dir/`) and every other path.
struct Site {
    dir: tempfile::TempDir,
    proxy: Proxy,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let root = base.join("www");
        let write = |path: &str, body: &[u8]| {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, body).unwrap();
        };
        write("index.html", b"<h1>home</h1>");
        write("hello.txt", b"hello static\n");
        write("style.css", b"body { color: red }");
        write("app.js", b"console.log(1)");
        write("data.json", b"{\"a\":1}");
        write("logo.png", &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]);
        write("LICENSE", b"license text");
        write("letters.txt", &letters(100));
        write("big.bin", &big_file());
        write("a..b.txt", b"dots in the name");
        write("my file.txt", b"spaced");
        write("dir/index.html", b"<h1>dir index</h1>");
        write("dir/page.html", b"<p>page</p>");
        fs::create_dir_all(root.join("empty-dir")).unwrap();
        fs::write(base.join("secret.txt"), SECRET).unwrap();
        fs::create_dir_all(base.join("secretdir")).unwrap();
        fs::write(base.join("secretdir/secret.txt"), SECRET).unwrap();
        std::os::unix::fs::symlink("hello.txt", root.join("inside-link.txt")).unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink("../secretdir", root.join("leakdir")).unwrap();
        let proxy = Proxy::start(&format!(
            r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: {{ path: {{ prefix: /assets }} }}
        static: {{ root: "{root}", expires: 30d }}
        rewrite: {{ strip_prefix: /assets }}
      - match: {{ path: {{ prefix: /alias }} }}
        static: {{ root: "{root}" }}
        rewrite: {{ replace_prefix: /dir }}
      - static: {{ root: "{root}" }}
"#,
            root = root.display()
        ));
        Site { dir, proxy }
    }

    fn addr(&self) -> SocketAddr {
        self.proxy.addr("web")
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("www")
    }

    /// A GET with extra header lines, on a new connection.
    fn get(&self, target: &str, headers: &str) -> RawResponse {
        let mut conn = RawConn::connect(self.addr());
        conn.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n").as_bytes());
        conn.read_response().expect("response")
    }
}

/// `n` bytes `abc...zabc...`.
fn letters(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// 1 MiB and a bit: more than one read of the file.
fn big_file() -> Vec<u8> {
    (0..(1 << 20) + 12_345u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect()
}

fn set_mtime(path: &Path, secs: u64) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
}

#[test]
fn content_type_follows_the_extension() {
    let site = Site::new();
    let cases = [
        ("/index.html", "text/html", &b"<h1>home</h1>"[..]),
        ("/hello.txt", "text/plain", b"hello static\n"),
        ("/style.css", "text/css", b"body { color: red }"),
        ("/app.js", "text/javascript", b"console.log(1)"),
        ("/data.json", "application/json", b"{\"a\":1}"),
        ("/logo.png", "image/png", &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]),
        ("/LICENSE", "application/octet-stream", b"license text"),
        ("/a..b.txt", "text/plain", b"dots in the name"),
        ("/my%20file.txt", "text/plain", b"spaced"),
        ("/hello.txt?v=123", "text/plain", b"hello static\n"),
    ];
    for (target, content_type, body) in cases {
        let response = site.get(target, "");
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(response.header("content-type"), Some(content_type), "{target}");
        assert_eq!(response.header("content-length"), Some(body.len().to_string().as_str()), "{target}");
        assert_eq!(response.body, body, "{target}");
        assert_eq!(response.header("accept-ranges"), Some("bytes"), "{target}");
    }
}

#[test]
fn large_file_is_streamed_whole() {
    let site = Site::new();
    let response = site.get("/big.bin", "");
    assert_eq!(response.status, 200);
    assert_eq!(hex(&Sha256::digest(&response.body)), hex(&Sha256::digest(big_file())));
}

#[test]
fn etag_with_if_none_match_gives_304_until_the_file_changes() {
    let site = Site::new();
    let mut conn = RawConn::connect(site.addr());
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let first = conn.read_response().expect("200");
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong, quoted ETag: {etag}");

    for validator in [etag.clone(), format!("W/{etag}"), format!("\"other\", {etag}"), "*".to_owned()] {
        conn.send(format!("GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: {validator}\r\n\r\n").as_bytes());
        let cached = conn.read_response().expect("304");
        assert_eq!(cached.status, 304, "If-None-Match: {validator}");
        assert_eq!(cached.header("etag"), Some(etag.as_str()));
        assert_eq!(cached.header("transfer-encoding"), None);
        // Content-Length on a 304 may only repeat the length of the 200 (RFC 9110 §8.6).
        assert!(matches!(cached.header("content-length"), None | Some("13")), "{cached:?}");
    }
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"other\"\r\n\r\n");
    let fresh = conn.read_response().expect("200 after 304s on the same connection");
    assert_eq!(fresh.status, 200);
    assert_eq!(fresh.text(), "hello static\n");

    fs::write(site.root().join("hello.txt"), "hello again, longer\n").unwrap();
    let changed = site.get("/hello.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(changed.status, 200, "a changed file has a new ETag");
    assert_eq!(changed.text(), "hello again, longer\n");
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
}

#[test]
fn last_modified_with_if_modified_since_gives_304() {
    let site = Site::new();
    set_mtime(&site.root().join("hello.txt"), 1_577_836_800); // 2020-01-01T00:00:00Z
    let response = site.get("/hello.txt", "");
    assert_eq!(response.header("last-modified"), Some("Wed, 01 Jan 2020 00:00:00 GMT"));

    let cases = [
        ("Wed, 01 Jan 2020 00:00:00 GMT", 304),
        ("Thu, 02 Jan 2020 00:00:00 GMT", 304),
        ("Tue, 31 Dec 2019 23:59:59 GMT", 200),
        ("not a date", 200),
    ];
    for (since, status) in cases {
        let response = site.get("/hello.txt", &format!("If-Modified-Since: {since}\r\n"));
        assert_eq!(response.status, status, "If-Modified-Since: {since}");
        if status == 304 {
            assert!(response.body.is_empty());
        } else {
            assert_eq!(response.text(), "hello static\n");
        }
    }
    // If-None-Match decides when both are sent.
    let both =
        site.get("/hello.txt", "If-None-Match: \"other\"\r\nIf-Modified-Since: Thu, 02 Jan 2020 00:00:00 GMT\r\n");
    assert_eq!(both.status, 200);
}

#[test]
fn byte_ranges_give_206_with_content_range() {
    let site = Site::new();
    let body = letters(100);
    let cases = [
        ("bytes=0-9", "bytes 0-9/100", &body[0..10]),
        ("bytes=90-", "bytes 90-99/100", &body[90..]),
        ("bytes=-5", "bytes 95-99/100", &body[95..]),
        ("bytes=95-200", "bytes 95-99/100", &body[95..]),
        ("bytes=99-99", "bytes 99-99/100", &body[99..]),
    ];
    for (range, content_range, part) in cases {
        let response = site.get("/letters.txt", &format!("Range: {range}\r\n"));
        assert_eq!(response.status, 206, "{range}");
        assert_eq!(response.header("content-range"), Some(content_range), "{range}");
        assert_eq!(response.header("content-length"), Some(part.len().to_string().as_str()), "{range}");
        assert_eq!(response.body, part, "{range}");
    }

    // Across the proxy's 64 KiB file reads.
    let big = big_file();
    let response = site.get("/big.bin", "Range: bytes=65530-131080\r\n");
    assert_eq!(response.status, 206);
    assert_eq!(response.body, &big[65_530..=131_080]);

    // If-Range: the part while the validator is current, else the whole file.
    let etag = site.get("/letters.txt", "").header("etag").unwrap().to_owned();
    let current = site.get("/letters.txt", &format!("Range: bytes=0-9\r\nIf-Range: {etag}\r\n"));
    assert_eq!(current.status, 206);
    let stale = site.get("/letters.txt", "Range: bytes=0-9\r\nIf-Range: \"stale\"\r\n");
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, body);

    let url = format!("http://{}/letters.txt", site.addr());
    let curled = curl(&["-r", "10-19", &url]);
    assert_eq!(curled.status, 206);
    assert_eq!(curled.header("content-range"), Some("bytes 10-19/100"));
    assert_eq!(curled.body, &body[10..20]);
}

#[test]
fn unsatisfiable_range_gives_416() {
    let site = Site::new();
    for range in ["bytes=100-", "bytes=100-200", "bytes=-0"] {
        let response = site.get("/letters.txt", &format!("Range: {range}\r\n"));
        assert_eq!(response.status, 416, "{range}");
        assert_eq!(response.header("content-range"), Some("bytes */100"), "{range}");
        assert_eq!(response.header("x-strait-reason"), Some("range_not_satisfiable"), "{range}");
    }
}

#[test]
fn expires_sets_cache_control_max_age_and_expires() {
    let site = Site::new();
    let response = site.get("/assets/hello.txt", "");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "hello static\n");
    assert_eq!(response.header("cache-control"), Some("max-age=2592000"));
    let expires = httpdate::parse_http_date(response.header("expires").expect("Expires")).expect("an HTTP date");
    let expected = SystemTime::now() + Duration::from_secs(2_592_000);
    let off = expected.duration_since(expires).unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_secs(60), "Expires is 30 days from now: {expires:?}");

    let plain = site.get("/hello.txt", "");
    assert_eq!(plain.header("cache-control"), None, "no expires on that route");
    assert_eq!(plain.header("expires"), None);
}

#[test]
fn directories_serve_their_index_and_get_a_trailing_slash() {
    let site = Site::new();
    let index = site.get("/dir/", "");
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<h1>dir index</h1>");
    assert_eq!(index.header("content-type"), Some("text/html"));
    assert_eq!(site.get("/", "").text(), "<h1>home</h1>");
    assert_eq!(site.get("/dir/page.html", "").text(), "<p>page</p>");

    let redirect = site.get("/dir", "");
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/dir/"));
    let redirect = site.get("/dir?x=1", "");
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/dir/?x=1"));

    // Under a rewritten prefix the client is sent to its own URL plus `/`.
    let redirect = site.get("/assets/dir", "");
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/assets/dir/"));
    assert_eq!(site.get("/assets/dir/", "").text(), "<h1>dir index</h1>");

    // replace_prefix: `/alias/...` is read from `dir/`.
    assert_eq!(site.get("/alias/page.html", "").text(), "<p>page</p>");
    assert_eq!(site.get("/alias/", "").text(), "<h1>dir index</h1>");
    assert_eq!(site.get("/alias", "").header("location"), Some("/alias/"));

    let no_index = site.get("/empty-dir/", "");
    assert_eq!(no_index.status, 404);
    assert_eq!(no_index.header("x-strait-reason"), Some("file_not_found"));
}

#[test]
fn path_traversal_never_leaves_the_root() {
    let site = Site::new();
    let attempts = [
        "/../secret.txt",
        "/dir/../../secret.txt",
        "/./../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/dir/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/dir%2f..%2f..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/%252e%252e/secret.txt",
        "/hello.txt%00.png",
        "/leak.txt",
        "/leakdir/secret.txt",
        "/assets/../secret.txt",
        "/assets/%2e%2e/secret.txt",
        "//secret.txt",
    ];
    for target in attempts {
        let response = site.get(target, "");
        // 400 when path normalization refuses the target first, 403/404 from the action.
        assert!(matches!(response.status, 400 | 403 | 404), "{target}: {} {:?}", response.status, response.text());
        assert!(!response.text().contains(SECRET), "{target} leaked the file");
    }
    // The same names inside the root are served: the checks do not over-block.
    assert_eq!(site.get("/inside-link.txt", "").text(), "hello static\n");
    assert_eq!(site.get("/./hello.txt", "").text(), "hello static\n");
    assert_eq!(site.get("/%68ello.txt", "").text(), "hello static\n");
}

#[test]
fn missing_file_gets_404_file_not_found() {
    let site = Site::new();
    for target in ["/nope.txt", "/dir/nope.html", "/assets/nope.css", "/alias/nope.html", "/hello.txt/x"] {
        let response = site.get(target, "");
        assert_eq!(response.status, 404, "{target}");
        assert_eq!(response.header("x-strait-reason"), Some("file_not_found"), "{target}");
    }
}

#[test]
fn only_get_and_head_are_allowed() {
    let site = Site::new();
    let mut conn = RawConn::connect(site.addr());
    conn.send(b"HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = conn.read_response_to(true).expect("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("13"));
    assert!(head.header("etag").is_some());

    for method in ["POST", "PUT", "DELETE"] {
        conn.send(format!("{method} /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc").as_bytes());
        let refused = conn.read_response().expect("405");
        assert_eq!(refused.status, 405, "{method}");
        assert_eq!(refused.header("allow"), Some("GET, HEAD"));
        assert_eq!(refused.header("x-strait-reason"), Some("method_not_allowed"));
    }
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response().expect("GET after refusals").text(), "hello static\n");
}

#[test]
fn curl_fetches_a_static_file() {
    let site = Site::new();
    let url = format!("http://{}/assets/data.json", site.addr());
    let response = curl(&[&url]);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("cache-control"), Some("max-age=2592000"));
    assert_eq!(response.text(), "{\"a\":1}");
}
