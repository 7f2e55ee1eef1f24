//! The disk store (Squid `cache_dir ufs DIR MB 16 256`): one file per stored variant, named by
//! a hash of its key under a two-level fan-out (`DIR/0A/3F/<hash>`), bounded in bytes with the
//! least recently used key evicted first, and shared by every worker and across reloads.
//!
//! Files are written to a temporary name and renamed into place, so a reader never finds half
//! an entry; a file whose length or checksum is wrong (a crash, a full disk, a hand edit) is
//! deleted when it is found and never served. Opening the store reads the head of every file
//! to rebuild the index, the size in use and the LRU order (from the files' modification
//! times, which reads and writes move forward).

mod format;
mod scan;

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::HeaderMap;
use sha2::{Digest, Sha256};

use super::key::VaryKey;
use super::store::{Entry, Lru};
use format::Meta;

/// Number of first-level directories (Squid's default `16`).
const LEVEL1: u8 = 16;
/// How stale a file's modification time may get before a read moves it to now (the LRU
/// order a restart rebuilds is this coarse; a write per hit would cost more).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The name of one variant's file: a hash of its primary key and `Vary` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId([u8; 16]);

impl FileId {
    /// The id of the variant of `key` with `vary`.
    pub fn of(key: &str, vary: &VaryKey) -> FileId {
        let mut hasher = Sha256::new();
        hasher.update(key.as_bytes());
        for (name, values) in vary.fields() {
            hasher.update([0]);
            hasher.update(name.as_str().as_bytes());
            for value in values {
                hasher.update([1]);
                hasher.update(value.as_bytes());
            }
        }
        let digest = hasher.finalize();
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        FileId(id)
    }

    /// Its file name: 32 hexadecimal digits.
    fn name(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The id a file name spells, if it is one.
    fn parse(name: &str) -> Option<FileId> {
        if name.len() != 32 {
            return None;
        }
        let mut id = [0; 16];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(name.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(FileId(id))
    }

    /// Its directory below the root: `0A/3F`.
    fn dir(&self) -> PathBuf {
        PathBuf::from(format!("{:02X}", self.0[0] % LEVEL1)).join(format!("{:02X}", self.0[1]))
    }
}

/// One stored variant as the index knows it.
#[derive(Debug, Clone)]
pub struct Variant {
    vary: VaryKey,
    id: FileId,
    size: u64,
}

/// Stored variants of one primary key.
type Variants = Vec<Variant>;

/// A disk store: its directory, its index and the bytes in use.
#[derive(Debug)]
pub struct DiskStore {
    root: PathBuf,
    max_size: u64,
    index: Mutex<Lru<Variants>>,
    /// Makes temporary file names unique within the process.
    writes: AtomicU64,
}

/// Stores open in this process, by directory, with their size bound: a reload that keeps both
/// gets the same store.
static OPEN: Mutex<Vec<(PathBuf, u64, Weak<DiskStore>)>> = Mutex::new(Vec::new());

impl DiskStore {
    /// The store at `path` bounded by `max_size` bytes: the one already open in this process
    /// with the same directory and bound, or a new one read from the directory (made if missing).
    pub fn shared(path: &Path, max_size: u64) -> io::Result<Arc<DiskStore>> {
        fs::create_dir_all(path)?;
        let root = path.canonicalize()?;
        let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|(_, _, store)| store.strong_count() > 0);
        let same = open.iter().find(|(dir, size, _)| *dir == root && *size == max_size);
        if let Some(store) = same.and_then(|(_, _, store)| store.upgrade()) {
            return Ok(store);
        }
        let store = Arc::new(DiskStore::open(root.clone(), max_size)?);
        open.push((root, max_size, Arc::downgrade(&store)));
        Ok(store)
    }

    /// Opens the store at `root` (an existing directory): deletes temporary and damaged files,
    /// rebuilds the index oldest first, and evicts what is over `max_size`.
    pub fn open(root: PathBuf, max_size: u64) -> io::Result<DiskStore> {
        let found = scan::entries(&root)?;
        let store = DiskStore {
            root,
            max_size,
            index: Mutex::new(Lru::new(usize::try_from(max_size).unwrap_or(usize::MAX))),
            writes: AtomicU64::new(0),
        };
        let mut evicted = Vec::new();
        let files = found.len();
        {
            let mut index = store.lock();
            for found in found {
                let variant = Variant { vary: found.vary, id: found.id, size: found.size };
                evicted.extend(insert_variant(&mut index, &found.key, variant));
            }
        }
        let evicted_files = evicted.len();
        store.delete(evicted);
        tracing::info!(
            path = %store.root.display(),
            files = files - evicted_files,
            bytes = store.used(),
            evicted = evicted_files,
            "proxy_cache: disk store opened"
        );
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Lru<Variants>> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The file of the variant of `key` that `request` matches, if one is stored; the key is
    /// now the most recently used.
    pub fn find(&self, key: &str, request: &HeaderMap) -> Option<FileId> {
        let mut index = self.lock();
        index.get(key)?.iter().find(|variant| variant.vary.matches(request)).map(|variant| variant.id)
    }

    /// Marks `key` as just used (a hit served from the memory tier in front).
    pub fn touch(&self, key: &str) {
        self.lock().get(key);
    }

    /// Reads the entry of `key` in file `id` (blocking). A missing, damaged or foreign file is
    /// dropped from the index (and deleted) and reads as `None`.
    pub fn read(&self, key: &str, id: FileId) -> Option<Entry> {
        let path = self.path(id);
        match read_file(&path) {
            Ok(Some((meta, body))) if meta.key == key && FileId::of(key, &meta.vary) == id => {
                return Some(entry_of(meta, body));
            }
            Ok(_) => tracing::warn!(path = %path.display(), "proxy_cache: dropping a damaged cache file"),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(path = %path.display(), %error, "proxy_cache: cannot read a cache file"),
        }
        self.forget(key, id);
        let _ = fs::remove_file(&path);
        None
    }

    /// Writes `entry` as the variant of `key` (blocking): a temporary file renamed into place,
    /// then the index, evicting the least recently used keys past the bound.
    pub fn write(&self, key: &str, entry: &Entry) {
        let id = FileId::of(key, &entry.vary);
        let file = format::encode(&meta_of(key, entry), &entry.body);
        let size = file.len() as u64;
        let path = self.path(id);
        if size > self.max_size {
            // Larger than the whole store: not kept, and an older version goes too.
            self.forget(key, id);
            let _ = fs::remove_file(&path);
            return;
        }
        if let Err(error) = self.write_file(&path, &file) {
            tracing::warn!(path = %path.display(), %error, "proxy_cache: cannot write a cache file");
            return;
        }
        let evicted = insert_variant(&mut self.lock(), key, Variant { vary: entry.vary.clone(), id, size });
        self.delete(evicted);
    }

    /// Drops the keys for which `doomed` holds from the index; returns their files, for
    /// [`DiskStore::delete`] off the worker thread.
    pub fn remove_where(&self, doomed: impl Fn(&str) -> bool) -> Vec<Variant> {
        self.lock().remove_where(doomed).into_iter().flatten().collect()
    }

    /// Drops `key` from the index; returns its files, for [`DiskStore::delete`].
    pub fn remove(&self, key: &str) -> Vec<Variant> {
        self.lock().remove(key).unwrap_or_default()
    }

    /// Deletes the files of `variants` (blocking).
    pub fn delete(&self, variants: Vec<Variant>) {
        for variant in variants {
            let _ = fs::remove_file(self.path(variant.id));
        }
    }

    /// Bytes of the files the index holds.
    pub fn used(&self) -> u64 {
        self.lock().used() as u64
    }

    /// The path of file `id`.
    fn path(&self, id: FileId) -> PathBuf {
        self.root.join(id.dir()).join(id.name())
    }

    /// Writes `bytes` at `path` through a temporary file in the same directory.
    fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let dir = path.parent().expect("cache files are below the root");
        fs::create_dir_all(dir)?;
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        let temporary = dir.join(format!("{}.{}.{n}{}", id_name(path), std::process::id(), scan::TEMPORARY));
        let result = fs::File::create(&temporary).and_then(|mut file| file.write_all(bytes));
        let result = result.and_then(|()| fs::rename(&temporary, path));
        if result.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        result
    }

    /// Drops the variant in file `id` of `key` from the index.
    fn forget(&self, key: &str, id: FileId) {
        let mut index = self.lock();
        let Some(mut variants) = index.remove(key) else { return };
        variants.retain(|variant| variant.id != id);
        if !variants.is_empty() {
            let size = variants_size(&variants);
            index.insert(Arc::from(key), variants, size);
        }
    }
}

/// Puts `variant` under `key` in `index` (in place of the one with the same `Vary` values, which
/// had the same file); returns the variants evicted to make room.
fn insert_variant(index: &mut Lru<Variants>, key: &str, variant: Variant) -> Vec<Variant> {
    let mut variants = index.remove(key).unwrap_or_default();
    variants.retain(|old| old.id != variant.id);
    variants.push(variant);
    let size = variants_size(&variants);
    index.insert(Arc::from(key), variants, size).into_iter().flatten().collect()
}

fn variants_size(variants: &[Variant]) -> usize {
    variants.iter().map(|variant| usize::try_from(variant.size).unwrap_or(usize::MAX)).sum()
}

/// The file name part of `path`.
fn id_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A whole entry file, and its modification time moved to now when it is old.
fn read_file(path: &Path) -> io::Result<Option<(Meta, Bytes)>> {
    let mut file = fs::File::open(path)?;
    let metadata = file.metadata()?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    let decoded = format::decode(Bytes::from(bytes));
    let now = SystemTime::now();
    let old = metadata.modified().ok().and_then(|m| now.duration_since(m).ok()).is_some_and(|age| age > TOUCH_EVERY);
    if decoded.is_some() && old {
        let _ = file.set_modified(now);
    }
    Ok(decoded)
}

/// What a file holds for `entry` of `key`.
fn meta_of(key: &str, entry: &Entry) -> Meta {
    let since = Instant::now().saturating_duration_since(entry.stored_at);
    Meta {
        key: key.to_owned(),
        status: entry.status,
        stored: SystemTime::now().checked_sub(since).unwrap_or(SystemTime::UNIX_EPOCH),
        initial_age: entry.initial_age,
        fresh_for: entry.fresh_for,
        revalidate: entry.revalidate,
        no_stale: entry.no_stale,
        vary: entry.vary.clone(),
        headers: entry.headers.clone(),
    }
}

/// The entry a file read back holds; the time since it was stored counts in its age (the
/// monotonic clock of an earlier run cannot be compared with this one's).
fn entry_of(meta: Meta, body: Bytes) -> Entry {
    let since = SystemTime::now().duration_since(meta.stored).unwrap_or(Duration::ZERO);
    Entry {
        status: meta.status,
        headers: meta.headers,
        body,
        vary: meta.vary,
        stored_at: Instant::now(),
        initial_age: meta.initial_age + since,
        fresh_for: meta.fresh_for,
        revalidate: meta.revalidate,
        no_stale: meta.no_stale,
    }
}

/// Runs blocking disk work on the runtime's blocking pool, or here when there is no runtime.
pub fn in_background(work: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(work)),
        Err(_) => work(),
    }
}

#[cfg(test)]
mod tests;
