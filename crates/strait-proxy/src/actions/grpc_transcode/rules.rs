//! The HTTP bindings of a service's methods, read from their `google.api.http` options
//! (`get`/`put`/`post`/`delete`/`patch`/`custom`, `body`, `response_body`,
//! `additional_bindings`), and the direct gRPC paths (`POST /pkg.Service/Method`).

use std::sync::Arc;

use http::Method;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, Value,
};

use super::template::{Bindings, Template};

/// The option that carries a method's HTTP rule.
const HTTP_OPTION: &str = "google.api.http";

/// A gRPC method and the path it is called at.
#[derive(Debug)]
pub(super) struct Target {
    /// Its descriptor (input, output, streaming).
    pub(super) method: MethodDescriptor,
    /// `/pkg.Service/Method`.
    pub(super) path: http::uri::PathAndQuery,
}

/// Where the request body goes.
#[derive(Debug, Clone)]
pub(super) enum BodyRule {
    /// Nowhere: every field comes from the path and the query.
    None,
    /// The whole request message (`body: "*"`).
    All,
    /// One top-level field (`body: "field"`).
    Field(FieldDescriptor),
}

/// One HTTP method and path template bound to a gRPC method.
#[derive(Debug)]
pub(super) struct Binding {
    method: Method,
    template: Template,
    /// Where the body goes.
    pub(super) body: BodyRule,
    /// The field of the answer written as the response body, instead of the whole message.
    pub(super) response_body: Option<FieldDescriptor>,
    /// The method called.
    pub(super) target: Arc<Target>,
}

/// A request matched to a binding.
pub(super) struct Matched<'a> {
    /// The binding.
    pub(super) binding: &'a Binding,
    /// The path's variables and their values.
    pub(super) variables: Bindings,
}

/// Every binding of some services, in the order they are tried.
#[derive(Debug)]
pub(super) struct Rules {
    /// `POST /pkg.Service/Method` for every method, tried first.
    direct: Vec<Binding>,
    /// The `google.api.http` bindings, in method and rule order.
    http: Vec<Binding>,
}

impl Rules {
    /// The bindings of `services` in `pool`; each error names the service or method at fault.
    pub(super) fn compile(pool: &DescriptorPool, services: &[String]) -> Result<Rules, Vec<(usize, String)>> {
        let mut rules = Rules { direct: Vec::new(), http: Vec::new() };
        let mut errors = Vec::new();
        let option = pool.get_extension_by_name(HTTP_OPTION);
        for (position, name) in services.iter().enumerate() {
            let Some(service) = pool.get_service_by_name(name) else {
                let known: Vec<String> = pool.services().map(|s| s.full_name().to_owned()).collect();
                let hint = if known.is_empty() {
                    "it has none".to_owned()
                } else {
                    format!("it has `{}`", known.join("`, `"))
                };
                errors.push((position, format!("service `{name}` is not in the descriptor set ({hint})")));
                continue;
            };
            for method in service.methods() {
                let path = format!("/{}/{}", service.full_name(), method.name());
                let path = path.parse().map_err(|_| vec![(position, format!("method path `{path}` is not a path"))])?;
                let target = Arc::new(Target { method: method.clone(), path });
                rules.direct.push(Binding {
                    method: Method::POST,
                    template: Template::parse(target.path.as_str()).map_err(|e| vec![(position, e)])?,
                    body: BodyRule::All,
                    response_body: None,
                    target: target.clone(),
                });
                let Some(option) = &option else { continue };
                let options = method.options();
                if !options.has_extension(option) {
                    continue;
                }
                let Value::Message(rule) = options.get_extension(option).into_owned() else { continue };
                let mut found = vec![rule.clone()];
                if let Some(more) = rule.get_field_by_name("additional_bindings") {
                    if let Value::List(more) = more.as_ref() {
                        found.extend(more.iter().filter_map(|v| v.as_message().cloned()));
                    }
                }
                for rule in found {
                    match binding(&rule, &target) {
                        Ok(Some(binding)) => rules.http.push(binding),
                        Ok(None) => {}
                        Err(error) => errors.push((position, format!("method `{}`: {error}", method.full_name()))),
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(rules)
        } else {
            Err(errors)
        }
    }

    /// The binding a request's method and path match, if any.
    pub(super) fn find(&self, method: &Method, path: &str) -> Option<Matched<'_>> {
        self.direct.iter().chain(&self.http).find_map(|binding| {
            if binding.method != *method {
                return None;
            }
            let variables = binding.template.matches(path)?;
            Some(Matched { binding, variables })
        })
    }
}

/// The binding one `HttpRule` describes; `None` for a rule with no pattern.
fn binding(rule: &DynamicMessage, target: &Arc<Target>) -> Result<Option<Binding>, String> {
    let text = |name: &str| match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
        _ => None,
    };
    let mut pattern = None;
    for (field, method) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if let Some(path) = text(field) {
            pattern = Some((method, path));
        }
    }
    if let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref() {
        let kind = custom.get_field_by_name("kind").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let path = custom.get_field_by_name("path").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        if !kind.is_empty() {
            let method =
                Method::from_bytes(kind.as_bytes()).map_err(|_| format!("custom method `{kind}` is not a method"))?;
            pattern = Some((method, path));
        }
    }
    let Some((method, path)) = pattern else { return Ok(None) };
    let template = Template::parse(&path)?;
    let input = target.method.input();
    for field in template.fields() {
        field_path(&input, field).map_err(|e| format!("path `{path}`: {e}"))?;
    }
    let body = match text("body").as_deref() {
        None => BodyRule::None,
        Some("*") => BodyRule::All,
        Some(name) => BodyRule::Field(
            input
                .get_field_by_name(name)
                .ok_or_else(|| format!("body `{name}` is not a field of `{}`", input.full_name()))?,
        ),
    };
    let output = target.method.output();
    let response_body = match text("response_body") {
        None => None,
        Some(name) => Some(
            output
                .get_field_by_name(&name)
                .ok_or_else(|| format!("response_body `{name}` is not a field of `{}`", output.full_name()))?,
        ),
    };
    Ok(Some(Binding { method, template, body, response_body, target: target.clone() }))
}

/// The fields a dotted path names, from `message` down; every field but the last must be a
/// singular message.
pub(super) fn field_path(message: &MessageDescriptor, names: &[String]) -> Result<Vec<FieldDescriptor>, String> {
    let mut fields = Vec::with_capacity(names.len());
    let mut current = message.clone();
    for (index, name) in names.iter().enumerate() {
        let field = current
            .get_field_by_name(name)
            .or_else(|| current.get_field_by_json_name(name))
            .ok_or_else(|| format!("`{}` is not a field of `{}`", names[..=index].join("."), message.full_name()))?;
        if index + 1 < names.len() {
            match field.kind() {
                Kind::Message(inner) if !field.is_list() && !field.is_map() => current = inner,
                _ => return Err(format!("`{}` is not a message field", names[..=index].join("."))),
            }
        }
        fields.push(field);
    }
    Ok(fields)
}
