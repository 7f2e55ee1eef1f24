//! The disk store on a real directory: round trips, the size bound, a restart, damaged files.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue};
use http::StatusCode;

use super::super::key::VaryKey;
use super::super::store::Entry;
use super::{DiskStore, FileId};

fn entry(body: &str) -> Entry {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    Entry {
        status: StatusCode::OK,
        headers,
        body: Bytes::copy_from_slice(body.as_bytes()),
        vary: VaryKey::default(),
        stored_at: Instant::now(),
        initial_age: Duration::ZERO,
        fresh_for: Duration::from_secs(60),
        revalidate: false,
        no_stale: false,
    }
}

fn open(dir: &Path, max_size: u64) -> DiskStore {
    DiskStore::open(dir.to_path_buf(), max_size).expect("open")
}

/// Reads `key` the way the filter does: the index, then the file.
fn read(store: &DiskStore, key: &str) -> Option<Entry> {
    let id = store.find(key, &HeaderMap::new())?;
    store.read(key, id)
}

/// Every file below `dir` (the entries, at the fan-out's depth).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for level1 in fs::read_dir(dir).unwrap() {
        for level2 in fs::read_dir(level1.unwrap().path()).unwrap() {
            for file in fs::read_dir(level2.unwrap().path()).unwrap() {
                found.push(file.unwrap().path());
            }
        }
    }
    found
}

fn path_of(store: &DiskStore, key: &str) -> PathBuf {
    store.path(FileId::of(key, &VaryKey::default()))
}

#[test]
fn an_entry_is_written_under_the_fan_out_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    store.write("GET a.test/x", &entry("hello"));
    let stored = read(&store, "GET a.test/x").expect("stored");
    assert_eq!(
        (stored.status, &stored.body[..], stored.headers["content-type"].as_bytes()),
        (StatusCode::OK, &b"hello"[..], &b"text/plain"[..])
    );
    let files = files(dir.path());
    assert_eq!(files.len(), 1);
    let relative = files[0].strip_prefix(dir.path()).unwrap();
    let parts: Vec<_> = relative.iter().map(|p| p.to_str().unwrap().to_owned()).collect();
    assert_eq!(parts.len(), 3, "{relative:?}");
    assert!(u8::from_str_radix(&parts[0], 16).unwrap() < 16 && parts[1].len() == 2 && parts[2].len() == 32);
    assert_eq!(store.used(), fs::metadata(&files[0]).unwrap().len());
    assert!(read(&store, "GET a.test/y").is_none());
}

#[test]
fn the_least_recently_used_key_is_evicted_and_its_file_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let body = "x".repeat(1000);
    let size = {
        let probe = tempfile::tempdir().unwrap();
        let store = open(probe.path(), 1 << 20);
        store.write("GET a.test/a", &entry(&body));
        store.used()
    };
    let store = open(dir.path(), size * 2 + size / 2);
    store.write("GET a.test/a", &entry(&body));
    store.write("GET a.test/b", &entry(&body));
    assert!(read(&store, "GET a.test/a").is_some(), "a is now the most recently used");
    store.write("GET a.test/c", &entry(&body));
    assert!(read(&store, "GET a.test/b").is_none(), "b was evicted");
    assert!(!path_of(&store, "GET a.test/b").exists(), "its file is gone");
    assert!(read(&store, "GET a.test/a").is_some() && read(&store, "GET a.test/c").is_some());
    assert_eq!(store.used(), size * 2);
    assert_eq!(files(dir.path()).len(), 2);
}

#[test]
fn a_new_version_larger_than_the_store_drops_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 600);
    store.write("GET a.test/grows", &entry("small"));
    assert!(read(&store, "GET a.test/grows").is_some());
    store.write("GET a.test/grows", &entry(&"x".repeat(1000)));
    assert!(read(&store, "GET a.test/grows").is_none(), "the old version is not served");
    assert_eq!((store.used(), files(dir.path()).len()), (0, 0));
}

#[test]
fn a_restart_rebuilds_the_index_the_size_and_the_lru_order() {
    let dir = tempfile::tempdir().unwrap();
    let body = "y".repeat(1000);
    let size;
    {
        let store = open(dir.path(), 1 << 20);
        for key in ["GET a.test/old", "GET a.test/new"] {
            store.write(key, &entry(&body));
        }
        size = store.used() / 2;
        // The first file was used long ago, the second just now.
        let old = fs::File::options().write(true).open(path_of(&store, "GET a.test/old")).unwrap();
        old.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
    }
    let store = open(dir.path(), 1 << 20);
    assert_eq!(store.used(), size * 2, "the size in use is counted from the files");
    let read_back = read(&store, "GET a.test/new").expect("served after the restart");
    assert_eq!(&read_back.body[..], body.as_bytes());
    assert!(read_back.age(Instant::now()) < Duration::from_secs(5));
    drop(store);
    // Reopened with room for one entry: the one used longest ago goes.
    let store = open(dir.path(), size + size / 2);
    assert!(read(&store, "GET a.test/old").is_none());
    assert!(read(&store, "GET a.test/new").is_some());
    assert_eq!(files(dir.path()).len(), 1);
}

#[test]
fn the_age_of_an_entry_counts_the_time_it_spent_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    let mut stored = entry("aged");
    stored.stored_at = Instant::now() - Duration::from_secs(30);
    stored.initial_age = Duration::from_secs(5);
    store.write("GET a.test/aged", &stored);
    drop(store);
    let store = open(dir.path(), 1 << 20);
    let age = read(&store, "GET a.test/aged").unwrap().age(Instant::now());
    assert!(age >= Duration::from_secs(35) && age < Duration::from_secs(40), "{age:?}");
}

#[test]
fn damaged_and_temporary_files_are_dropped_and_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    for key in ["GET a.test/truncated", "GET a.test/flipped", "GET a.test/whole"] {
        store.write(key, &entry("some body bytes"));
    }
    let truncated = path_of(&store, "GET a.test/truncated");
    let flipped = path_of(&store, "GET a.test/flipped");
    let bytes = fs::read(&truncated).unwrap();
    fs::write(&truncated, &bytes[..bytes.len() - 3]).unwrap();
    // A flipped body byte keeps the length: only the checksum tells, when the file is read.
    let mut bytes = fs::read(&flipped).unwrap();
    let at = bytes.len() - 8;
    bytes[at] ^= 1;
    fs::write(&flipped, &bytes).unwrap();
    let leftover = truncated.with_file_name("0123.tmp");
    fs::write(&leftover, b"half an entry").unwrap();
    let foreign = dir.path().join("README");
    fs::write(&foreign, b"not the store's").unwrap();
    // In the running store, the damaged file is found when read, and dropped.
    assert!(read(&store, "GET a.test/flipped").is_none());
    assert!(!flipped.exists());
    assert!(read(&store, "GET a.test/flipped").is_none(), "and forgotten");
    drop(store);

    let store = open(dir.path(), 1 << 20);
    assert!(!truncated.exists() && !leftover.exists(), "the scan deleted the truncated and temporary files");
    assert!(foreign.exists(), "files that are not entries are left alone");
    assert!(read(&store, "GET a.test/truncated").is_none());
    assert!(read(&store, "GET a.test/whole").is_some());
    assert_eq!(store.used(), fs::metadata(path_of(&store, "GET a.test/whole")).unwrap().len());
}

#[test]
fn variants_of_one_key_are_files_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1 << 20);
    let mut response = HeaderMap::new();
    response.insert(http::header::VARY, HeaderValue::from_static("accept-encoding"));
    let mut gzip = HeaderMap::new();
    gzip.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    let plain = HeaderMap::new();
    for (request, body) in [(&gzip, "zipped"), (&plain, "plain")] {
        let mut variant = entry(body);
        variant.vary = VaryKey::capture(&response, request).unwrap();
        store.write("GET a.test/v", &variant);
    }
    assert_eq!(files(dir.path()).len(), 2);
    for (request, body) in [(&gzip, "zipped"), (&plain, "plain")] {
        let id = store.find("GET a.test/v", request).unwrap();
        assert_eq!(&store.read("GET a.test/v", id).unwrap().body[..], body.as_bytes());
    }
    assert!(!store.remove("GET a.test/v").is_empty());
    assert!(store.find("GET a.test/v", &gzip).is_none());
}

#[test]
fn one_directory_and_bound_is_one_store_in_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let first = DiskStore::shared(dir.path(), 1 << 20).unwrap();
    let again = DiskStore::shared(&dir.path().join("."), 1 << 20).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &again), "a reload keeps the store");
    let resized = DiskStore::shared(dir.path(), 2 << 20).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&first, &resized), "another bound is another store");
}
