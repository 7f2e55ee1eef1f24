//! Header edits in Kong's order: remove, rename, replace (only present fields), add (only
//! absent fields), append (always). Framing and connection fields are refused at build time.

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use strait_config::{header_edit_problems, HeaderEdits};
use strait_http::PluginError;

use super::entries::{item, name, pair, rename, EditLists};

/// Compiled header edits of one side.
#[derive(Debug, Default)]
pub(crate) struct HeaderOps {
    remove: Vec<HeaderName>,
    rename: Vec<(HeaderName, HeaderName)>,
    replace: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    append: Vec<(HeaderName, HeaderValue)>,
}

impl HeaderOps {
    /// Compiles the lists; errors name the entry (`rename.headers[1]`).
    pub(crate) fn compile(lists: EditLists<'_>) -> Result<HeaderOps, PluginError> {
        let names = |list: &[String], section: &str| -> Result<Vec<HeaderName>, PluginError> {
            let path = format!("{section}.headers");
            list.iter()
                .enumerate()
                .map(|(i, entry)| header_name(name(entry, &item(&path, i))?, &item(&path, i)))
                .collect()
        };
        let renames = |list: &[String]| -> Result<Vec<(HeaderName, HeaderName)>, PluginError> {
            list.iter()
                .enumerate()
                .map(|(i, entry)| {
                    let path = item("rename.headers", i);
                    let (old, new) = rename(entry, &path)?;
                    Ok((header_name(old, &path)?, header_name(new, &path)?))
                })
                .collect()
        };
        let values = |list: &[String], section: &str| -> Result<Vec<(HeaderName, HeaderValue)>, PluginError> {
            let path = format!("{section}.headers");
            list.iter()
                .enumerate()
                .map(|(i, entry)| {
                    let path = item(&path, i);
                    let (name, value) = pair(entry, &path, "name:value")?;
                    let value = HeaderValue::from_str(value.trim())
                        .map_err(|_| PluginError::at(&path, format!("`{entry}` has an invalid header value")))?;
                    Ok((header_name(name, &path)?, value))
                })
                .collect()
        };
        Ok(HeaderOps {
            remove: names(lists.remove, "remove")?,
            rename: renames(lists.rename)?,
            replace: values(lists.replace, "replace")?,
            add: values(lists.add, "add")?,
            append: values(lists.append, "append")?,
        })
    }

    /// Applies the edits in order.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (old, new) in &self.rename {
            let values: Vec<HeaderValue> = headers.get_all(old).iter().cloned().collect();
            if values.is_empty() {
                continue;
            }
            headers.remove(old);
            headers.remove(new);
            for value in values {
                headers.append(new.clone(), value);
            }
        }
        for (name, value) in &self.replace {
            if headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in &self.add {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in &self.append {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// A header name that is valid and not one Strait manages (framing, connection, Host), with
/// the same messages as the `request_headers` plugin.
fn header_name(name: &str, path: &str) -> Result<HeaderName, PluginError> {
    let probe = HeaderEdits { remove: vec![name.to_owned()], ..HeaderEdits::default() };
    if let Some((_, message)) = header_edit_problems(&probe).into_iter().next() {
        return Err(PluginError::at(path, message));
    }
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| PluginError::at(path, format!("`{name}` is not a header name")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn lists<'a>(remove: &'a [String], rename: &'a [String], values: &'a [String]) -> EditLists<'a> {
        EditLists { remove, rename, replace: values, add: values, append: &[] }
    }

    #[test]
    fn edits_apply_in_kong_order() {
        let (remove, rename, replace, add, append) = (
            strings(&["x-gone"]),
            strings(&["x-old:x-new"]),
            strings(&["x-kept:replaced", "x-absent:never"]),
            strings(&["x-kept:not-added", "x-added:yes"]),
            strings(&["x-multi:two"]),
        );
        let ops = HeaderOps::compile(EditLists {
            remove: &remove,
            rename: &rename,
            replace: &replace,
            add: &add,
            append: &append,
        })
        .unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in [("x-gone", "1"), ("x-old", "o"), ("x-new", "stale"), ("x-kept", "k"), ("x-multi", "one")]
        {
            headers.append(name, HeaderValue::from_static(value));
        }
        ops.apply(&mut headers);
        assert!(headers.get("x-gone").is_none());
        assert!(headers.get("x-old").is_none());
        assert_eq!(headers.get_all("x-new").iter().collect::<Vec<_>>(), ["o"]);
        assert_eq!(headers["x-kept"], "replaced");
        assert!(headers.get("x-absent").is_none());
        assert_eq!(headers["x-added"], "yes");
        assert_eq!(headers.get_all("x-multi").iter().collect::<Vec<_>>(), ["one", "two"]);
    }

    #[test]
    fn framing_headers_are_refused_with_their_path() {
        let values = strings(&["x-a:1", "content-length:5"]);
        let error = HeaderOps::compile(lists(&[], &[], &values)).unwrap_err();
        assert_eq!(error.path, "replace.headers[1]");
        assert!(error.message.contains("managed"), "{}", error.message);
        let rename = strings(&["x-a:transfer-encoding"]);
        assert_eq!(HeaderOps::compile(lists(&[], &rename, &[])).unwrap_err().path, "rename.headers[0]");
        let remove = strings(&["connection"]);
        assert_eq!(HeaderOps::compile(lists(&remove, &[], &[])).unwrap_err().path, "remove.headers[0]");
    }

    #[test]
    fn malformed_entries_are_refused() {
        let values = strings(&["x-a"]);
        let error = HeaderOps::compile(lists(&[], &[], &values)).unwrap_err();
        assert_eq!(error.path, "replace.headers[0]");
        assert!(error.message.contains("no `:`"), "{}", error.message);
        let values = strings(&["bad name:1"]);
        assert!(HeaderOps::compile(lists(&[], &[], &values)).is_err());
        let values = strings(&["x-a:bad\u{7f}value"]);
        assert!(HeaderOps::compile(lists(&[], &[], &values)).unwrap_err().message.contains("invalid header value"));
    }
}
