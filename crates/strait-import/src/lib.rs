//! Translates other proxies' configurations into Strait's: Kong 3.x declarative files today.
//!
//! A translation is Strait YAML plus a list of what could not be carried over, each naming the
//! place in the source file; nothing is dropped silently.
#![forbid(unsafe_code)]

pub mod kong;
mod yaml;

/// The result of a translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The Strait configuration, as YAML.
    pub yaml: String,
    /// What was not translated, or translated approximately, one line each.
    pub warnings: Vec<String>,
}
