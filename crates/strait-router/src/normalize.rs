//! Path normalization before routing (RFC 3986 §6.2.2 and §5.2.4, the way Envoy's
//! `normalize_path`, `merge_slashes` and `path_with_escaped_slashes_action` do it): one spelling
//! per path, so `//admin`, `/%61dmin`, `/x/../admin` and `/./admin` all route as `/admin`.
//!
//! One pass over the path, segment by segment; a path that is already normal comes back
//! borrowed, without allocating (the common case: this runs on every request).

use std::borrow::Cow;
use std::fmt;

use strait_config::{EscapedSlashes, PathNormalization};

/// What normalization does besides decoding unreserved escapes and resolving dot segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Merge repeated slashes (`//a//b` → `/a/b`).
    pub merge_slashes: bool,
    /// What `%2F` and `%5C` become.
    pub escaped_slashes: EscapedSlashes,
}

impl Options {
    /// The options of a listener's configuration, or `None` when normalization is off.
    pub fn from_config(config: &PathNormalization) -> Option<Options> {
        config
            .enabled
            .then_some(Options { merge_slashes: config.merge_slashes, escaped_slashes: config.escaped_slashes })
    }
}

impl Default for Options {
    fn default() -> Self {
        Options { merge_slashes: true, escaped_slashes: EscapedSlashes::Reject }
    }
}

/// Why a path was refused (each is a 400 `bad_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `%` not followed by two hex digits.
    InvalidEscape,
    /// `%00`.
    EscapedNul,
    /// `%2F` or `%5C` under [`EscapedSlashes::Reject`].
    EscapedSlash,
    /// A raw `\` (read as `/` by some servers, as a name character by others).
    Backslash,
    /// A `..` segment above the root (`/a/../..`).
    AboveRoot,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::InvalidEscape => "`%` not followed by two hex digits",
            PathError::EscapedNul => "`%00` in the path",
            PathError::EscapedSlash => "escaped slash (`%2F` or `%5C`) in the path",
            PathError::Backslash => "`\\` in the path",
            PathError::AboveRoot => "`..` above the root",
        })
    }
}

impl std::error::Error for PathError {}

/// Normalizes `path` (without the query):
///
/// - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, the other
///   escapes written with upper-case hex (`%3a` → `%3A`); an invalid escape or `%00` is
///   refused;
/// - `%2F` and `%5C` are refused, kept or decoded to `/` as `options.escaped_slashes` says;
///   a raw `\` is refused;
/// - `.` and `..` segments are removed (RFC 3986 §5.2.4), also when written `%2e`; a `..`
///   above the root is refused rather than clamped;
/// - with `options.merge_slashes`, repeated slashes become one.
///
/// A path not starting with `/` (`*` of `OPTIONS *`) is returned as it is. The result is
/// borrowed when `path` is already normal.
pub fn normalize_path<'a>(path: &'a str, options: &Options) -> Result<Cow<'a, str>, PathError> {
    let raw = path.as_bytes();
    if raw.first() != Some(&b'/') {
        return Ok(Cow::Borrowed(path));
    }
    let mut out = Output { raw: path, owned: None, len: 0 };
    // At the top of each round `at` is the start of a separator: a `/`, or an escaped slash
    // being decoded (`escaped` true, three bytes).
    let mut at = 0;
    let mut escaped = false;
    loop {
        let mark = out.len();
        let separator_len = if escaped { 3 } else { 1 };
        if escaped {
            out.push(b'/');
        } else {
            out.copy(at, at + 1);
        }
        let segment = scan_segment(raw, at + separator_len, options, &mut out)?;
        let last = segment.next.is_none();
        if segment.is_dot() || (segment.len == 0 && options.merge_slashes && !last) {
            out.truncate(mark);
        } else if segment.is_dot_dot() {
            out.truncate(mark);
            // The output is `/`-led segments: the last `/` starts the segment to drop.
            let Some(parent) = out.as_str().rfind('/') else { return Err(PathError::AboveRoot) };
            out.truncate(parent);
        }
        if last && (segment.is_dot() || segment.is_dot_dot()) {
            // `/a/.` is `/a/` and `/a/b/..` is `/a/`: the directory stays a directory.
            out.push(b'/');
        }
        match segment.next {
            Some((next, next_escaped)) => {
                at = next;
                escaped = next_escaped;
            }
            None => return Ok(out.finish()),
        }
    }
}

/// The normalized `path` when it differs from `path`, `None` when `path` is normal already:
/// [`normalize_path`] for callers that replace the path they borrowed it from.
pub fn changed_path(path: &str, options: &Options) -> Result<Option<String>, PathError> {
    Ok(match normalize_path(path, options)? {
        Cow::Owned(changed) => Some(changed),
        Cow::Borrowed(_) => None,
    })
}

/// One segment after scanning: its normalized length, how much of it is dots, and where the
/// next separator starts.
struct Segment {
    /// Characters of the normalized segment.
    len: usize,
    /// Of which dots (`.` or `%2E`).
    dots: usize,
    /// The next separator: its offset and whether it is an escaped slash; `None` at the end.
    next: Option<(usize, bool)>,
}

impl Segment {
    fn is_dot(&self) -> bool {
        self.len == 1 && self.dots == 1
    }

    fn is_dot_dot(&self) -> bool {
        self.len == 2 && self.dots == 2
    }
}

/// Writes the normalized segment starting at `start` to `out` and finds where it ends.
fn scan_segment(raw: &[u8], start: usize, options: &Options, out: &mut Output<'_>) -> Result<Segment, PathError> {
    let mut segment = Segment { len: 0, dots: 0, next: None };
    // Bytes from `run` on are copied unchanged when the run ends.
    let mut run = start;
    let mut i = start;
    while i < raw.len() {
        match raw[i] {
            b'/' => {
                segment.next = Some((i, false));
                break;
            }
            b'\\' => return Err(PathError::Backslash),
            b'%' => {
                let (Some(high), Some(low)) = (raw.get(i + 1).and_then(hex), raw.get(i + 2).and_then(hex)) else {
                    return Err(PathError::InvalidEscape);
                };
                let byte = high << 4 | low;
                match byte {
                    0 => return Err(PathError::EscapedNul),
                    b'/' | b'\\' => match options.escaped_slashes {
                        EscapedSlashes::Reject => return Err(PathError::EscapedSlash),
                        EscapedSlashes::Decode => {
                            segment.next = Some((i, true));
                            break;
                        }
                        EscapedSlashes::Keep => {}
                    },
                    _ => {}
                }
                if is_unreserved(byte) {
                    out.copy(run, i);
                    out.push(byte);
                    run = i + 3;
                    segment.dots += usize::from(byte == b'.');
                } else if raw[i + 1].is_ascii_lowercase() || raw[i + 2].is_ascii_lowercase() {
                    out.copy(run, i);
                    out.push(b'%');
                    out.push(raw[i + 1].to_ascii_uppercase());
                    out.push(raw[i + 2].to_ascii_uppercase());
                    run = i + 3;
                }
                segment.len += 1;
                i += 3;
            }
            byte => {
                segment.dots += usize::from(byte == b'.');
                segment.len += 1;
                i += 1;
            }
        }
    }
    out.copy(run, i);
    Ok(segment)
}

/// The value of a hex digit.
fn hex(digit: &u8) -> Option<u8> {
    (*digit as char).to_digit(16).map(|d| d as u8)
}

/// RFC 3986 unreserved characters: the escapes that are decoded.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// The normalized path being built: a prefix of the input for as long as nothing changed,
/// an owned copy from the first change on.
struct Output<'a> {
    raw: &'a str,
    /// The normalized path, once it is no longer a prefix of `raw`.
    owned: Option<String>,
    /// While `owned` is `None`: the normalized path is `raw[..len]`.
    len: usize,
}

impl<'a> Output<'a> {
    /// Appends `raw[start..end]` unchanged.
    fn copy(&mut self, start: usize, end: usize) {
        if start == end {
            return;
        }
        let raw = self.raw;
        match &mut self.owned {
            Some(owned) => owned.push_str(&raw[start..end]),
            None if start == self.len => self.len = end,
            None => self.owned_mut().push_str(&raw[start..end]),
        }
    }

    /// Appends one ASCII byte that differs from the input.
    fn push(&mut self, byte: u8) {
        self.owned_mut().push(char::from(byte));
    }

    /// The owned copy, made on first use from the borrowed prefix.
    fn owned_mut(&mut self) -> &mut String {
        let (raw, len) = (self.raw, self.len);
        self.owned.get_or_insert_with(|| {
            let mut owned = String::with_capacity(raw.len());
            owned.push_str(&raw[..len]);
            owned
        })
    }

    fn len(&self) -> usize {
        self.owned.as_ref().map_or(self.len, String::len)
    }

    fn truncate(&mut self, len: usize) {
        match &mut self.owned {
            Some(owned) => owned.truncate(len),
            None => self.len = len,
        }
    }

    fn as_str(&self) -> &str {
        self.owned.as_deref().unwrap_or(&self.raw[..self.len])
    }

    /// The result: borrowed only when it is the whole input, so borrowed means unchanged.
    fn finish(self) -> Cow<'a, str> {
        match self.owned {
            Some(owned) => Cow::Owned(owned),
            None if self.len == self.raw.len() => Cow::Borrowed(self.raw),
            None => Cow::Owned(self.raw[..self.len].to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(escaped_slashes: EscapedSlashes, merge_slashes: bool) -> Options {
        Options { merge_slashes, escaped_slashes }
    }

    fn normal(path: &str) -> Result<Cow<'_, str>, PathError> {
        normalize_path(path, &Options::default())
    }

    #[track_caller]
    fn assert_normalized(cases: &[(&str, &str)], options: &Options) {
        for (path, want) in cases {
            assert_eq!(normalize_path(path, options).as_deref(), Ok(*want), "{path:?}");
        }
    }

    #[test]
    fn normal_paths_come_back_borrowed() {
        for path in ["/", "/admin", "/a/b/c", "/a/b/", "/a.b/c..d/.e/f.", "/%3A%2A", "/~user/x_y-z", "*", "/a%20b"] {
            match normal(path) {
                Ok(Cow::Borrowed(same)) => assert_eq!(same, path),
                other => panic!("{path:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn dot_segments_are_removed() {
        assert_normalized(
            &[
                ("/./admin", "/admin"),
                ("/x/../admin", "/admin"),
                ("/a/b/../../admin", "/admin"),
                ("/a/./b/./c", "/a/b/c"),
                ("/a/.", "/a/"),
                ("/a/b/..", "/a/"),
                ("/a/..", "/"),
                ("/.", "/"),
                ("/a/../b/../c/", "/c/"),
                ("/a/%2e%2e/admin", "/admin"),
                ("/a/.%2E/admin", "/admin"),
                ("/%2e/admin", "/admin"),
                ("/a/...", "/a/..."),
                ("/a/..b/c", "/a/..b/c"),
            ],
            &Options::default(),
        );
    }

    #[test]
    fn dot_dot_above_the_root_is_refused() {
        for path in ["/..", "/../admin", "/a/../..", "/%2e%2e/", "/%2E%2E/admin", "/a/b/../../../c"] {
            assert_eq!(normal(path), Err(PathError::AboveRoot), "{path:?}");
        }
    }

    #[test]
    fn repeated_slashes_merge_when_asked() {
        let cases = [("//admin", "/admin"), ("/a//b///c", "/a/b/c"), ("/a//", "/a/"), ("//", "/"), ("/a/.//b", "/a/b")];
        assert_normalized(&cases, &Options::default());
        let keep = with(EscapedSlashes::Reject, false);
        for path in ["//admin", "/a//b", "//"] {
            assert!(matches!(normalize_path(path, &keep), Ok(Cow::Borrowed(p)) if p == path), "{path:?}");
        }
        // Without merging, `..` steps over an empty segment like any other (RFC 3986).
        assert_normalized(&[("/a//../b", "/a/b"), ("//..", "/")], &keep);
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_others_upper_cased() {
        assert_normalized(
            &[
                ("/%61dmin", "/admin"),
                ("/%41%5a%30%2D%2e%5F%7E", "/AZ0-._~"),
                ("/a%3ab", "/a%3Ab"),
                ("/%e2%82%ac", "/%E2%82%AC"),
                ("/%20", "/%20"),
                ("/x/%2e%2E/%61dmin", "/admin"),
            ],
            &Options::default(),
        );
    }

    #[test]
    fn invalid_escapes_and_nul_are_refused() {
        for path in ["/%zz", "/%", "/a%2", "/%g0", "/%0"] {
            assert_eq!(normal(path), Err(PathError::InvalidEscape), "{path:?}");
        }
        assert_eq!(normal("/a%00b"), Err(PathError::EscapedNul));
        assert_eq!(normal("/a\\b"), Err(PathError::Backslash));
        assert_eq!(normalize_path("/a\\b", &with(EscapedSlashes::Decode, true)), Err(PathError::Backslash));
    }

    #[test]
    fn escaped_slashes_follow_the_policy() {
        for path in ["/admin%2Fx", "/admin%2fx", "/a%5Cb", "/a%5cb"] {
            assert_eq!(normal(path), Err(PathError::EscapedSlash), "{path:?}");
        }
        assert_normalized(
            &[("/admin%2Fx", "/admin%2Fx"), ("/admin%2fx", "/admin%2Fx"), ("/a%5cb", "/a%5Cb"), ("/..%2F", "/..%2F")],
            &with(EscapedSlashes::Keep, true),
        );
        assert_normalized(
            &[
                ("/admin%2Fx", "/admin/x"),
                ("/a%5cb", "/a/b"),
                ("/x%2F..%2Fadmin", "/admin"),
                ("/a%2F%2Fb", "/a/b"),
                ("/a%2F", "/a/"),
            ],
            &with(EscapedSlashes::Decode, true),
        );
        assert_eq!(normalize_path("/%2F..%2F..", &with(EscapedSlashes::Decode, true)), Err(PathError::AboveRoot));
        assert_normalized(&[("/a%2F%2Fb", "/a//b")], &with(EscapedSlashes::Decode, false));
    }

    #[test]
    fn changed_path_says_whether_the_path_changed() {
        let options = Options::default();
        assert_eq!(changed_path("/admin", &options), Ok(None));
        assert_eq!(changed_path("//admin", &options), Ok(Some("/admin".to_owned())));
        assert_eq!(changed_path("/a/b/..", &options), Ok(Some("/a/".to_owned())));
        assert_eq!(changed_path("/..", &options), Err(PathError::AboveRoot));
    }

    #[test]
    fn targets_without_a_leading_slash_are_left_alone() {
        assert!(matches!(normal("*"), Ok(Cow::Borrowed("*"))));
        assert!(matches!(normal(""), Ok(Cow::Borrowed(""))));
    }

    #[test]
    fn options_follow_the_listener_configuration() {
        assert_eq!(Options::from_config(&PathNormalization::default()), Some(Options::default()));
        let off = PathNormalization { enabled: false, ..PathNormalization::default() };
        assert_eq!(Options::from_config(&off), None);
    }
}
