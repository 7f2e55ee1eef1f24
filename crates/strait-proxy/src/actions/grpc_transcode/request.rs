//! The request message from the HTTP request: the JSON body (proto3 JSON mapping), then the
//! query parameters, then the path's variables (which win), each merged as protobuf.

use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use super::rules::{field_path, BodyRule};
use super::template::{decode, Bindings};

/// What the request gave: its body, its query and the path's variables.
pub(super) struct Inputs<'a> {
    /// The body as sent.
    pub(super) body: &'a [u8],
    /// The query string (still encoded).
    pub(super) query: &'a str,
    /// The path's variables.
    pub(super) variables: &'a Bindings,
    /// Query parameters that name no field are skipped instead of refused.
    pub(super) ignore_unknown_query: bool,
    /// The method takes a stream: a JSON array body is one message per element.
    pub(super) client_streaming: bool,
}

/// The request messages (one, or one per element of a streamed JSON array), or why the
/// request is not one (said to the client).
pub(super) fn messages(input: &MessageDescriptor, body: &BodyRule, given: &Inputs<'_>) -> Result<Vec<Vec<u8>>, String> {
    let json = match body {
        BodyRule::None => None,
        _ if given.body.iter().all(u8::is_ascii_whitespace) => None,
        _ => Some(serde_json::from_slice::<Value>(given.body).map_err(|e| format!("the body is not JSON: {e}"))?),
    };
    let bodies = match (json, body) {
        (None, _) => vec![None],
        (Some(Value::Array(items)), BodyRule::All) if given.client_streaming => items.into_iter().map(Some).collect(),
        (Some(json), BodyRule::Field(field)) => {
            let mut wrapped = Map::new();
            wrapped.insert(field.name().to_owned(), json);
            vec![Some(Value::Object(wrapped))]
        }
        (Some(json), _) => vec![Some(json)],
    };
    // Query and path fields, merged into every message.
    let mut extra = Vec::new();
    for pair in given.query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key, true);
        let names: Vec<String> = key.split('.').map(str::to_owned).collect();
        match field_update(input, &names, &decode(value, true)) {
            Ok(update) => extra.push(update),
            Err(Problem::Unknown(_)) if given.ignore_unknown_query => {}
            Err(Problem::Unknown(why) | Problem::Value(why)) => return Err(format!("query parameter `{key}`: {why}")),
        }
    }
    for (names, value) in given.variables {
        let update = field_update(input, names, value).map_err(|p| match p {
            Problem::Unknown(why) | Problem::Value(why) => format!("path field `{}`: {why}", names.join(".")),
        })?;
        extra.push(update);
    }
    let mut messages = Vec::with_capacity(bodies.len());
    for json in bodies {
        let mut bytes = match json {
            None => Vec::new(),
            Some(json) => {
                from_json(input, json).map_err(|e| format!("the body does not fit `{}`: {e}", input.full_name()))?
            }
        };
        for update in &extra {
            bytes.extend_from_slice(update);
        }
        messages.push(bytes);
    }
    Ok(messages)
}

/// Why a query or path field cannot be set.
enum Problem {
    /// It names no field.
    Unknown(String),
    /// Its value does not fit the field.
    Value(String),
}

/// The protobuf bytes that set field `names` of `input` to `text` (appending to a repeated
/// field): concatenated protobuf merges, so later updates win and lists grow.
fn field_update(input: &MessageDescriptor, names: &[String], text: &str) -> Result<Vec<u8>, Problem> {
    let fields = field_path(input, names).map_err(Problem::Unknown)?;
    let last = fields.last().expect("a field path has a field");
    if last.is_map() {
        return Err(Problem::Value("map fields cannot be set from the URL".into()));
    }
    let scalar = match last.kind() {
        Kind::Bool => Value::Bool(match text {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(Problem::Value(format!("`{text}` is not true or false"))),
        }),
        Kind::Message(message) if message.full_name() == "google.protobuf.BoolValue" => {
            Value::Bool(text == "true" || text == "1")
        }
        Kind::Message(message) if !is_string_shaped(message.full_name()) => {
            return Err(Problem::Value(format!(
                "message field of type `{}` cannot be set from the URL",
                message.full_name()
            )))
        }
        _ => Value::String(text.to_owned()),
    };
    let mut json = if last.is_list() { Value::Array(vec![scalar]) } else { scalar };
    for field in fields.iter().rev() {
        let mut object = Map::new();
        object.insert(field.name().to_owned(), json);
        json = Value::Object(object);
    }
    from_json(input, json).map_err(|e| Problem::Value(e.to_string()))
}

/// Well-known types whose JSON form is a string or a number written as one.
fn is_string_shaped(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
            | "google.protobuf.Int32Value"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.FloatValue"
            | "google.protobuf.DoubleValue"
    )
}

/// `json` as protobuf bytes of `message` (proto3 JSON mapping; unknown fields refused).
fn from_json(message: &MessageDescriptor, json: Value) -> Result<Vec<u8>, serde_json::Error> {
    let decoded = DynamicMessage::deserialize_with_options(message.clone(), json, &DeserializeOptions::new())?;
    Ok(decoded.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;

    /// The test service's descriptors (`tests/protos/library.proto`).
    fn pool() -> DescriptorPool {
        let protos = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/protos");
        let mut compiler = protox::Compiler::new([protos]).unwrap();
        compiler.open_file("library.proto").unwrap();
        compiler.descriptor_pool()
    }

    /// The request built for `GetBookRequest` (or `name`) as JSON with proto names.
    fn built(
        name: &str,
        body: &BodyRule,
        body_text: &str,
        query: &str,
        variables: &Bindings,
    ) -> Result<Vec<Value>, String> {
        let descriptor = pool().get_message_by_name(name).unwrap();
        let given = Inputs {
            body: body_text.as_bytes(),
            query,
            variables,
            ignore_unknown_query: false,
            client_streaming: true,
        };
        let messages = messages(&descriptor, body, &given)?;
        let options = prost_reflect::SerializeOptions::new().use_proto_field_name(true);
        Ok(messages
            .into_iter()
            .map(|bytes| {
                let message = DynamicMessage::decode(descriptor.clone(), bytes.as_slice()).unwrap();
                message.serialize_with_options(serde_json::value::Serializer, &options).unwrap()
            })
            .collect())
    }

    #[test]
    fn query_parameters_set_nested_repeated_bool_and_enum_fields() {
        let query = "filter.author=A+B&filter.min_pages=3&tags=x&tags=y%2Fz&drafts=true&genre=FICTION&book=9";
        let message = built("library.v1.GetBookRequest", &BodyRule::None, "", query, &Vec::new()).unwrap();
        assert_eq!(
            message[0],
            serde_json::json!({
                "book": "9", "filter": { "author": "A B", "min_pages": 3 },
                "tags": ["x", "y/z"], "drafts": true, "genre": "FICTION"
            })
        );
    }

    #[test]
    fn path_variables_win_over_query_and_body() {
        let variables = vec![(vec!["name".to_owned()], "shelves/1".to_owned())];
        let body = r#"{"name": "from body", "theme": "t"}"#;
        let message = built("library.v1.Shelf", &BodyRule::All, body, "name=from+query", &variables).unwrap();
        assert_eq!(message[0], serde_json::json!({ "name": "shelves/1", "theme": "t" }));
    }

    #[test]
    fn a_streamed_body_is_one_message_per_element() {
        let messages =
            built("library.v1.Shelf", &BodyRule::All, r#"[{"name": "a"}, {"name": "b"}]"#, "theme=q", &Vec::new());
        let messages = messages.unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1], serde_json::json!({ "name": "b", "theme": "q" }));
    }

    #[test]
    fn what_does_not_fit_is_explained() {
        let none = Vec::new();
        let get = "library.v1.GetBookRequest";
        let error = |query: &str| built(get, &BodyRule::None, "", query, &none).unwrap_err();
        assert!(error("colour=red").contains("`colour`"), "{}", error("colour=red"));
        assert!(error("drafts=maybe").contains("not true or false"));
        assert!(error("book=ten").starts_with("query parameter `book`"), "{}", error("book=ten"));
        assert!(error("filter=x").contains("cannot be set from the URL"), "{}", error("filter=x"));
        assert!(error("shelf.x=1").contains("not a message field"), "{}", error("shelf.x=1"));
        let body = built("library.v1.Shelf", &BodyRule::All, r#"{"name": 5"#, "", &none).unwrap_err();
        assert!(body.starts_with("the body is not JSON"), "{body}");
        let body = built("library.v1.Shelf", &BodyRule::All, r#"{"colour": "red"}"#, "", &none).unwrap_err();
        assert!(body.contains("does not fit `library.v1.Shelf`") && body.contains("colour"), "{body}");
    }
}
