//! What Strait reads from a certificate: names, subject and validity.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// The parts of a certificate Strait uses.
pub(crate) struct Facts {
    /// The subject, as `CN=..., O=...`.
    pub subject: String,
    /// DNS names of the subject alternative names, as written.
    pub dns_names: Vec<String>,
    /// URIs of the subject alternative names (SPIFFE ids and the like).
    pub uris: Vec<String>,
    /// End of validity, in seconds since the Unix epoch.
    pub not_after: i64,
    /// End of validity, as `2030-01-31 12:00:00 UTC`.
    pub not_after_text: String,
}

/// Reads the facts of the DER certificate `der`.
pub(crate) fn facts(der: &[u8]) -> Result<Facts, String> {
    let (_, certificate) =
        X509Certificate::from_der(der).map_err(|error| format!("not a valid X.509 certificate: {error}"))?;
    let mut dns_names = Vec::new();
    let mut uris = Vec::new();
    let alternative_names = certificate
        .subject_alternative_name()
        .map_err(|error| format!("invalid subject alternative names: {error}"))?;
    for name in alternative_names.iter().flat_map(|extension| &extension.value.general_names) {
        match name {
            GeneralName::DNSName(name) => dns_names.push((*name).to_owned()),
            GeneralName::URI(uri) => uris.push((*uri).to_owned()),
            _ => {}
        }
    }
    let not_after = certificate.validity().not_after;
    let end = not_after.to_datetime();
    Ok(Facts {
        subject: certificate.subject().to_string(),
        dns_names,
        uris,
        not_after: not_after.timestamp(),
        not_after_text: format!("{} {:02}:{:02}:{:02} UTC", end.date(), end.hour(), end.minute(), end.second()),
    })
}
