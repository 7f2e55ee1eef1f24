//! Keys and tokens made in tests: one signing key per algorithm and a token minter.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair};
use aws_lc_rs::{hmac, rsa};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use strait_config::JwtAlgorithm;

/// A signing key for one algorithm.
pub enum TestKey {
    /// A shared secret.
    Hmac(JwtAlgorithm, Vec<u8>),
    /// An RSA key, for RS and PS.
    Rsa(JwtAlgorithm, rsa::KeyPair),
    /// An ECDSA key.
    Ecdsa(signature::EcdsaKeyPair),
    /// An Ed25519 key.
    Ed25519(signature::Ed25519KeyPair),
}

impl TestKey {
    /// A fresh key for `algorithm` (the HS secret is `secret`).
    pub fn generate(algorithm: JwtAlgorithm) -> TestKey {
        use JwtAlgorithm::*;
        match algorithm {
            HS256 | HS384 | HS512 => TestKey::Hmac(algorithm, b"secret".to_vec()),
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => {
                TestKey::Rsa(algorithm, rsa::KeyPair::generate(rsa::KeySize::Rsa2048).unwrap())
            }
            ES256 => {
                TestKey::Ecdsa(signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
            }
            ES384 => {
                TestKey::Ecdsa(signature::EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap())
            }
            EdDSA => TestKey::Ed25519(signature::Ed25519KeyPair::generate().unwrap()),
        }
    }

    /// The public key as a `PUBLIC KEY` PEM (SubjectPublicKeyInfo).
    pub fn public_pem(&self) -> String {
        let der = match self {
            TestKey::Hmac(..) => panic!("an HMAC key has no public key"),
            TestKey::Rsa(_, pair) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
            TestKey::Ecdsa(pair) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
            TestKey::Ed25519(pair) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
        };
        pem::encode(&pem::Pem::new("PUBLIC KEY", der))
    }

    /// The signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use JwtAlgorithm::*;
        match self {
            TestKey::Hmac(algorithm, secret) => {
                let hmac_algorithm = match algorithm {
                    HS384 => hmac::HMAC_SHA384,
                    HS512 => hmac::HMAC_SHA512,
                    _ => hmac::HMAC_SHA256,
                };
                hmac::sign(&hmac::Key::new(hmac_algorithm, secret), message).as_ref().to_vec()
            }
            TestKey::Rsa(algorithm, pair) => {
                let padding: &'static dyn signature::RsaEncoding = match algorithm {
                    RS256 => &signature::RSA_PKCS1_SHA256,
                    RS384 => &signature::RSA_PKCS1_SHA384,
                    RS512 => &signature::RSA_PKCS1_SHA512,
                    PS256 => &signature::RSA_PSS_SHA256,
                    PS384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &SystemRandom::new(), message, &mut out).unwrap();
                out
            }
            TestKey::Ecdsa(pair) => pair.sign(&SystemRandom::new(), message).unwrap().as_ref().to_vec(),
            TestKey::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }
}

/// `base64url(header).base64url(claims).base64url(signature)`, signed by `key`.
pub fn token(key: &TestKey, header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
    );
    let signature = URL_SAFE_NO_PAD.encode(key.sign(signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// A header naming `alg`.
pub fn header(alg: &str) -> Value {
    json!({ "alg": alg, "typ": "JWT" })
}

impl TestKey {
    /// The public key as a JWK named `kid`, stating `alg`.
    pub fn jwk(&self, kid: &str, alg: JwtAlgorithm) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let alg_name = format!("{alg:?}");
        match self {
            TestKey::Hmac(..) => panic!("no public JWK for an HMAC key"),
            TestKey::Rsa(_, pair) => {
                let (n, e) = rsa_components(pair.public_key().as_ref());
                let (n, e) = (b64(n), b64(e));
                json!({ "kty": "RSA", "kid": kid, "alg": alg_name, "use": "sig", "n": n, "e": e })
            }
            TestKey::Ecdsa(pair) => {
                let point = pair.public_key().as_ref();
                let size = (point.len() - 1) / 2;
                let crv = if size == 32 { "P-256" } else { "P-384" };
                json!({ "kty": "EC", "kid": kid, "alg": alg_name, "crv": crv, "x": b64(&point[1..=size]), "y": b64(&point[size + 1..]) })
            }
            TestKey::Ed25519(pair) => {
                json!({ "kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(pair.public_key().as_ref()) })
            }
        }
    }
}

/// `n` and `e` of a PKCS #1 `RSAPublicKey` in DER, without leading zeros.
fn rsa_components(der: &[u8]) -> (&[u8], &[u8]) {
    /// One DER element at the start of `input`: (its content, what follows).
    fn element(input: &[u8]) -> (&[u8], &[u8]) {
        let (len, header) = match input[1] {
            short if short < 0x80 => (short as usize, 2),
            long => {
                let count = (long & 0x7f) as usize;
                (input[2..2 + count].iter().fold(0, |n, &b| n << 8 | b as usize), 2 + count)
            }
        };
        (&input[header..header + len], &input[header + len..])
    }
    let (sequence, _) = element(der);
    let (n, rest) = element(sequence);
    let (e, _) = element(rest);
    (n.strip_prefix(&[0]).unwrap_or(n), e.strip_prefix(&[0]).unwrap_or(e))
}
