//! Signing keys made in the test and JSON Web Tokens signed with them, for the `jwt` filter.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair};
use aws_lc_rs::{hmac, rsa};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::Value;

/// A signing key and the JWS algorithm it signs with.
pub enum SigningKey {
    /// HS256 with a shared secret.
    Hs256(Vec<u8>),
    /// RS256 (PKCS #1 v1.5) or PS256 (PSS) with an RSA key.
    Rsa { pss: bool, pair: rsa::KeyPair },
    /// ES256.
    Es256(signature::EcdsaKeyPair),
    /// EdDSA (Ed25519).
    Ed25519(signature::Ed25519KeyPair),
}

impl SigningKey {
    /// A fresh key for `alg` (`HS256` uses `secret`).
    pub fn generate(alg: &str, secret: &str) -> SigningKey {
        match alg {
            "HS256" => SigningKey::Hs256(secret.as_bytes().to_vec()),
            "RS256" | "PS256" => {
                SigningKey::Rsa { pss: alg == "PS256", pair: rsa::KeyPair::generate(rsa::KeySize::Rsa2048).unwrap() }
            }
            "ES256" => SigningKey::Es256(
                signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            ),
            "EdDSA" => SigningKey::Ed25519(signature::Ed25519KeyPair::generate().unwrap()),
            other => panic!("no test key for {other}"),
        }
    }

    /// The public key as a `PUBLIC KEY` PEM.
    pub fn public_pem(&self) -> String {
        let der = match self {
            SigningKey::Hs256(_) => panic!("an HMAC key has no public key"),
            SigningKey::Rsa { pair, .. } => pair.public_key().as_der().unwrap().as_ref().to_vec(),
            SigningKey::Es256(pair) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
            SigningKey::Ed25519(pair) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
        };
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
    }

    /// The signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::Hs256(secret) => {
                hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), message).as_ref().to_vec()
            }
            SigningKey::Rsa { pss, pair } => {
                let padding: &'static dyn signature::RsaEncoding =
                    if *pss { &signature::RSA_PSS_SHA256 } else { &signature::RSA_PKCS1_SHA256 };
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &SystemRandom::new(), message, &mut out).unwrap();
                out
            }
            SigningKey::Es256(pair) => pair.sign(&SystemRandom::new(), message).unwrap().as_ref().to_vec(),
            SigningKey::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }
}

impl SigningKey {
    /// The public key of an ES256 key as a JWK named `kid`.
    pub fn es256_jwk(&self, kid: &str) -> Value {
        let SigningKey::Es256(pair) = self else { panic!("an ES256 key") };
        let point = pair.public_key().as_ref();
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }
}

/// `header.claims.signature`, each part base64url, signed by `key`.
pub fn token(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", encode_part(header), encode_part(claims));
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes())))
}

/// One base64url part of a token.
pub fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}
