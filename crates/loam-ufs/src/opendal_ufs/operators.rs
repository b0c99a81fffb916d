//! Building OpenDAL operators for a UFS root: the fs service rooted at the mount's directory, or the
//! S3 service rooted at the mount's bucket prefix, both under a timeout and a retry layer.
//!
//! Process-wide setup (once): we build OpenDAL without its default features, so neither a rustls
//! crypto provider nor an HTTP transport is installed for us — `opendal`'s
//! `http-transport-reqwest-rustls-no-provider` feature only compiles the reqwest transport; the facade
//! installs it only under its default `http-transport-reqwest` feature, which would build aws-lc. Without
//! this setup every S3 call fails with "default HTTP transport is not installed", and reqwest panics
//! without a crypto provider. We install rustls's `ring` provider (ignoring "already installed", so an
//! application may choose its own first) and OpenDAL's reqwest transport as the process default.
//!
//! Layers: the timeout layer sits under the retry layer so that a timed-out attempt (OpenDAL marks it
//! temporary) is retried; the retry layer retries only errors OpenDAL marks temporary, and tells
//! `transient` about each retry. `ExactPaths` is the outermost, so that every layer under it sees the
//! exact path (see `exact_paths`).

use super::exact_paths::ExactPaths;
use super::s3_options::S3Settings;
use super::static_keys::StaticKeys;
use super::transient::MarkTemporary;
use crate::{MountOptions, UfsError, UfsResult};
use loam_core::path::UfsUri;
use opendal::Operator;
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::services::{Fs, S3};
use std::sync::Once;
use std::time::Duration;

/// Attempts per operation, the first included.
const RETRY_TIMES: usize = 3;
/// Backoff bounds between attempts (exponential with jitter).
const RETRY_MIN_DELAY: Duration = Duration::from_millis(100);
const RETRY_MAX_DELAY: Duration = Duration::from_secs(2);
/// Limit for a metadata operation (stat, list page, delete).
const OP_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for one I/O step of a read or write (not the whole transfer).
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Installs the rustls crypto provider and OpenDAL's HTTP transport, once per process.
pub fn install_process_defaults() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider is installed already; that one serves us as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
        opendal::HttpTransporter::install_default(opendal_http_transport_reqwest::ReqwestTransport::default());
    });
}

fn with_layers(op: Operator) -> Operator {
    op.layer(TimeoutLayer::new().with_timeout(OP_TIMEOUT).with_io_timeout(IO_TIMEOUT))
        .layer(
            RetryLayer::new()
                .with_notify(MarkTemporary)
                .with_max_times(RETRY_TIMES)
                .with_min_delay(RETRY_MIN_DELAY)
                .with_max_delay(RETRY_MAX_DELAY)
                .with_jitter(),
        )
        .layer(ExactPaths)
}

fn config_error(root: &UfsUri, err: opendal::Error) -> UfsError {
    UfsError::InvalidInput(format!("cannot set up UFS {}: {err}", root.as_string()))
}

/// The fs operator rooted at `root`'s directory, which must exist (OpenDAL would create it: a mount of
/// a mistyped path must fail instead).
pub fn fs_operator(root: &UfsUri) -> UfsResult<Operator> {
    let dir = format!("/{}", root.key);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(UfsError::InvalidInput(format!("UFS root {} is not a directory", root.as_string()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(UfsError::NotFound(root.as_string())),
        Err(e) => return Err(UfsError::Other(format!("cannot read UFS root {}: {e}", root.as_string()))),
    }
    let op = Operator::new(Fs::default().root(&dir)).map_err(|e| config_error(root, e))?;
    Ok(with_layers(op))
}

/// The S3 operator for `root`'s bucket, rooted at its key prefix.
pub fn s3_operator(root: &UfsUri, options: &MountOptions) -> UfsResult<Operator> {
    install_process_defaults();
    let s = S3Settings::parse(options)?;
    let mut b = S3::default().bucket(&root.authority).root(&format!("/{}", root.key)).region(&s.region);
    if let Some(endpoint) = &s.endpoint {
        b = b.endpoint(endpoint);
    }
    if !s.path_style {
        b = b.enable_virtual_host_style();
    }
    if let Some((access, secret)) = &s.credentials {
        // Explicit keys, as the only credential provider: the environment, profiles and the EC2 metadata
        // service (which would stall for its connect timeout outside EC2) are never consulted, and the
        // secret is never in a provider's `Debug` (see `static_keys`).
        b = b.credential_provider_chain(StaticKeys::chain(access, secret));
    }
    let op = Operator::new(b).map_err(|e| config_error(root, e))?;
    Ok(with_layers(op))
}
