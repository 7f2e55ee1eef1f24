//! Response aggregation: one request answered by calling several clusters (at once, or one
//! after another when later calls use earlier answers) and merging their JSON under keys.
//!
//! The answer is `200` with `{ "<key>": <answer>, ... }`: a JSON answer as it is, any other
//! body as a string. A call that fails (no answer in time, an error status, no healthy
//! endpoint) fails the whole request with its reason when it is `required`; otherwise its key
//! is `null`, and `_errors` in the body and `x-strait-partial` in the headers name it.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{request, Method, StatusCode};
use serde_json::{Map, Value};
use strait_config::{Aggregate, AggregateMode};
use strait_http::{LocalResponse, Reason, Subrequests};

/// `x-strait-partial`: the keys of the calls that failed, when the answer is partial.
const PARTIAL: HeaderName = HeaderName::from_static("x-strait-partial");
/// `x-strait-failed-call`: the key of the required call that failed the request.
const FAILED_CALL: HeaderName = HeaderName::from_static("x-strait-failed-call");

/// A compiled `aggregate` action.
#[derive(Debug)]
pub struct AggregatePlan {
    sequence: bool,
    calls: Vec<CallPlan>,
}

/// One call of an aggregation.
#[derive(Debug)]
struct CallPlan {
    key: String,
    cluster: String,
    path: Vec<Segment>,
    method: Method,
    timeout: Duration,
    required: bool,
    forward: Vec<HeaderName>,
}

/// A piece of a call's path template.
#[derive(Debug, PartialEq)]
enum Segment {
    Text(String),
    /// The client's query parameter, as it was written.
    Query(String),
    /// A field of an earlier call's answer: its key, then the field names.
    Field(String, Vec<String>),
}

/// Why one call gave no answer.
#[derive(Debug, Clone, Copy)]
struct CallError {
    reason: Reason,
    /// The upstream's status, when it answered with an error.
    status: Option<StatusCode>,
}

impl AggregatePlan {
    /// Compiles a validated `aggregate` action.
    pub fn compile(aggregate: &Aggregate) -> Result<AggregatePlan, String> {
        let mut calls = Vec::with_capacity(aggregate.calls.len());
        for call in &aggregate.calls {
            let method =
                Method::from_bytes(call.method.as_bytes()).map_err(|_| format!("bad method `{}`", call.method))?;
            let forward = call
                .forward_headers
                .iter()
                .map(|name| HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("bad header `{name}`")))
                .collect::<Result<_, _>>()?;
            calls.push(CallPlan {
                key: call.key.clone(),
                cluster: call.cluster.clone(),
                path: template(&call.path)?,
                method,
                timeout: call.timeout.0,
                required: call.required,
                forward,
            });
        }
        Ok(AggregatePlan { sequence: aggregate.mode == AggregateMode::Sequence, calls })
    }
}

/// Splits a path into text and placeholders.
fn template(path: &str) -> Result<Vec<Segment>, String> {
    let names = strait_config::aggregate_placeholders(path)?;
    let mut segments = Vec::new();
    let mut rest = path;
    for name in names {
        let open = rest.find('{').expect("placeholders were found");
        if open > 0 {
            segments.push(Segment::Text(rest[..open].to_owned()));
        }
        let mut parts = name.split('.').map(str::to_owned);
        let source = parts.next().unwrap_or_default();
        let fields: Vec<String> = parts.collect();
        segments.push(match source.as_str() {
            "query" if fields.len() == 1 => Segment::Query(fields[0].clone()),
            _ => Segment::Field(source, fields),
        });
        rest = &rest[open + name.len() + 2..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest.to_owned()));
    }
    Ok(segments)
}

/// Runs the calls of `plan` for the client's request `parts` and merges their answers.
pub async fn answer(plan: &AggregatePlan, parts: &request::Parts, subrequests: &dyn Subrequests) -> LocalResponse {
    let mut results: Vec<Result<Value, CallError>> = Vec::with_capacity(plan.calls.len());
    if plan.sequence {
        for call in &plan.calls {
            let result = match path_for(call, parts, &plan.calls, &results) {
                Ok(path) => send(call, path, parts, subrequests).await,
                Err(error) => Err(error),
            };
            let failed_required = call.required && result.is_err();
            results.push(result);
            if failed_required {
                // The request fails with it: later calls are not made.
                break;
            }
        }
    } else {
        let calls = plan.calls.iter().map(|call| async {
            let path = path_for(call, parts, &[], &[])?;
            send(call, path, parts, subrequests).await
        });
        results = join_all(calls.collect()).await;
    }
    merge(&plan.calls, results)
}

/// Runs `futures` at once on this task; their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|output| output.expect("every future finished")).collect()
}

/// The path and query of `call`, placeholders filled from the client's query and from the
/// answers of the earlier calls (`calls[..results.len()]`).
fn path_for(
    call: &CallPlan,
    parts: &request::Parts,
    calls: &[CallPlan],
    results: &[Result<Value, CallError>],
) -> Result<String, CallError> {
    let mut path = String::new();
    for segment in &call.path {
        match segment {
            Segment::Text(text) => path.push_str(text),
            Segment::Query(name) => {
                // Decoded, then encoded again: a client's `/`, `?` or `..` stays inside the
                // placeholder and cannot choose another path of the cluster.
                let raw = query_value(parts.uri.query().unwrap_or(""), name).unwrap_or("");
                percent_encode_into(&percent_decode(raw), &mut path);
            }
            Segment::Field(key, fields) => {
                let earlier = calls.iter().position(|c| &c.key == key).and_then(|i| results.get(i));
                // An earlier call that failed leaves nothing to build this one from.
                let Some(Ok(answer)) = earlier else {
                    return Err(CallError { reason: Reason::UpstreamBadResponse, status: None });
                };
                let value = fields.iter().try_fold(answer, |value, field| match value {
                    Value::Array(items) => field.parse::<usize>().ok().and_then(|i| items.get(i)),
                    other => other.get(field),
                });
                let text = match value {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Number(number)) => number.to_string(),
                    Some(Value::Bool(flag)) => flag.to_string(),
                    _ => return Err(CallError { reason: Reason::UpstreamBadResponse, status: None }),
                };
                percent_encode_into(&text, &mut path);
            }
        }
    }
    Ok(path)
}

/// The raw value of query parameter `name` in `query`.
fn query_value<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// A query value with `%XX` escapes and `+` decoded (invalid UTF-8 is replaced).
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (byte, _, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends `text` percent-encoded: only unreserved characters stay as they are.
fn percent_encode_into(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// Makes one call and reads its answer: JSON as it is, any other body as a string.
async fn send(
    call: &CallPlan,
    path: String,
    parts: &request::Parts,
    subrequests: &dyn Subrequests,
) -> Result<Value, CallError> {
    let mut request = http::Request::new(Bytes::new());
    *request.method_mut() = call.method.clone();
    *request.uri_mut() = path.parse().map_err(|_| CallError { reason: Reason::BadRequest, status: None })?;
    let headers = request.headers_mut();
    for name in &call.forward {
        for value in parts.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let response = subrequests
        .send(&call.cluster, request, call.timeout)
        .await
        .map_err(|reason| CallError { reason, status: None })?;
    let status = response.status();
    if !status.is_success() {
        return Err(CallError { reason: Reason::UpstreamBadResponse, status: Some(status) });
    }
    let body = response.into_body();
    Ok(serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())))
}

/// The merged answer, or the failure of the first required call that failed.
fn merge(calls: &[CallPlan], results: Vec<Result<Value, CallError>>) -> LocalResponse {
    let mut merged = Map::with_capacity(calls.len());
    let mut errors = Map::new();
    for (call, result) in calls.iter().zip(results) {
        match result {
            Ok(value) => {
                merged.insert(call.key.clone(), value);
            }
            Err(error) if call.required => {
                let mut answer = LocalResponse::for_reason(error.reason);
                if let Ok(key) = HeaderValue::from_str(&call.key) {
                    answer.headers.insert(FAILED_CALL, key);
                }
                return answer;
            }
            Err(error) => {
                merged.insert(call.key.clone(), Value::Null);
                let mut detail = Map::new();
                detail.insert("reason".into(), Value::String(error.reason.code().into()));
                if let Some(status) = error.status {
                    detail.insert("status".into(), Value::from(status.as_u16()));
                }
                errors.insert(call.key.clone(), Value::Object(detail));
            }
        }
    }
    let partial: Vec<String> = errors.keys().cloned().collect();
    if !errors.is_empty() {
        merged.insert("_errors".into(), Value::Object(errors));
    }
    let body = serde_json::to_vec(&Value::Object(merged)).unwrap_or_default();
    let mut answer = LocalResponse::new(StatusCode::OK, "application/json", body);
    if let Ok(keys) = HeaderValue::from_str(&partial.join(", ")) {
        if !partial.is_empty() {
            answer.headers.insert(PARTIAL, keys);
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_into_text_query_and_fields() {
        let segments = template("/users/{user.id}/orders?limit={query.limit}").unwrap();
        assert_eq!(
            segments,
            [
                Segment::Text("/users/".into()),
                Segment::Field("user".into(), vec!["id".into()]),
                Segment::Text("/orders?limit=".into()),
                Segment::Query("limit".into()),
            ]
        );
    }

    #[test]
    fn field_values_are_percent_encoded() {
        let mut out = String::new();
        percent_encode_into("a b/c?d", &mut out);
        assert_eq!(out, "a%20b%2Fc%3Fd");
        let mut query = String::new();
        percent_encode_into(&percent_decode("..%2F..%2Fadmin/x+y%zz"), &mut query);
        assert_eq!(query, "..%2F..%2Fadmin%2Fx%20y%25zz");
        assert_eq!(query_value("a=1&limit=5&b", "limit"), Some("5"));
        assert_eq!(query_value("a=1", "limit"), None);
    }
}
