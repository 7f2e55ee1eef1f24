//! Static files from a directory: content type, ETag, Last-Modified, conditional requests,
//! single byte ranges, cache lifetime, and no way out of the root.

use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{request, response, HeaderMap, Method, StatusCode};
use http_body::{Body, Frame, SizeHint};
use strait_http::{LocalResponse, Reason};
use tokio::io::{AsyncRead, AsyncSeekExt, ReadBuf};

use crate::body::BodyError;
use crate::snapshot::StaticPlan;

/// Bytes read from a file at a time.
const FILE_CHUNK: usize = 64 * 1024;

/// What to send for a static-file request.
pub(crate) enum Answer {
    /// A small answer built in memory (errors, 304, redirects to the directory).
    Local(LocalResponse),
    /// A file (or part of it) to stream, with the head to send before it.
    File(response::Parts, FileBody),
}

/// Resolves a request to a file under the plan's root. `request.uri`'s path is the one after
/// any rewrite; `asked` is the path the client asked for (directory redirects keep it).
pub(crate) async fn answer(plan: &StaticPlan, request: &request::Parts, asked: &str) -> Answer {
    let path = request.uri.path();
    if request.method != Method::GET && request.method != Method::HEAD {
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
        if !path.ends_with('/') && !asked.ends_with('/') {
            return Answer::Local(redirect_to_directory(asked, request.uri.query()));
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
    if not_modified(&request.headers, &etag, mtime) {
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
    let (status, offset, len) = match requested_range(&request.headers, &etag, mtime, size) {
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
    let mut file = match tokio::fs::File::open(&full).await {
        Ok(file) => file,
        Err(_) => return Answer::Local(LocalResponse::for_reason(Reason::FileError)),
    };
    if offset > 0 && file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        return Answer::Local(LocalResponse::for_reason(Reason::FileError));
    }
    let mut head = response::Response::new(()).into_parts().0;
    head.status = status;
    head.headers = headers;
    Answer::File(head, FileBody { file, left: len, buf: BytesMut::new() })
}

/// A file's bytes as a body of known length.
pub(crate) struct FileBody {
    file: tokio::fs::File,
    left: u64,
    buf: BytesMut,
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.left == 0 {
            return Poll::Ready(None);
        }
        let want = FILE_CHUNK.min(this.left as usize);
        this.buf.resize(want, 0);
        let mut read_buf = ReadBuf::new(&mut this.buf[..]);
        match Pin::new(&mut this.file).poll_read(cx, &mut read_buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(Some(Err(BodyError(Reason::FileError)))),
            Poll::Ready(Ok(())) => {
                let n = read_buf.filled().len();
                if n == 0 {
                    // The file shrank under us: the promised length cannot be kept.
                    return Poll::Ready(Some(Err(BodyError(Reason::FileError))));
                }
                let chunk = this.buf.split_to(n).freeze();
                this.buf.clear();
                this.left -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
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
fn redirect_to_directory(asked: &str, query: Option<&str>) -> LocalResponse {
    let mut location = format!("{asked}/");
    if let Some(query) = query {
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
fn not_modified(headers: &HeaderMap, etag: &str, mtime: u64) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return inm.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t == etag || t.strip_prefix("W/") == Some(etag)
        });
    }
    if let Some(ims) = headers.get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()) {
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
fn requested_range(headers: &HeaderMap, etag: &str, mtime: u64, size: u64) -> RangeRequest {
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeRequest::Full;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
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
