//! TLS of a listener: rustls with the `ring` provider, the certificate chain and its key (and, for mutual
//! TLS, the CA that client certificates must chain to) read from PEM files.
//!
//! **Reload.** Every new connection asks [`ReloadingTls::acceptor`] for its acceptor, which compares a
//! stamp of each file (modification time, length, inode) with the one it loaded from and re-reads the
//! files when any differs. A stat of three files is noise beside a handshake, and it needs no watcher
//! thread; a renamed-over file (how Kubernetes swaps a secret's symlink) changes the inode, so it is seen
//! too. Connections open keep the certificate they shook hands with; new ones get the new one. A reload
//! that fails (a key that does not match the certificate, a file half-written) keeps the old acceptor,
//! logs once per stamp, and is tried again when the files change again: a rotation in two writes (the
//! certificate, then the key) ends in the new pair.

use crate::ListenerError;
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use tokio_rustls::TlsAcceptor;

/// The PEM files of a TLS listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the listener's own certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, clients must present a certificate that chains to a CA in this file (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [Some(self.cert.as_path()), Some(self.key.as_path()), self.client_ca.as_deref()].into_iter().flatten()
    }
}

/// What identifies one version of a file without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamps(files: &TlsFiles) -> Vec<Option<Stamp>> {
    files
        .paths()
        .map(|p| {
            std::fs::metadata(p).ok().map(|m| Stamp { modified: m.modified().ok(), len: m.len(), inode: inode(&m) })
        })
        .collect()
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// A TLS acceptor that follows its files.
pub(crate) struct ReloadingTls {
    files: TlsFiles,
    state: Mutex<Loaded>,
}

struct Loaded {
    stamps: Vec<Option<Stamp>>,
    acceptor: TlsAcceptor,
    /// The stamps of files that failed to load, so a bad version is reported once, not per connection.
    failed: Option<Vec<Option<Stamp>>>,
}

impl ReloadingTls {
    /// Loads the files now: a listener with unusable TLS files does not start.
    pub(crate) fn load(files: TlsFiles) -> Result<Self, ListenerError> {
        let stamps = stamps(&files);
        let acceptor = acceptor(&files)?;
        Ok(Self { files, state: Mutex::new(Loaded { stamps, acceptor, failed: None }) })
    }

    /// The acceptor for a new connection, re-read first if a file changed.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        let now = stamps(&self.files);
        let mut s = self.state.lock();
        if now != s.stamps && s.failed.as_ref() != Some(&now) {
            // Stamped before reading: a write during the read changes the stamp again, so it is re-read.
            match acceptor(&self.files) {
                Ok(a) => {
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                    *s = Loaded { stamps: now, acceptor: a, failed: None };
                }
                Err(e) => {
                    tracing::warn!("TLS files changed but cannot be loaded, keeping the previous ones: {e}");
                    s.failed = Some(now);
                }
            }
        }
        s.acceptor.clone()
    }
}

fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ListenerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| ListenerError::file("key", &files.key, e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ListenerError::Tls(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certificates(ca)? {
                roots.add(c).map_err(|e| ListenerError::file("client CA", ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ListenerError::file("client CA", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| ListenerError::file("key", &files.key, e))?;
    // The routers speak HTTP/1.1 only (axum's `http1` feature); say so, so clients offering h2 fall back.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ListenerError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ListenerError::file("certificate", path, e))?;
    if certs.is_empty() {
        return Err(ListenerError::file("certificate", path, "no PEM certificate in the file"));
    }
    Ok(certs)
}
