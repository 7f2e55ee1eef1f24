//! Reading a store's directory when it opens: the head of every entry file (its key, `Vary`
//! values and length), oldest first; temporary files of interrupted writes and damaged files
//! are deleted. Files that are not the store's are left alone.

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::time::SystemTime;

use super::super::key::VaryKey;
use super::format::{self, Head, HEAD_LEN};
use super::FileId;

/// How the names of temporary files end.
pub const TEMPORARY: &str = ".tmp";

/// One entry file found on disk.
#[derive(Debug)]
pub struct Found {
    /// Its primary key.
    pub key: String,
    /// Its `Vary` values.
    pub vary: VaryKey,
    /// Its file.
    pub id: FileId,
    /// Its length in bytes.
    pub size: u64,
    /// Its modification time: when it was last written or read.
    pub used: SystemTime,
}

/// Every valid entry file below `root`, least recently used first.
pub fn entries(root: &Path) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    for level1 in fs::read_dir(root)? {
        let level1 = level1?.path();
        if !is_level_dir(&level1) {
            continue;
        }
        for level2 in fs::read_dir(&level1)? {
            let level2 = level2?.path();
            if !is_level_dir(&level2) {
                continue;
            }
            for file in fs::read_dir(&level2)? {
                let path = file?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
                if name.ends_with(TEMPORARY) {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                let Some(id) = FileId::parse(&name) else { continue };
                match read_head(&path, id) {
                    Some(entry) => found.push(entry),
                    None => {
                        tracing::warn!(path = %path.display(), "proxy_cache: deleting a damaged cache file");
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
    }
    found.sort_by_key(|entry| entry.used);
    Ok(found)
}

/// Whether `path` is a directory named like a fan-out level (two hexadecimal digits).
fn is_level_dir(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()) && path.is_dir()
}

/// The head of the entry file at `path`, when it is whole (its length is the one its head
/// declares) and is where its key puts it. The checksum is checked when it is read to serve.
fn read_head(path: &Path, id: FileId) -> Option<Found> {
    let mut file = fs::File::open(path).ok()?;
    let metadata = file.metadata().ok()?;
    let mut head = [0; HEAD_LEN];
    file.read_exact(&mut head).ok()?;
    let head = Head::parse(&head)?;
    if head.file_len() != metadata.len() {
        return None;
    }
    let mut meta = vec![0; head.meta_len];
    file.read_exact(&mut meta).ok()?;
    let meta = format::decode_meta(&meta)?;
    if FileId::of(&meta.key, &meta.vary) != id {
        return None;
    }
    let used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    Some(Found { key: meta.key, vary: meta.vary, id, size: metadata.len(), used })
}
