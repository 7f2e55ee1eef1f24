//! Reading Kong's list entries: `"name"`, `"old:new"`, `"name:value"`, and the JSON type of
//! a value (`json_types`).

use serde::Deserialize;
use serde_json::Value;
use strait_http::PluginError;

/// The JSON type a `json` value is written as (Kong's `json_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonType {
    /// A JSON string, as written (the default).
    #[default]
    String,
    /// A JSON number: the value must read as one (`42`, `-1.5`).
    Number,
    /// A JSON boolean: the value must be `true` or `false`.
    Boolean,
}

/// The field path of entry `index` of the list at `path` (`add.headers[2]`).
pub(crate) fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// Splits a `"name:value"` entry at its first `:`; the name must not be empty.
pub(crate) fn pair<'a>(entry: &'a str, path: &str, shape: &str) -> Result<(&'a str, &'a str), PluginError> {
    match entry.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim(), value)),
        Some(_) => Err(PluginError::at(path, format!("`{entry}` has an empty name: write `{shape}`"))),
        None => Err(PluginError::at(path, format!("`{entry}` has no `:`: write `{shape}`"))),
    }
}

/// Splits a rename entry `"old:new"`; both names must be present.
pub(crate) fn rename<'a>(entry: &'a str, path: &str) -> Result<(&'a str, &'a str), PluginError> {
    let (old, new) = pair(entry, path, "old:new")?;
    let new = new.trim();
    if new.is_empty() {
        return Err(PluginError::at(path, format!("`{entry}` has no new name: write `old:new`")));
    }
    Ok((old, new))
}

/// A bare name (a `remove` entry); it must not be empty.
pub(crate) fn name<'a>(entry: &'a str, path: &str) -> Result<&'a str, PluginError> {
    let name = entry.trim();
    if name.is_empty() {
        return Err(PluginError::at(path, "the name is empty"));
    }
    Ok(name)
}

/// The JSON value `text` written as `kind`.
pub(crate) fn typed_value(text: &str, kind: JsonType, path: &str) -> Result<Value, PluginError> {
    match kind {
        JsonType::String => Ok(Value::String(text.to_owned())),
        JsonType::Number => match serde_json::from_str::<Value>(text.trim()) {
            Ok(number @ Value::Number(_)) => Ok(number),
            _ => Err(PluginError::at(path, format!("`{text}` is not a number (its `json_types` entry is `number`)"))),
        },
        JsonType::Boolean => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(PluginError::at(
                path,
                format!("`{text}` is not `true` or `false` (its `json_types` entry is `boolean`)"),
            )),
        },
    }
}

/// One kind of field's lists in each section (`headers` or `querystring`), as configured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EditLists<'a> {
    pub(crate) remove: &'a [String],
    pub(crate) rename: &'a [String],
    pub(crate) replace: &'a [String],
    pub(crate) add: &'a [String],
    pub(crate) append: &'a [String],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_first_colon() {
        assert_eq!(pair("x-a:b:c", "p", "name:value").unwrap(), ("x-a", "b:c"));
        assert_eq!(pair("x-a:", "p", "name:value").unwrap(), ("x-a", ""));
    }

    #[test]
    fn entries_without_colon_or_name_are_refused() {
        let error = pair("x-a", "add.headers[0]", "name:value").unwrap_err();
        assert_eq!(error.path, "add.headers[0]");
        assert!(error.message.contains("no `:`"), "{}", error.message);
        assert!(pair(":v", "p", "name:value").unwrap_err().message.contains("empty name"));
        assert!(rename("a:", "p").unwrap_err().message.contains("no new name"));
        assert!(name("  ", "p").is_err());
    }

    #[test]
    fn values_take_their_json_type() {
        assert_eq!(typed_value("42", JsonType::Number, "p").unwrap(), serde_json::json!(42));
        assert_eq!(typed_value("-1.5", JsonType::Number, "p").unwrap(), serde_json::json!(-1.5));
        assert_eq!(typed_value("true", JsonType::Boolean, "p").unwrap(), serde_json::json!(true));
        assert_eq!(typed_value("42", JsonType::String, "p").unwrap(), serde_json::json!("42"));
        assert!(typed_value("4x", JsonType::Number, "p").is_err());
        assert!(typed_value("yes", JsonType::Boolean, "p").is_err());
    }
}
