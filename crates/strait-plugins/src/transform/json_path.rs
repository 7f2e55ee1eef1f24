//! Edits of JSON body fields addressed by dotted paths (`user.name` is the `name` field of
//! the `user` object), in Kong's order: remove, rename, replace, add, append.
//!
//! A body that is an object is edited; a body that is an array has each of its object
//! elements edited (a list of records); any other body is left as it is. A path never goes
//! through an array or a non-object value: such a field counts as absent, and `add`, `rename`
//! and `append` do not overwrite a non-object on the way (the edit is skipped).

use serde_json::{Map, Value};
use strait_http::PluginError;

use super::entries::{item, name, pair, rename, typed_value, JsonType};

/// A dotted path to a field: one object key per segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonPath(Vec<String>);

impl JsonPath {
    /// Parses `a.b.c`; no segment may be empty.
    pub(crate) fn parse(text: &str, path: &str) -> Result<JsonPath, PluginError> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(PluginError::at(
                path,
                format!("`{text}` has an empty segment: write `field` or `object.field`"),
            ));
        }
        Ok(JsonPath(segments))
    }

    /// The last segment and the object that holds it, if every object on the way exists.
    fn parent_mut<'a>(&self, root: &'a mut Map<String, Value>) -> Option<(&'a mut Map<String, Value>, &str)> {
        let (last, parents) = self.0.split_last()?;
        let mut object = root;
        for segment in parents {
            object = object.get_mut(segment)?.as_object_mut()?;
        }
        Some((object, last))
    }

    /// The field's value, if present.
    fn get_mut<'a>(&self, root: &'a mut Map<String, Value>) -> Option<&'a mut Value> {
        let (object, last) = self.parent_mut(root)?;
        object.get_mut(last)
    }

    /// Removes the field and returns its value, if present.
    fn remove(&self, root: &mut Map<String, Value>) -> Option<Value> {
        let (object, last) = self.parent_mut(root)?;
        object.remove(last)
    }

    /// Sets the field, creating missing objects on the way; hands `value` back if a
    /// non-object value is in the way.
    fn insert(&self, root: &mut Map<String, Value>, value: Value) -> Result<(), Value> {
        let Some((last, parents)) = self.0.split_last() else { return Err(value) };
        let mut object = root;
        for segment in parents {
            let next = object.entry(segment.clone()).or_insert_with(|| Value::Object(Map::new()));
            match next.as_object_mut() {
                Some(inner) => object = inner,
                None => return Err(value),
            }
        }
        object.insert(last.clone(), value);
        Ok(())
    }
}

/// Compiled JSON field edits of one side.
#[derive(Debug, Default)]
pub(crate) struct JsonOps {
    remove: Vec<JsonPath>,
    rename: Vec<(JsonPath, JsonPath)>,
    replace: Vec<(JsonPath, Value)>,
    add: Vec<(JsonPath, Value)>,
    append: Vec<(JsonPath, Value)>,
}

/// A `json` list of `name:value` entries with its `json_types`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypedList<'a> {
    pub(crate) json: &'a [String],
    pub(crate) json_types: &'a [JsonType],
}

/// The `json` lists of each section, as configured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonLists<'a> {
    pub(crate) remove: &'a [String],
    pub(crate) rename: &'a [String],
    pub(crate) replace: TypedList<'a>,
    pub(crate) add: TypedList<'a>,
    pub(crate) append: TypedList<'a>,
}

impl JsonOps {
    /// Compiles the lists; errors name the entry (`add.json[0]`).
    pub(crate) fn compile(lists: JsonLists<'_>) -> Result<JsonOps, PluginError> {
        let remove = lists
            .remove
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let path = item("remove.json", i);
                JsonPath::parse(name(entry, &path)?, &path)
            })
            .collect::<Result<_, _>>()?;
        let renames = lists
            .rename
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let path = item("rename.json", i);
                let (old, new) = rename(entry, &path)?;
                Ok((JsonPath::parse(old, &path)?, JsonPath::parse(new, &path)?))
            })
            .collect::<Result<_, PluginError>>()?;
        Ok(JsonOps {
            remove,
            rename: renames,
            replace: typed_entries(lists.replace, "replace")?,
            add: typed_entries(lists.add, "add")?,
            append: typed_entries(lists.append, "append")?,
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

    /// Edits a parsed body: an object, or each object of an array. Returns whether any edit
    /// applied (a body no edit touched can be passed on as it came).
    pub(crate) fn apply(&self, body: &mut Value) -> bool {
        match body {
            Value::Object(object) => self.apply_object(object),
            Value::Array(items) => items
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .fold(false, |changed, o| self.apply_object(o) | changed),
            _ => false,
        }
    }

    /// Edits one object; returns whether any edit applied.
    fn apply_object(&self, object: &mut Map<String, Value>) -> bool {
        let mut changed = false;
        for path in &self.remove {
            changed |= path.remove(object).is_some();
        }
        for (old, new) in &self.rename {
            if let Some(value) = old.remove(object) {
                match new.insert(object, value) {
                    Ok(()) => changed = true,
                    // The new place is blocked: the field stays where it was.
                    Err(value) => _ = old.insert(object, value),
                }
            }
        }
        for (path, value) in &self.replace {
            if let Some(slot) = path.get_mut(object) {
                *slot = value.clone();
                changed = true;
            }
        }
        for (path, value) in &self.add {
            if path.get_mut(object).is_none() {
                changed |= path.insert(object, value.clone()).is_ok();
            }
        }
        for (path, value) in &self.append {
            match path.get_mut(object) {
                Some(Value::Array(items)) => items.push(value.clone()),
                Some(slot) => *slot = Value::Array(vec![slot.take(), value.clone()]),
                None => {
                    if path.insert(object, Value::Array(vec![value.clone()])).is_err() {
                        continue;
                    }
                }
            }
            changed = true;
        }
        changed
    }
}

/// The `name:value` entries of `section.json`, typed by `section.json_types`.
fn typed_entries(list: TypedList<'_>, section: &str) -> Result<Vec<(JsonPath, Value)>, PluginError> {
    if list.json_types.len() > list.json.len() {
        return Err(PluginError::at(
            format!("{section}.json_types"),
            format!("{} types for {} `json` entries", list.json_types.len(), list.json.len()),
        ));
    }
    let json_path = format!("{section}.json");
    list.json
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let path = item(&json_path, i);
            let (name, text) = pair(entry, &path, "field:value")?;
            let kind = list.json_types.get(i).copied().unwrap_or_default();
            Ok((JsonPath::parse(name, &path)?, typed_value(text, kind, &path)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn untyped(json: &[String]) -> TypedList<'_> {
        TypedList { json, json_types: &[] }
    }

    #[test]
    fn nested_fields_are_edited_in_order() {
        let (remove, rename, replace, add, append) = (
            strings(&["secret", "user.password"]),
            strings(&["user.mail:user.email", "id:user_id"]),
            strings(&["user.name:Bob", "absent:never"]),
            strings(&["user.name:not-added", "meta.version:2", "flag:true"]),
            strings(&["tags:new", "single:second", "fresh:only"]),
        );
        let types = [JsonType::String, JsonType::Number, JsonType::Boolean];
        let ops = JsonOps::compile(JsonLists {
            remove: &remove,
            rename: &rename,
            replace: untyped(&replace),
            add: TypedList { json: &add, json_types: &types },
            append: untyped(&append),
        })
        .unwrap();
        let mut body = json!({
            "secret": 1, "id": 7, "tags": ["old"], "single": "first",
            "user": { "name": "Ann", "mail": "a@x", "password": "p" }
        });
        assert!(ops.apply(&mut body));
        assert_eq!(
            body,
            json!({
                "user_id": 7, "tags": ["old", "new"], "single": ["first", "second"], "fresh": ["only"],
                "user": { "name": "Bob", "email": "a@x" },
                "meta": { "version": 2 }, "flag": true
            })
        );
    }

    #[test]
    fn arrays_of_records_are_edited_element_by_element() {
        let remove = strings(&["internal"]);
        let ops = JsonOps::compile(JsonLists {
            remove: &remove,
            rename: &[],
            replace: untyped(&[]),
            add: untyped(&[]),
            append: untyped(&[]),
        })
        .unwrap();
        let mut body = json!([{ "id": 1, "internal": "x" }, { "id": 2, "internal": "y" }, 3]);
        assert!(ops.apply(&mut body));
        assert_eq!(body, json!([{ "id": 1 }, { "id": 2 }, 3]));
        assert!(!ops.apply(&mut body), "nothing left to remove");
    }

    #[test]
    fn non_objects_on_the_way_are_not_overwritten() {
        let add = strings(&["name.first:x"]);
        let ops = JsonOps::compile(JsonLists {
            remove: &[],
            rename: &[],
            replace: untyped(&[]),
            add: untyped(&add),
            append: untyped(&[]),
        })
        .unwrap();
        let mut body = json!({ "name": "Ann" });
        assert!(!ops.apply(&mut body));
        assert_eq!(body, json!({ "name": "Ann" }));
    }

    #[test]
    fn bad_entries_name_their_field() {
        let add = strings(&["count:many"]);
        let types = [JsonType::Number];
        let error = JsonOps::compile(JsonLists {
            remove: &[],
            rename: &[],
            replace: untyped(&[]),
            add: TypedList { json: &add, json_types: &types },
            append: untyped(&[]),
        })
        .unwrap_err();
        assert_eq!(error.path, "add.json[0]");
        let remove = strings(&["a..b"]);
        let error = JsonOps::compile(JsonLists {
            remove: &remove,
            rename: &[],
            replace: untyped(&[]),
            add: untyped(&[]),
            append: untyped(&[]),
        })
        .unwrap_err();
        assert_eq!(error.path, "remove.json[0]");
        assert!(error.message.contains("empty segment"), "{}", error.message);
    }
}
