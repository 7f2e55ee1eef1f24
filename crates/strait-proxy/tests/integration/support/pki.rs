//! Certificates made with rcgen in a temporary directory, and TLS and HTTP/2 clients that
//! trust them: for tests of TLS listeners, mutual TLS and HTTP/2.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::WAIT;

/// A certificate authority whose files go to a temporary directory.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, in memory and as files.
pub struct Leaf {
    /// The certificate's DER.
    pub der: CertificateDer<'static>,
    /// The key's PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// The PEM certificate file.
    pub cert: PathBuf,
    /// The PEM key file.
    pub key: PathBuf,
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
        std::fs::write(pki.ca_file(), pki.ca.pem()).unwrap();
        pki
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA's private key, written to `ca.key` (for a proxy that signs with this CA).
    pub fn ca_key_file(&self) -> PathBuf {
        let path = self.dir.path().join("ca.key");
        std::fs::write(&path, self.ca.key().serialize_pem()).unwrap();
        path
    }

    /// A server certificate for `names`, written to `<stem>.pem` and `<stem>.key`.
    pub fn server(&self, stem: &str, names: &[&str]) -> Leaf {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
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

    fn issue(&self, stem: &str, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.ca).unwrap();
        let cert = self.dir.path().join(format!("{stem}.pem"));
        let key_file = self.dir.path().join(format!("{stem}.key"));
        std::fs::write(&cert, certificate.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        Leaf { der: certificate.der().clone(), key_der: key.serialize_der(), cert, key: key_file }
    }

    /// A client configuration trusting this CA, offering `alpn`, presenting `identity` if given.
    pub fn client_config(&self, alpn: &[&str], identity: Option<&Leaf>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let builder = ClientConfig::builder().with_root_certificates(roots);
        let mut config = match identity {
            Some(leaf) => builder
                .with_client_auth_cert(
                    vec![leaf.der.clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(config)
    }
}

/// A completed TLS client handshake: the stream, the certificate the server sent, the ALPN.
pub struct Connected {
    /// The TLS stream.
    pub stream: tokio_rustls::client::TlsStream<TcpStream>,
    /// The server's leaf certificate.
    pub peer_cert: CertificateDer<'static>,
    /// The protocol ALPN agreed on.
    pub alpn: Option<Vec<u8>>,
}

/// Connects to `addr` and completes a handshake for `server_name`.
pub async fn connect(addr: SocketAddr, server_name: &str, config: Arc<ClientConfig>) -> std::io::Result<Connected> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let stream = tokio::time::timeout(WAIT, TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))??;
    let (_, session) = stream.get_ref();
    let peer_cert = session.peer_certificates().and_then(|c| c.first()).cloned().expect("a server certificate");
    let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
    Ok(Connected { stream, peer_cert, alpn })
}

/// A response as a client received it.
#[derive(Debug)]
pub struct Got {
    /// Status, headers and version.
    pub parts: http::response::Parts,
    /// The whole body.
    pub body: Bytes,
    /// Trailers, if any.
    pub trailers: Option<http::HeaderMap>,
}

/// Sends `requests` over one HTTP/1.1 connection on `io`, one after the other.
pub async fn http1_requests<I>(io: I, requests: Vec<http::Request<http_body_util::Full<Bytes>>>) -> Vec<Got>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await.unwrap();
    tokio::spawn(conn);
    let mut got = Vec::new();
    for request in requests {
        // The previous exchange may still be settling in the connection task: wait until the
        // connection takes a request.
        tokio::time::timeout(WAIT, sender.ready()).await.unwrap().unwrap();
        let response = tokio::time::timeout(WAIT, sender.send_request(request)).await.unwrap().unwrap();
        got.push(collect(response).await);
    }
    got
}

/// Sends `requests` concurrently as streams of one HTTP/2 connection on `io`.
pub async fn http2_requests<I, B>(io: I, requests: Vec<http::Request<B>>) -> Vec<Got>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut tasks = Vec::new();
    for request in requests {
        let mut sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let response = tokio::time::timeout(WAIT, sender.send_request(request)).await.unwrap().unwrap();
            collect(response).await
        }));
    }
    let mut got = Vec::new();
    for task in tasks {
        got.push(task.await.unwrap());
    }
    got
}

async fn collect(response: http::Response<hyper::body::Incoming>) -> Got {
    let (parts, body) = response.into_parts();
    let collected = tokio::time::timeout(WAIT, body.collect()).await.unwrap().unwrap();
    let trailers = collected.trailers().cloned();
    Got { parts, body: collected.to_bytes(), trailers }
}

/// A runtime for one test's client side.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

/// Sends one request over HTTP/1.1 on `io`; `None` if the connection failed instead.
pub async fn try_http1<I>(io: I, request: http::Request<http_body_util::Full<Bytes>>) -> Option<Got>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await.ok()?;
    tokio::spawn(conn);
    let response = tokio::time::timeout(WAIT, sender.send_request(request)).await.ok()?.ok()?;
    Some(collect(response).await)
}
