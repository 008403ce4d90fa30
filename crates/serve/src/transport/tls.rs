//! Listeners for the receiver: plain TCP, or TLS (rustls) when a
//! certificate and key are configured. TLS handshakes run in their own
//! tasks with a timeout, so a slow or silent client never holds up
//! accepting others; a failed handshake only closes that connection. ALPN
//! offers `h2` and `http/1.1`, so gRPC clients and HTTP/1 clients both work.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Time a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read or holds no certificate.
    #[error("TLS certificate {path}: {reason}")]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The key file could not be read or holds no private key.
    #[error("TLS private key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (say, the key does not match the certificate).
    #[error("TLS certificate and key: {0}")]
    Config(String),
}

/// A server configuration from PEM files: the certificate chain (leaf
/// first) and its private key (PKCS#8, PKCS#1 or SEC1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_error = |reason: String| TlsError::Certificate { path: cert.display().to_string(), reason };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no PEM certificate found".to_string()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key { path: key.display().to_string(), reason: e.to_string() })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A connection, plain or TLS.
pub trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// A bound listener that hands out plain or TLS connections.
pub struct Incoming {
    local: SocketAddr,
    inner: Inner,
}

enum Inner {
    Plain(TcpListener),
    Tls { ready: mpsc::Receiver<(Box<dyn Connection>, SocketAddr)>, acceptor: JoinHandle<()> },
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Inner::Tls { acceptor, .. } = &self.inner {
            acceptor.abort();
        }
    }
}

impl Incoming {
    /// Serves `listener` as is, or with TLS when `tls` is given. Must be
    /// called within a tokio runtime.
    pub fn new(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> io::Result<Incoming> {
        let local = listener.local_addr()?;
        let Some(config) = tls else { return Ok(Incoming { local, inner: Inner::Plain(listener) }) };
        let tls = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    // Out of file descriptors and the like: back off, retry.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    if let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                        let _ = tx.send((Box::new(stream) as Box<dyn Connection>, peer)).await;
                    }
                });
            }
        });
        Ok(Incoming { local, inner: Inner::Tls { ready, acceptor } })
    }
}

async fn accept_tcp(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(pair) => return pair,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Box<dyn Connection>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match &mut self.inner {
            Inner::Plain(listener) => {
                let (tcp, peer) = accept_tcp(listener).await;
                let _ = tcp.set_nodelay(true);
                (Box::new(tcp), peer)
            }
            Inner::Tls { ready, .. } => match ready.recv().await {
                Some(pair) => pair,
                // The acceptor task ended (only when aborted): nothing more comes.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let e = server_config(&cert, &key).unwrap_err().to_string();
        assert!(e.starts_with("TLS certificate ") && e.contains("cert.pem"), "{e}");
        std::fs::write(&cert, "not a certificate").unwrap();
        let e = server_config(&cert, &key).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate found"), "{e}");
        let signed = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&cert, signed.cert.pem()).unwrap();
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
        let e = server_config(&cert, &key).unwrap_err().to_string();
        assert!(e.contains("key.pem") || e.starts_with("TLS certificate and key"), "{e}");
        std::fs::write(&key, signed.signing_key.serialize_pem()).unwrap();
        assert!(server_config(&cert, &key).is_ok());
    }
}
