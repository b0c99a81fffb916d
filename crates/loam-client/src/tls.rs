//! TLS of the clients between nodes (and of the CLI): which CA servers' certificates must chain to, and
//! which certificate the client presents when a server asks for one (mutual TLS).
//!
//! - **Roots.** With a CA file (`--ca-cert`), only that CA is trusted: a cluster's own CA, so a
//!   certificate bought for another purpose cannot impersonate a member. Without one, the system's roots
//!   through reqwest's rustls-platform-verifier (on Linux the distribution's CA bundle): a certificate
//!   from a public CA then works with no flag, and no root list is compiled into the binary to go stale.
//! - **Identity.** A PEM certificate chain and key; server processes present their own `--tls-cert` and
//!   `--tls-key`, so one certificate per member serves both directions.
//!
//! [`install`] sets them for the process, once at start, before any client is built; every builder from
//! `peer::client_builder` then carries them ([`apply`]). The files are read at install: a client built
//! later keeps what was read (a rotated client certificate needs a restart; servers re-read theirs).

use parking_lot::RwLock;
use std::path::{Path, PathBuf};

/// The TLS files of a process's clients.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// Trust only the CAs of this PEM file (`None`: the system's roots).
    pub ca_cert: Option<PathBuf>,
    /// The certificate chain and key presented to servers that ask (`None`: none).
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {message}")]
pub struct TlsFileError {
    what: &'static str,
    path: PathBuf,
    message: String,
}

/// What `ClientTls` names, read and parsed.
#[derive(Clone)]
struct Loaded {
    roots: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
}

static PROCESS: RwLock<Option<(ClientTls, Loaded)>> = RwLock::new(None);

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| TlsFileError { what, path: path.into(), message: e.to_string() })
}

impl ClientTls {
    fn load(&self) -> Result<Loaded, TlsFileError> {
        let roots = match &self.ca_cert {
            None => Vec::new(),
            Some(p) => {
                let certs = reqwest::Certificate::from_pem_bundle(&read("CA certificate", p)?);
                let certs = certs.map_err(|e| TlsFileError {
                    what: "CA certificate",
                    path: p.clone(),
                    message: e.to_string(),
                })?;
                if certs.is_empty() {
                    let message = "no PEM certificate in the file".into();
                    return Err(TlsFileError { what: "CA certificate", path: p.clone(), message });
                }
                certs
            }
        };
        let identity = match &self.identity {
            None => None,
            Some((cert, key)) => {
                let mut pem = read("client certificate", cert)?;
                pem.push(b'\n');
                pem.extend(read("client key", key)?);
                let id = reqwest::Identity::from_pem(&pem).map_err(|e| TlsFileError {
                    what: "client certificate",
                    path: cert.clone(),
                    message: e.to_string(),
                })?;
                Some(id)
            }
        };
        Ok(Loaded { roots, identity })
    }
}

/// Reads `tls`'s files and makes them the process's client TLS (replacing any earlier one).
pub fn install(tls: &ClientTls) -> Result<(), TlsFileError> {
    let loaded = tls.load()?;
    *PROCESS.write() = Some((tls.clone(), loaded));
    Ok(())
}

/// The files of the process's client TLS, if installed.
pub fn installed() -> Option<ClientTls> {
    PROCESS.read().as_ref().map(|(t, _)| t.clone())
}

/// Installs the process's client TLS for a server process: as installed (the CLI's `--ca-cert`,
/// `--client-cert`), presenting the server's own certificate and key when no client certificate is given.
pub fn install_for_server(server_identity: Option<(PathBuf, PathBuf)>) -> Result<(), TlsFileError> {
    let mut tls = installed().unwrap_or_default();
    if tls.identity.is_none() {
        tls.identity = server_identity;
    }
    if tls == ClientTls::default() { Ok(()) } else { install(&tls) }
}

/// `b` with the process's client TLS, if one is installed.
pub fn apply(b: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    let Some((_, tls)) = PROCESS.read().clone() else { return b };
    let b = if tls.roots.is_empty() { b } else { b.tls_certs_only(tls.roots) };
    match tls.identity {
        Some(id) => b.identity(id),
        None => b,
    }
}
