//! Static files from a directory: content type, ETag, Last-Modified, conditional requests,
//! single byte ranges, cache lifetime, and no way out of the root.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::filter::{HttpFilter, LocalResponse, RequestCtx};
use crate::h1::encode::{write_response_head, OutFraming};
use crate::h1::RequestHead;
use crate::reason::Reason;
use crate::server::conn::ClientConn;
use crate::server::exchange::run_response_filters;
use crate::snapshot::StaticPlan;

/// Time allowed for the client to accept each piece of a file.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes read from a file at a time.
const FILE_CHUNK: usize = 64 * 1024;

/// What to send for a static-file request.
pub enum Answer {
    /// A small answer built in memory (errors, 304, redirects to the directory).
    Local(LocalResponse),
    /// A file (or part of it) to stream.
    File(FileAnswer),
}

/// A file to stream and the head to send before it.
pub struct FileAnswer {
    status: StatusCode,
    headers: HeaderMap,
    file: tokio::fs::File,
    offset: u64,
    len: u64,
}

/// Resolves a request to a file under the plan's root.
pub async fn answer(plan: &StaticPlan, head: &RequestHead, path: &str) -> Answer {
    if head.method != Method::GET && head.method != Method::HEAD {
        let mut response = LocalResponse::for_reason(Reason::MethodNotAllowed);
        response.headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Answer::Local(response);
    }
    let Some(relative) = safe_relative_path(path) else {
        return Answer::Local(LocalResponse::for_reason(Reason::Forbidden));
    };
    let mut full = plan.root.join(&relative);
    let mut meta = match tokio::fs::metadata(&full).await {
        Ok(meta) => meta,
        Err(_) => return Answer::Local(LocalResponse::for_reason(Reason::FileNotFound)),
    };
    if meta.is_dir() {
        // The redirect goes to the URL the client asked for plus `/`: `path` may have been
        // rewritten (`/assets/dir` read as `/dir`), and the client must stay under its prefix.
        if !path.ends_with('/') && !head.path().ends_with('/') {
            return Answer::Local(redirect_to_directory(head));
        }
        full = full.join(&plan.index);
        meta = match tokio::fs::metadata(&full).await {
            Ok(meta) if meta.is_file() => meta,
            _ => return Answer::Local(LocalResponse::for_reason(Reason::FileNotFound)),
        };
    }
    if !meta.is_file() || !stays_under_root(&plan.root, &full).await {
        return Answer::Local(LocalResponse::for_reason(Reason::Forbidden));
    }
    let size = meta.len();
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let mtime = modified.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let etag = format!("\"{mtime:x}-{size:x}\"");
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex etag"));
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    if let Some(expires) = plan.expires {
        if let Ok(v) = HeaderValue::from_str(&format!("max-age={}", expires.as_secs())) {
            headers.insert(header::CACHE_CONTROL, v);
        }
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now() + expires)) {
            headers.insert(header::EXPIRES, v);
        }
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if not_modified(head, &etag, mtime) {
        return Answer::Local(LocalResponse {
            status: StatusCode::NOT_MODIFIED,
            headers,
            body: Bytes::new(),
            reason: None,
        });
    }
    let mime = mime_guess::from_path(&full).first_or_octet_stream();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let (status, offset, len) = match requested_range(head, &etag, mtime, size) {
        RangeRequest::Full => (StatusCode::OK, 0, size),
        RangeRequest::Part(start, end) => {
            let v = format!("bytes {start}-{end}/{size}");
            headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).expect("digits"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut response = LocalResponse::for_reason(Reason::RangeNotSatisfiable);
            let v = format!("bytes */{size}");
            response.headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).expect("digits"));
            return Answer::Local(response);
        }
    };
    match tokio::fs::File::open(&full).await {
        Ok(file) => Answer::File(FileAnswer { status, headers, file, offset, len }),
        Err(_) => Answer::Local(LocalResponse::for_reason(Reason::FileError)),
    }
}

/// Streams a file answer to the client; returns whether the connection may be kept.
pub(crate) async fn send(
    conn: &mut ClientConn,
    head: &RequestHead,
    ctx: &mut RequestCtx,
    filters: &[Arc<dyn HttpFilter>],
    mut answer: FileAnswer,
) -> bool {
    ctx.status = answer.status;
    answer.headers.insert(header::DATE, crate::date::now());
    if let Some(id) = &ctx.request_id {
        answer.headers.insert("x-request-id", id.clone());
    }
    run_response_filters(ctx, filters, answer.status, &mut answer.headers);
    let mut out = BytesMut::with_capacity(512);
    let framing = OutFraming::Length(answer.len);
    write_response_head(&mut out, head.version, answer.status, &answer.headers, framing, head.keep_alive);
    if !write(conn, &out).await {
        return false;
    }
    if head.method == Method::HEAD {
        return head.keep_alive;
    }
    if answer.offset > 0 && answer.file.seek(std::io::SeekFrom::Start(answer.offset)).await.is_err() {
        return false;
    }
    let mut left = answer.len;
    let mut chunk = vec![0u8; FILE_CHUNK.min(left as usize).max(1)];
    while left > 0 {
        let want = chunk.len().min(left as usize);
        let n = match answer.file.read(&mut chunk[..want]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        if !write(conn, &chunk[..n]).await {
            return false;
        }
        left -= n as u64;
        ctx.bytes_sent += n as u64;
    }
    head.keep_alive
}

async fn write(conn: &mut ClientConn, bytes: &[u8]) -> bool {
    matches!(tokio::time::timeout(WRITE_TIMEOUT, conn.stream.write_all(bytes)).await, Ok(Ok(())))
}

/// Decodes the URL path and keeps only normal segments; `None` for anything that could
/// leave the root (`..`, encoded slashes or backslashes, NUL bytes).
fn safe_relative_path(path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path)?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return None;
    }
    let mut relative = PathBuf::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return None,
            s => {
                if Path::new(s).components().any(|c| !matches!(c, Component::Normal(_))) {
                    return None;
                }
                relative.push(s);
            }
        }
    }
    Some(relative)
}

/// Percent-decodes a path; `None` for invalid escapes, encoded `/`, or invalid UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if byte == b'/' {
                return None;
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether the resolved file (following symlinks) is inside the root.
async fn stays_under_root(root: &Path, file: &Path) -> bool {
    match (tokio::fs::canonicalize(root).await, tokio::fs::canonicalize(file).await) {
        (Ok(root), Ok(file)) => file.starts_with(root),
        _ => false,
    }
}

/// A 301 to the requested URL with a trailing slash (as nginx does for directories).
fn redirect_to_directory(head: &RequestHead) -> LocalResponse {
    let mut location = format!("{}/", head.path());
    if let Some(query) = head.query() {
        location.push('?');
        location.push_str(query);
    }
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    LocalResponse { status: StatusCode::MOVED_PERMANENTLY, headers, body: Bytes::new(), reason: None }
}

/// Whether `If-None-Match` / `If-Modified-Since` let the client keep its copy.
fn not_modified(head: &RequestHead, etag: &str, mtime: u64) -> bool {
    if let Some(inm) = head.headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return inm.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t == etag || t.strip_prefix("W/") == Some(etag)
        });
    }
    if let Some(ims) = head.headers.get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()) {
        if let Ok(since) = httpdate::parse_http_date(ims) {
            let since = since.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            return mtime <= since;
        }
    }
    false
}

/// The part of a file a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// The whole file.
    Full,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// A range that lies outside the file.
    Unsatisfiable,
}

/// Reads a single `Range: bytes=...` request; several ranges are answered with the whole file.
fn requested_range(head: &RequestHead, etag: &str, mtime: u64, size: u64) -> RangeRequest {
    let Some(range) = head.headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeRequest::Full;
    };
    if let Some(if_range) = head.headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        let fresh = if_range == etag
            || httpdate::parse_http_date(if_range)
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .is_some_and(|t| t.as_secs() >= mtime);
        if !fresh {
            return RangeRequest::Full;
        }
    }
    parse_range(range, size)
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` against a file size.
fn parse_range(range: &str, size: u64) -> RangeRequest {
    let Some(spec) = range.trim().strip_prefix("bytes=") else { return RangeRequest::Full };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeRequest::Full };
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = if first.is_empty() {
        let Ok(suffix) = last.parse::<u64>() else { return RangeRequest::Full };
        if suffix == 0 {
            return RangeRequest::Unsatisfiable;
        }
        (size.saturating_sub(suffix), size.saturating_sub(1))
    } else {
        let Ok(start) = first.parse::<u64>() else { return RangeRequest::Full };
        let end = if last.is_empty() {
            size.saturating_sub(1)
        } else {
            match last.parse::<u64>() {
                Ok(end) if end >= start => end.min(size.saturating_sub(1)),
                _ => return RangeRequest::Full,
            }
        };
        (start, end)
    };
    if size == 0 || start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_refused() {
        assert!(safe_relative_path("/../etc/passwd").is_none());
        assert!(safe_relative_path("/a/%2e%2e/%2e%2e/etc/passwd").is_none());
        assert!(safe_relative_path("/a%2f..%2fb").is_none());
        assert!(safe_relative_path("/a\\..\\b").is_none());
        assert!(safe_relative_path("/a%00b").is_none());
        assert_eq!(safe_relative_path("/css/site.css").unwrap(), PathBuf::from("css/site.css"));
        assert_eq!(safe_relative_path("/a%20b.txt").unwrap(), PathBuf::from("a b.txt"));
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeRequest::Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeRequest::Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeRequest::Part(90, 99));
        assert_eq!(parse_range("bytes=50-500", 100), RangeRequest::Part(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeRequest::Full);
        assert_eq!(parse_range("items=0-1", 100), RangeRequest::Full);
    }
}
