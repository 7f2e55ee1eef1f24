//! Strait's router: compiles route conditions into indexed tables and finds the route for a request.
//!
//! # Precedence
//!
//! A lookup is deterministic and does not depend on how many routes there are:
//!
//! 1. **Host.** Host names compare case-insensitively, and a trailing dot on the request's
//!    host is ignored. Routes are grouped by host pattern and the groups are tried from the
//!    most to the least specific: the group of the exact host name, then the groups of
//!    matching leading wildcards from the longest to the shortest (`*.example.com` matches
//!    `a.example.com` and `a.b.example.com`, not `example.com`), then the routes without
//!    hosts. The next group is tried only when no route of the previous one matched.
//! 2. **Path**, within a host group: an exact path, then prefixes from the longest to the
//!    shortest, then regular expressions in configuration order, then routes without a path
//!    condition. Prefixes match whole segments: `/api` matches `/api`, `/api/` and `/api/x`
//!    but not `/apix`; `/api/` matches `/api/` and `/api/x`; `/` matches every path.
//!    Regular expressions are anchored at both ends. Paths compare as the request carries
//!    them after its listener's path normalization ([`normalize`]: on by default, it decodes
//!    unreserved escapes, resolves dot segments and merges slashes); other escapes stay
//!    percent-encoded.
//! 3. **Other conditions.** Among routes with the same path condition, routes with more
//!    conditions are tried first (the method list counts as one, each header and query
//!    condition as one); ties keep configuration order. When a route's methods, headers or
//!    query parameters do not match, the next candidate is tried, down to shorter prefixes
//!    and less specific host groups.
//!
//! Methods match when the request's method is any of those listed (names are case-sensitive).
//! A header condition matches when any of the header's values equals `exact` or matches
//! the anchored `regex`; `present: true` asks for the header, `present: false` for its
//! absence, and a condition with no operator asks for presence. Query conditions work the
//! same on the parameters of `a=1&b=2`, whose names and values are percent-decoded with `+`
//! read as a space; a parameter without `=` has an empty value.
//!
//! # Cost
//!
//! Exact host names, exact paths and prefixes live in hash maps, wildcard suffixes in a tree
//! of labels: a lookup hashes the whole host once, each of its labels once and the path once
//! per segment, linear in their lengths whatever the number of routes. Regular expressions and routes without a path condition are scanned in order.
//! The common lookup allocates nothing.
#![forbid(unsafe_code)]

mod conditions;
mod hash;
mod host;
pub mod normalize;
mod path;
mod query;
mod rewrite;
mod table;

pub use rewrite::PathRewrite;
pub use table::RouteTable;

/// What the router needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Host without port, in any case.
    pub host: &'a str,
    /// Path without the query, normalized by the listener (see [`normalize`]) or as received.
    pub path: &'a str,
    /// Raw query string without the `?`.
    pub query: Option<&'a str>,
    /// Request method.
    pub method: &'a http::Method,
    /// Request headers.
    pub headers: &'a http::HeaderMap,
}

/// Result of a lookup.
#[derive(Debug)]
pub struct RouteMatchResult<'a, T> {
    /// The matched route's value.
    pub route: &'a T,
    /// Position of the route in the list given to [`RouteTable::build`].
    pub index: usize,
    /// The configured prefix, when the route matched by prefix.
    pub matched_prefix: Option<&'a str>,
}

impl<T> Clone for RouteMatchResult<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for RouteMatchResult<'_, T> {}
