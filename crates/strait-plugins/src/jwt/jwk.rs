//! Reading a JSON Web Key Set (RFC 7517) into verification keys, by `kid`.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use strait_config::JwtAlgorithm;

use super::keys::VerifyingKey;
use super::token::algorithm_named;

/// The signature keys of a JWKS document, by `kid`. Keys without a `kid`, for another `use`
/// than `sig`, symmetric (`oct`) or unusable ones are left out; an `alg` a key states binds
/// it, otherwise RSA keys are RS256, EC keys ES256 or ES384 by curve, OKP keys EdDSA.
pub fn parse_key_set(body: &[u8]) -> Result<HashMap<String, Arc<VerifyingKey>>, String> {
    let document: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let keys = document.get("keys").and_then(Value::as_array).ok_or("no `keys` array")?;
    Ok(keys.iter().filter_map(parse_key).map(|key| (key.key.to_string(), Arc::new(key))).collect())
}

/// One JWK as a signature key, if it is a usable one.
fn parse_key(jwk: &Value) -> Option<VerifyingKey> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &str| field(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    let kid = field("kid")?;
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let stated = match field("alg") {
        Some(name) => Some(algorithm_named(name)?),
        None => None,
    };
    let (algorithm, key_bytes) = match (field("kty")?, field("crv")) {
        ("RSA", _) => {
            let algorithm = stated.unwrap_or(JwtAlgorithm::RS256);
            (algorithm, rsa_public_key_der(&bytes("n")?, &bytes("e")?))
        }
        ("EC", Some(curve)) => {
            let (algorithm, size) = match curve {
                "P-256" => (JwtAlgorithm::ES256, 32),
                "P-384" => (JwtAlgorithm::ES384, 48),
                _ => return None,
            };
            let (x, y) = (bytes("x")?, bytes("y")?);
            if stated.is_some_and(|s| s != algorithm) || x.len() != size || y.len() != size {
                return None;
            }
            (algorithm, [&[4u8][..], &x, &y].concat())
        }
        ("OKP", Some("Ed25519")) => (JwtAlgorithm::EdDSA, bytes("x")?),
        _ => return None,
    };
    if stated.is_some_and(|s| s != algorithm) {
        return None;
    }
    VerifyingKey::from_public_bytes(kid, algorithm, &key_bytes).ok()
}

/// A PKCS #1 `RSAPublicKey` (RFC 8017 A.1.1): `SEQUENCE { n INTEGER, e INTEGER }` in DER.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let body = [der_integer(n), der_integer(e)].concat();
    [vec![0x30], der_length(body.len()), body].concat()
}

/// A non-negative DER INTEGER of big-endian `bytes`.
fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len().saturating_sub(1));
    let mut content = bytes[start..].to_vec();
    if content.first().is_none_or(|&b| b & 0x80 != 0) {
        content.insert(0, 0);
    }
    [vec![0x02], der_length(content.len()), content].concat()
}

/// A DER length.
fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
    [vec![0x80 | bytes.len() as u8], bytes].concat()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jwt::test_keys::TestKey;

    #[test]
    fn rsa_ec_and_ed25519_keys_are_read_and_verify() {
        let cases = [
            (JwtAlgorithm::RS256, TestKey::generate(JwtAlgorithm::RS256)),
            (JwtAlgorithm::PS256, TestKey::generate(JwtAlgorithm::PS256)),
            (JwtAlgorithm::ES256, TestKey::generate(JwtAlgorithm::ES256)),
            (JwtAlgorithm::ES384, TestKey::generate(JwtAlgorithm::ES384)),
            (JwtAlgorithm::EdDSA, TestKey::generate(JwtAlgorithm::EdDSA)),
        ];
        let jwks = json!({ "keys": cases.iter().enumerate().map(|(i, (alg, key))| key.jwk(&format!("k{i}"), *alg)).collect::<Vec<_>>() });
        let keys = parse_key_set(jwks.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), cases.len());
        for (i, (algorithm, signer)) in cases.iter().enumerate() {
            let key = &keys[&format!("k{i}")];
            assert_eq!(key.algorithm, *algorithm);
            assert!(key.verify(b"m", &signer.sign(b"m")), "{algorithm:?}");
            assert!(!key.verify(b"n", &signer.sign(b"m")), "{algorithm:?}");
        }
    }

    #[test]
    fn symmetric_unnamed_encryption_and_mismatched_keys_are_left_out() {
        let es = TestKey::generate(JwtAlgorithm::ES256);
        let mut no_kid = es.jwk("x", JwtAlgorithm::ES256);
        no_kid.as_object_mut().unwrap().remove("kid");
        let mut encryption = es.jwk("enc", JwtAlgorithm::ES256);
        encryption["use"] = json!("enc");
        let mut wrong_alg = es.jwk("wrong", JwtAlgorithm::ES256);
        wrong_alg["alg"] = json!("ES384");
        let mut hs_on_ec = es.jwk("hs", JwtAlgorithm::ES256);
        hs_on_ec["alg"] = json!("HS256");
        let oct = json!({ "kty": "oct", "kid": "oct", "k": "c2VjcmV0" });
        let jwks =
            json!({ "keys": [no_kid, encryption, wrong_alg, hs_on_ec, oct, es.jwk("good", JwtAlgorithm::ES256)] });
        let keys = parse_key_set(jwks.to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["good"]);
        assert!(parse_key_set(b"{}").is_err());
        assert!(parse_key_set(b"nope").is_err());
    }

    #[test]
    fn der_integers_are_minimal_and_positive() {
        assert_eq!(der_integer(&[0, 0, 1]), [2, 1, 1]);
        assert_eq!(der_integer(&[0x80]), [2, 2, 0, 0x80]);
        assert_eq!(der_length(300), [0x82, 1, 44]);
    }
}
