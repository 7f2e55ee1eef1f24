//! One entry of `certificates`: its chain and key read, matched and checked, its names found.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{Error, InconsistentKeys};
use strait_config::CertificateSpec;

use crate::error::{item, TlsError};
use crate::files::Files;
use crate::x509;

/// A certificate ready to be offered, and the server names it is offered for.
pub(crate) struct Loaded {
    pub key: Arc<CertifiedKey>,
    pub names: Vec<String>,
}

/// Reads and checks `certificates[index]`; every problem found is returned.
pub(crate) fn load(
    index: usize,
    spec: &CertificateSpec,
    files: &mut Files<'_>,
    provider: &CryptoProvider,
) -> Result<Loaded, Vec<TlsError>> {
    let field = item("certificates", index);
    let cert_field = format!("{field}.cert");
    let key_field = format!("{field}.key");
    let mut errors = Vec::new();
    let chain = files.certificates(&cert_field, &spec.cert).map_err(|error| errors.push(error)).ok();
    let key = files.private_key(&key_field, &spec.key).map_err(|error| errors.push(error)).ok();
    let ocsp = spec.ocsp.as_ref().and_then(|ocsp| {
        let ocsp_field = format!("{field}.ocsp");
        match files.bytes(&ocsp_field, ocsp) {
            Ok(bytes) if bytes.first() == Some(&0x30) => Some(bytes),
            Ok(_) => {
                errors.push(TlsError::new(ocsp_field, format!("`{ocsp}` is not a DER OCSP response")));
                None
            }
            Err(error) => {
                errors.push(error);
                None
            }
        }
    });
    let (Some(chain), Some(key)) = (chain, key) else { return Err(errors) };

    let facts = match x509::facts(&chain[0]) {
        Ok(facts) => facts,
        Err(problem) => {
            errors.push(TlsError::new(cert_field, format!("the first certificate of `{}` is {problem}", spec.cert)));
            return Err(errors);
        }
    };
    if facts.not_after < unix_now() {
        errors.push(TlsError::new(
            &cert_field,
            format!("the certificate in `{}` expired on {}", spec.cert, facts.not_after_text),
        ));
    }
    let signing_key = match provider.key_provider.load_private_key(key) {
        Ok(signing_key) => signing_key,
        Err(error) => {
            errors.push(TlsError::new(key_field, format!("the key in `{}` cannot be used: {error}", spec.key)));
            return Err(errors);
        }
    };
    let mut certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => errors.push(TlsError::new(
            key_field,
            format!("the key in `{}` does not belong to the certificate in `{}`", spec.key, spec.cert),
        )),
        Err(error) => errors.push(TlsError::new(&cert_field, format!("`{}`: {error}", spec.cert))),
    }
    certified.ocsp = ocsp;

    let names = if spec.server_names.is_empty() { facts.dns_names } else { spec.server_names.clone() };
    if names.is_empty() && index > 0 {
        errors.push(TlsError::new(
            format!("{field}.server_names"),
            format!(
                "the certificate in `{}` has no DNS names, so no client would be given it: list `server_names`",
                spec.cert
            ),
        ));
    }
    if errors.is_empty() {
        Ok(Loaded { key: Arc::new(certified), names })
    } else {
        Err(errors)
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}
