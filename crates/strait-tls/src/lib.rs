//! TLS for Strait: server configurations chosen by SNI, client certificates, upstream TLS, built from the typed config.
//!
//! A listener's `tls` block becomes a [`ServerTls`]: its certificates and keys are read and
//! checked (the key belongs to the certificate, the certificate has not expired), the one offered
//! to a client is chosen by SNI ([`sni`]), and client certificates are verified when
//! `client_auth` asks for them ([`peer_identity`] says who a verified client is). A cluster's
//! `tls` block becomes a [`ClientTls`] that connects to endpoints. Errors name the field of the
//! `tls` block they concern ([`TlsError`]), so a caller reports them at their place in the file.
//!
//! The cryptography is rustls with its default provider, aws-lc-rs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod certificate;
mod client;
mod error;
mod files;
mod identity;
pub mod insecure;
mod mint;
mod server;
pub mod sni;
mod suites;
mod x509;

pub use client::ClientTls;
pub use error::TlsError;
pub use identity::{peer_identity, PeerIdentity};
pub use mint::Minter;
pub use server::ServerTls;
