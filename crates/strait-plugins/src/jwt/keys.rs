//! Verification keys: a consumer's JWT credential parsed once, when the filter is built.

use std::sync::Arc;

use aws_lc_rs::{hmac, signature};
use strait_config::{JwtAlgorithm, JwtCredential};

/// What checks a signature: an HMAC secret or a parsed public key, bound to one algorithm.
enum Verifier {
    /// HS256/384/512.
    Hmac(Box<hmac::Key>),
    /// RS, PS, ES and EdDSA: the key was parsed and checked against the algorithm at build time.
    Public(signature::ParsedPublicKey),
}

/// One configured key: its algorithm (the only one its tokens may name) and its verifier.
pub struct VerifyingKey {
    /// The credential's `key` (the `iss` or `kid` tokens are matched by).
    pub key: Arc<str>,
    /// The one algorithm tokens verified by this key must declare in their `alg` header.
    pub algorithm: JwtAlgorithm,
    verifier: Verifier,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey").field("key", &self.key).field("algorithm", &self.algorithm).finish()
    }
}

impl VerifyingKey {
    /// Parses a consumer's credential; the message says what is wrong with a bad one (a PEM
    /// that does not parse, a key of another type or curve than the algorithm needs).
    pub fn from_credential(credential: &JwtCredential, secret_is_base64: bool) -> Result<VerifyingKey, String> {
        let algorithm = credential.algorithm;
        let verifier = if let Some(hmac_algorithm) = hmac_algorithm(algorithm) {
            let secret = credential.secret.as_deref().ok_or("an HS algorithm needs a `secret`")?;
            let secret = if secret_is_base64 {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(secret.trim())
                    .map_err(|_| "the `secret` is not valid base64 (`secret_is_base64` is on)".to_string())?
            } else {
                secret.as_bytes().to_vec()
            };
            if secret.is_empty() {
                return Err("the `secret` is empty".into());
            }
            Verifier::Hmac(Box::new(hmac::Key::new(hmac_algorithm, &secret)))
        } else {
            let pem = credential.rsa_public_key.as_deref().ok_or("this algorithm needs an `rsa_public_key` (PEM)")?;
            Verifier::Public(parse_public_key(pem, algorithm)?)
        };
        Ok(VerifyingKey { key: credential.key.as_str().into(), algorithm, verifier })
    }

    /// A key for `algorithm` from public key bytes (PKCS #1 or SPKI DER for RSA, an
    /// uncompressed point for EC, the raw 32 bytes for Ed25519), as a JWKS gives them.
    pub fn from_public_bytes(key: &str, algorithm: JwtAlgorithm, bytes: &[u8]) -> Result<VerifyingKey, String> {
        let parsed = parse_public_bytes(bytes, algorithm)?;
        Ok(VerifyingKey { key: key.into(), algorithm, verifier: Verifier::Public(parsed) })
    }

    /// Whether `signature` signs `message` (the token's `header.payload`) under this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Verifier::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

/// The HMAC of an HS algorithm; `None` for the public-key ones.
fn hmac_algorithm(algorithm: JwtAlgorithm) -> Option<hmac::Algorithm> {
    match algorithm {
        JwtAlgorithm::HS256 => Some(hmac::HMAC_SHA256),
        JwtAlgorithm::HS384 => Some(hmac::HMAC_SHA384),
        JwtAlgorithm::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

/// The verification algorithm of a public-key JWT algorithm (ECDSA in JWS's fixed `r||s` form).
fn public_algorithm(algorithm: JwtAlgorithm) -> Option<&'static dyn signature::VerificationAlgorithm> {
    Some(match algorithm {
        JwtAlgorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        JwtAlgorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        JwtAlgorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        JwtAlgorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        JwtAlgorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        JwtAlgorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        JwtAlgorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        JwtAlgorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        JwtAlgorithm::EdDSA => &signature::ED25519,
        JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512 => return None,
    })
}

/// Parses a PEM public key (`PUBLIC KEY`, or `RSA PUBLIC KEY` for RSA) for `algorithm`.
fn parse_public_key(pem: &str, algorithm: JwtAlgorithm) -> Result<signature::ParsedPublicKey, String> {
    let block = pem::parse(pem.trim()).map_err(|e| format!("`rsa_public_key` is not valid PEM: {e}"))?;
    match block.tag() {
        "PUBLIC KEY" => {}
        "RSA PUBLIC KEY" if is_rsa(algorithm) => {}
        other => return Err(format!("`rsa_public_key` holds a `{other}` block; a `PUBLIC KEY` is needed")),
    }
    parse_public_bytes(block.contents(), algorithm).map_err(|e| format!("`rsa_public_key` is {e}"))
}

/// The smallest RSA modulus accepted, in bits (RFC 7518 §3.3 requires 2048).
const MIN_RSA_BITS: usize = 2048;

/// Parses public key bytes for `algorithm`; RSA keys must have at least 2048 bits.
fn parse_public_bytes(bytes: &[u8], algorithm: JwtAlgorithm) -> Result<signature::ParsedPublicKey, String> {
    let verification = public_algorithm(algorithm).ok_or("not a public-key algorithm")?;
    let parsed = signature::ParsedPublicKey::new(verification, bytes)
        .map_err(|e| format!("not a valid public key for {algorithm:?}: {e}"))?;
    if is_rsa(algorithm) {
        let bits = rsa_modulus_bits(bytes)
            .ok_or_else(|| format!("not a valid RSA public key of at least {MIN_RSA_BITS} bits"))?;
        if bits < MIN_RSA_BITS {
            return Err(format!("an RSA key of {bits} bits; at least {MIN_RSA_BITS} are needed"));
        }
    }
    Ok(parsed)
}

/// Whether `algorithm` is one of the RSA ones (RS and PS).
fn is_rsa(algorithm: JwtAlgorithm) -> bool {
    use JwtAlgorithm::*;
    matches!(algorithm, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
}

/// The modulus size of an RSA public key (PKCS #1 or SPKI DER).
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    use aws_lc_rs::encoding::AsDer;
    let key = aws_lc_rs::rsa::PublicKey::from_der(der).ok()?;
    let spki = key.as_der().ok()?;
    Some(aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki.as_ref()).ok()?.key_size_bits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::test_keys::TestKey;

    fn credential(algorithm: JwtAlgorithm, pem: &str) -> JwtCredential {
        JwtCredential { key: "k".into(), algorithm, secret: None, rsa_public_key: Some(pem.into()) }
    }

    #[test]
    fn every_public_key_family_parses_and_verifies_its_own_signatures() {
        for algorithm in
            [JwtAlgorithm::RS256, JwtAlgorithm::PS384, JwtAlgorithm::ES256, JwtAlgorithm::ES384, JwtAlgorithm::EdDSA]
        {
            let test_key = TestKey::generate(algorithm);
            let key = VerifyingKey::from_credential(&credential(algorithm, &test_key.public_pem()), false).unwrap();
            let signature = test_key.sign(b"a.b");
            assert!(key.verify(b"a.b", &signature), "{algorithm:?}");
            assert!(!key.verify(b"a.c", &signature), "{algorithm:?}");
        }
    }

    #[test]
    fn bad_pems_and_mismatched_key_types_are_build_errors() {
        let garbage = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        let error = VerifyingKey::from_credential(&credential(JwtAlgorithm::RS256, garbage), false).unwrap_err();
        assert!(error.contains("not a valid public key"), "{error}");
        let error = VerifyingKey::from_credential(&credential(JwtAlgorithm::RS256, "not pem"), false).unwrap_err();
        assert!(error.contains("not valid PEM"), "{error}");
        let p256 = TestKey::generate(JwtAlgorithm::ES256).public_pem();
        assert!(VerifyingKey::from_credential(&credential(JwtAlgorithm::ES384, &p256), false).is_err());
        assert!(VerifyingKey::from_credential(&credential(JwtAlgorithm::RS256, &p256), false).is_err());
    }

    #[test]
    fn rsa_keys_under_2048_bits_are_refused() {
        let rsa_1024 = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkhR0mWCz2g4TFuoGyxp4gocNA
i6E1jzd3ezYznj9E/WMqzPgLkOxWKe4Dr4M/jNz7DgxJgoI8khbS4uXRtoMMGAFO
XNGgENHX3bUhdEIXwM+2UQHC3O7y27fj3Mp2mcfuPnWKMYup6Qe3qB7SPMf6Gt4g
SyBDSS0fCfA+rAUpDQIDAQAB
-----END PUBLIC KEY-----";
        let error = VerifyingKey::from_credential(&credential(JwtAlgorithm::RS256, rsa_1024), false).unwrap_err();
        assert!(error.contains("at least 2048 bits"), "{error}");
    }

    #[test]
    fn hmac_secrets_may_be_base64() {
        let mut credential = JwtCredential {
            key: "k".into(),
            algorithm: JwtAlgorithm::HS256,
            secret: Some("c2VjcmV0".into()),
            rsa_public_key: None,
        };
        let plain = VerifyingKey::from_credential(&credential, false).unwrap();
        let decoded = VerifyingKey::from_credential(&credential, true).unwrap();
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"secret"), b"m");
        assert!(decoded.verify(b"m", tag.as_ref()));
        assert!(!plain.verify(b"m", tag.as_ref()));
        credential.secret = Some("!!".into());
        assert!(VerifyingKey::from_credential(&credential, true).is_err());
    }
}
