//! Header edits: `request_headers` (before the action) and `response_headers` (on every
//! response, Strait's own included, as nginx `add_header ... always`).
//!
//! ```yaml
//! filters:
//!   - name: response_headers
//!     config: { set: { strict-transport-security: "max-age=63072000" }, remove: [server] }
//! ```

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::{request, response, HeaderMap};
use strait_config::{header_edit_problems, HeaderEdits as EditsConfig};
use strait_http::registry::{typed, BuildEnv};
use strait_http::{Filter, FilterFactory, Flow, Phase, Phases, Plugin, PluginError, RequestCtx};

/// Compiled header edits: remove, then set (replace), then add (append).
#[derive(Debug, Default, Clone)]
pub struct HeaderEdits {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl HeaderEdits {
    /// Compiles configured edits; refuses invalid names and values, and the headers Strait
    /// manages itself (framing, connection, Host).
    pub fn compile(config: &EditsConfig) -> Result<HeaderEdits, PluginError> {
        if let Some((path, message)) = header_edit_problems(config).into_iter().next() {
            return Err(PluginError::at(path, message));
        }
        let pair = |(k, v): (&String, &String)| -> Result<(HeaderName, HeaderValue), PluginError> {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| PluginError::at(k, "invalid header name"))?;
            let value = HeaderValue::from_str(v).map_err(|_| PluginError::at(k, "invalid header value"))?;
            Ok((name, value))
        };
        Ok(HeaderEdits {
            set: config.set.iter().map(pair).collect::<Result<_, _>>()?,
            add: config.add.iter().map(pair).collect::<Result<_, _>>()?,
            remove: config
                .remove
                .iter()
                .map(|n| HeaderName::from_bytes(n.as_bytes()).map_err(|_| PluginError::at(n, "invalid header name")))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Applies the edits to a header map.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// Which side a header-edit filter changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// Factory of one configured header-edit filter; its filters share the compiled edits.
#[derive(Debug)]
pub struct HeaderEditsFactory {
    side: Side,
    edits: Arc<HeaderEdits>,
}

impl HeaderEditsFactory {
    /// Edits of request headers, before the action.
    pub fn request(edits: HeaderEdits) -> HeaderEditsFactory {
        HeaderEditsFactory { side: Side::Request, edits: Arc::new(edits) }
    }

    /// Edits of every response's headers.
    pub fn response(edits: HeaderEdits) -> HeaderEditsFactory {
        HeaderEditsFactory { side: Side::Response, edits: Arc::new(edits) }
    }
}

impl FilterFactory for HeaderEditsFactory {
    fn name(&self) -> &'static str {
        match self.side {
            Side::Request => "request_headers",
            Side::Response => "response_headers",
        }
    }

    fn phases(&self) -> Phases {
        match self.side {
            Side::Request => Phases::REQUEST_HEADERS,
            Side::Response => Phases::RESPONSE_HEADERS,
        }
    }

    fn create(&self) -> Box<dyn Filter> {
        Box::new(EditFilter(self.edits.clone()))
    }
}

/// The per-request filter: stateless, it applies the shared edits.
struct EditFilter(Arc<HeaderEdits>);

impl Filter for EditFilter {
    fn request_headers<'a>(&'a mut self, request: &'a mut request::Parts, _ctx: &'a mut RequestCtx) -> Phase<'a, Flow> {
        self.0.apply(&mut request.headers);
        Phase::Ready(Flow::Continue)
    }

    fn response_headers<'a>(
        &'a mut self,
        response: &'a mut response::Parts,
        _ctx: &'a mut RequestCtx,
    ) -> Phase<'a, ()> {
        self.0.apply(&mut response.headers);
        Phase::Ready(())
    }
}

/// The `request_headers` plugin.
pub fn request_headers_plugin() -> impl Plugin {
    typed("request_headers", |config: EditsConfig, _env: &BuildEnv<'_>| {
        Ok(Arc::new(HeaderEditsFactory::request(HeaderEdits::compile(&config)?)) as Arc<dyn FilterFactory>)
    })
}

/// The `response_headers` plugin.
pub fn response_headers_plugin() -> impl Plugin {
    typed("response_headers", |config: EditsConfig, _env: &BuildEnv<'_>| {
        Ok(Arc::new(HeaderEditsFactory::response(HeaderEdits::compile(&config)?)) as Arc<dyn FilterFactory>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_headers_are_refused_with_their_path() {
        let mut config = EditsConfig::default();
        config.set.insert("content-length".into(), "1".into());
        let error = HeaderEdits::compile(&config).unwrap_err();
        assert_eq!(error.path, "set.content-length");
        assert!(error.message.contains("managed"), "{}", error.message);
    }

    #[test]
    fn edits_apply_in_order() {
        let mut config = EditsConfig::default();
        config.remove.push("x-a".into());
        config.set.insert("x-b".into(), "2".into());
        config.add.insert("x-c".into(), "3".into());
        let edits = HeaderEdits::compile(&config).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("1"));
        headers.insert("x-b", HeaderValue::from_static("1"));
        edits.apply(&mut headers);
        assert!(headers.get("x-a").is_none());
        assert_eq!(headers["x-b"], "2");
        assert_eq!(headers["x-c"], "3");
    }
}
