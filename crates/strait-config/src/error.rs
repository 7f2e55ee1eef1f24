//! Configuration errors, each tied to a file position and a field path.

use std::fmt;

/// A 1-based line and column in a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// Line, starting at 1.
    pub line: usize,
    /// Column (in characters), starting at 1.
    pub column: usize,
}

impl Position {
    /// The position of the first character of a file.
    pub const START: Position = Position { line: 1, column: 1 };

    /// A position from a 1-based line and column.
    pub const fn new(line: usize, column: usize) -> Position {
        Position { line, column }
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Name of the file, as given to the loader.
    pub file: String,
    /// Line of the offending node, starting at 1.
    pub line: usize,
    /// Column of the offending node, starting at 1.
    pub column: usize,
    /// Field path such as `listeners[0].routes[2].forward.cluster`; empty for the whole file.
    pub path: String,
    /// What is wrong, and where useful how to fix it.
    pub message: String,
}

impl ConfigError {
    /// An error in `file` at `position` about the field at `path`.
    pub fn new(file: &str, position: Position, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line: position.line,
            column: position.column,
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// The error with every value of `secrets` in its message hidden.
    pub(crate) fn hiding(mut self, secrets: &[String]) -> ConfigError {
        self.message = crate::secret::redact(&self.message, secrets);
        self
    }

    /// The line and column of the error.
    pub fn position(&self) -> Position {
        Position::new(self.line, self.column)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Wraps a single error.
    pub fn single(error: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![error])
    }

    /// Sorts the errors by position, keeping the discovery order of errors at one position.
    pub fn sorted(mut self) -> ConfigErrors {
        self.0.sort_by_key(ConfigError::position);
        self
    }

    /// The errors.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no errors.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
