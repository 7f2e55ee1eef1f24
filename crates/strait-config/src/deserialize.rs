//! The JSON value of a file to the typed [`Config`], with the failing field located.

use serde_json::Value;
use serde_path_to_error::Segment;

use crate::error::ConfigError;
use crate::model::Config;
use crate::path_index::{child_path, item_path, PathIndex};

/// Deserializes `value` into a [`Config`]; on failure, the error points at the offending field.
pub fn to_config(value: Value, index: &PathIndex, file: &str) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = path_string(error.path());
        let message = error.inner().to_string();
        locate(index, file, path, message)
    })
}

/// Renders a serde path as `listeners[0].routes[2].forward`.
fn path_string(path: &serde_path_to_error::Path) -> String {
    path.iter().fold(String::new(), |path, segment| match segment {
        Segment::Seq { index } => item_path(&path, *index),
        Segment::Map { key } => child_path(&path, key),
        Segment::Enum { variant } => child_path(&path, variant),
        Segment::Unknown => child_path(&path, "?"),
    })
}

/// Builds the error for `message` at `path`: unknown keys point at the key itself.
pub(crate) fn locate(index: &PathIndex, file: &str, path: String, message: String) -> ConfigError {
    for prefix in ["unknown field `", "unknown variant `"] {
        if let Some(name) = message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()) {
            // The path may or may not already end with the unknown key.
            let key_path = child_path(&path, name);
            for candidate in [path.as_str(), key_path.as_str()] {
                let names_the_key = candidate == name || candidate.ends_with(&format!(".{name}"));
                if names_the_key && index.has_key(candidate) {
                    return ConfigError::new(file, index.key_position(candidate), candidate, message);
                }
            }
        }
    }
    let message = with_hint(message);
    ConfigError::new(file, index.value_position(&path), &path, message)
}

/// Adds advice to serde messages that are correct but puzzling to YAML authors.
fn with_hint(message: String) -> String {
    if message.starts_with("invalid type:") && message.ends_with("expected a string") {
        format!("{message}; quote the value to keep it a string")
    } else {
        message
    }
}
