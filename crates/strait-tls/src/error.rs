//! The error of a TLS setting: which field of the `tls` block, and what is wrong.

use std::fmt;

/// A failed TLS setting: the field path relative to the `tls` block (e.g. `certificates[0].key`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    /// Field path inside the `tls` block (`certificates[0].key`, `client_auth.ca`, `cipher_suites[2]`).
    pub field: String,
    /// What is wrong, naming the file concerned when there is one.
    pub message: String,
}

impl TlsError {
    /// An error about `field` of the `tls` block.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> TlsError {
        TlsError { field: field.into(), message: message.into() }
    }

    /// The full field path, given the path of the `tls` block (`listeners[0].tls`), as
    /// `strait_config::SourceMap::error` takes it.
    pub fn path_in(&self, tls_path: &str) -> String {
        if self.field.is_empty() {
            tls_path.to_owned()
        } else {
            format!("{tls_path}.{}", self.field)
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for TlsError {}

/// `field[index]`, the path of one item of a list field.
pub(crate) fn item(field: &str, index: usize) -> String {
    format!("{field}[{index}]")
}
