//! A YAML node tree to a JSON value for serde, with an index of field positions.

use serde_json::{Map, Number, Value};

use crate::env;
use crate::error::Position;
use crate::path_index::{child_path, item_path, PathIndex};
use crate::report::Reporter;
use crate::secret;
use crate::source::{MappingEntry, Node, NodeKind, ScalarStyle};

/// What the `!!` shorthand stands for in tags.
const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// Converts the documents of a file into one JSON value and the positions of its fields.
///
/// An empty file or an empty document is an empty mapping. Problems (more than one
/// document, duplicate keys, aliases, unset environment variables) go to `reporter`.
/// Secret references (`{vault://...}`) are resolved, and their values returned beside, so
/// that error messages can hide them.
pub fn to_json(
    documents: &[Node],
    lookup: &dyn Fn(&str) -> Option<String>,
    base: Option<&std::path::Path>,
    reporter: &mut Reporter,
) -> (Value, PathIndex, Vec<String>) {
    let mut converter = Converter { lookup, base, reporter, index: PathIndex::default(), secrets: Vec::new() };
    if let Some(extra) = documents.get(1) {
        converter.reporter.error(
            extra.position,
            "",
            "a configuration file holds a single YAML document; remove the extra `---` section",
        );
    }
    let value = match documents.first() {
        Some(root) => {
            converter.index.insert_value(String::new(), root.position);
            match converter.convert(root, "") {
                Value::Null => Value::Object(Map::new()),
                value @ Value::Object(_) => value,
                _ => {
                    converter.reporter.error(
                        root.position,
                        "",
                        "a configuration file is a mapping of sections such as `listeners:` and `clusters:`",
                    );
                    Value::Object(Map::new())
                }
            }
        }
        None => Value::Object(Map::new()),
    };
    (value, converter.index, converter.secrets)
}

/// State of one conversion.
struct Converter<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// The configuration file's directory, for relative `{vault://file/...}` paths.
    base: Option<&'a std::path::Path>,
    reporter: &'a mut Reporter,
    index: PathIndex,
    /// The secrets resolved so far.
    secrets: Vec<String>,
}

impl Converter<'_> {
    fn convert(&mut self, node: &Node, path: &str) -> Value {
        match &node.kind {
            NodeKind::Scalar { text, style, tag } => self.scalar(node.position, path, text, *style, tag.as_deref()),
            NodeKind::Sequence(items) => {
                let values = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        let item_path = item_path(path, index);
                        self.index.insert_value(item_path.clone(), item.position);
                        self.convert(item, &item_path)
                    })
                    .collect();
                Value::Array(values)
            }
            NodeKind::Mapping(entries) => Value::Object(self.mapping(entries, path)),
            NodeKind::Alias => {
                self.reporter.error(
                    node.position,
                    path,
                    "YAML aliases (`*name`) are not supported; write the value out in full",
                );
                Value::Null
            }
        }
    }

    fn mapping(&mut self, entries: &[MappingEntry], path: &str) -> Map<String, Value> {
        let mut object = Map::new();
        for entry in entries {
            let key = match &entry.key.kind {
                NodeKind::Scalar { text, .. } => text.clone(),
                _ => {
                    self.reporter.error(entry.key.position, path, "mapping keys must be plain strings");
                    continue;
                }
            };
            let entry_path = child_path(path, &key);
            if self.index.has_key(&entry_path) {
                let first = self.index.key_position(&entry_path);
                self.reporter.error(
                    entry.key.position,
                    &entry_path,
                    format!("duplicate key `{key}` (first given at line {})", first.line),
                );
                continue;
            }
            self.index.insert_key(entry_path.clone(), entry.key.position);
            self.index.insert_value(entry_path.clone(), value_position(entry));
            let value = self.convert(&entry.value, &entry_path);
            object.insert(key, value);
        }
        object
    }

    fn scalar(&mut self, position: Position, path: &str, text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
        let keep_string = match tag.map(|tag| tag.strip_prefix(CORE_TAG_PREFIX).ok_or(tag)) {
            None => style == ScalarStyle::Quoted,
            Some(Ok("str") | Err("!")) => true,
            Some(Ok("int" | "float" | "bool" | "null")) => false,
            Some(Ok(core)) => {
                self.reporter.error(position, path, format!("YAML tag `!!{core}` is not supported here"));
                return Value::Null;
            }
            Some(Err(other)) => {
                self.reporter.error(position, path, format!("YAML tag `{other}` is not supported"));
                return Value::Null;
            }
        };
        let text = match env::expand(text, self.lookup) {
            Ok(text) => text,
            Err(message) => {
                self.reporter.error(position, path, message);
                return Value::Null;
            }
        };
        let text = match secret::resolve(&text, self.base, self.lookup) {
            None => text,
            Some(Ok(secret)) => {
                // A secret is a string, whatever it looks like.
                self.secrets.push(secret.clone());
                return Value::String(secret);
            }
            Some(Err(message)) => {
                self.reporter.error(position, path, message);
                return Value::Null;
            }
        };
        if keep_string {
            Value::String(text)
        } else {
            plain_scalar_value(text)
        }
    }
}

/// Where an entry's value is, or its key when the value is empty (`forward:` with nothing after).
fn value_position(entry: &MappingEntry) -> Position {
    match &entry.value.kind {
        NodeKind::Scalar { text, style: ScalarStyle::Plain, tag: None } if text.is_empty() => entry.key.position,
        _ => entry.value.position,
    }
}

/// Types an unquoted scalar as YAML 1.2's core schema does: null, bool, integer, float or string.
fn plain_scalar_value(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(number) = integer(&text) {
        return Value::Number(number);
    }
    if is_float_syntax(&text) {
        if let Some(number) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(number);
        }
    }
    Value::String(text)
}

/// Parses decimal (`-12`), hexadecimal (`0x1F`) and octal (`0o17`) integers.
fn integer(text: &str) -> Option<Number> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(Number::from);
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return u64::from_str_radix(octal, 8).ok().map(Number::from);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.starts_with('-') {
        text.parse::<i64>().ok().map(Number::from)
    } else {
        digits.parse::<u64>().ok().map(Number::from)
    }
}

/// Whether `text` is a YAML 1.2 core-schema float: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn is_float_syntax(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(cut) => (&unsigned[..cut], Some(&unsigned[cut + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match fraction {
        Some(fraction) => all_digits(whole) && all_digits(fraction) && !(whole.is_empty() && fraction.is_empty()),
        None => !whole.is_empty() && all_digits(whole),
    };
    let exponent_ok = match exponent {
        Some(exponent) => {
            let digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
            !digits.is_empty() && all_digits(digits)
        }
        None => true,
    };
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::source::parse_documents;

    fn convert(text: &str) -> (Value, PathIndex, Result<(), crate::ConfigErrors>) {
        let lookup = |name: &str| (name == "PORT").then(|| "9000".to_owned());
        let mut reporter = Reporter::new("test.yaml");
        let (value, index, _) = to_json(&parse_documents(text).unwrap(), &lookup, None, &mut reporter);
        (value, index, reporter.finish(()))
    }

    #[test]
    fn plain_scalars_are_typed_and_quoted_ones_are_strings() {
        let (value, _, result) = convert(
            "a: true\nb: 12\nc: -3\nd: 1.5\ne: ~\nf: null\ng: '12'\nh: \"true\"\ni: 5s\nj: 0x10\nk: .5\nl: 1e3\nm: !!str 7\nn: !!int '8'\n",
        );
        result.unwrap();
        assert_eq!(
            value,
            json!({"a": true, "b": 12, "c": -3, "d": 1.5, "e": null, "f": null, "g": "12", "h": "true",
                   "i": "5s", "j": 16, "k": 0.5, "l": 1000.0, "m": "7", "n": 8})
        );
    }

    #[test]
    fn plain_scalars_are_typed_after_expansion() {
        let (value, _, result) = convert("port: ${PORT}\nquoted: '${PORT}'\naddress: \"127.0.0.1:${PORT}\"\n");
        result.unwrap();
        assert_eq!(value, json!({"port": 9000, "quoted": "9000", "address": "127.0.0.1:9000"}));
    }

    #[test]
    fn index_records_keys_and_values() {
        let (_, index, result) = convert("top:\n  list:\n    - name: x\n      empty:\n");
        result.unwrap();
        assert_eq!(index.key_position("top.list"), Position::new(2, 3));
        assert_eq!(index.value_position("top.list[0]"), Position::new(3, 7));
        assert_eq!(index.value_position("top.list[0].name"), Position::new(3, 13));
        assert_eq!(index.value_position("top.list[0].empty"), Position::new(4, 7));
    }

    #[test]
    fn duplicates_aliases_and_extra_documents_are_errors() {
        let (_, _, result) = convert("a: &x 1\nb: *x\na: 2\n---\nc: 3\n");
        let errors = result.unwrap_err();
        let lines: Vec<_> = errors.iter().map(|error| (error.line, error.path.as_str())).collect();
        assert_eq!(lines, vec![(2, "b"), (3, "a"), (5, "")]);
        assert!(errors.0[1].message.contains("duplicate key `a` (first given at line 1)"));
    }

    #[test]
    fn unknown_tags_and_non_mapping_roots_are_errors() {
        let errors = convert("a: !!binary aGk=\nb: !custom x\n").2.unwrap_err();
        let messages: Vec<_> = errors.iter().map(|error| error.message.as_str()).collect();
        assert_eq!(messages, ["YAML tag `!!binary` is not supported here", "YAML tag `!custom` is not supported"]);
        let errors = convert("- a\n- b\n").2.unwrap_err();
        assert_eq!((errors.0[0].line, errors.0[0].column, errors.0[0].path.as_str()), (1, 1, ""));
    }

    #[test]
    fn empty_documents_are_empty_mappings() {
        assert_eq!(convert("").0, json!({}));
        assert_eq!(convert("~\n").0, json!({}));
    }

    #[test]
    fn float_syntax() {
        for yes in ["1.0", "-1.5", ".5", "1.", "1e5", "+2.5E-3"] {
            assert!(is_float_syntax(yes), "{yes}");
        }
        for no in ["", ".", "e5", "1e", "1.2.3", "1_0", "abc", "1.5s"] {
            assert!(!is_float_syntax(no), "{no}");
        }
    }
}
