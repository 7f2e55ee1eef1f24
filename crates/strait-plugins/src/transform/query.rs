//! Query string edits of the request, in Kong's order: remove, rename, replace (only present
//! parameters), add (only absent ones), append (always).
//!
//! Names are compared after percent-decoding (`+` is a space); parameters no edit touches keep
//! their bytes; names and values written by an edit are percent-encoded.

use strait_http::PluginError;

use super::entries::{item, name, pair, rename, EditLists};

/// Compiled query string edits.
#[derive(Debug, Default)]
pub(crate) struct QueryOps {
    remove: Vec<String>,
    rename: Vec<(String, String)>,
    replace: Vec<(String, String)>,
    add: Vec<(String, String)>,
    append: Vec<(String, String)>,
}

/// One parameter: its decoded name (for matching) and its bytes in the query.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Param {
    name: String,
    raw: String,
}

impl Param {
    /// A parameter written by an edit.
    fn new(name: &str, value: &str) -> Param {
        Param { name: name.to_owned(), raw: format!("{}={}", encode(name), encode(value)) }
    }
}

impl QueryOps {
    /// Compiles the lists; errors name the entry (`add.querystring[0]`).
    pub(crate) fn compile(lists: EditLists<'_>) -> Result<QueryOps, PluginError> {
        let values = |list: &[String], section: &str| -> Result<Vec<(String, String)>, PluginError> {
            let path = format!("{section}.querystring");
            list.iter()
                .enumerate()
                .map(|(i, entry)| {
                    let (name, value) = pair(entry, &item(&path, i), "name:value")?;
                    Ok((name.to_owned(), value.to_owned()))
                })
                .collect()
        };
        Ok(QueryOps {
            remove: lists
                .remove
                .iter()
                .enumerate()
                .map(|(i, entry)| name(entry, &item("remove.querystring", i)).map(str::to_owned))
                .collect::<Result<_, _>>()?,
            rename: lists
                .rename
                .iter()
                .enumerate()
                .map(|(i, entry)| {
                    let (old, new) = rename(entry, &item("rename.querystring", i))?;
                    Ok((old.to_owned(), new.to_owned()))
                })
                .collect::<Result<_, PluginError>>()?,
            replace: values(lists.replace, "replace")?,
            add: values(lists.add, "add")?,
            append: values(lists.append, "append")?,
        })
    }

    /// Whether there is nothing to do.
    pub(crate) fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.rename.is_empty()
            && self.replace.is_empty()
            && self.add.is_empty()
            && self.append.is_empty()
    }

    /// The edited query (without `?`); `None` when no parameter is left.
    pub(crate) fn apply(&self, query: Option<&str>) -> Option<String> {
        let mut params: Vec<Param> = query
            .unwrap_or("")
            .split('&')
            .filter(|raw| !raw.is_empty())
            .map(|raw| Param { name: decode(raw.split('=').next().unwrap_or("")), raw: raw.to_owned() })
            .collect();
        for name in &self.remove {
            params.retain(|p| &p.name != name);
        }
        for (old, new) in &self.rename {
            if !params.iter().any(|p| &p.name == old) {
                continue;
            }
            params.retain(|p| &p.name != new);
            for param in params.iter_mut().filter(|p| &p.name == old) {
                let value = param.raw.find('=').map_or("", |at| &param.raw[at..]);
                *param = Param { name: new.clone(), raw: format!("{}{value}", encode(new)) };
            }
        }
        for (name, value) in &self.replace {
            let Some(first) = params.iter().position(|p| &p.name == name) else { continue };
            params[first] = Param::new(name, value);
            let mut index = 0;
            params.retain(|p| {
                index += 1;
                index - 1 == first || &p.name != name
            });
        }
        for (name, value) in &self.add {
            if !params.iter().any(|p| &p.name == name) {
                params.push(Param::new(name, value));
            }
        }
        for (name, value) in &self.append {
            params.push(Param::new(name, value));
        }
        let joined: Vec<&str> = params.iter().map(|p| p.raw.as_str()).collect();
        (!joined.is_empty()).then(|| joined.join("&"))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (a space); malformed escapes stay as they are.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match bytes[i] {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn edits_apply_in_kong_order() {
        let (remove, rename, replace, add, append) = (
            strings(&["debug"]),
            strings(&["q:search"]),
            strings(&["page:1", "absent:x"]),
            strings(&["page:9", "lang:en"]),
            strings(&["tag:a b"]),
        );
        let ops = QueryOps::compile(EditLists {
            remove: &remove,
            rename: &rename,
            replace: &replace,
            add: &add,
            append: &append,
        })
        .unwrap();
        let edited = ops.apply(Some("debug=1&q=rust%20lang&page=3&page=4&tag=x&keep=%2F"));
        assert_eq!(edited.as_deref(), Some("search=rust%20lang&page=1&tag=x&keep=%2F&lang=en&tag=a%20b"));
    }

    #[test]
    fn names_match_decoded_and_empty_results_drop_the_query() {
        let remove = strings(&["a b"]);
        let ops =
            QueryOps::compile(EditLists { remove: &remove, rename: &[], replace: &[], add: &[], append: &[] }).unwrap();
        assert_eq!(ops.apply(Some("a+b=1&a%20b=2")), None);
        assert_eq!(ops.apply(None), None);
    }

    #[test]
    fn entries_without_colon_are_refused() {
        let add = strings(&["lang"]);
        let error = QueryOps::compile(EditLists { remove: &[], rename: &[], replace: &[], add: &add, append: &[] })
            .unwrap_err();
        assert_eq!(error.path, "add.querystring[0]");
    }
}
