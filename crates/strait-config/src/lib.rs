//! Strait's configuration: YAML with positions → typed model → validated [`Config`].
#![forbid(unsafe_code)]

mod convert;
mod deserialize;
mod env;
mod error;
pub mod model;
mod path_index;
mod report;
mod secret;
mod source;
mod source_map;
pub mod tls;
pub mod units;
mod validate;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors, Position};
pub use model::*;
pub use source_map::SourceMap;
pub use tls::*;
pub use validate::{aggregate_placeholders, header_edit_problems, MAX_WORKERS};

use report::Reporter;

/// Reads, parses and validates the configuration file at `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let file_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigErrors::single(ConfigError::new(&file_name, Position::START, "", format!("cannot read file: {error}")))
    })?;
    load(&text, &file_name, &|name| std::env::var(name).ok(), path.parent())
}

/// Parses and validates configuration `text`; `file_name` is used in error messages.
/// `${VAR}` references are read from the process environment.
pub fn load_str(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    load_str_with_env(text, file_name, &|name| std::env::var(name).ok())
}

/// Like [`load_str`], with `${VAR}` references resolved by `lookup` instead of the environment.
pub fn load_str_with_env(
    text: &str,
    file_name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    load(text, file_name, lookup, None)
}

/// Loads `text`; relative `{vault://file/...}` paths are read from `base` (the file's
/// directory), or the working directory.
fn load(
    text: &str,
    file_name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    base: Option<&Path>,
) -> Result<Config, ConfigErrors> {
    let documents = source::parse_documents(text).map_err(|error| {
        ConfigErrors::single(ConfigError::new(file_name, error.position, "", format!("YAML syntax: {}", error.message)))
    })?;
    let mut reporter = Reporter::new(file_name);
    let (value, index, secrets) = convert::to_json(&documents, lookup, base, &mut reporter);
    reporter.finish(())?;
    let mut config = deserialize::to_config(value, &index, file_name)
        .map_err(|error| ConfigErrors::single(error.hiding(&secrets)))?;
    let mut reporter = Reporter::hiding(file_name, &secrets);
    validate::validate(&config, &index, &mut reporter);
    config.source = SourceMap::new(file_name, index, secrets);
    reporter.finish(config)
}
