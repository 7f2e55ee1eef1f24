//! Helpers of the handshake tests: certificates made with rcgen in a temporary directory, a
//! TLS server on 127.0.0.1 that reports each handshake, and a client that reports what it got.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    CipherSuite, ClientConfig, DigitallySignedStruct, HandshakeKind, ProtocolVersion, RootCertStore, SignatureScheme,
    SupportedProtocolVersion,
};
use strait_config::{ClusterTls, ListenerTls};
use strait_tls::{peer_identity, PeerIdentity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// What every test server sends after a handshake.
pub const GREETING: &[u8] = b"hello over tls\n";

/// How long a test waits for a handshake before failing.
const WAIT: Duration = Duration::from_secs(10);

// === Certificates ===

/// A certificate authority whose files go to a temporary directory.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, in memory and as files of the PKI's directory.
pub struct Leaf {
    /// The certificate's DER.
    pub der: CertificateDer<'static>,
    /// The key's PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// File name of the PEM certificate, relative to the directory.
    pub cert_file: String,
    /// File name of the PEM key, relative to the directory.
    pub key_file: String,
}

impl Leaf {
    /// The key, as rustls takes it.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

impl Pki {
    /// A new CA named `name`; its certificate is written to `ca.pem`.
    pub fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Pki { dir: tempfile::tempdir().unwrap(), ca };
        pki.write("ca.pem", pki.ca.pem());
        pki
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to the file `name` of the directory.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The CA certificate as the only trust anchor.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        roots
    }

    /// A server certificate for `names` (DNS names or IP addresses), written to `<stem>.pem`
    /// and `<stem>.key`.
    pub fn server(&self, stem: &str, names: &[&str]) -> Leaf {
        let mut params = CertificateParams::new(names.iter().map(|name| name.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, stem);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(stem, params)
    }

    /// A client certificate with common name `name`, DNS name `<name>.test` and URI
    /// `spiffe://strait.test/<name>`.
    pub fn client(&self, name: &str) -> Leaf {
        let mut params = CertificateParams::new(vec![format!("{name}.test")]).unwrap();
        params.subject_alt_names.push(SanType::URI(format!("spiffe://strait.test/{name}").try_into().unwrap()));
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(name, params)
    }

    /// Signs `params` with a new ECDSA P-256 key and writes `<stem>.pem` and `<stem>.key`.
    pub fn issue(&self, stem: &str, params: CertificateParams) -> Leaf {
        self.issue_with_key(stem, params, KeyPair::generate().unwrap())
    }

    /// Signs `params` for `key` and writes `<stem>.pem` and `<stem>.key` (PKCS#8).
    pub fn issue_with_key(&self, stem: &str, params: CertificateParams, key: KeyPair) -> Leaf {
        let certificate = params.signed_by(&key, &self.ca).unwrap();
        let cert_file = format!("{stem}.pem");
        let key_file = format!("{stem}.key");
        self.write(&cert_file, certificate.pem());
        self.write(&key_file, key.serialize_pem());
        Leaf { der: certificate.der().clone(), key_der: key.serialize_der(), cert_file, key_file }
    }
}

/// PEM text of `der` under `label` (`RSA PRIVATE KEY`, `EC PRIVATE KEY`...).
pub fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut base64 = String::new();
    for chunk in der.chunks(3) {
        let bytes = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let bits = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for position in 0..4 {
            if position <= chunk.len() {
                base64.push(ALPHABET[(bits >> (18 - 6 * position) & 63) as usize] as char);
            } else {
                base64.push('=');
            }
        }
    }
    let lines: Vec<&str> = base64.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The key a PKCS#8 `PrivateKeyInfo` wraps: the PKCS#1 `RSAPrivateKey` or SEC1 `ECPrivateKey`
/// in its `privateKey` octet string.
pub fn unwrap_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    let mut outer = pkcs8;
    let mut info = der_element(&mut outer, 0x30);
    der_element(&mut info, 0x02); // version
    der_element(&mut info, 0x30); // algorithm
    der_element(&mut info, 0x04).to_vec()
}

/// The content of the DER element with `tag` at the start of `input`, which moves past it.
fn der_element<'a>(input: &mut &'a [u8], tag: u8) -> &'a [u8] {
    assert_eq!(input[0], tag, "DER tag");
    let (length, header) = match input[1] {
        short if short < 0x80 => (usize::from(short), 2),
        0x81 => (usize::from(input[2]), 3),
        0x82 => (usize::from(u16::from_be_bytes([input[2], input[3]])), 4),
        other => panic!("DER length form {other:#x}"),
    };
    let content = &input[header..header + length];
    *input = &input[header + length..];
    content
}

// === Settings ===

/// A listener's `tls` block read by the configuration loader from `block` (YAML).
pub fn listener_tls(block: &str) -> ListenerTls {
    let text = format!("listeners:\n  - name: test\n    bind: 127.0.0.1:0\n    tls:\n{}", indent(block));
    let mut config = strait_config::load_str_with_env(&text, "test.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    config.listeners.remove(0).tls.unwrap()
}

/// A cluster's `tls` block read by the configuration loader from `block` (YAML).
pub fn cluster_tls(block: &str) -> ClusterTls {
    let text = format!(
        "clusters:\n  - name: test\n    endpoints: [{{ address: '127.0.0.1:1' }}]\n    tls:\n{}",
        indent(block)
    );
    let mut config = strait_config::load_str_with_env(&text, "test.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    config.clusters.remove(0).tls.unwrap()
}

fn indent(block: &str) -> String {
    block.lines().map(|line| format!("      {line}\n")).collect()
}

// === Server ===

/// What the server saw of one successful handshake.
#[derive(Debug)]
pub struct Accepted {
    pub server_name: Option<String>,
    pub alpn: Option<Vec<u8>>,
    pub identity: Option<PeerIdentity>,
}

/// A TLS server on 127.0.0.1 that greets every client and reports every handshake.
pub struct Server {
    pub addr: SocketAddr,
    handshakes: mpsc::UnboundedReceiver<Result<Accepted, String>>,
}

impl Server {
    /// Accepts connections with `acceptor` until the test ends.
    pub async fn start(acceptor: TlsAcceptor) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (report, handshakes) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let report = report.clone();
                tokio::spawn(async move {
                    match acceptor.accept(tcp).await {
                        Ok(mut stream) => {
                            let (_, conn) = stream.get_ref();
                            let accepted = Accepted {
                                server_name: conn.server_name().map(str::to_owned),
                                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                                identity: peer_identity(conn),
                            };
                            let _ = stream.write_all(GREETING).await;
                            let _ = stream.shutdown().await;
                            let _ = report.send(Ok(accepted));
                        }
                        Err(error) => {
                            let _ = report.send(Err(error.to_string()));
                        }
                    }
                });
            }
        });
        Server { addr, handshakes }
    }

    /// The next handshake's outcome on the server side.
    pub async fn next(&mut self) -> Result<Accepted, String> {
        tokio::time::timeout(WAIT, self.handshakes.recv()).await.expect("a handshake in time").expect("server runs")
    }
}

// === Client ===

/// What the client got from one connection.
#[derive(Debug)]
pub struct Outcome {
    pub leaf: CertificateDer<'static>,
    pub alpn: Option<Vec<u8>>,
    pub kind: HandshakeKind,
    pub version: ProtocolVersion,
    pub suite: CipherSuite,
    pub greeting: Vec<u8>,
}

/// Connects to `addr` asking for `name`, and reads the greeting to the end.
pub async fn connect(config: &Arc<ClientConfig>, addr: SocketAddr, name: &str) -> io::Result<Outcome> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let stream = TlsConnector::from(Arc::clone(config)).connect(name, tcp);
    let mut stream = tokio::time::timeout(WAIT, stream).await.expect("a handshake in time")?;
    let mut greeting = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut greeting)).await.expect("a greeting in time")?;
    let (_, conn) = stream.get_ref();
    Ok(Outcome {
        leaf: conn.peer_certificates().expect("a server certificate")[0].clone(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        kind: conn.handshake_kind().expect("handshake done"),
        version: conn.protocol_version().expect("handshake done"),
        suite: conn.negotiated_cipher_suite().expect("handshake done").suite(),
        greeting,
    })
}

/// A client trusting `roots` and offering `alpn`, with TLS `versions`.
pub fn client(
    roots: RootCertStore,
    alpn: &[&str],
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// A client trusting `roots` that presents `leaf` as its certificate.
pub fn client_with_certificate(roots: RootCertStore, leaf: &Leaf) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![leaf.der.clone()], leaf.key())
        .unwrap();
    Arc::new(config)
}

/// A client that accepts any certificate and remembers the OCSP response stapled to the last
/// handshake: for tests that look at which certificate a server chose, whatever its names.
pub fn recording_client(sni: bool) -> (Arc<ClientConfig>, Arc<Mutex<Vec<u8>>>) {
    let stapled = Arc::new(Mutex::new(Vec::new()));
    let verifier = Recording { inner: strait_tls::insecure::NoVerification::new(provider()), ocsp: stapled.clone() };
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.enable_sni = sni;
    (Arc::new(config), stapled)
}

/// The provider of the tests, the one Strait uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A verifier accepting any certificate, remembering the stapled OCSP response.
#[derive(Debug)]
struct Recording {
    inner: strait_tls::insecure::NoVerification,
    ocsp: Arc<Mutex<Vec<u8>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.ocsp.lock().unwrap() = ocsp_response.to_vec();
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
