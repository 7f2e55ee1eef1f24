//! REST to gRPC transcoding (Envoy's `grpc_json_transcoder`): a JSON request over HTTP is
//! matched to a method by its `google.api.http` rule (or called as `POST /pkg.Service/Method`),
//! turned into a protobuf message, sent to an HTTP/2 cluster as a gRPC call, and the answer
//! comes back as JSON with the gRPC status as the HTTP status.
//!
//! Module order: `template` (path templates) ← `rules` (bindings of a descriptor set) ←
//! `request` (the message from body, query and path); `response` (frames, JSON, statuses).

mod request;
mod response;
mod rules;
mod template;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{request as http_request, HeaderMap, Method, StatusCode};
use http_body::Body;
use prost_reflect::DescriptorPool;
use serde_json::Value;
use strait_config::{Config, ConfigError, GrpcTranscode, UpstreamProtocol};
use strait_http::{LocalResponse, Reason};

use crate::body::BodyError;
use crate::snapshot::Snapshot;
use crate::upstream::WholeResponse;
use response::Printer;
use rules::Rules;

/// `grpc-status` (on every transcoded answer, and read from the service's).
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`.
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// `grpc-status-details-bin`: a `google.rpc.Status` with typed details.
const GRPC_DETAILS: HeaderName = HeaderName::from_static("grpc-status-details-bin");
/// `grpc-timeout`.
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
/// Client fields named `grpc-metadata-NAME` are sent to the service as `NAME`; the service's
/// header metadata `NAME` comes back as `grpc-metadata-NAME` (grpc-gateway's convention).
const METADATA_PREFIX: &str = "grpc-metadata-";
/// `x-request-id`: sent as Strait recorded it (the client's only when trusted).
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Time for a call when the route sets no `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A compiled `grpc_transcode` action.
#[derive(Debug)]
pub struct TranscodePlan {
    cluster: String,
    pool: DescriptorPool,
    rules: Rules,
    printer: Printer,
    newline_delimited: bool,
    ignore_unknown_query: bool,
    pass_through_unmatched: bool,
    forward: Vec<HeaderName>,
    max_request: u64,
    max_response: u64,
}

/// The plans of every `grpc_transcode` route, by listener and route index; problems (an
/// unreadable descriptor set, an unknown service, a bad `google.api.http` rule, a cluster
/// that does not speak HTTP/2) are reported at their fields.
pub fn load_all(config: &Config) -> Result<HashMap<(usize, usize), TranscodePlan>, Vec<ConfigError>> {
    let base_dir = config.source.dir();
    let mut plans = HashMap::new();
    let mut errors = Vec::new();
    for (listener_index, listener) in config.listeners.iter().enumerate() {
        for (route_index, route) in listener.routes.iter().enumerate() {
            let Some(transcode) = &route.grpc_transcode else { continue };
            let path = format!("listeners[{listener_index}].routes[{route_index}].grpc_transcode");
            match TranscodePlan::load(config, transcode, &base_dir) {
                Ok(plan) => {
                    plans.insert((listener_index, route_index), plan);
                }
                Err(found) => {
                    errors.extend(
                        found
                            .into_iter()
                            .map(|(field, message)| config.source.error(&format!("{path}.{field}"), message)),
                    );
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors)
    }
}

impl TranscodePlan {
    /// Reads the descriptor set and compiles the bindings; errors by field (`descriptor_set`,
    /// `services[1]`, `cluster`).
    fn load(
        config: &Config,
        transcode: &GrpcTranscode,
        base_dir: &Path,
    ) -> Result<TranscodePlan, Vec<(String, String)>> {
        let protocol = config.clusters.iter().find(|c| c.name == transcode.cluster).map(|c| c.protocol);
        if protocol == Some(UpstreamProtocol::Http1) {
            let why = format!("cluster `{}` speaks HTTP/1.1; gRPC needs `protocol: http2`", transcode.cluster);
            return Err(vec![("cluster".into(), why)]);
        }
        let file = base_dir.join(&transcode.descriptor_set);
        let at_file = |message: String| vec![("descriptor_set".to_owned(), message)];
        let bytes = std::fs::read(&file)
            .map_err(|e| at_file(format!("cannot read descriptor set `{}`: {e}", file.display())))?;
        let pool = DescriptorPool::decode(bytes.as_slice()).map_err(|e| {
            at_file(format!(
                "`{}` is not a binary FileDescriptorSet (protoc --include_imports --descriptor_set_out): {e}",
                file.display()
            ))
        })?;
        let rules = Rules::compile(&pool, &transcode.services).map_err(|errors| {
            errors.into_iter().map(|(position, message)| (format!("services[{position}]"), message)).collect::<Vec<_>>()
        })?;
        let forward =
            transcode.forward_headers.iter().filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok()).collect();
        Ok(TranscodePlan {
            cluster: transcode.cluster.clone(),
            pool,
            rules,
            printer: Printer::new(&transcode.print_options),
            newline_delimited: transcode.print_options.stream_newline_delimited,
            ignore_unknown_query: transcode.ignore_unknown_query_parameters,
            pass_through_unmatched: transcode.pass_through_unmatched,
            forward,
            max_request: transcode.max_request_bytes.0,
            max_response: transcode.max_response_bytes.0,
        })
    }

    /// Whether the request is forwarded to the cluster as it is: a gRPC request, or one no
    /// binding matches when `pass_through_unmatched` is on.
    pub(crate) fn passes_through(&self, parts: &http_request::Parts) -> bool {
        crate::grpc::is_grpc(&parts.headers)
            || (self.pass_through_unmatched && self.rules.find(&parts.method, parts.uri.path()).is_none())
    }
}

/// What a call takes from the exchange besides the request: the route's `timeout` and the
/// request's id.
pub(crate) struct CallContext<'a> {
    /// The route's `timeout`.
    pub(crate) timeout: Option<Duration>,
    /// The exchange's `x-request-id`.
    pub(crate) request_id: Option<&'a HeaderValue>,
}

/// Transcodes one request: reads its body, calls the method its binding names within the
/// route's timeout, and answers with JSON.
pub(crate) async fn answer<B>(
    plan: &TranscodePlan,
    parts: &http_request::Parts,
    body: &mut B,
    context: CallContext<'_>,
    snapshot: &Snapshot,
) -> LocalResponse
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    let Some(matched) = plan.rules.find(&parts.method, parts.uri.path()) else {
        let why = format!("no method is bound to {} {}", parts.method, parts.uri.path());
        return plan.local_error(StatusCode::NOT_FOUND, 5, &why, Reason::NoRoute);
    };
    let data = match crate::body::collect(body, plan.max_request).await {
        Ok((data, _)) => data,
        Err(BodyError(reason)) => return LocalResponse::for_reason(reason),
    };
    let binding = matched.binding;
    let method = &binding.target.method;
    let inputs = request::Inputs {
        body: &data,
        query: parts.uri.query().unwrap_or(""),
        variables: &matched.variables,
        ignore_unknown_query: plan.ignore_unknown_query,
        client_streaming: method.is_client_streaming(),
    };
    let messages = match request::messages(&method.input(), &binding.body, &inputs) {
        Ok(messages) => messages,
        Err(why) => return plan.local_error(StatusCode::BAD_REQUEST, 3, &why, Reason::BadRequest),
    };
    let mut framed = Vec::with_capacity(messages.iter().map(|m| m.len() + 5).sum());
    for message in &messages {
        response::frame(message, &mut framed);
    }
    let limit = context.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut call = grpc_request(plan, parts, &binding.target.path, framed, limit);
    if let Some(id) = context.request_id.filter(|_| plan.forward.contains(&REQUEST_ID)) {
        call.headers_mut().insert(REQUEST_ID, id.clone());
    }
    let sent = std::time::Instant::now();
    match snapshot.subrequest(&plan.cluster, call, limit, plan.max_response).await {
        Ok(whole) if gave_up_at_deadline(&whole, sent.elapsed(), limit) => {
            LocalResponse::for_reason(Reason::UpstreamTimeout)
        }
        Ok(whole) => plan.translate(whole, binding),
        // The service's answer was over `max_response_bytes`: its fault, not the client's.
        Err(Reason::BodyTooLarge) => LocalResponse::for_reason(Reason::UpstreamBadResponse),
        Err(reason) => LocalResponse::for_reason(reason),
    }
}

/// Whether the service answered `CANCELLED` or `DEADLINE_EXCEEDED` once the deadline it was
/// sent (the route's timeout) had all but passed: that is the route's timeout, whichever side
/// noticed it first, and the client gets the same 504 either way.
fn gave_up_at_deadline(whole: &WholeResponse, elapsed: Duration, limit: Duration) -> bool {
    let status =
        whole.trailers.as_ref().and_then(|t| t.get("grpc-status")).or_else(|| whole.head.headers.get("grpc-status"));
    matches!(status.map(HeaderValue::as_bytes), Some(b"1" | b"4")) && elapsed + limit / 20 >= limit
}

/// The gRPC call: `POST /pkg.Service/Method` with the framed messages, the deadline and
/// the client's forwarded fields as metadata.
fn grpc_request(
    plan: &TranscodePlan,
    parts: &http_request::Parts,
    path: &http::uri::PathAndQuery,
    framed: Vec<u8>,
    limit: Duration,
) -> http::Request<Bytes> {
    let mut call = http::Request::new(Bytes::from(framed));
    *call.method_mut() = Method::POST;
    *call.uri_mut() = http::Uri::from(path.clone());
    let headers = call.headers_mut();
    for name in plan.forward.iter().filter(|name| **name != REQUEST_ID) {
        for value in parts.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    for (name, value) in &parts.headers {
        let Some(rest) = name.as_str().strip_prefix(METADATA_PREFIX) else { continue };
        if let Ok(name) = HeaderName::from_bytes(rest.as_bytes()) {
            if !is_reserved(&name) {
                headers.append(name, value.clone());
            }
        }
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    if let Ok(value) = HeaderValue::from_str(&format!("{}m", limit.as_millis().min(99_999_999))) {
        headers.insert(GRPC_TIMEOUT, value);
    }
    call
}

/// Fields never sent as metadata (named in `forward_headers` or through `grpc-metadata-`):
/// the call's own and the connection's.
fn is_reserved(name: &HeaderName) -> bool {
    name.as_str().starts_with("grpc-")
        || crate::h1::is_framing(name)
        || matches!(*name, header::CONTENT_TYPE | header::TE | header::HOST | header::CONNECTION | header::UPGRADE)
}

impl TranscodePlan {
    /// The service's answer as JSON, or its status as an HTTP error.
    fn translate(&self, whole: WholeResponse, binding: &rules::Binding) -> LocalResponse {
        let WholeResponse { head, body, trailers } = whole;
        let grpc = crate::grpc::is_grpc(&head.headers) || head.headers.contains_key(&GRPC_STATUS);
        if head.status != StatusCode::OK || !grpc {
            tracing::debug!(status = %head.status, "gRPC service answered with a non-gRPC response");
            return LocalResponse::for_reason(Reason::UpstreamBadResponse);
        }
        // A trailers-only answer carries its status in the head.
        let status_in: &HeaderMap = match &trailers {
            Some(trailers) if trailers.contains_key(&GRPC_STATUS) => trailers,
            _ => &head.headers,
        };
        let Some(code) = status_in.get(&GRPC_STATUS).and_then(|v| v.to_str().ok()?.parse::<u32>().ok()) else {
            return LocalResponse::for_reason(Reason::UpstreamBadResponse);
        };
        let raw_message = status_in.get(&GRPC_MESSAGE).cloned();
        let mut answer = if code != 0 {
            let message = raw_message.as_ref().map(|v| response::grpc_message(v.as_bytes())).unwrap_or_default();
            let details = status_in.get(&GRPC_DETAILS).map(HeaderValue::as_bytes);
            let body = response::error_body(code, &message, details, &self.pool, &self.printer);
            LocalResponse::new(response::http_status(code), "application/json", body)
        } else {
            match self.success(body, binding) {
                Some(answer) => answer,
                None => return LocalResponse::for_reason(Reason::UpstreamBadResponse),
            }
        };
        for (name, value) in &head.headers {
            if is_reserved(name) || *name == header::DATE {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(format!("{METADATA_PREFIX}{name}").as_bytes()) {
                answer.headers.append(name, value.clone());
            }
        }
        answer.headers.insert(GRPC_STATUS, HeaderValue::from(code));
        if let Some(message) = raw_message {
            answer.headers.insert(GRPC_MESSAGE, message);
        }
        answer
    }

    /// A successful answer's messages as JSON: one object, or for a server stream an array
    /// (or one object per line); `None` when the body is not what the method returns.
    fn success(&self, body: Bytes, binding: &rules::Binding) -> Option<LocalResponse> {
        let method = &binding.target.method;
        let output = method.output();
        let part = binding.response_body.as_ref();
        let mut values = Vec::new();
        for message in response::frames(body)? {
            match self.printer.json(&output, message, part) {
                Ok(value) => values.push(value),
                Err(error) => {
                    tracing::debug!(%error, "gRPC answer does not decode as {}", output.full_name());
                    return None;
                }
            }
        }
        if !method.is_server_streaming() {
            let value = (values.len() == 1).then(|| values.pop()).flatten()?;
            return Some(LocalResponse::new(StatusCode::OK, "application/json", self.printer.bytes(&value)));
        }
        if self.newline_delimited {
            let mut lines = Vec::new();
            for value in &values {
                lines.extend(serde_json::to_vec(value).unwrap_or_default());
                lines.push(b'\n');
            }
            return Some(LocalResponse::new(StatusCode::OK, "application/x-ndjson", lines));
        }
        Some(LocalResponse::new(StatusCode::OK, "application/json", self.printer.bytes(&Value::Array(values))))
    }

    /// An answer Strait makes itself, in the shape of the service's errors.
    fn local_error(&self, status: StatusCode, code: u32, message: &str, reason: Reason) -> LocalResponse {
        let body = response::error_body(code, message, None, &self.pool, &self.printer);
        let mut answer = LocalResponse::new(status, "application/json", body);
        answer.reason = Some(reason);
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: &'static str) -> WholeResponse {
        let mut head = http::Response::new(()).into_parts().0;
        head.headers.insert("grpc-status", HeaderValue::from_static(status));
        WholeResponse { head, body: Bytes::new(), trailers: None }
    }

    #[test]
    fn a_service_giving_up_at_its_deadline_is_the_routes_timeout() {
        let limit = Duration::from_millis(300);
        assert!(gave_up_at_deadline(&answer("1"), Duration::from_millis(301), limit));
        assert!(gave_up_at_deadline(&answer("4"), Duration::from_millis(290), limit));
        assert!(!gave_up_at_deadline(&answer("4"), Duration::from_millis(100), limit), "its own, earlier deadline");
        assert!(!gave_up_at_deadline(&answer("5"), Duration::from_millis(301), limit), "NOT_FOUND stays 404");
    }
}
