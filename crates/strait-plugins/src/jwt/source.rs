//! Where a request carries its token: query parameters, cookies, header fields (Kong's order).

use std::borrow::Cow;

use http::header::{self, HeaderName};
use http::request;

use super::refusal::Refusal;

/// The configured places a token is looked for.
#[derive(Debug, Clone, Default)]
pub struct TokenSources {
    /// Header fields, holding `Bearer <token>` or the bare token.
    pub headers: Vec<HeaderName>,
    /// Query parameters.
    pub query: Vec<String>,
    /// Cookies.
    pub cookies: Vec<String>,
}

impl TokenSources {
    /// The request's token, as bytes (a token that is not text fails its parse later): `None`
    /// when there is none, [`Refusal::MultipleTokens`] when different ones are found (one
    /// token sent in two places is fine).
    pub fn find<'a>(&self, request: &'a request::Parts) -> Result<Option<Cow<'a, [u8]>>, Refusal> {
        let mut found: Option<Cow<'a, [u8]>> = None;
        let mut add = |token: Cow<'a, [u8]>| -> Result<(), Refusal> {
            match &found {
                Some(existing) if *existing != token => Err(Refusal::MultipleTokens),
                Some(_) => Ok(()),
                None => {
                    found = Some(token);
                    Ok(())
                }
            }
        };
        if let Some(query) = request.uri.query().filter(|_| !self.query.is_empty()) {
            for pair in query.split('&') {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                if !value.is_empty() && self.query.iter().any(|n| n == name) {
                    add(percent_decoded(value))?;
                }
            }
        }
        if !self.cookies.is_empty() {
            for field in request.headers.get_all(header::COOKIE) {
                for cookie in field.to_str().unwrap_or("").split(';') {
                    let Some((name, value)) = cookie.trim().split_once('=') else { continue };
                    let value = value.trim_matches('"');
                    if !value.is_empty() && self.cookies.iter().any(|n| n == name) {
                        add(Cow::Borrowed(value.as_bytes()))?;
                    }
                }
            }
        }
        for name in &self.headers {
            for field in request.headers.get_all(name) {
                // Bytes, not text: a token is hundreds of bytes, and checking them all on
                // every request would cost more than finding it in the verified-token cache.
                if let Some(token) = bearer_token(field.as_bytes()) {
                    add(Cow::Borrowed(token))?;
                }
            }
        }
        Ok(found)
    }
}

/// The token of a header field: `Bearer <token>` (any case), or a bare value without
/// spaces. Another scheme (`Basic ...`) is not a token.
fn bearer_token(field: &[u8]) -> Option<&[u8]> {
    let field = field.trim_ascii();
    match field.iter().position(u8::is_ascii_whitespace) {
        Some(end) if field[..end].eq_ignore_ascii_case(b"bearer") => {
            Some(field[end..].trim_ascii()).filter(|t| !t.is_empty())
        }
        Some(_) => None,
        None => Some(field).filter(|t| !t.is_empty()),
    }
}

/// `value` with `%XX` escapes decoded (a token is URL-safe, but clients may escape it anyway);
/// kept as it is when an escape is invalid.
fn percent_decoded(value: &str) -> Cow<'_, [u8]> {
    if !value.contains('%') {
        return Cow::Borrowed(value.as_bytes());
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = hex else { return Cow::Borrowed(bytes) };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> TokenSources {
        TokenSources {
            headers: vec![header::AUTHORIZATION],
            query: vec!["jwt".into()],
            cookies: vec!["session".into()],
        }
    }

    fn request(uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = http::Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn tokens_are_found_in_headers_queries_and_cookies() {
        let find = |uri: &str, headers: &[(&str, &str)]| {
            sources().find(&request(uri, headers)).map(|t| t.map(|t| String::from_utf8(t.into_owned()).unwrap()))
        };
        assert_eq!(find("/", &[("authorization", "Bearer a.b.c")]), Ok(Some("a.b.c".into())));
        assert_eq!(find("/", &[("authorization", "bearer   a.b.c ")]), Ok(Some("a.b.c".into())));
        assert_eq!(find("/", &[("authorization", "a.b.c")]), Ok(Some("a.b.c".into())));
        assert_eq!(find("/", &[("authorization", "Basic dTpw")]), Ok(None));
        assert_eq!(find("/?x=1&jwt=a.b%2Ec", &[]), Ok(Some("a.b.c".into())));
        assert_eq!(find("/", &[("cookie", "a=1; session=a.b.c")]), Ok(Some("a.b.c".into())));
        assert_eq!(find("/?jwt=a.b.c", &[("authorization", "Bearer a.b.c")]), Ok(Some("a.b.c".into())));
        assert_eq!(find("/?other=a.b.c", &[]), Ok(None));
    }

    #[test]
    fn a_header_token_that_is_not_text_is_found_as_it_is() {
        let mut parts = request("/", &[]);
        parts.headers.insert(header::AUTHORIZATION, http::HeaderValue::from_bytes(b"Bearer a.\xff.c").unwrap());
        assert_eq!(sources().find(&parts), Ok(Some(Cow::Borrowed(&b"a.\xff.c"[..]))));
        // Beside another token it is a second one, as Kong counts them.
        let mut parts = request("/?jwt=a.b.c", &[]);
        parts.headers.insert(header::AUTHORIZATION, http::HeaderValue::from_bytes(b"Bearer a.\xff.c").unwrap());
        assert_eq!(sources().find(&parts), Err(Refusal::MultipleTokens));
    }

    #[test]
    fn different_tokens_in_several_places_are_refused() {
        let parts = request("/?jwt=a.b.c", &[("authorization", "Bearer x.y.z")]);
        assert_eq!(sources().find(&parts), Err(Refusal::MultipleTokens));
        let parts = request("/", &[("authorization", "Bearer a.b.c"), ("authorization", "Bearer x.y.z")]);
        assert_eq!(sources().find(&parts), Err(Refusal::MultipleTokens));
    }
}
