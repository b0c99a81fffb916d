//! The worker's identity, generated once and kept in its data directory so that a restarted worker keeps
//! its place on the ring and so its cache. The file is versioned JSON: `{"version": 1, "workerId": "worker-…"}`.

use loam_core::WorkerId;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;

/// Name of the identity file in the data directory.
pub const IDENTITY_FILE: &str = "worker-identity.json";
const IDENTITY_FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityFile {
    version: u32,
    worker_id: WorkerId,
}

/// Loads the worker id from `data_dir`, or creates and stores a new one.
pub fn load_or_create(data_dir: &Path) -> io::Result<WorkerId> {
    let path = data_dir.join(IDENTITY_FILE);
    match std::fs::read(&path) {
        Ok(raw) => {
            let f: IdentityFile = serde_json::from_slice(&raw)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
            if f.version != IDENTITY_FORMAT_VERSION {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: unknown identity format version {}", path.display(), f.version),
                ));
            }
            Ok(f.worker_id)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            loam_core::private_fs::create_dir_all(data_dir)?;
            let id = WorkerId::random();
            let body = serde_json::to_vec_pretty(&IdentityFile { version: IDENTITY_FORMAT_VERSION, worker_id: id })
                .map_err(io::Error::other)?;
            let tmp = path.with_extension("json.tmp");
            loam_core::private_fs::write(&tmp, body)?;
            std::fs::rename(&tmp, &path)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a, b);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(a, load_or_create(other.path()).unwrap());
    }

    #[test]
    fn refuses_unknown_version() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(IDENTITY_FILE),
            r#"{"version": 9, "workerId": "worker-00000000-0000-4000-8000-000000000001"}"#,
        )
        .unwrap();
        assert!(load_or_create(dir.path()).is_err());
    }
}
