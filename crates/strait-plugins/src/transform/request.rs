//! `request_transformer`: Kong's request-transformer. Edits the method, the path, the query
//! string, the headers and the fields of a JSON body of the request sent upstream.

use std::sync::Arc;

use http::uri::PathAndQuery;
use http::{request, Method, Uri};
use serde::Deserialize;
use strait_config::units::ByteSize;
use strait_http::registry::{prioritized, typed, BuildEnv};
use strait_http::{BodyFilter, Filter, FilterFactory, Flow, Phase, Phases, Plugin, PluginError, RequestCtx};

use super::body::{skip_reason, JsonBody};
use super::entries::EditLists;
use super::entries::JsonType;
use super::headers::HeaderOps;
use super::json_path::{JsonLists, JsonOps, TypedList};
use super::query::QueryOps;
use super::DEFAULT_MAX_BODY_SIZE;

// === config ===

/// A `remove` or `rename` section: names (`x-a`), or renames (`old:new`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestNames {
    /// Header names, or `old:new` header renames.
    pub headers: Vec<String>,
    /// Query parameter names, or `old:new` renames.
    pub querystring: Vec<String>,
    /// JSON body field paths (`user.name`), or `old:new` renames.
    pub json: Vec<String>,
}

/// An `add` or `append` section: `name:value` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestValues {
    /// `name:value` headers.
    pub headers: Vec<String>,
    /// `name:value` query parameters.
    pub querystring: Vec<String>,
    /// `field:value` JSON body fields (`user.name:Ann`).
    pub json: Vec<String>,
    /// The JSON type of each `json` entry, in order (`string` when missing).
    pub json_types: Vec<JsonType>,
}

/// The `replace` section: `name:value` entries, and a new path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestReplace {
    /// `name:value` headers, replaced when present.
    pub headers: Vec<String>,
    /// `name:value` query parameters, replaced when present.
    pub querystring: Vec<String>,
    /// `field:value` JSON body fields, replaced when present.
    pub json: Vec<String>,
    /// The JSON type of each `json` entry, in order (`string` when missing).
    pub json_types: Vec<JsonType>,
    /// The path sent upstream instead of the request's (the query string stays).
    pub uri: Option<String>,
}

/// The `config:` block of `request_transformer`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestTransformerConfig {
    /// The method sent upstream instead of the request's.
    pub http_method: Option<String>,
    /// Largest JSON body edited; a larger one passes unchanged.
    pub max_body_size: ByteSize,
    /// Removed first.
    pub remove: RequestNames,
    /// Renamed second.
    pub rename: RequestNames,
    /// Replaced third, when present.
    pub replace: RequestReplace,
    /// Added fourth, when absent.
    pub add: RequestValues,
    /// Appended last.
    pub append: RequestValues,
}

impl Default for RequestTransformerConfig {
    fn default() -> Self {
        RequestTransformerConfig {
            http_method: None,
            max_body_size: ByteSize(DEFAULT_MAX_BODY_SIZE),
            remove: RequestNames::default(),
            rename: RequestNames::default(),
            replace: RequestReplace::default(),
            add: RequestValues::default(),
            append: RequestValues::default(),
        }
    }
}

// === compiled plan ===

/// Everything one configured filter does, validated.
#[derive(Debug)]
struct RequestPlan {
    method: Option<Method>,
    path: Option<String>,
    headers: HeaderOps,
    query: QueryOps,
    json: Arc<JsonOps>,
    max_body_size: u64,
}

impl RequestPlan {
    /// Checks `config`; errors name the offending field.
    fn compile(config: &RequestTransformerConfig) -> Result<RequestPlan, PluginError> {
        let method = config.http_method.as_deref().map(method).transpose()?;
        let path = config.replace.uri.as_deref().map(path).transpose()?;
        let headers = HeaderOps::compile(EditLists {
            remove: &config.remove.headers,
            rename: &config.rename.headers,
            replace: &config.replace.headers,
            add: &config.add.headers,
            append: &config.append.headers,
        })?;
        let query = QueryOps::compile(EditLists {
            remove: &config.remove.querystring,
            rename: &config.rename.querystring,
            replace: &config.replace.querystring,
            add: &config.add.querystring,
            append: &config.append.querystring,
        })?;
        let json = JsonOps::compile(JsonLists {
            remove: &config.remove.json,
            rename: &config.rename.json,
            replace: TypedList { json: &config.replace.json, json_types: &config.replace.json_types },
            add: TypedList { json: &config.add.json, json_types: &config.add.json_types },
            append: TypedList { json: &config.append.json, json_types: &config.append.json_types },
        })?;
        Ok(RequestPlan { method, path, headers, query, json: Arc::new(json), max_body_size: config.max_body_size.0 })
    }

    /// The request's new URI, when the path or the query change.
    fn uri(&self, uri: &Uri) -> Option<Uri> {
        // `*` (OPTIONS) and authority-form targets (CONNECT) have no path to edit.
        if (self.path.is_none() && self.query.is_empty()) || !uri.path().starts_with('/') {
            return None;
        }
        let path = self.path.as_deref().unwrap_or(uri.path());
        let query = if self.query.is_empty() { uri.query().map(str::to_owned) } else { self.query.apply(uri.query()) };
        let target = match query {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(PathAndQuery::try_from(target).ok()?);
        Uri::from_parts(parts).ok()
    }
}

/// A valid upper-case method.
fn method(text: &str) -> Result<Method, PluginError> {
    let valid = !text.is_empty() && text.bytes().all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_');
    match Method::from_bytes(text.as_bytes()) {
        Ok(method) if valid => Ok(method),
        _ => Err(PluginError::at("http_method", format!("`{text}` is not an upper-case HTTP method (`POST`)"))),
    }
}

/// A path starting with `/`, without query or fragment.
fn path(text: &str) -> Result<String, PluginError> {
    let valid = text.starts_with('/') && !text.contains(['?', '#']) && PathAndQuery::try_from(text).is_ok();
    if !valid {
        return Err(PluginError::at(
            "replace.uri",
            format!("`{text}` is not a path: write one starting with `/`, without `?`"),
        ));
    }
    Ok(text.to_owned())
}

// === impl Filter ===

/// Factory of one configured `request_transformer`.
#[derive(Debug)]
pub struct RequestTransformerFactory {
    plan: Arc<RequestPlan>,
}

impl RequestTransformerFactory {
    /// Validates `config` into a factory.
    pub fn new(config: &RequestTransformerConfig) -> Result<RequestTransformerFactory, PluginError> {
        Ok(RequestTransformerFactory { plan: Arc::new(RequestPlan::compile(config)?) })
    }
}

impl FilterFactory for RequestTransformerFactory {
    fn name(&self) -> &'static str {
        "request_transformer"
    }

    fn phases(&self) -> Phases {
        match self.plan.json.is_empty() {
            true => Phases::REQUEST_HEADERS,
            false => Phases::REQUEST_HEADERS | Phases::REQUEST_BODY,
        }
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(RequestTransformer { plan: self.plan.clone(), edit_body: false })
    }
}

/// One request's filter; it learns from the headers whether the body is JSON to edit.
struct RequestTransformer {
    plan: Arc<RequestPlan>,
    edit_body: bool,
}

impl Filter for RequestTransformer {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, _ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        let plan = &self.plan;
        if let Some(method) = &plan.method {
            request.method = method.clone();
        }
        if let Some(uri) = plan.uri(&request.uri) {
            request.uri = uri;
        }
        plan.headers.apply(&mut request.headers);
        if !plan.json.is_empty() {
            match skip_reason(&request.headers) {
                None => self.edit_body = true,
                Some(why) => tracing::debug!("request body not transformed: {why}"),
            }
        }
        Phase::Ready(Flow::Continue)
    }

    fn request_body(&mut self, _ctx: &RequestCtx) -> Option<Box<dyn BodyFilter>> {
        let plan = &self.plan;
        self.edit_body.then(|| Box::new(JsonBody::new(plan.json.clone(), plan.max_body_size, "request")) as _)
    }
}

/// Kong's priority of `request-transformer`.
pub const PRIORITY: i32 = 801;

/// The `request_transformer` plugin, at Kong's priority.
pub fn request_transformer_plugin() -> impl Plugin {
    let plugin = typed("request_transformer", |config: RequestTransformerConfig, _env: &BuildEnv<'_>| {
        Ok(Arc::new(RequestTransformerFactory::new(&config)?) as Arc<dyn FilterFactory>)
    });
    prioritized(plugin, PRIORITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(config: RequestTransformerConfig) -> RequestPlan {
        RequestPlan::compile(&config).unwrap()
    }

    #[test]
    fn path_and_query_change_together() {
        let mut config = RequestTransformerConfig::default();
        config.replace.uri = Some("/v2/items".into());
        config.add.querystring = vec!["lang:en".into()];
        let plan = plan(config);
        let uri = plan.uri(&"/items?id=3".parse().unwrap()).unwrap();
        assert_eq!(uri, "/v2/items?id=3&lang=en");
        let uri = plan.uri(&"http://a.test/items".parse().unwrap()).unwrap();
        assert_eq!(uri, "http://a.test/v2/items?lang=en");
    }

    #[test]
    fn the_uri_stays_without_path_or_query_edits() {
        assert!(plan(RequestTransformerConfig::default()).uri(&"/a?b".parse().unwrap()).is_none());
    }

    #[test]
    fn bad_method_and_path_name_their_field() {
        let config = RequestTransformerConfig { http_method: Some("post".into()), ..Default::default() };
        assert_eq!(RequestPlan::compile(&config).unwrap_err().path, "http_method");
        let mut config = RequestTransformerConfig::default();
        config.replace.uri = Some("v2?x".into());
        assert_eq!(RequestPlan::compile(&config).unwrap_err().path, "replace.uri");
    }
}
