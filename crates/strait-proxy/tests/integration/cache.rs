//! The `proxy_cache` filter end to end: hits that never reach the backend, `Vary` variants,
//! expiry and ETag revalidation, what is never stored, validity per status, LRU eviction,
//! stale answers while the backend is down or being refreshed, bypassing, and the disk store
//! (hits from files, a restart, revalidation, eviction, a reload).

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Backend, Proxy, RawConn, RawResponse, Reply};

fn proxy(backend: &Backend, cache: &str) -> Proxy {
    Proxy::start(&format!(
        "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - filters:\n          - name: proxy_cache\n            config: {cache}\n        forward: {{ cluster: app }}\nclusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
        backend.addr
    ))
}

/// A GET of `path` with extra header lines (each ending in `\r\n`).
fn get_with(proxy: &Proxy, path: &str, extra: &str) -> RawResponse {
    let request = format!("GET {path} HTTP/1.1\r\nHost: cache.test\r\n{extra}Connection: close\r\n\r\n");
    support::raw_request(proxy.addr("web"), request.as_bytes()).expect("response")
}

fn get(proxy: &Proxy, path: &str) -> RawResponse {
    get_with(proxy, path, "")
}

fn cache_status(response: &RawResponse) -> &str {
    response.header("x-cache-status").unwrap_or("(none)")
}

/// GETs `path` until its cache status is not `HIT` (the entry expired), within a bounded wait.
fn get_until_not_hit(proxy: &Proxy, path: &str) -> RawResponse {
    let deadline = Instant::now() + support::WAIT;
    loop {
        let response = get(proxy, path);
        if cache_status(&response) != "HIT" {
            return response;
        }
        assert!(Instant::now() < deadline, "{path} never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_miss_is_stored_and_the_hit_never_reaches_the_backend() {
    let backend = Backend::start(|_| Reply::text("cached body").header("cache-control", "max-age=60"));
    let proxy = proxy(&backend, "{}");
    let first = get(&proxy, "/item");
    assert_eq!((first.status, cache_status(&first), first.text().as_str()), (200, "MISS", "cached body"));
    let second = get(&proxy, "/item");
    assert_eq!((second.status, cache_status(&second), second.text().as_str()), (200, "HIT", "cached body"));
    assert_eq!(second.header("cache-control"), Some("max-age=60"));
    assert!(second.header("age").is_some_and(|age| age.parse::<u64>().is_ok()), "a hit has an Age");
    assert_eq!(backend.count(), 1, "the hit was answered by the cache");
    // Another query is another key; HEAD is answered from GET's entry.
    assert_eq!(cache_status(&get(&proxy, "/item?page=2")), "MISS");
    let mut conn = RawConn::connect(proxy.addr("web"));
    conn.send(b"HEAD /item HTTP/1.1\r\nHost: cache.test\r\nConnection: close\r\n\r\n");
    let head = conn.read_response_to(true).expect("response");
    assert_eq!((head.status, cache_status(&head), head.body.len()), (200, "HIT", 0));
    assert_eq!(backend.count(), 2);
}

#[test]
fn vary_on_accept_encoding_keeps_separate_entries() {
    let backend = Backend::start(|request| {
        let coding = request.headers.get("accept-encoding").map_or("identity", |v| v.to_str().unwrap());
        Reply::text(&format!("body for {coding}"))
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Encoding")
    });
    let proxy = proxy(&backend, "{}");
    let gzip = "Accept-Encoding: gzip\r\n";
    assert_eq!(cache_status(&get_with(&proxy, "/v", gzip)), "MISS");
    assert_eq!(cache_status(&get(&proxy, "/v")), "MISS", "another Accept-Encoding is another variant");
    let hit_gzip = get_with(&proxy, "/v", gzip);
    assert_eq!((cache_status(&hit_gzip), hit_gzip.text().as_str()), ("HIT", "body for gzip"));
    let hit_plain = get(&proxy, "/v");
    assert_eq!((cache_status(&hit_plain), hit_plain.text().as_str()), ("HIT", "body for identity"));
    assert_eq!(backend.count(), 2);
}

#[test]
fn an_entry_expires_after_its_max_age() {
    let backend = Backend::start(|_| Reply::text("short").header("cache-control", "max-age=1"));
    let proxy = proxy(&backend, "{}");
    let stored = Instant::now();
    assert_eq!(cache_status(&get(&proxy, "/short")), "MISS");
    let expired = get_until_not_hit(&proxy, "/short");
    assert!(stored.elapsed() >= Duration::from_millis(900), "expired before its max-age");
    assert_eq!((cache_status(&expired), expired.text().as_str()), ("EXPIRED", "short"));
    assert_eq!(backend.count(), 2);
    assert_eq!(cache_status(&get(&proxy, "/short")), "HIT", "the new answer is stored");
}

#[test]
fn an_expired_entry_is_revalidated_with_its_etag() {
    let backend = Backend::start(|request| {
        if request.headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
            Reply::status(304).header("etag", "\"v1\"").header("cache-control", "max-age=60")
        } else {
            Reply::text("full body").header("etag", "\"v1\"").header("cache-control", "max-age=1")
        }
    });
    let proxy = proxy(&backend, "{}");
    assert_eq!(cache_status(&get(&proxy, "/doc")), "MISS");
    let revalidated = get_until_not_hit(&proxy, "/doc");
    assert_eq!(
        (revalidated.status, cache_status(&revalidated), revalidated.text().as_str()),
        (200, "REVALIDATED", "full body")
    );
    assert_eq!(revalidated.header("cache-control"), Some("max-age=60"), "the 304's headers refresh the entry");
    let requests = backend.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].headers.get("if-none-match").unwrap(), "\"v1\"");
    let hit = get(&proxy, "/doc");
    assert_eq!((cache_status(&hit), hit.text().as_str()), ("HIT", "full body"));
    assert_eq!(backend.count(), 2, "fresh for another minute");
    // A client holding the same version gets 304 from the cache.
    let conditional = get_with(&proxy, "/doc", "If-None-Match: \"v1\"\r\n");
    assert_eq!((conditional.status, cache_status(&conditional), conditional.body.len()), (304, "HIT", 0));
    assert_eq!(conditional.header("etag"), Some("\"v1\""));
    assert_eq!(get_with(&proxy, "/doc", "If-None-Match: \"v0\"\r\n").status, 200);
    assert_eq!(backend.count(), 2);
}

#[test]
fn no_store_private_and_set_cookie_answers_are_not_stored() {
    let backend = Backend::start(|request| match request.uri.as_str() {
        "/no-store" => Reply::text("a").header("cache-control", "no-store"),
        "/private" => Reply::text("b").header("cache-control", "private, max-age=60"),
        _ => Reply::text("c").header("cache-control", "max-age=60").header("set-cookie", "session=1"),
    });
    let proxy = proxy(&backend, "{}");
    for path in ["/no-store", "/private", "/cookie"] {
        assert_eq!(cache_status(&get(&proxy, path)), "MISS");
        let again = get(&proxy, path);
        assert_eq!(cache_status(&again), "MISS", "{path} was stored");
    }
    assert_eq!(backend.count(), 6);
}

#[test]
fn a_404_is_cached_for_its_own_validity() {
    let backend = Backend::start(|request| match request.uri.as_str() {
        "/ok" => Reply::text("ok"),
        _ => Reply::status(404),
    });
    let proxy = proxy(&backend, "{ ttl: 1m, valid: [{ statuses: [404], ttl: 1s }] }");
    assert_eq!(cache_status(&get(&proxy, "/ok")), "MISS");
    let started = Instant::now();
    let missing = get(&proxy, "/missing");
    assert_eq!((missing.status, cache_status(&missing)), (404, "MISS"));
    assert_eq!(cache_status(&get(&proxy, "/missing")), "HIT");
    let expired = get_until_not_hit(&proxy, "/missing");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!((expired.status, cache_status(&expired)), (404, "EXPIRED"));
    assert_eq!(cache_status(&get(&proxy, "/ok")), "HIT", "200 keeps the one-minute ttl");
    assert_eq!(backend.count(), 3);
}

#[test]
fn the_least_recently_used_entry_is_evicted_under_max_size() {
    // Each entry is a 1000-byte body plus under 500 bytes of headers and key: two fit.
    let body = "x".repeat(1000);
    let backend = Backend::start(move |_| Reply::text(&body).header("cache-control", "max-age=60"));
    let proxy = proxy(&backend, "{ max_size: 3000 }");
    assert_eq!(cache_status(&get(&proxy, "/a")), "MISS");
    assert_eq!(cache_status(&get(&proxy, "/b")), "MISS");
    assert_eq!(cache_status(&get(&proxy, "/a")), "HIT", "/a is now the most recently used");
    assert_eq!(cache_status(&get(&proxy, "/c")), "MISS");
    assert_eq!(cache_status(&get(&proxy, "/a")), "HIT");
    assert_eq!(cache_status(&get(&proxy, "/c")), "HIT");
    assert_eq!(cache_status(&get(&proxy, "/b")), "MISS", "/b was evicted");
    assert_eq!(backend.count(), 4);
}

#[test]
fn bodies_over_max_body_pass_and_are_not_stored() {
    let backend = Backend::start(|_| Reply::text(&"y".repeat(2000)).header("cache-control", "max-age=60"));
    let proxy = proxy(&backend, "{ max_body: 1KiB }");
    for _ in 0..2 {
        let response = get(&proxy, "/big");
        assert_eq!((cache_status(&response), response.body.len()), ("MISS", 2000));
    }
    assert_eq!(backend.count(), 2);
}

#[test]
fn a_stale_entry_answers_while_the_backend_is_down() {
    let backend = Backend::start(|_| Reply::text("old body").header("cache-control", "max-age=1"));
    let proxy = proxy(&backend, "{ use_stale: [error, timeout] }");
    assert_eq!(cache_status(&get(&proxy, "/s")), "MISS");
    backend.stop();
    let stale = get_until_not_hit(&proxy, "/s");
    assert_eq!((stale.status, cache_status(&stale), stale.text().as_str()), (200, "STALE", "old body"));
    assert_eq!(stale.header("x-strait-reason"), None);
}

#[test]
fn a_stale_entry_answers_for_a_listed_upstream_status() {
    let failing = Arc::new(AtomicBool::new(false));
    let backend = {
        let failing = failing.clone();
        Backend::start(move |_| {
            if failing.load(Ordering::SeqCst) {
                Reply { status: 503, ..Reply::text("down").header("x-from", "failure") }
            } else {
                Reply::text("old body").header("cache-control", "max-age=1")
            }
        })
    };
    let proxy = proxy(&backend, "{ use_stale: [http_503] }");
    assert_eq!(cache_status(&get(&proxy, "/s")), "MISS");
    failing.store(true, Ordering::SeqCst);
    let stale = get_until_not_hit(&proxy, "/s");
    assert_eq!((stale.status, cache_status(&stale), stale.text().as_str()), (200, "STALE", "old body"));
    assert_eq!(stale.header("x-from"), None, "the failed answer's headers are not sent");
    assert_eq!(backend.count(), 2);
}

#[test]
fn without_use_stale_a_down_backend_is_an_error() {
    let backend = Backend::start(|_| Reply::text("old body").header("cache-control", "max-age=1"));
    let proxy = proxy(&backend, "{}");
    assert_eq!(cache_status(&get(&proxy, "/s")), "MISS");
    backend.stop();
    let failed = get_until_not_hit(&proxy, "/s");
    assert_eq!((failed.status, cache_status(&failed)), (502, "EXPIRED"));
}

#[test]
fn others_get_the_stale_entry_while_one_request_refreshes_it() {
    let slow = Arc::new(AtomicBool::new(false));
    let backend = {
        let slow = slow.clone();
        Backend::start(move |_| {
            if slow.load(Ordering::SeqCst) {
                Reply::text("new body").header("cache-control", "max-age=60").delayed(Duration::from_millis(1500))
            } else {
                Reply::text("old body").header("cache-control", "max-age=1")
            }
        })
    };
    let proxy = Arc::new(proxy(&backend, "{ use_stale: [updating] }"));
    assert_eq!(cache_status(&get(&proxy, "/u")), "MISS");
    slow.store(true, Ordering::SeqCst);
    // A lower bound, not a race: after it the entry is certainly expired.
    std::thread::sleep(Duration::from_millis(1200));
    let refresher = {
        let proxy = proxy.clone();
        std::thread::spawn(move || get(&proxy, "/u"))
    };
    support::wait_until("the refresh to reach the backend", || backend.count() == 2);
    let stale = get(&proxy, "/u");
    assert_eq!((cache_status(&stale), stale.text().as_str()), ("STALE", "old body"));
    let refreshed = refresher.join().unwrap();
    assert_eq!((cache_status(&refreshed), refreshed.text().as_str()), ("EXPIRED", "new body"));
    let hit = get(&proxy, "/u");
    assert_eq!((cache_status(&hit), hit.text().as_str()), ("HIT", "new body"));
    assert_eq!(backend.count(), 2);
}

#[test]
fn the_clients_no_cache_and_bypass_headers_skip_the_cache() {
    let backend = Backend::start(|_| Reply::text("v").header("cache-control", "max-age=60"));
    let proxy = proxy(&backend, "{ bypass: [x-refresh], header: X-Proxy-Cache }");
    let miss = get(&proxy, "/b");
    assert_eq!(miss.header("x-proxy-cache"), Some("MISS"));
    assert_eq!(miss.header("x-cache-status"), None, "the header name is configurable");
    let bypassed = get_with(&proxy, "/b", "Cache-Control: no-cache\r\n");
    assert_eq!(bypassed.header("x-proxy-cache"), Some("BYPASS"));
    assert_eq!(get_with(&proxy, "/b", "X-Refresh: 1\r\n").header("x-proxy-cache"), Some("BYPASS"));
    assert_eq!(backend.count(), 3, "bypassed requests reach the backend");
    assert_eq!(get(&proxy, "/b").header("x-proxy-cache"), Some("HIT"));
    assert_eq!(backend.count(), 3);
}

#[test]
fn a_write_through_the_proxy_drops_the_stored_read() {
    let version = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let seen = version.clone();
    let backend = Backend::start(move |request| {
        if request.method == "PUT" {
            seen.fetch_add(1, Ordering::SeqCst);
            return Reply::status(204);
        }
        Reply::text(&format!("v{}", seen.load(Ordering::SeqCst))).header("cache-control", "max-age=60")
    });
    let proxy = proxy(&backend, "{}");
    assert_eq!(get(&proxy, "/doc").text(), "v1");
    let hit = get(&proxy, "/doc");
    assert_eq!((cache_status(&hit), hit.text().as_str()), ("HIT", "v1"));
    let put = "PUT /doc HTTP/1.1\r\nHost: cache.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nv2";
    let written = support::raw_request(proxy.addr("web"), put.as_bytes()).expect("response");
    assert_eq!((written.status, cache_status(&written)), (204, "BYPASS"));
    let after = get(&proxy, "/doc");
    assert_eq!((cache_status(&after), after.text().as_str()), ("MISS", "v2"), "the PUT dropped the entry");
}

// === disk store ===

/// Entry files below the disk store at `dir` (temporary files of writes in progress left out).
fn disk_files(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    let mut files = std::collections::BTreeSet::new();
    let levels = |path: &std::path::Path| std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.path());
    for level1 in levels(dir) {
        for level2 in levels(&level1) {
            files.extend(levels(&level2).filter(|file| !file.to_string_lossy().ends_with(".tmp")));
        }
    }
    files
}

/// Waits until the store at `dir` holds a file that is not in `before` (a write finished).
fn wait_for_new_file(dir: &std::path::Path, before: &std::collections::BTreeSet<std::path::PathBuf>) {
    support::wait_until("a cache file to be written", || disk_files(dir).difference(before).next().is_some());
}

/// A cache without a memory tier, so every hit is read from the disk.
fn disk_cache(dir: &std::path::Path, disk_size: &str) -> String {
    format!("{{ max_size: 0, disk: {{ path: \"{}\", max_size: {disk_size} }} }}", dir.display())
}

#[test]
fn a_disk_store_serves_hits_from_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(|_| Reply::text("from disk").header("cache-control", "max-age=60"));
    let proxy = proxy(&backend, &disk_cache(dir.path(), "10MiB"));
    let miss = get(&proxy, "/item");
    assert_eq!((cache_status(&miss), miss.text().as_str()), ("MISS", "from disk"));
    wait_for_new_file(dir.path(), &Default::default());
    let hit = get(&proxy, "/item");
    assert_eq!((hit.status, cache_status(&hit), hit.text().as_str()), (200, "HIT", "from disk"));
    assert_eq!(hit.header("cache-control"), Some("max-age=60"));
    assert_eq!(backend.count(), 1);
    let files = disk_files(dir.path());
    assert_eq!(files.len(), 1, "one entry, one file");
    let relative = files.first().unwrap().strip_prefix(dir.path()).unwrap();
    assert_eq!(relative.components().count(), 3, "two fan-out levels: {relative:?}");
}

#[test]
fn a_restarted_proxy_serves_what_the_disk_store_holds_and_revalidates_it() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(|request| {
        if request.headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
            Reply::status(304).header("etag", "\"v1\"").header("cache-control", "max-age=60")
        } else if request.uri == "/doc" {
            Reply::text("full body").header("etag", "\"v1\"").header("cache-control", "max-age=2")
        } else {
            Reply::text("kept").header("cache-control", "max-age=60")
        }
    });
    let config = disk_cache(dir.path(), "10MiB");
    let first = proxy(&backend, &config);
    assert_eq!(cache_status(&get(&first, "/kept")), "MISS");
    let before = disk_files(dir.path());
    wait_for_new_file(dir.path(), &Default::default());
    assert_eq!(cache_status(&get(&first, "/doc")), "MISS");
    wait_for_new_file(dir.path(), &before);
    first.stop();

    let second = proxy(&backend, &config);
    let hit = get(&second, "/kept");
    assert_eq!((hit.status, cache_status(&hit), hit.text().as_str()), (200, "HIT", "kept"));
    assert_eq!(backend.count(), 2, "the restarted proxy did not ask the backend");
    // Once `/doc` expires, the backend confirms it with a 304 and the body comes from the disk.
    let revalidated = get_until_not_hit(&second, "/doc");
    assert_eq!(
        (revalidated.status, cache_status(&revalidated), revalidated.text().as_str()),
        (200, "REVALIDATED", "full body")
    );
    assert_eq!(revalidated.header("cache-control"), Some("max-age=60"));
    let requests = backend.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[2].headers.get("if-none-match").unwrap(), "\"v1\"");
    // The refreshed entry is written back: fresh for a minute from then on.
    support::wait_until("the refreshed entry to be served", || cache_status(&get(&second, "/doc")) == "HIT");
    let hit = get(&second, "/doc");
    assert_eq!((cache_status(&hit), hit.text().as_str()), ("HIT", "full body"));
    assert!(backend.requests().iter().skip(2).all(|r| r.headers.get("if-none-match").is_some()), "only 304s since");
}

#[test]
fn the_disk_store_evicts_the_least_recently_used_entry_under_its_size() {
    // Each file is a 1000-byte body plus under 500 bytes of head, key and headers: two fit.
    let dir = tempfile::tempdir().unwrap();
    let body = "z".repeat(1000);
    let backend = Backend::start(move |_| Reply::text(&body).header("cache-control", "max-age=60"));
    let proxy = proxy(&backend, &disk_cache(dir.path(), "3000"));
    let mut before = disk_files(dir.path());
    for path in ["/a", "/b"] {
        assert_eq!(cache_status(&get(&proxy, path)), "MISS");
        wait_for_new_file(dir.path(), &before);
        before = disk_files(dir.path());
    }
    assert_eq!(cache_status(&get(&proxy, "/a")), "HIT", "/a is now the most recently used");
    assert_eq!(cache_status(&get(&proxy, "/c")), "MISS");
    wait_for_new_file(dir.path(), &before);
    support::wait_until("the evicted file to be deleted", || disk_files(dir.path()).len() == 2);
    assert_eq!(cache_status(&get(&proxy, "/a")), "HIT");
    assert_eq!(cache_status(&get(&proxy, "/c")), "HIT");
    let before = disk_files(dir.path());
    assert_eq!(cache_status(&get(&proxy, "/b")), "MISS", "/b was evicted");
    assert_eq!(backend.count(), 4);
    // Storing /b again evicts another entry: the sizes are read once both are done.
    wait_for_new_file(dir.path(), &before);
    support::wait_until("the next evicted file to be deleted", || disk_files(dir.path()).len() == 2);
    let used: u64 = disk_files(dir.path()).iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert!(used <= 3000, "{used} bytes on disk");
}

#[test]
fn a_reload_keeps_the_disk_store() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(|_| Reply::text("before the reload").header("cache-control", "max-age=60"));
    let yaml = |header: &str| {
        format!(
            "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - filters:\n          - name: proxy_cache\n            config: {{ max_size: 0, header: {header}, disk: {{ path: \"{}\", max_size: 1MiB }} }}\n        forward: {{ cluster: app }}\nclusters:\n  - name: app\n    endpoints: [{{ address: \"{}\" }}]\n",
            dir.path().display(),
            backend.addr
        )
    };
    let proxy = Proxy::start(&yaml("X-Cache-Status"));
    assert_eq!(cache_status(&get(&proxy, "/r")), "MISS");
    wait_for_new_file(dir.path(), &Default::default());
    proxy.reload(&yaml("X-Disk-Cache")).unwrap();
    let hit = get(&proxy, "/r");
    assert_eq!((hit.header("x-disk-cache"), hit.text().as_str()), (Some("HIT"), "before the reload"));
    assert_eq!(backend.count(), 1);
}

#[test]
fn a_chunked_body_past_max_object_size_passes_whole_and_uncached() {
    let backend = Backend::start(|_| {
        Reply { body: support::ReplyBody::Generated(300_000), ..Reply::text("") }.header("cache-control", "max-age=60")
    });
    let proxy = proxy(&backend, "{ max_object_size: 128KiB }");
    for _ in 0..2 {
        let response = get(&proxy, "/big");
        assert_eq!((cache_status(&response), response.body.len()), ("MISS", 300_000));
        assert!(response.body.iter().enumerate().all(|(i, b)| *b == support::pattern_byte(i as u64)));
    }
    assert_eq!(backend.count(), 2);
}

// === forward proxy ===

#[test]
fn a_forward_proxy_serves_cache_hits_to_curl() {
    let dir = tempfile::tempdir().unwrap();
    let origin =
        Backend::start(|r| Reply::text(&format!("origin page {}", r.uri)).header("cache-control", "max-age=60"));
    let other = Backend::start(|_| Reply::text("other origin").header("cache-control", "max-age=60"));
    let log = dir.path().join("access.log");
    let proxy = Proxy::start(&format!(
        "access_log: {{ path: \"{}\", format: squid }}\nlisteners:\n  - name: proxy\n    bind: 127.0.0.1:0\n    routes:\n      - filters:\n          - name: proxy_cache\n            config: {{ disk: {{ path: \"{}\", max_size: 1MiB }} }}\n        forward_proxy:\n          ssrf_guard: {{ allow: [\"{}\", \"{}\"] }}\n",
        log.display(),
        dir.path().join("cache").display(),
        origin.addr,
        other.addr
    ));
    let via = format!("http://{}", proxy.addr("proxy"));
    let url = format!("http://{}/page?x=1", origin.addr);
    let miss = support::curl(&["-x", &via, &url]);
    assert_eq!((miss.status, cache_status(&miss), miss.text().as_str()), (200, "MISS", "origin page /page?x=1"));
    let hit = support::curl(&["-x", &via, &url]);
    assert_eq!((hit.status, cache_status(&hit), hit.text().as_str()), (200, "HIT", "origin page /page?x=1"));
    assert!(hit.header("age").is_some());
    assert_eq!(origin.count(), 1, "the hit never reached the origin");
    // The same path on another origin is another entry.
    let elsewhere = support::curl(&["-x", &via, &format!("http://{}/page?x=1", other.addr)]);
    assert_eq!((cache_status(&elsewhere), elsewhere.text().as_str()), ("MISS", "other origin"));
    assert_eq!(other.count(), 1);
    // Squid's access log tells the hit from the misses.
    support::wait_until("the access log has the three requests", || {
        std::fs::read_to_string(&log).unwrap_or_default().lines().count() == 3
    });
    let text = std::fs::read_to_string(&log).unwrap();
    // (Workers hand their lines over on their own, so the order is not the requests'.)
    let mut codes: Vec<&str> = text.lines().filter_map(|line| line.split_whitespace().nth(3)).collect();
    codes.sort();
    assert_eq!(codes, ["TCP_HIT/200", "TCP_MISS/200", "TCP_MISS/200"], "{text}");
}
