//! The answer from the gRPC one: length-prefixed messages printed as JSON, and the gRPC
//! status (trailers, or a trailers-only head) as the HTTP status with a
//! `{"code", "message", "details"}` body, as grpc-gateway writes errors.

use base64::Engine;
use bytes::{Buf, Bytes};
use http::StatusCode;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, MessageDescriptor, SerializeOptions};
use serde_json::{Map, Value};
use strait_config::PrintOptions;

/// The length-prefixed messages of a gRPC body; `None` when it is not made of whole,
/// uncompressed frames.
pub(super) fn frames(mut body: Bytes) -> Option<Vec<Bytes>> {
    let mut messages = Vec::new();
    while !body.is_empty() {
        if body.len() < 5 || body[0] != 0 {
            return None;
        }
        let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        body.advance(5);
        if body.len() < length {
            return None;
        }
        messages.push(body.split_to(length));
    }
    Some(messages)
}

/// One message framed for gRPC: uncompressed, its length, its bytes.
pub(super) fn frame(message: &[u8], out: &mut Vec<u8>) {
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
}

/// How answers are printed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Printer {
    whitespace: bool,
    always_print_fields: bool,
    enums_as_ints: bool,
    proto_names: bool,
}

impl Printer {
    /// The printer `options` describe.
    pub(super) fn new(options: &PrintOptions) -> Printer {
        Printer {
            whitespace: options.add_whitespace,
            always_print_fields: options.always_print_primitive_fields,
            enums_as_ints: options.always_print_enums_as_ints,
            proto_names: options.preserve_proto_field_names,
        }
    }

    /// `message` (protobuf bytes of `descriptor`) as JSON, or only its field `part`.
    pub(super) fn json(
        &self,
        descriptor: &MessageDescriptor,
        message: Bytes,
        part: Option<&FieldDescriptor>,
    ) -> Result<Value, String> {
        let message = DynamicMessage::decode(descriptor.clone(), message).map_err(|e| e.to_string())?;
        let value = self.value(&message, self.always_print_fields)?;
        let Some(field) = part else { return Ok(value) };
        let key = if self.proto_names { field.name() } else { field.json_name() };
        match value.get(key) {
            Some(inner) => Ok(inner.clone()),
            // A field at its default was left out: printed with defaults to show it.
            None => Ok(self.value(&message, true)?.get(key).cloned().unwrap_or(Value::Null)),
        }
    }

    fn value(&self, message: &DynamicMessage, defaults: bool) -> Result<Value, String> {
        let options = SerializeOptions::new()
            .skip_default_fields(!defaults)
            .use_enum_numbers(self.enums_as_ints)
            .use_proto_field_name(self.proto_names);
        message.serialize_with_options(serde_json::value::Serializer, &options).map_err(|e| e.to_string())
    }

    /// `value` as bytes, indented when asked.
    pub(super) fn bytes(&self, value: &Value) -> Vec<u8> {
        let written = if self.whitespace { serde_json::to_vec_pretty(value) } else { serde_json::to_vec(value) };
        written.unwrap_or_default()
    }
}

/// The HTTP status for a gRPC status code (google.rpc.Code, as grpc-gateway maps it).
pub(super) fn http_status(code: u32) -> StatusCode {
    let status = match code {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    };
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Base64 with or without padding (gRPC implementations differ in `-bin` values).
const PADDED_OR_NOT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// `google.rpc.Status`, as sent base64-encoded in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    /// The gRPC status code.
    #[prost(int32, tag = "1")]
    code: i32,
    /// The message.
    #[prost(string, tag = "2")]
    message: String,
    /// Typed details.
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// The error body: `{"code": N, "message": "...", "details": [...]}`. Details whose type is
/// in the descriptor set are printed as JSON with their `@type`; others keep their bytes in
/// base64 under `value`.
pub(super) fn error_body(
    code: u32,
    message: &str,
    details: Option<&[u8]>,
    pool: &DescriptorPool,
    printer: &Printer,
) -> Vec<u8> {
    let mut listed = Vec::new();
    let status = details
        .and_then(|raw| PADDED_OR_NOT.decode(raw.trim_ascii_end()).ok())
        .and_then(|raw| RpcStatus::decode(raw.as_slice()).ok());
    for any in status.map(|s| s.details).unwrap_or_default() {
        let name = any.type_url.rsplit('/').next().unwrap_or_default();
        let typed = pool
            .get_message_by_name(name)
            .and_then(|descriptor| printer.json(&descriptor, Bytes::from(any.value.clone()), None).ok());
        let mut object = match typed {
            Some(Value::Object(fields)) => fields,
            _ => {
                let mut raw = Map::new();
                raw.insert("value".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(&any.value)));
                raw
            }
        };
        object.insert("@type".into(), Value::String(any.type_url.clone()));
        listed.push(Value::Object(object));
    }
    let mut body = Map::new();
    body.insert("code".into(), Value::from(code));
    body.insert("message".into(), Value::String(message.to_owned()));
    body.insert("details".into(), Value::Array(listed));
    printer.bytes(&Value::Object(body))
}

/// A `grpc-message` value decoded (`%XX` escapes, RFC 3986 percent-encoding).
pub(super) fn grpc_message(raw: &[u8]) -> String {
    super::template::percent_decode(&String::from_utf8_lossy(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_refuse_what_is_not_whole() {
        let mut body = Vec::new();
        frame(b"ab", &mut body);
        frame(b"", &mut body);
        frame(b"xyz", &mut body);
        let split = frames(Bytes::from(body.clone())).unwrap();
        assert_eq!(split, [Bytes::from_static(b"ab"), Bytes::new(), Bytes::from_static(b"xyz")]);
        assert!(frames(Bytes::from(body[..body.len() - 1].to_vec())).is_none());
        assert!(frames(Bytes::from_static(b"\x01\0\0\0\0")).is_none(), "compressed");
        assert_eq!(frames(Bytes::new()), Some(vec![]));
    }

    #[test]
    fn grpc_codes_map_to_http_statuses() {
        for (code, status) in [
            (0, 200),
            (1, 499),
            (2, 500),
            (3, 400),
            (4, 504),
            (5, 404),
            (6, 409),
            (7, 403),
            (8, 429),
            (9, 400),
            (10, 409),
            (11, 400),
            (12, 501),
            (13, 500),
            (14, 503),
            (15, 500),
            (16, 401),
            (99, 500),
        ] {
            assert_eq!(http_status(code).as_u16(), status, "grpc code {code}");
        }
    }

    #[test]
    fn details_without_a_known_type_keep_their_bytes() {
        let status = RpcStatus {
            code: 5,
            message: "gone".into(),
            details: vec![prost_types::Any { type_url: "type.googleapis.com/x.Unknown".into(), value: vec![1, 2] }],
        };
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD.encode(status.encode_to_vec());
        let printer = Printer::new(&PrintOptions::default());
        let body = error_body(5, "gone", Some(raw.as_bytes()), &DescriptorPool::new(), &printer);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], 5);
        assert_eq!(body["message"], "gone");
        assert_eq!(body["details"][0]["@type"], "type.googleapis.com/x.Unknown");
        assert_eq!(body["details"][0]["value"], "AQI=");
        assert_eq!(grpc_message(b"not%20found%3A%20x"), "not found: x");
    }
}
