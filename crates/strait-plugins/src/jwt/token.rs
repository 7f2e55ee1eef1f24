//! Reading a compact JWS (`header.payload.signature`) without trusting any of it yet.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use strait_config::JwtAlgorithm;

use super::refusal::Refusal;

/// A token split and decoded; nothing in it is verified yet.
#[derive(Debug)]
pub struct Token<'a> {
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    /// The decoded signature.
    pub signature: Vec<u8>,
    /// The `alg` header.
    pub algorithm: JwtAlgorithm,
    /// The `kid` header, if any.
    pub kid: Option<String>,
    /// The payload's claims.
    pub claims: Map<String, Value>,
}

/// Splits and decodes `token`. Refuses anything but three unpadded base64url parts, a JSON
/// object header with a supported `alg`, a `crit` header (no extension is understood), and a
/// payload that is not a JSON object. Other headers (`jwk`, `jku`, `x5u`, `x5c`) are ignored:
/// keys come from the configuration only.
pub fn parse(token: &str) -> Result<Token<'_>, Refusal> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let header = decode_object(header)?;
    if header.contains_key("crit") {
        return Err(Refusal::UnsupportedCritical);
    }
    let algorithm = match header.get("alg") {
        Some(Value::String(name)) => algorithm_named(name).ok_or(Refusal::UnsupportedAlgorithm)?,
        _ => return Err(Refusal::Malformed),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(Refusal::Malformed),
    };
    let claims = decode_object(payload)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| Refusal::Malformed)?;
    let signing_input = &token[..token.len() - signature_len(token)];
    Ok(Token { signing_input, signature, algorithm, kid, claims })
}

/// The length of `.signature` at the end of `token`.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

/// A base64url part holding a JSON object.
fn decode_object(part: &str) -> Result<Map<String, Value>, Refusal> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| Refusal::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal::Malformed),
    }
}

/// The algorithm a JWS `alg` value names (RFC 7518 §3.1, RFC 8037); `None` for `none` and
/// anything unknown.
pub fn algorithm_named(name: &str) -> Option<JwtAlgorithm> {
    use JwtAlgorithm::*;
    Some(match name {
        "HS256" => HS256,
        "HS384" => HS384,
        "HS512" => HS512,
        "RS256" => RS256,
        "RS384" => RS384,
        "RS512" => RS512,
        "PS256" => PS256,
        "PS384" => PS384,
        "PS512" => PS512,
        "ES256" => ES256,
        "ES384" => ES384,
        "EdDSA" => EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jwt::test_keys::{header, token, TestKey};

    fn unsigned(header: &Value, claims: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        format!("{}.{}.", part(header), part(claims))
    }

    #[test]
    fn a_token_splits_into_its_signing_input_signature_and_claims() {
        let key = TestKey::generate(JwtAlgorithm::HS256);
        let text = token(&key, &json!({"alg": "HS256", "kid": "k1", "jku": "https://evil"}), &json!({"iss": "a"}));
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.algorithm, JwtAlgorithm::HS256);
        assert_eq!(parsed.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.claims["iss"], "a");
        assert_eq!(parsed.signing_input, &text[..text.rfind('.').unwrap()]);
        assert_eq!(parsed.signature, key.sign(parsed.signing_input.as_bytes()));
    }

    #[test]
    fn alg_none_and_unknown_algorithms_are_refused() {
        assert_eq!(parse(&unsigned(&header("none"), &json!({}))).unwrap_err(), Refusal::UnsupportedAlgorithm);
        assert_eq!(parse(&unsigned(&header("HS1"), &json!({}))).unwrap_err(), Refusal::UnsupportedAlgorithm);
        assert_eq!(parse(&unsigned(&json!({"typ": "JWT"}), &json!({}))).unwrap_err(), Refusal::Malformed);
    }

    #[test]
    fn any_crit_header_is_refused() {
        let crit = json!({"alg": "HS256", "crit": ["exp"], "exp": 1});
        let text = token(&TestKey::generate(JwtAlgorithm::HS256), &crit, &json!({}));
        assert_eq!(parse(&text).unwrap_err(), Refusal::UnsupportedCritical);
    }

    #[test]
    fn malformed_shapes_are_refused() {
        let good = token(&TestKey::generate(JwtAlgorithm::HS256), &header("HS256"), &json!({}));
        for bad in [
            "".to_string(),
            "a.b".into(),
            format!("{good}.x"),
            format!("{good}="),
            good.replacen('.', ".!", 1),
            unsigned(&header("HS256"), &json!([1])),
            format!("{}.e30.", URL_SAFE_NO_PAD.encode("not json")),
        ] {
            assert_eq!(parse(&bad).unwrap_err(), Refusal::Malformed, "{bad}");
        }
    }
}
