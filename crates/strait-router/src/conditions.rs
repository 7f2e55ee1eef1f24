//! Method, header and query conditions, checked once a route's host and path matched.

use http::header::HeaderName;
use http::{HeaderMap, Method};
use regex::bytes::Regex;
use strait_config::{RouteMatch, ValueMatch};

use crate::query;
use crate::RequestView;

/// A route's conditions other than host and path.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    methods: Vec<Method>,
    headers: Vec<(HeaderName, ValueTest)>,
    query: Vec<(Box<str>, ValueTest)>,
}

/// What a header or query parameter must satisfy.
#[derive(Debug)]
enum ValueTest {
    /// Present, with any value.
    Present,
    /// Absent.
    Absent,
    /// Some value equals this.
    Exact(Box<[u8]>),
    /// Some value matches this anchored expression.
    Regex(Regex),
}

impl ValueTest {
    fn compile(condition: &ValueMatch, kind: &str) -> Result<ValueTest, String> {
        let name = &condition.name;
        let test = match (&condition.exact, &condition.regex, condition.present) {
            (None, None, None | Some(true)) => ValueTest::Present,
            (None, None, Some(false)) => ValueTest::Absent,
            (Some(exact), None, None | Some(true)) => ValueTest::Exact(exact.as_bytes().into()),
            (None, Some(pattern), None | Some(true)) => {
                let regex = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("invalid regex {pattern:?} for {kind} {name:?}: {e}"))?;
                ValueTest::Regex(regex)
            }
            _ => return Err(format!("{kind} condition {name:?} sets more than one of exact, regex and present")),
        };
        Ok(test)
    }

    fn holds_for_header(&self, headers: &HeaderMap, name: &HeaderName) -> bool {
        match self {
            ValueTest::Present => headers.contains_key(name),
            ValueTest::Absent => !headers.contains_key(name),
            ValueTest::Exact(expected) => headers.get_all(name).iter().any(|v| v.as_bytes() == &**expected),
            ValueTest::Regex(regex) => headers.get_all(name).iter().any(|v| regex.is_match(v.as_bytes())),
        }
    }

    fn holds_for_query(&self, raw_query: Option<&str>, name: &str) -> bool {
        let mut values = query::params(raw_query.unwrap_or("")).filter(|param| param.name_is(name.as_bytes()));
        match self {
            ValueTest::Present => values.next().is_some(),
            ValueTest::Absent => values.next().is_none(),
            ValueTest::Exact(expected) => values.any(|param| param.value_is(expected)),
            ValueTest::Regex(regex) => values.any(|param| regex.is_match(&param.value())),
        }
    }
}

impl Conditions {
    /// Compiles the method, header and query conditions of `route`.
    pub(crate) fn compile(route: &RouteMatch) -> Result<Conditions, String> {
        let methods = route
            .methods
            .iter()
            .map(|method| Method::from_bytes(method.as_bytes()).map_err(|_| format!("invalid method {method:?}")))
            .collect::<Result<_, _>>()?;
        let headers = route
            .headers
            .iter()
            .map(|condition| {
                let name = HeaderName::from_bytes(condition.name.as_bytes())
                    .map_err(|_| format!("invalid header name {:?}", condition.name))?;
                Ok((name, ValueTest::compile(condition, "header")?))
            })
            .collect::<Result<_, String>>()?;
        let query = route
            .query
            .iter()
            .map(|condition| {
                if condition.name.is_empty() {
                    return Err("empty query parameter name".to_string());
                }
                Ok((condition.name.as_str().into(), ValueTest::compile(condition, "query")?))
            })
            .collect::<Result<_, String>>()?;
        Ok(Conditions { methods, headers, query })
    }

    /// How many conditions there are: the method list counts as one, each header and query
    /// condition as one. Routes with more are tried first.
    pub(crate) fn count(&self) -> usize {
        usize::from(!self.methods.is_empty()) + self.headers.len() + self.query.len()
    }

    /// Whether `request` meets every condition.
    pub(crate) fn hold_for(&self, request: &RequestView<'_>) -> bool {
        (self.methods.is_empty() || self.methods.contains(request.method))
            && self.headers.iter().all(|(name, test)| test.holds_for_header(request.headers, name))
            && self.query.iter().all(|(name, test)| test.holds_for_query(request.query, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn value(name: &str, exact: Option<&str>, regex: Option<&str>, present: Option<bool>) -> ValueMatch {
        ValueMatch { name: name.into(), exact: exact.map(Into::into), regex: regex.map(Into::into), present }
    }

    fn check(conditions: &Conditions, method: &Method, headers: &HeaderMap, query: Option<&str>) -> bool {
        conditions.hold_for(&RequestView { host: "h", path: "/", query, method, headers })
    }

    #[test]
    fn methods_match_any_listed() {
        let route = RouteMatch { methods: vec!["GET".into(), "POST".into()], ..Default::default() };
        let conditions = Conditions::compile(&route).unwrap();
        let headers = HeaderMap::new();
        assert!(check(&conditions, &Method::GET, &headers, None));
        assert!(check(&conditions, &Method::POST, &headers, None));
        assert!(!check(&conditions, &Method::PUT, &headers, None));
        let lower_get = Method::from_bytes(b"get").unwrap();
        assert!(!check(&conditions, &lower_get, &headers, None));
        assert_eq!(conditions.count(), 1);
    }

    #[test]
    fn header_operators() {
        let route = RouteMatch {
            headers: vec![
                value("X-Env", Some("canary"), None, None),
                value("x-user", None, Some("[0-9]+"), None),
                value("x-debug", None, None, Some(false)),
                value("x-trace", None, None, None),
            ],
            ..Default::default()
        };
        let conditions = Conditions::compile(&route).unwrap();
        assert_eq!(conditions.count(), 4);
        let mut headers = HeaderMap::new();
        headers.append("x-env", HeaderValue::from_static("stable"));
        headers.append("x-env", HeaderValue::from_static("canary"));
        headers.insert("x-user", HeaderValue::from_static("42"));
        headers.insert("x-trace", HeaderValue::from_static(""));
        assert!(check(&conditions, &Method::GET, &headers, None));

        let mut partial_regex = headers.clone();
        partial_regex.insert("x-user", HeaderValue::from_static("42a"));
        assert!(!check(&conditions, &Method::GET, &partial_regex, None));

        let mut debug = headers.clone();
        debug.insert("x-debug", HeaderValue::from_static("1"));
        assert!(!check(&conditions, &Method::GET, &debug, None));

        let mut no_trace = headers.clone();
        no_trace.remove("x-trace");
        assert!(!check(&conditions, &Method::GET, &no_trace, None));

        let mut wrong_case = headers.clone();
        wrong_case.remove("x-env");
        wrong_case.insert("x-env", HeaderValue::from_static("Canary"));
        assert!(!check(&conditions, &Method::GET, &wrong_case, None));
    }

    #[test]
    fn query_operators() {
        let route = RouteMatch {
            query: vec![
                value("user id", Some("Jörg"), None, None),
                value("page", None, Some("[0-9]+"), None),
                value("debug", None, None, Some(false)),
                value("flag", None, None, Some(true)),
            ],
            ..Default::default()
        };
        let conditions = Conditions::compile(&route).unwrap();
        let headers = HeaderMap::new();
        let get = &Method::GET;
        assert!(check(&conditions, get, &headers, Some("user+id=J%C3%B6rg&page=2&flag")));
        assert!(check(&conditions, get, &headers, Some("page=x&page=%32&user%20id=J%c3%b6rg&flag=")));
        assert!(!check(&conditions, get, &headers, Some("user+id=J%C3%B6rg&page=2")));
        assert!(!check(&conditions, get, &headers, Some("user+id=J%C3%B6rg&page=2&flag&debug")));
        assert!(!check(&conditions, get, &headers, Some("user+id=Jorg&page=2&flag")));
        assert!(!check(&conditions, get, &headers, Some("user+id=J%C3%B6rg&page=2a&flag")));
        assert!(!check(&conditions, get, &headers, None));

        let absent_only = RouteMatch { query: vec![value("debug", None, None, Some(false))], ..Default::default() };
        let absent_only = Conditions::compile(&absent_only).unwrap();
        assert!(check(&absent_only, get, &headers, None));
        assert!(check(&absent_only, get, &headers, Some("debugx=1")));
        assert!(!check(&absent_only, get, &headers, Some("debug")));
    }

    #[test]
    fn rejects_bad_conditions() {
        let bad = [
            RouteMatch { methods: vec!["G ET".into()], ..Default::default() },
            RouteMatch { headers: vec![value("bad name", None, None, None)], ..Default::default() },
            RouteMatch { headers: vec![value("x", Some("a"), Some("a"), None)], ..Default::default() },
            RouteMatch { headers: vec![value("x", Some("a"), None, Some(false))], ..Default::default() },
            RouteMatch { headers: vec![value("x", None, Some("("), None)], ..Default::default() },
            RouteMatch { query: vec![value("", None, None, None)], ..Default::default() },
        ];
        for route in bad {
            assert!(Conditions::compile(&route).is_err(), "{route:?} accepted");
        }
    }
}
