use http::{Request, Response};
use serde_json::json;
use strait_config::Config;

use super::*;

fn settings(config: serde_json::Value) -> Result<Settings, PluginError> {
    let config: CompressionConfig = serde_json::from_value(config).map_err(|e| PluginError::at("", e.to_string()))?;
    Settings::compile(&config)
}

fn defaults() -> Settings {
    settings(json!({})).unwrap()
}

fn build_error(config: serde_json::Value) -> PluginError {
    let env = BuildEnv { config: &Config::default() };
    compression_plugin().build(&config, &env).expect_err("config is refused")
}

fn get(accept_encoding: &str) -> request::Parts {
    Request::get("/").header("accept-encoding", accept_encoding).body(()).unwrap().into_parts().0
}

fn reply(status: u16, headers: &[(&str, &str)]) -> response::Parts {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn html() -> response::Parts {
    reply(200, &[("content-type", "text/html; charset=utf-8")])
}

/// The decision for a `gzip`-accepting GET and `response`.
fn decide(settings: &Settings, response: &mut response::Parts) -> Option<Algorithm> {
    settings.decide(settings.offer(&get("gzip")), response)
}

// === config ===

#[test]
fn defaults_follow_nginx() {
    let config: CompressionConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!(config, CompressionConfig::default());
    assert_eq!(config.algorithms, [Algorithm::Zstd, Algorithm::Br, Algorithm::Gzip]);
    assert_eq!((config.gzip_level, config.brotli_level, config.zstd_level), (1, 4, 3));
    assert_eq!(config.min_length, 20);
    assert!(config.content_types.iter().any(|t| t == "text/html"));
    let env = BuildEnv { config: &Config::default() };
    let factory = compression_plugin().build(&serde_json::Value::Null, &env).unwrap();
    assert_eq!(factory.name(), "compression");
    assert!(factory.phases().contains(Phases::REQUEST_HEADERS | Phases::RESPONSE_HEADERS | Phases::RESPONSE_BODY));
}

#[test]
fn algorithms_take_their_tokens_and_brotli_as_a_spelling_of_br() {
    let config: CompressionConfig = serde_json::from_value(json!({ "algorithms": ["brotli", "gzip"] })).unwrap();
    assert_eq!(config.algorithms, [Algorithm::Br, Algorithm::Gzip]);
    let error = build_error(json!({ "algorithms": ["deflate"] }));
    assert_eq!(error.path, "algorithms[0]");
    assert!(error.message.contains("unknown variant"), "{}", error.message);
}

#[test]
fn unknown_fields_are_refused() {
    let error = build_error(json!({ "level": 5 }));
    assert!(error.message.contains("unknown field `level`"), "{}", error.message);
}

#[test]
fn levels_out_of_range_are_refused_on_their_field() {
    for (field, value, range) in [
        ("gzip_level", 0, "1 and 9"),
        ("gzip_level", 10, "1 and 9"),
        ("brotli_level", 12, "0 and 11"),
        ("zstd_level", 0, "1 and 19"),
        ("zstd_level", 22, "1 and 19"),
    ] {
        let error = build_error(json!({ field: value }));
        assert_eq!(error.path, field);
        assert!(error.message.contains(range), "{field}={value}: {}", error.message);
    }
    assert!(settings(json!({ "gzip_level": 9, "brotli_level": 0, "zstd_level": 19 })).is_ok());
}

#[test]
fn algorithm_lists_must_be_non_empty_and_without_repeats() {
    assert_eq!(build_error(json!({ "algorithms": [] })).path, "algorithms");
    let error = build_error(json!({ "algorithms": ["gzip", "br", "gzip"] }));
    assert_eq!(error.path, "algorithms[2]");
    assert!(error.message.contains("twice"), "{}", error.message);
}

#[test]
fn invalid_content_types_are_refused_with_their_index() {
    for bad in ["html", "text/", "/html", "*/*", "text/h*", "text/html; charset=utf-8", ""] {
        let error = build_error(json!({ "content_types": ["text/plain", bad] }));
        assert_eq!(error.path, "content_types[1]", "{bad}");
        assert!(error.message.contains("media type"), "{bad}: {}", error.message);
    }
}

// === content types ===

#[test]
fn content_types_match_the_media_type_case_insensitively() {
    let settings = settings(json!({ "content_types": ["Text/HTML", "application/*", "image/svg+xml"] })).unwrap();
    let matches = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        settings.compressible_type(&headers)
    };
    assert!(matches("text/html"));
    assert!(matches("TEXT/html; charset=UTF-8"));
    assert!(matches("  text/html ;q=1"));
    assert!(matches("application/json"));
    assert!(matches("Application/Wasm"));
    assert!(matches("image/svg+xml"));
    assert!(!matches("text/plain"));
    assert!(!matches("image/png"));
    assert!(!matches("application/"));
    assert!(!matches("text/htmlx"));
    assert!(!matches(""));
    assert!(!settings.compressible_type(&HeaderMap::new()), "no type, no match");
}

#[test]
fn star_matches_every_typed_response() {
    let settings = settings(json!({ "content_types": ["*"] })).unwrap();
    let mut headers = HeaderMap::new();
    assert!(!settings.compressible_type(&headers));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    assert!(settings.compressible_type(&headers));
}

// === the decision ===

#[test]
fn compressed_response_announces_its_coding_and_weakens_its_tag() {
    let settings = defaults();
    let mut response = reply(
        200,
        &[
            ("content-type", "application/json"),
            ("content-length", "500"),
            ("accept-ranges", "bytes"),
            ("etag", "\"abc\""),
        ],
    );
    assert_eq!(decide(&settings, &mut response), Some(Algorithm::Gzip));
    let headers = &response.headers;
    assert_eq!(headers[CONTENT_ENCODING], "gzip");
    assert_eq!(headers[VARY], "Accept-Encoding");
    assert_eq!(headers[ETAG], "W/\"abc\"");
    assert!(headers.get(CONTENT_LENGTH).is_none());
    assert!(headers.get(ACCEPT_RANGES).is_none());
}

#[test]
fn weak_tags_stay_as_they_are() {
    let mut response = reply(200, &[("content-type", "text/css"), ("etag", "W/\"abc\"")]);
    assert_eq!(decide(&defaults(), &mut response), Some(Algorithm::Gzip));
    assert_eq!(response.headers[ETAG], "W/\"abc\"");
}

#[test]
fn the_client_preference_picks_the_coding() {
    let settings = defaults();
    let mut response = html();
    let offer = settings.offer(&get("gzip;q=0.5, br;q=0.8, zstd;q=0.1"));
    assert_eq!(settings.decide(offer, &mut response), Some(Algorithm::Br));
    assert_eq!(response.headers[CONTENT_ENCODING], "br");
}

#[test]
fn vary_is_added_also_when_the_client_gets_identity() {
    let settings = defaults();
    let mut response = html();
    assert_eq!(settings.decide(settings.offer(&get("identity")), &mut response), None);
    assert_eq!(response.headers[VARY], "Accept-Encoding");
    assert!(response.headers.get(CONTENT_ENCODING).is_none());
}

#[test]
fn vary_is_not_repeated() {
    let settings = defaults();
    for existing in ["accept-encoding", "Origin, Accept-Encoding", "*"] {
        let mut response = reply(200, &[("content-type", "text/html"), ("vary", existing)]);
        decide(&settings, &mut response);
        let vary: Vec<_> = response.headers.get_all(VARY).iter().collect();
        assert_eq!(vary, [existing], "{existing}");
    }
    let mut response = reply(200, &[("content-type", "text/html"), ("vary", "Origin")]);
    decide(&settings, &mut response);
    let vary: Vec<_> = response.headers.get_all(VARY).iter().collect();
    assert_eq!(vary, ["Origin", "Accept-Encoding"]);
}

#[test]
fn other_types_are_left_alone_without_vary() {
    let mut response = reply(200, &[("content-type", "image/png")]);
    assert_eq!(decide(&defaults(), &mut response), None);
    assert!(response.headers.get(VARY).is_none());
    let mut untyped = reply(200, &[]);
    assert_eq!(decide(&defaults(), &mut untyped), None);
}

#[test]
fn encoded_responses_are_never_compressed_again() {
    let mut response = reply(200, &[("content-type", "text/html"), ("content-encoding", "br")]);
    assert_eq!(decide(&defaults(), &mut response), None);
    assert_eq!(response.headers[CONTENT_ENCODING], "br");
    assert!(response.headers.get(VARY).is_none(), "the encoder upstream owns Vary");
}

#[test]
fn no_transform_is_respected() {
    for cache_control in ["no-transform", "public, No-Transform, max-age=60"] {
        let mut response = reply(200, &[("content-type", "text/html"), ("cache-control", cache_control)]);
        assert_eq!(decide(&defaults(), &mut response), None, "{cache_control}");
        assert!(response.headers.get(CONTENT_ENCODING).is_none());
    }
    let mut cacheable = reply(200, &[("content-type", "text/html"), ("cache-control", "max-age=60")]);
    assert_eq!(decide(&defaults(), &mut cacheable), Some(Algorithm::Gzip));
}

#[test]
fn bodiless_statuses_are_skipped() {
    for status in [100, 204, 304] {
        let mut response = reply(status, &[("content-type", "text/html")]);
        assert_eq!(decide(&defaults(), &mut response), None, "{status}");
        assert!(response.headers.get(CONTENT_ENCODING).is_none());
    }
    for status in [200, 201, 404, 500] {
        assert_eq!(decide(&defaults(), &mut reply(status, &[("content-type", "text/html")])), Some(Algorithm::Gzip));
    }
}

#[test]
fn range_answers_are_skipped() {
    let mut partial = reply(206, &[("content-type", "text/html"), ("content-range", "bytes 0-9/100")]);
    assert_eq!(decide(&defaults(), &mut partial), None);
    let mut ranged = reply(200, &[("content-type", "text/html"), ("content-range", "bytes */100")]);
    assert_eq!(decide(&defaults(), &mut ranged), None);
}

#[test]
fn range_requests_are_not_compressed() {
    let settings = defaults();
    let mut ranged = get("gzip");
    ranged.headers.insert(RANGE, HeaderValue::from_static("bytes=0-99"));
    assert_eq!(settings.offer(&ranged), None);
    let mut response = html();
    assert_eq!(settings.decide(settings.offer(&ranged), &mut response), None);
    assert_eq!(response.headers[VARY], "Accept-Encoding");
}

#[test]
fn head_and_http_1_0_requests_are_not_compressed() {
    let settings = defaults();
    let head = Request::head("/").header("accept-encoding", "gzip").body(()).unwrap().into_parts().0;
    assert_eq!(settings.offer(&head), None);
    let mut old = get("gzip");
    old.version = Version::HTTP_10;
    assert_eq!(settings.offer(&old), None);
    let mut h2 = get("gzip");
    h2.version = Version::HTTP_2;
    assert_eq!(settings.offer(&h2), Some(Algorithm::Gzip));
}

#[test]
fn short_bodies_are_skipped_when_their_length_is_known() {
    let settings = settings(json!({ "min_length": 100 })).unwrap();
    let mut short = reply(200, &[("content-type", "text/html"), ("content-length", "99")]);
    assert_eq!(decide(&settings, &mut short), None);
    assert_eq!(short.headers[CONTENT_LENGTH], "99");
    let mut long = reply(200, &[("content-type", "text/html"), ("content-length", "100")]);
    assert_eq!(decide(&settings, &mut long), Some(Algorithm::Gzip));
}

#[test]
fn response_length_extension_counts_when_there_is_no_content_length() {
    let settings = defaults();
    let mut short = html();
    short.extensions.insert(ResponseLength(19));
    assert_eq!(decide(&settings, &mut short), None);
    let mut long = html();
    long.extensions.insert(ResponseLength(20));
    assert_eq!(decide(&settings, &mut long), Some(Algorithm::Gzip));
}

#[test]
fn unknown_lengths_are_compressed() {
    let settings = settings(json!({ "min_length": 1000 })).unwrap();
    assert_eq!(decide(&settings, &mut html()), Some(Algorithm::Gzip));
}

#[test]
fn no_offer_means_no_compression() {
    let settings = settings(json!({ "algorithms": ["br"] })).unwrap();
    let mut response = html();
    assert_eq!(decide(&settings, &mut response), None, "gzip only, br only");
    assert!(response.headers.get(CONTENT_ENCODING).is_none());
    let no_header = Request::get("/").body(()).unwrap().into_parts().0;
    assert_eq!(settings.offer(&no_header), None);
}

// === the reference ===

#[test]
fn reference_example_loads_and_builds() {
    let doc = include_str!("../../../../docs/CONFIG.md");
    let section = &doc[doc.find("### `compression`").expect("docs/CONFIG.md documents the filter")..];
    let start = section.find("```yaml\n").expect("with an example") + "```yaml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let config = strait_config::load_str_with_env(example, "CONFIG.md", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let spec = &config.listeners[0].filters[0];
    assert_eq!(spec.name, "compression");
    let env = BuildEnv { config: &config };
    let factory = crate::builtin().build(spec, "listeners[0].filters[0]", &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(factory.name(), "compression");
    let settings = settings(spec.config.clone()).unwrap();
    assert_eq!(settings.algorithms, [Algorithm::Br, Algorithm::Gzip]);
    assert_eq!(settings.min_length, 256);
    let mut wrong = spec.clone();
    wrong.config["gzip_level"] = json!(10);
    let error = crate::builtin().build(&wrong, "listeners[0].filters[0]", &env).unwrap_err();
    assert_eq!(error.path, "listeners[0].filters[0].config.gzip_level");
}
