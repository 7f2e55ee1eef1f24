//! The JSON body filter: holds the body back up to a bound, then edits and re-serializes it
//! at its end. A body over the bound, or one that does not parse, passes unchanged.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderMap, CONTENT_ENCODING, CONTENT_TYPE};
use strait_http::{BodyFilter, BodyStep, Phase};

use super::json_path::JsonOps;

/// Why a body is not edited, when its headers already tell; `None` when it may be.
pub(crate) fn skip_reason(headers: &HeaderMap) -> Option<&'static str> {
    let media_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|v| v.split(';').next().unwrap_or(""));
    if !media_type.is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")) {
        return Some("its content type is not application/json");
    }
    let encoded = headers.get_all(CONTENT_ENCODING).iter().any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    encoded.then_some("it has a content encoding")
}

/// One body on its way through the JSON edits.
pub(crate) struct JsonBody {
    ops: Arc<JsonOps>,
    limit: usize,
    /// Which body this is, for the logs: `request` or `response`.
    side: &'static str,
    /// What is held back so far; `None` once the body passes through unchanged.
    held: Option<Vec<u8>>,
}

impl JsonBody {
    /// A body edited by `ops` if it ends within `limit` bytes.
    pub(crate) fn new(ops: Arc<JsonOps>, limit: u64, side: &'static str) -> JsonBody {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        JsonBody { ops, limit, side, held: Some(Vec::new()) }
    }

    /// Takes `chunk`; returns what to pass on now.
    fn take(&mut self, chunk: Bytes, end: bool) -> Bytes {
        let Some(held) = &mut self.held else { return chunk };
        if held.len() + chunk.len() > self.limit {
            tracing::debug!(
                body = self.side,
                limit = self.limit,
                "JSON body not transformed: it exceeds max_body_size"
            );
            let mut out = std::mem::take(held);
            out.extend_from_slice(&chunk);
            self.held = None;
            return Bytes::from(out);
        }
        held.extend_from_slice(&chunk);
        if !end {
            return Bytes::new();
        }
        let original = self.held.take().unwrap_or_default();
        match edited(&self.ops, &original) {
            Ok(Some(out)) => Bytes::from(out),
            // Nothing to edit: the body keeps its bytes (its key order, its spacing).
            Ok(None) => Bytes::from(original),
            Err(error) => {
                tracing::debug!(body = self.side, %error, "JSON body not transformed: it does not parse");
                Bytes::from(original)
            }
        }
    }
}

/// `body` parsed, edited and serialized again; `None` when no edit applied to it.
fn edited(ops: &JsonOps, body: &[u8]) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_slice(body)?;
    if !ops.apply(&mut value) {
        return Ok(None);
    }
    serde_json::to_vec(&value).map(Some)
}

impl BodyFilter for JsonBody {
    fn chunk(mut self: Box<Self>, chunk: Bytes, end: bool) -> BodyStep {
        let out = self.take(chunk, end);
        Phase::Ready((self, Ok(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    use crate::transform::entries::JsonType;
    use crate::transform::json_path::{JsonLists, TypedList};

    fn remove_secret() -> Arc<JsonOps> {
        let remove = vec!["secret".to_owned()];
        let none = TypedList { json: &[], json_types: &[] as &[JsonType] };
        Arc::new(
            JsonOps::compile(JsonLists { remove: &remove, rename: &[], replace: none, add: none, append: none })
                .unwrap(),
        )
    }

    fn run(mut body: JsonBody, chunks: &[&str]) -> String {
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            out.extend_from_slice(&body.take(Bytes::from(chunk.to_string()), i + 1 == chunks.len()));
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_json_body_is_edited_at_its_end() {
        let body = JsonBody::new(remove_secret(), 1024, "response");
        assert_eq!(run(body, &[r#"{"id":1,"#, r#""secret":"s"}"#]), r#"{"id":1}"#);
        let untouched = r#"{ "z": 1, "a": 2 }"#;
        assert_eq!(run(JsonBody::new(remove_secret(), 1024, "response"), &[untouched]), untouched);
    }

    #[test]
    fn bodies_over_the_bound_or_malformed_pass_unchanged() {
        let big = r#"{"secret":"a long enough value"}"#;
        assert_eq!(run(JsonBody::new(remove_secret(), 10, "request"), &[&big[..8], &big[8..]]), big);
        assert_eq!(run(JsonBody::new(remove_secret(), 1024, "request"), &["{\"secret\":", "}"]), "{\"secret\":}");
    }

    #[test]
    fn only_unencoded_application_json_is_edited() {
        let mut headers = HeaderMap::new();
        assert!(skip_reason(&headers).is_some());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("Application/JSON; charset=utf-8"));
        assert_eq!(skip_reason(&headers), None);
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(skip_reason(&headers).is_some());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.remove(CONTENT_ENCODING);
        assert!(skip_reason(&headers).is_some());
    }
}
