//! Where each field of a loaded configuration came from, for errors found after loading.
//!
//! Some checks can only run once the typed model exists and other crates look at it: a plugin
//! validates its own `config:` block, TLS settings are checked against the certificate files.
//! A [`SourceMap`] travels with the [`crate::Config`] so those checks still report
//! `file:line:column: field.path: message`.

use std::sync::Arc;

use crate::error::{ConfigError, Position};
use crate::path_index::PathIndex;

/// The file name and field positions of a loaded configuration.
#[derive(Clone, Default)]
pub struct SourceMap {
    file: Arc<str>,
    index: Arc<PathIndex>,
    /// Resolved secret references: no error message shows them.
    secrets: Arc<[String]>,
}

impl std::fmt::Debug for SourceMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The resolved secrets are never printed.
        f.debug_struct("SourceMap")
            .field("file", &self.file)
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

impl SourceMap {
    /// A map for `file` with the positions in `index`.
    pub(crate) fn new(file: &str, index: PathIndex, secrets: Vec<String>) -> SourceMap {
        SourceMap { file: file.into(), index: Arc::new(index), secrets: secrets.into() }
    }

    /// The file name given to the loader.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The directory files named in the configuration are read from when their paths are
    /// relative: the file's own, or the current one when it names none.
    pub fn dir(&self) -> std::path::PathBuf {
        match std::path::Path::new(self.file()).parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        }
    }

    /// An error about the field at `path` (`listeners[0].filters[1].config.set`), located at
    /// its value, or at the closest enclosing node the file has.
    pub fn error(&self, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(&self.file, self.index.value_position(path), path, message).hiding(&self.secrets)
    }

    /// An error from deserializing the node at `path` (`message` as serde wrote it): an unknown
    /// key is located at the key itself, anything else at the value.
    pub fn locate(&self, path: &str, message: impl Into<String>) -> ConfigError {
        crate::deserialize::locate(&self.index, &self.file, path.to_owned(), message.into()).hiding(&self.secrets)
    }

    /// The position of the value at `path` (falls back to enclosing nodes).
    pub fn position(&self, path: &str) -> Position {
        self.index.value_position(path)
    }
}

/// Two configurations are equal whatever their source positions: a reload that only moves
/// lines around changes nothing.
impl PartialEq for SourceMap {
    fn eq(&self, _other: &SourceMap) -> bool {
        true
    }
}
