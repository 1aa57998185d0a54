//! TLS with rustls, both ways. On the S3 listener the certificate and key come from PEM files
//! and are reloaded on demand (SIGHUP): new handshakes get the new certificate, open connections
//! keep theirs. Toward `https://` backends the server certificate is verified against the
//! system's roots plus an optional CA file, with SNI. Either way the connection is wrapped so
//! that pingora's HTTP sessions can use it.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::protocols::tls::SslDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    TimingDigest, UniqueID, UniqueIDType,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::send_deadline::{SendDeadline, Socket};

/// The listener's certificate, swappable while it serves.
pub struct ServerTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: Arc<ArcSwap<CertifiedKey>>,
    acceptor: tokio_rustls::TlsAcceptor,
}

#[derive(Debug)]
struct Current(Arc<ArcSwap<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a certificate chain and its private key; errors name the file and never the key.
pub fn certified_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("{}: {}", cert_file.display(), pem_fault(&e)))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        let fault = pem_fault(&e);
        format!("{}: no usable private key ({fault})", key_file.display())
    })?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{}: {e}", key_file.display()))?;
    let certified = CertifiedKey::new(certs, signing_key);
    certified
        .keys_match()
        .map_err(|e| format!("{} and {}: {e}", cert_file.display(), key_file.display()))?;
    Ok(certified)
}

/// What is wrong with a PEM file, in words that quote none of it: the library's own message
/// quotes the line it could not read — and a key whose line breaks were lost (flattened into
/// a Secret, `\n` written out) is all one line, the key itself.
fn pem_fault(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => {
            "a PEM section has no END line (are the file's line breaks intact?)".into()
        }
        Error::IllegalSectionStart { .. } => {
            "a PEM section's BEGIN line is malformed (are the file's line breaks intact?)".into()
        }
        Error::Base64Decode(_) => "a PEM section's content is not base64".into(),
        // (The system's words for a file it could not read: none of the file's.)
        Error::Io(e) => format!("cannot be read: {e}"),
        Error::NoItemsFound => "no PEM section of the kind needed".into(),
        Error::SectionTooLarge => "a PEM section is too large".into(),
        _ => "not a PEM file that can be read".into(),
    }
}

impl ServerTls {
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerTls>, String> {
        let current = Arc::new(ArcSwap::from_pointee(certified_key(cert_file, key_file)?));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Current(current.clone())));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(ServerTls {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }))
    }

    /// Reads the files again; a failure keeps the certificate in use.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = certified_key(&self.cert_file, &self.key_file)?;
        self.current.store(Arc::new(fresh));
        tracing::info!(cert = %self.cert_file.display(), "TLS certificate reloaded");
        Ok(())
    }

    /// The handshake with a client; `peer` is what `client_addr` reports for its requests, and
    /// `send` how long a send to it may wait (the socket's, beneath TLS).
    pub async fn accept(
        &self,
        tcp: TcpStream,
        peer: std::net::SocketAddr,
        send: SendDeadline,
    ) -> std::io::Result<TlsConnection> {
        let id = tcp.as_raw_fd();
        let digest = peer_digest(id, peer);
        let stream = self.acceptor.accept(Socket::bounded(tcp, send)).await?;
        let (_, session) = stream.get_ref();
        let name = |n: Option<&'static str>| n.unwrap_or("unknown");
        // What tells a request that it came over TLS (HCP's `Location` says `https://`).
        let ssl = SslDigest::new(
            name(
                session
                    .negotiated_cipher_suite()
                    .and_then(|c| c.suite().as_str()),
            ),
            name(session.protocol_version().and_then(|v| v.as_str())),
            None,
            None,
            Vec::new(),
        );
        Ok(TlsConnection {
            stream: stream.into(),
            id,
            digest: Some(Arc::new(digest)),
            ssl: Some(Arc::new(ssl)),
        })
    }
}

/// How the gateway reaches one `https://` backend.
pub struct ClientTls {
    connector: tokio_rustls::TlsConnector,
    server_name: rustls_pki_types::ServerName<'static>,
    /// Tells these settings apart from every other backend's (the connection pool's key).
    id: u64,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// The roots a backend certificate is verified against: the system's, and `ca_file`'s.
fn roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(file) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
            .and_then(|certs| certs.collect())
            .map_err(|e| format!("{}: {}", file.display(), pem_fault(&e)))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate", file.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", file.display()))?;
        }
    }
    Ok(roots)
}

impl ClientTls {
    /// TLS toward `host` (its name is sent as SNI and must be in the certificate).
    pub fn new(host: &str, ca_file: Option<&Path>) -> Result<ClientTls, String> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots(ca_file)?)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server_name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host}: {e}"))?;
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(ClientTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
            id: IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// These settings' own number: two backends' settings never have the same.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub async fn connect(&self, tcp: TcpStream) -> std::io::Result<TlsConnection> {
        let id = tcp.as_raw_fd();
        let stream = self
            .connector
            .connect(self.server_name.clone(), Socket::new(tcp))
            .await?;
        Ok(TlsConnection {
            stream: stream.into(),
            id,
            digest: None,
            ssl: None,
        })
    }
}

/// A socket digest that knows its peer, so that requests on the connection can say which
/// client sent them (per-client limits, logs).
pub fn peer_digest(fd: std::os::fd::RawFd, peer: std::net::SocketAddr) -> SocketDigest {
    let digest = SocketDigest::from_raw_fd(fd);
    let _ = digest.peer_addr.set(Some(peer.into()));
    digest
}

/// A TLS connection, either side, in the shape pingora's sessions take.
pub struct TlsConnection {
    stream: tokio_rustls::TlsStream<Socket>,
    id: UniqueIDType,
    digest: Option<Arc<SocketDigest>>,
    /// The accepted side's: its protocol and cipher.
    ssl: Option<Arc<SslDigest>>,
}

impl std::fmt::Debug for TlsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnection")
            .field("fd", &self.id)
            .finish()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for TlsConnection {
    async fn shutdown(&mut self) {
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut self.stream).await;
    }
}

impl UniqueID for TlsConnection {
    fn id(&self) -> UniqueIDType {
        self.id
    }
}

impl Ssl for TlsConnection {
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.ssl.clone()
    }
}

impl GetTimingDigest for TlsConnection {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        Vec::new()
    }
}

impl GetProxyDigest for TlsConnection {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        None
    }
}

impl GetSocketDigest for TlsConnection {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.digest.clone()
    }
}

#[async_trait]
impl Peek for TlsConnection {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backend connection pool keys TLS connections by these ids: settings made for two
    /// backends — even for one host — never share one, so a connection checked for one
    /// backend's name and roots is never taken for the other's.
    #[test]
    fn every_backends_tls_settings_have_their_own_id() {
        let a = ClientTls::new("s3.example", None).unwrap();
        let b = ClientTls::new("s3.example", None).unwrap();
        let c = ClientTls::new("other.example", None).unwrap();
        assert_ne!(a.id(), b.id());
        assert_ne!(b.id(), c.id());
        assert_ne!(a.id(), c.id());
        assert_eq!(a.id(), a.id());
    }

    /// A key or certificate file that cannot be read is named, never quoted: not a line of a
    /// key whose line breaks were lost, in any form (text, the bytes listed, base64).
    #[test]
    fn unreadable_pem_files_are_named_not_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSECRETKEYMATERIAL";
        let lines = [
            format!("-----BEGIN PRIVATE KEY----- {secret} -----END PRIVATE KEY-----"),
            format!("-----BEGIN PRIVATE KEY-----\\n{secret}\\n-----END PRIVATE KEY-----\\n"),
            format!("-----BEGIN PRIVATE KEY-----\n{secret} -----END PRIVATE KEY-----"),
            format!("-----BEGIN PRIVATE KEY-----\n{secret}\n"),
            format!("-----BEGIN PRIVATE KEY-----\n{secret}!!\n-----END PRIVATE KEY-----\n"),
        ];
        let bytes_listed = |s: &str| {
            let listed: Vec<String> = s.bytes().take(6).map(|b| b.to_string()).collect();
            listed.join(", ")
        };
        for (n, text) in lines.iter().enumerate() {
            let file = dir.path().join(format!("key-{n}.pem"));
            std::fs::write(&file, text).unwrap();
            for (cert, key) in [(&file, &file), (&dir.path().join("none.pem"), &file)] {
                let Err(e) = certified_key(cert, key) else {
                    panic!("{text}: read");
                };
                assert!(
                    e.contains(&format!("key-{n}.pem")) || e.contains("none.pem"),
                    "{e}"
                );
                for shown in [secret, &secret[..12], &bytes_listed(secret), "SECRETKEY"] {
                    assert!(!e.contains(shown), "{n}: {e}");
                }
                assert!(!e.contains(&bytes_listed("PRIVATE")), "{n}: {e}");
            }
            let Err(e) = roots(Some(&file)) else {
                panic!("{text}: read as roots");
            };
            assert!(
                !e.contains(&secret[..12]) && !e.contains(&bytes_listed("PRIVATE")),
                "{e}"
            );
        }
    }
}
