//! The last cluster view a file command saw through etcd, kept so that `loam fs` can still read while
//! etcd is down (the workers keep serving; only the CLI's way to find them was gone).
//!
//! - **What is kept**: the mount points (cluster path and UFS URI, never the options: they may hold
//!   credentials) and the live workers (id, host, ports, TLS). No token, password or key is written.
//! - **Where**: `$XDG_CACHE_HOME/loam/views/` (else `~/.cache/loam/views/`), one file per cluster (its
//!   name and etcd endpoints, hashed into the file name), mode `0600` in a `0700` directory, written to a
//!   temporary file and renamed, so a concurrent command reads either the old view or the new one.
//! - **Format**: JSON with a `version` ([`VIEW_VERSION`]); a file of another version, another cluster
//!   or that does not parse is ignored, as if there were none.
//! - **When**: written after every command that read the mount table and the ring from etcd; read only
//!   when etcd cannot be reached, with a warning on stderr that the view may be stale (workers that joined
//!   since are unknown; one that left costs a failover to the next worker or the UFS).
//!   Without the mount options the UFS fallback is limited to `file://` mounts, as it is for a command
//!   that reads the mount table from the Coordinator (`session`).

use loam_client::WorkerEndpoint;
use loam_ufs::{Mount, MountTable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Version of the kept view's format.
pub const VIEW_VERSION: u32 = 1;

/// The kept view of one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptView {
    /// [`VIEW_VERSION`].
    pub version: u32,
    /// The cluster name.
    pub cluster: String,
    /// The etcd endpoints it was read from.
    pub etcd: Vec<String>,
    /// When it was read, ms since the epoch.
    pub saved_ms: i64,
    /// The mount points, without their options.
    pub mounts: Vec<KeptMount>,
    /// The live workers.
    pub workers: Vec<KeptWorker>,
}

/// A mount point: where it is and what it mounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptMount {
    /// Cluster path (`/data`).
    pub path: String,
    /// UFS URI.
    pub ufs: String,
}

/// A worker: who it is and where it serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptWorker {
    /// `worker-<uuid>`.
    pub id: String,
    /// Host clients connect to.
    pub host: String,
    /// HTTP API port.
    pub http_port: u16,
    /// S3 API port (0 when unknown).
    pub s3_port: u16,
    /// Whether it serves over TLS.
    pub tls: bool,
}

impl KeptView {
    /// The view of `table` and `workers`, read now from `etcd` for `cluster`.
    pub fn new<'a>(
        cluster: &str,
        etcd: &[String],
        table: &MountTable,
        workers: impl Iterator<Item = &'a WorkerEndpoint>,
    ) -> Self {
        Self {
            version: VIEW_VERSION,
            cluster: cluster.to_string(),
            etcd: etcd.to_vec(),
            saved_ms: loam_core::time::now_millis(),
            mounts: table.iter().map(|m| KeptMount { path: m.path.clone(), ufs: m.ufs.clone() }).collect(),
            workers: workers
                .map(|w| KeptWorker {
                    id: w.id.to_string(),
                    host: w.host.clone(),
                    http_port: w.http_port,
                    s3_port: w.s3_port,
                    tls: w.tls,
                })
                .collect(),
        }
    }

    /// The mount table (no options).
    pub fn table(&self) -> MountTable {
        MountTable::from_mounts(self.mounts.iter().filter_map(|m| Mount::new(&m.path, &m.ufs, Default::default()).ok()))
    }

    /// The workers (entries with an unreadable id are skipped).
    pub fn workers(&self) -> Vec<WorkerEndpoint> {
        self.workers
            .iter()
            .filter_map(|w| {
                Some(WorkerEndpoint {
                    id: w.id.parse().ok()?,
                    host: w.host.clone(),
                    http_port: w.http_port,
                    s3_port: w.s3_port,
                    tls: w.tls,
                })
            })
            .collect()
    }

    /// When it was read, for humans (RFC 3339).
    pub fn saved_at(&self) -> String {
        let ms = u64::try_from(self.saved_ms).unwrap_or(0);
        loam_core::time::rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
    }
}

/// The directory of kept views: `$XDG_CACHE_HOME/loam/views`, else `$HOME/.cache/loam/views` (none
/// without either, and then nothing is kept).
pub fn dir() -> Option<PathBuf> {
    let absolute = |v: &str| std::env::var_os(v).map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("loam").join("views"))
}

/// The file of the view of `cluster` on `etcd` under `dir`.
pub fn path_in(dir: &Path, cluster: &str, etcd: &[String]) -> PathBuf {
    let mut endpoints = etcd.to_vec();
    endpoints.sort();
    let key = format!("{cluster}\n{}", endpoints.join(","));
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    dir.join(format!("{}.json", &hash[..32]))
}

/// Writes `view` (0600, atomically) under `dir`.
pub fn save_in(dir: &Path, view: &KeptView) -> std::io::Result<PathBuf> {
    loam_core::private_fs::create_dir_all(dir)?;
    let path = path_in(dir, &view.cluster, &view.etcd);
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(view).map_err(std::io::Error::other)?;
    loam_core::private_fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(path)
}

/// The view of `cluster` on `etcd` kept under `dir`, if there is a readable one of this version.
pub fn load_in(dir: &Path, cluster: &str, etcd: &[String]) -> Option<(KeptView, PathBuf)> {
    let path = path_in(dir, cluster, etcd);
    let view: KeptView = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let (mut want, mut got) = (etcd.to_vec(), view.etcd.clone());
    want.sort();
    got.sort();
    (view.version == VIEW_VERSION && view.cluster == cluster && want == got).then_some((view, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn worker(n: u8) -> WorkerEndpoint {
        WorkerEndpoint {
            id: format!("worker-00000000-0000-4000-8000-0000000000{n:02}").parse().unwrap(),
            host: "10.0.0.1".into(),
            http_port: 28080 + u16::from(n),
            s3_port: 29998,
            tls: n.is_multiple_of(2),
        }
    }

    #[test]
    fn a_view_round_trips_without_mount_options_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let opts = [("s3a.secretKey".to_string(), "real-secret".to_string())].into_iter().collect();
        let table = MountTable::from_mounts([Mount::new("/s3", "s3://bucket/p", opts).unwrap()]);
        let workers = [worker(1), worker(2)];
        let etcd = vec!["http://b:2379".to_string(), "http://a:2379".to_string()];
        let view = KeptView::new("c1", &etcd, &table, workers.iter());
        let path = save_in(&dir.path().join("views"), &view).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("real-secret") && !text.contains("secretKey"), "no mount option is kept: {text}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let reordered = vec!["http://a:2379".to_string(), "http://b:2379".to_string()];
        let (back, at) = load_in(&dir.path().join("views"), "c1", &reordered).expect("the kept view");
        assert_eq!((back.clone(), at), (view, path));
        assert_eq!(back.workers(), workers);
        let r = back.table().resolve("/s3/x").unwrap();
        assert_eq!((r.ufs_uri.as_str(), r.mount.options.is_empty()), ("s3://bucket/p/x", true));
    }

    #[test]
    fn another_cluster_another_version_or_junk_is_no_view() {
        let dir = tempfile::tempdir().unwrap();
        let etcd = vec!["http://a:2379".to_string()];
        let mut view = KeptView::new("c1", &etcd, &MountTable::new(), [worker(1)].iter());
        save_in(dir.path(), &view).unwrap();
        assert!(load_in(dir.path(), "c2", &etcd).is_none(), "another cluster name");
        assert!(load_in(dir.path(), "c1", &["http://z:2379".to_string()]).is_none(), "other endpoints");
        view.version = VIEW_VERSION + 1;
        save_in(dir.path(), &view).unwrap();
        assert!(load_in(dir.path(), "c1", &etcd).is_none(), "a newer format");
        std::fs::write(path_in(dir.path(), "c1", &etcd), b"{").unwrap();
        assert!(load_in(dir.path(), "c1", &etcd).is_none(), "junk");
    }
}
