//! Kong's `request-transformer` and `response-transformer`: edits of headers, query string,
//! method, path and JSON body fields, configured as Kong writes them.
//!
//! ```yaml
//! filters:
//!   - name: response_transformer
//!     config:
//!       remove: { headers: [x-internal], json: [user.password] }
//!       add: { headers: ["x-api-version:2"], json: ["meta.cached:true"], json_types: [boolean] }
//! ```
//!
//! Each section applies in Kong's order: `remove`, `rename` (`old:new`), `replace` (only what
//! is present), `add` (only what is absent), `append` (always). A JSON body is edited only when
//! its type is `application/json` and it has no content encoding; it is held back up to
//! `max_body_size`, parsed, edited and (when an edit applied) serialized again, and then sent
//! without a known length. A larger body, or one that does not parse, passes unchanged.

mod body;
mod entries;
mod headers;
mod json_path;
mod query;
pub mod request;
pub mod response;

pub use entries::JsonType;
pub use request::{request_transformer_plugin, RequestTransformerConfig};
pub use response::{response_transformer_plugin, ResponseTransformerConfig};

/// `max_body_size` when the configuration does not say: 1 MiB.
const DEFAULT_MAX_BODY_SIZE: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use strait_http::Plugin;

    #[test]
    fn plugins_carry_kong_priorities() {
        assert_eq!(super::request_transformer_plugin().priority(), 801);
        assert_eq!(super::response_transformer_plugin().priority(), 800);
    }
}
