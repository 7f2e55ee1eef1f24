//! Collects configuration errors for one file.

use crate::error::{ConfigError, ConfigErrors, Position};

/// Gathers every error found in one file instead of stopping at the first.
#[derive(Debug)]
pub struct Reporter {
    file: String,
    errors: Vec<ConfigError>,
    /// Values no message may show.
    secrets: Vec<String>,
}

impl Reporter {
    /// A reporter for errors in `file`.
    pub fn new(file: &str) -> Reporter {
        Reporter { file: file.to_owned(), errors: Vec::new(), secrets: Vec::new() }
    }

    /// A reporter whose messages hide `secrets`.
    pub fn hiding(file: &str, secrets: &[String]) -> Reporter {
        Reporter { secrets: secrets.to_vec(), ..Reporter::new(file) }
    }

    /// Records an error about the field at `path`, located at `position`.
    pub fn error(&mut self, position: Position, path: &str, message: impl Into<String>) {
        let message = crate::secret::redact(&message.into(), &self.secrets);
        self.errors.push(ConfigError::new(&self.file, position, path, message));
    }

    /// `Ok(value)` when nothing was reported, otherwise every error in file order.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.errors).sorted())
        }
    }
}
