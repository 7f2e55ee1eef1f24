//! End-to-end behaviour of the access log writer.

use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use strait_config::{AccessLogFormat, AccessLogSettings};
use strait_observe::{AccessLog, LogRecord};

fn record(target: &str) -> LogRecord<'_> {
    LogRecord {
        client_addr: "127.0.0.1:40000".parse().unwrap(),
        time: SystemTime::now(),
        method: "GET",
        target,
        version: "HTTP/1.1",
        status: 200,
        bytes_sent: 5,
        referer: None,
        user_agent: Some("test"),
        host: Some("localhost"),
        route: Some("r"),
        cluster: Some("c"),
        upstream_addr: Some("127.0.0.1:8080".parse().unwrap()),
        upstream_time: Some(Duration::from_millis(3)),
        total_time: Duration::from_millis(4),
        reason: None,
        request_id: None,
        scheme: "http",
        user: None,
        cache_status: None,
        via_parent: false,
        content_type: None,
    }
}

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strait-observe-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn settings(path: &str, format: AccessLogFormat) -> AccessLogSettings {
    AccessLogSettings { path: path.into(), format }
}

#[test]
fn off_is_disabled() {
    let log = AccessLog::open(&settings("off", AccessLogFormat::Combined)).unwrap();
    assert!(!log.is_enabled());
    log.log(&record("/"));
    log.reopen();
    log.flush();
    assert_eq!(log.dropped(), 0);
    assert!(!AccessLog::disabled().is_enabled());
    assert!(!log.records_content_type());
    assert_eq!(log.format(), None);
}

#[test]
fn file_flush_and_reopen_after_rename() {
    let dir = scratch("reopen");
    let path = dir.join("access.log");
    let log = AccessLog::open(&settings(path.to_str().unwrap(), AccessLogFormat::Combined)).unwrap();
    assert!(log.is_enabled());
    assert!(path.exists(), "file is created on open");

    log.log(&record("/before"));
    log.flush();
    let rotated = dir.join("access.log.1");
    fs::rename(&path, &rotated).unwrap();
    log.reopen();
    log.clone().log(&record("/after"));
    log.flush();

    let old = fs::read_to_string(&rotated).unwrap();
    let new = fs::read_to_string(&path).unwrap();
    assert_eq!(old.lines().count(), 1, "{old}");
    assert!(old.contains("\"GET /before HTTP/1.1\""), "{old}");
    assert_eq!(new.lines().count(), 1, "{new}");
    assert!(new.contains("\"GET /after HTTP/1.1\""), "{new}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn appends_to_existing_file() {
    let dir = scratch("append");
    let path = dir.join("access.log");
    fs::write(&path, "existing\n").unwrap();
    let log = AccessLog::open(&settings(path.to_str().unwrap(), AccessLogFormat::Json)).unwrap();
    log.log(&record("/j"));
    log.flush();
    let text = fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("existing"));
    let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(v["target"], "/j");
    assert_eq!(lines.next(), None);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn flushes_without_being_asked() {
    let dir = scratch("timer");
    let path = dir.join("access.log");
    let log = AccessLog::open(&settings(path.to_str().unwrap(), AccessLogFormat::Combined)).unwrap();
    log.log(&record("/timer"));
    let start = Instant::now();
    while fs::read_to_string(&path).unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(2), "line never reached the file");
        thread::sleep(Duration::from_millis(5));
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_lines_stay_whole() {
    let dir = scratch("threads");
    let path = dir.join("access.log");
    let log = AccessLog::open(&settings(path.to_str().unwrap(), AccessLogFormat::Json)).unwrap();
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            thread::spawn(move || {
                for i in 0..500 {
                    let target = format!("/t{t}/{i}");
                    log.log(&record(&target));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    log.flush();
    let text = fs::read_to_string(&path).unwrap();
    let written = text.lines().count() as u64;
    assert_eq!(written + log.dropped(), 8 * 500);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["target"].as_str().unwrap().starts_with("/t"));
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn missing_directory_is_an_error() {
    let dir = scratch("missing");
    let path = dir.join("no/such/dir/access.log");
    assert!(AccessLog::open(&settings(path.to_str().unwrap(), AccessLogFormat::Combined)).is_err());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn only_the_squid_format_records_the_content_type() {
    let dir = scratch("content-type");
    for (format, records) in
        [(AccessLogFormat::Combined, false), (AccessLogFormat::Json, false), (AccessLogFormat::Squid, true)]
    {
        let path = dir.join("access.log");
        let log = AccessLog::open(&settings(path.to_str().unwrap(), format)).unwrap();
        assert_eq!(log.records_content_type(), records, "{format:?}");
        assert_eq!(log.format(), Some(format));
    }
}

#[test]
fn squid_lines_in_a_file() {
    let dir = scratch("squid");
    let path = dir.join("access.log");
    let log = AccessLog::open(&settings(path.to_str().unwrap(), AccessLogFormat::Squid)).unwrap();
    log.log(&LogRecord { content_type: Some("text/html; charset=utf-8"), user: Some("alice"), ..record("/x") });
    log.flush();
    let text = fs::read_to_string(&path).unwrap();
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        fields[2..],
        ["127.0.0.1", "TCP_MISS/200", "5", "GET", "http://localhost/x", "alice", "HIER_DIRECT/127.0.0.1", "text/html"],
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);
}
