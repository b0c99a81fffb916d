//! A generated S3 key pair kept in a file, for deployments that want signed S3 access without the user
//! choosing keys (`loam local`): generated once, then read back on every start, so that clients keep
//! working across restarts. The file is JSON with a format version, readable by its owner only.

use crate::s3_api::S3Credentials;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// Format version of the key file.
pub const KEY_FILE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    access_key: String,
    secret_key: String,
}

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// It could not be read or written.
    #[error("S3 key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// It is not a key file of a version this build reads.
    #[error("S3 key file {0}: {1}")]
    Invalid(String, String),
}

impl KeyFileError {
    /// The error's kind.
    pub fn kind(&self) -> loam_core::ErrorKind {
        match self {
            KeyFileError::Io { .. } => loam_core::ErrorKind::Unavailable,
            KeyFileError::Invalid(..) => loam_core::ErrorKind::Corrupt,
        }
    }
}

/// A fresh key pair: a 20-character access key id (`LOAM` and 16 hex digits) and a 64-hex-digit secret.
pub fn generate() -> S3Credentials {
    let id = uuid::Uuid::new_v4().simple().to_string().to_ascii_uppercase();
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    S3Credentials { access_key: format!("LOAM{}", &id[..16]), secret_key: secret }
}

/// The key pair in `path`, generated and written there first if the file does not exist.
pub fn load_or_generate(path: &Path) -> Result<S3Credentials, KeyFileError> {
    let shown = path.display().to_string();
    let io = |source| KeyFileError::Io { path: shown.clone(), source };
    match std::fs::read(path) {
        Ok(raw) => {
            let f: KeyFile =
                serde_json::from_slice(&raw).map_err(|e| KeyFileError::Invalid(shown.clone(), e.to_string()))?;
            if f.version != KEY_FILE_VERSION {
                return Err(KeyFileError::Invalid(shown, format!("version {} is not supported", f.version)));
            }
            Ok(S3Credentials { access_key: f.access_key, secret_key: f.secret_key })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keys = generate();
            let f = KeyFile {
                version: KEY_FILE_VERSION,
                access_key: keys.access_key.clone(),
                secret_key: keys.secret_key.clone(),
            };
            let text = serde_json::to_vec_pretty(&f).map_err(|e| io(std::io::Error::other(e)))?;
            if let Some(dir) = path.parent() {
                loam_core::private_fs::create_dir_all(dir).map_err(io)?;
            }
            let mut file = loam_core::private_fs::open_options().write(true).create_new(true).open(path).map_err(io)?;
            file.write_all(&text).and_then(|()| file.sync_all()).map_err(io)?;
            Ok(keys)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_pair_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/s3-keys.json");
        let first = load_or_generate(&path).unwrap();
        assert_eq!(first.access_key.len(), 20);
        assert!(first.access_key.starts_with("LOAM"));
        assert_eq!(first.secret_key.len(), 64);
        assert_eq!(load_or_generate(&path).unwrap(), first, "read back, not generated again");
        assert_ne!(generate(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, br#"{"version": 2, "access_key": "a", "secret_key": "b"}"#).unwrap();
        assert_eq!(load_or_generate(&path).unwrap_err().kind(), loam_core::ErrorKind::Corrupt);
    }
}
