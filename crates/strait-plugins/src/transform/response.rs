//! `response_transformer`: Kong's response-transformer. Edits the headers and the fields of a
//! JSON body of every response, and may override its status.

use std::sync::Arc;

use http::{response, StatusCode};
use serde::Deserialize;
use strait_config::units::ByteSize;
use strait_http::context::ResponseLength;
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{BodyFilter, Filter, FilterFactory, Phase, Phases, Plugin, PluginError, RequestCtx};

use super::body::{skip_reason, JsonBody};
use super::entries::EditLists;
use super::entries::JsonType;
use super::headers::HeaderOps;
use super::json_path::{JsonLists, JsonOps, TypedList};
use super::DEFAULT_MAX_BODY_SIZE;

// === config ===

/// A `remove` or `rename` section: names (`x-a`), or renames (`old:new`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseNames {
    /// Header names, or `old:new` header renames.
    pub headers: Vec<String>,
    /// JSON body field paths (`user.name`), or `old:new` renames.
    pub json: Vec<String>,
}

/// A `replace`, `add` or `append` section: `name:value` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseValues {
    /// `name:value` headers.
    pub headers: Vec<String>,
    /// `field:value` JSON body fields (`user.name:Ann`).
    pub json: Vec<String>,
    /// The JSON type of each `json` entry, in order (`string` when missing).
    pub json_types: Vec<JsonType>,
}

/// The `config:` block of `response_transformer`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseTransformerConfig {
    /// The status sent instead of the response's.
    pub status_code: Option<u16>,
    /// Largest JSON body edited; a larger one passes unchanged.
    pub max_body_size: ByteSize,
    /// Removed first.
    pub remove: ResponseNames,
    /// Renamed second.
    pub rename: ResponseNames,
    /// Replaced third, when present.
    pub replace: ResponseValues,
    /// Added fourth, when absent.
    pub add: ResponseValues,
    /// Appended last.
    pub append: ResponseValues,
}

impl Default for ResponseTransformerConfig {
    fn default() -> Self {
        ResponseTransformerConfig {
            status_code: None,
            max_body_size: ByteSize(DEFAULT_MAX_BODY_SIZE),
            remove: ResponseNames::default(),
            rename: ResponseNames::default(),
            replace: ResponseValues::default(),
            add: ResponseValues::default(),
            append: ResponseValues::default(),
        }
    }
}

// === compiled plan ===

/// Everything one configured filter does, validated.
#[derive(Debug)]
struct ResponsePlan {
    status: Option<StatusCode>,
    headers: HeaderOps,
    json: Arc<JsonOps>,
    max_body_size: u64,
}

impl ResponsePlan {
    /// Checks `config`; errors name the offending field.
    fn compile(config: &ResponseTransformerConfig) -> Result<ResponsePlan, PluginError> {
        let status = match config.status_code {
            Some(code @ 200..=599) => StatusCode::from_u16(code).ok(),
            Some(code) => return Err(PluginError::at("status_code", format!("{code} is not between 200 and 599"))),
            None => None,
        };
        let headers = HeaderOps::compile(EditLists {
            remove: &config.remove.headers,
            rename: &config.rename.headers,
            replace: &config.replace.headers,
            add: &config.add.headers,
            append: &config.append.headers,
        })?;
        let json = JsonOps::compile(JsonLists {
            remove: &config.remove.json,
            rename: &config.rename.json,
            replace: TypedList { json: &config.replace.json, json_types: &config.replace.json_types },
            add: TypedList { json: &config.add.json, json_types: &config.add.json_types },
            append: TypedList { json: &config.append.json, json_types: &config.append.json_types },
        })?;
        Ok(ResponsePlan { status, headers, json: Arc::new(json), max_body_size: config.max_body_size.0 })
    }

    /// Why this response's body is not edited, if it is not.
    fn skip_body(&self, response: &response::Parts) -> Option<&'static str> {
        if let Some(why) = skip_reason(&response.headers) {
            return Some(why);
        }
        let length = response.extensions.get::<ResponseLength>().map(|length| length.0);
        length.is_some_and(|length| length > self.max_body_size).then_some("it exceeds max_body_size")
    }
}

// === impl Filter ===

/// Factory of one configured `response_transformer`.
#[derive(Debug)]
pub struct ResponseTransformerFactory {
    plan: Arc<ResponsePlan>,
}

impl ResponseTransformerFactory {
    /// Validates `config` into a factory.
    pub fn new(config: &ResponseTransformerConfig) -> Result<ResponseTransformerFactory, PluginError> {
        Ok(ResponseTransformerFactory { plan: Arc::new(ResponsePlan::compile(config)?) })
    }
}

impl FilterFactory for ResponseTransformerFactory {
    fn name(&self) -> &'static str {
        "response_transformer"
    }

    fn phases(&self) -> Phases {
        match self.plan.json.is_empty() {
            true => Phases::RESPONSE_HEADERS,
            false => Phases::RESPONSE_HEADERS | Phases::RESPONSE_BODY,
        }
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(ResponseTransformer { plan: self.plan.clone(), edit_body: false })
    }
}

/// One request's filter. Whether the body is edited is decided in the header phase, from the
/// response as this filter sees it: a filter that runs after it on the response (a compressor
/// with a higher priority) encodes what this one has edited.
struct ResponseTransformer {
    plan: Arc<ResponsePlan>,
    edit_body: bool,
}

impl Filter for ResponseTransformer {
    fn response_headers<'a>(
        &'a mut self,
        response: &'a mut response::Parts,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, ()> {
        let plan = &self.plan;
        if let Some(status) = plan.status {
            response.status = status;
        }
        plan.headers.apply(&mut response.headers);
        if !plan.json.is_empty() {
            match plan.skip_body(response) {
                None => self.edit_body = true,
                Some(why) => tracing::debug!("response body not transformed: {why}"),
            }
        }
        Phase::Ready(())
    }

    fn response_body(&mut self, _response: &response::Parts, _ctx: &RequestCtx) -> Option<Box<dyn BodyFilter>> {
        let plan = &self.plan;
        self.edit_body.then(|| Box::new(JsonBody::new(plan.json.clone(), plan.max_body_size, "response")) as _)
    }
}

/// Kong's priority of `response-transformer`.
pub const PRIORITY: i32 = 800;

/// The `response_transformer` plugin, at Kong's priority.
pub fn response_transformer_plugin() -> impl Plugin {
    let plugin = typed("response_transformer", |config: ResponseTransformerConfig, _env: &BuildEnv<'_>| {
        Ok(Arc::new(ResponseTransformerFactory::new(&config)?) as Arc<dyn FilterFactory>)
    });
    prioritized(plugin, PRIORITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderValue, CONTENT_TYPE};

    fn json_response(length: Option<u64>) -> response::Parts {
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(length) = length {
            parts.extensions.insert(ResponseLength(length));
        }
        parts
    }

    #[test]
    fn a_known_length_over_the_bound_skips_the_body() {
        let mut config = ResponseTransformerConfig { max_body_size: ByteSize(10), ..Default::default() };
        config.remove.json = vec!["a".into()];
        let plan = ResponsePlan::compile(&config).unwrap();
        assert_eq!(plan.skip_body(&json_response(Some(10))), None);
        assert_eq!(plan.skip_body(&json_response(None)), None);
        assert!(plan.skip_body(&json_response(Some(11))).is_some());
    }

    #[test]
    fn status_codes_outside_final_answers_are_refused() {
        let config = ResponseTransformerConfig { status_code: Some(101), ..Default::default() };
        assert_eq!(ResponsePlan::compile(&config).unwrap_err().path, "status_code");
    }
}
