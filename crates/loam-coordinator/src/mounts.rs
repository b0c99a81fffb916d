//! The mount table service: the cluster's mounts, read from and written to the cluster store.
//!
//! Each mount is one JSON [`Mount`] record (it carries its own `version`) at
//! `store_keys::mount_key(cluster, name)`, so every process that watches the mounts prefix sees the same
//! table, and a restarted coordinator finds it again. The table is read from the store on every request
//! instead of being cached here: mounts are few, and a cache would go stale when another process (or a
//! second coordinator) changes them.
//!
//! Writes are guarded twice. A coordinator-level mutex serialises this process's mount writes, so the
//! UFS-overlap check (`MountTable::check_add` on the table as stored) and the write that follows it are
//! not interleaved with another add. The write itself is a `compare_and_set(Expect::Absent)`, so two
//! coordinators adding the same path cannot both win. (Two coordinators adding *different* paths whose
//! UFSs overlap are not caught; running two coordinators against one store is not a supported setup.)
//!
//! Before a mount is written its UFS is checked: the registry must accept the URI and options, and the
//! root must exist and be a directory. Every failure of that check is the caller's problem (a typo in a
//! bucket name, a wrong endpoint, missing credentials), so it is an `InvalidInput` and never a 500.
//!
//! Before anything else, the mount must pass the coordinator's [`UfsPolicy`] (`file://` roots under
//! `--allow-local-ufs`, S3 endpoints matching `--allow-ufs-endpoint`): a refused mount is `NotAllowed`
//! (`400`, naming the setting) and its UFS is never contacted — so a mount cannot make the Coordinator
//! send signed requests to a host the operator did not allow.
//!
//! With a static mount table (loaded from a file at start-up) the table is fixed: writes answer
//! `NotImplemented`.

use bytes::Bytes;
use futures::StreamExt;
use loam_core::ErrorKind;
use loam_core::path::normalize_cluster_path;
use loam_core::store_keys::{mount_key, mounts_prefix};
use loam_store::{CasOutcome, ClusterStore, Expect, KeyValue, StoreError, list_all};
use loam_ufs::mount_table::{MOUNT_RECORD_VERSION, MountError};
use loam_ufs::{ListOptions, Mount, MountOptions, MountTable, UfsError, UfsPolicy, UfsRegistry};
use std::sync::Arc;
use std::time::Duration;

/// How long the UFS check of a new mount waits for the UFS before calling it unreachable.
///
/// The UFS layer has its own retries and timeouts; this bound only keeps a `POST` from hanging on an
/// endpoint that never answers.
pub const UFS_CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a mount table operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MountServiceError {
    /// A mount rule or path error (bad path, `/`, nested, already mounted, overlapping UFS, not mounted).
    #[error(transparent)]
    Mount(#[from] MountError),
    /// The mount table was loaded from a file at start-up and cannot be changed through the API.
    #[error("the mount table is static (loaded at start-up) and cannot be changed through the API")]
    Static,
    /// `DELETE` of a path that is not mounted.
    #[error("No mount point found for path: {0}")]
    NotMounted(String),
    /// The UFS root of a new mount does not exist.
    #[error("UFS path does not exist: {0}")]
    UfsMissing(String),
    /// The UFS root of a new mount is a file.
    #[error("UFS path is not a directory: {0}")]
    UfsNotDirectory(String),
    /// The UFS did not answer or failed (network error, timeout, throttling, a server error).
    #[error("UFS {uri} is unreachable or failing: {reason}")]
    UfsUnreachable {
        /// The UFS root.
        uri: String,
        /// What the UFS layer said.
        reason: String,
    },
    /// The UFS refused the URI, the options or the credentials.
    #[error("UFS {uri} cannot be mounted: {reason}")]
    UfsRejected {
        /// The UFS root.
        uri: String,
        /// What the UFS layer said.
        reason: String,
    },
    /// The mount policy refuses this UFS root or endpoint.
    #[error("{0}")]
    NotAllowed(String),
    /// The cluster store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored mount record cannot be read.
    #[error("mount record {key} is unreadable: {reason}")]
    CorruptRecord {
        /// The store key.
        key: String,
        /// Why.
        reason: String,
    },
}

impl MountServiceError {
    /// The layer-independent kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MountServiceError::Mount(MountError::Path(_) | MountError::Invalid(_)) => ErrorKind::InvalidInput,
            MountServiceError::Mount(MountError::Conflict(_)) => ErrorKind::Conflict,
            MountServiceError::Mount(MountError::NotMounted(_)) => ErrorKind::NotFound,
            MountServiceError::Static => ErrorKind::NotImplemented,
            MountServiceError::NotMounted(_) => ErrorKind::Gone,
            MountServiceError::UfsMissing(_)
            | MountServiceError::UfsNotDirectory(_)
            | MountServiceError::UfsUnreachable { .. }
            | MountServiceError::UfsRejected { .. }
            | MountServiceError::NotAllowed(_) => ErrorKind::InvalidInput,
            MountServiceError::Store(e) => e.kind(),
            MountServiceError::CorruptRecord { .. } => ErrorKind::Corrupt,
        }
    }
}

/// Validates and normalises a mount point path (`/data/` -> `/data`): absolute, no `.`, `..` or NUL,
/// not `/`, a direct child of `/`. The same rules as `Mount::new`, for requests that name only a path.
pub fn mount_point_path(path: &str) -> Result<String, MountError> {
    let p = normalize_cluster_path(path)?;
    if p == "/" {
        return Err(MountError::Invalid("'/' cannot be mounted".into()));
    }
    if p[1..].contains('/') {
        return Err(MountError::Invalid(format!("mount point {p} must be a direct child of '/'")));
    }
    Ok(p)
}

/// The cluster's mount table, in the cluster store (or fixed at start-up).
pub struct MountService {
    store: Arc<dyn ClusterStore>,
    cluster: String,
    ufs: UfsRegistry,
    static_table: Option<MountTable>,
    policy: UfsPolicy,
    write_lock: tokio::sync::Mutex<()>,
}

impl MountService {
    /// A service over `store`; with `static_mounts`, the table is that list and cannot be changed.
    pub fn new(
        store: Arc<dyn ClusterStore>,
        cluster: String,
        ufs: UfsRegistry,
        static_mounts: Option<Vec<Mount>>,
        policy: UfsPolicy,
    ) -> Self {
        Self {
            store,
            cluster,
            ufs,
            static_table: static_mounts.map(MountTable::from_mounts),
            policy,
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether the table is static (writes answer `Static`).
    pub fn is_static(&self) -> bool {
        self.static_table.is_some()
    }

    /// The current mount table.
    pub async fn table(&self) -> Result<MountTable, MountServiceError> {
        if let Some(t) = &self.static_table {
            return Ok(t.clone());
        }
        let kvs = list_all(self.store.as_ref(), &mounts_prefix(&self.cluster)).await?;
        let mounts = kvs.iter().map(decode_record).collect::<Result<Vec<_>, _>>()?;
        Ok(MountTable::from_mounts(mounts))
    }

    /// The mount at exactly `path` (`/data` or `/data/`).
    pub async fn get(&self, path: &str) -> Result<Mount, MountServiceError> {
        let p = mount_point_path(path)?;
        Ok(self.table().await?.get(&p)?.clone())
    }

    /// Mounts the UFS `ufs` at `path` after checking the mount rules and that the UFS root exists.
    pub async fn add(&self, path: &str, ufs: &str, options: MountOptions) -> Result<Mount, MountServiceError> {
        if self.is_static() {
            return Err(MountServiceError::Static);
        }
        let mount = Mount::new(path, ufs, options)?;
        self.policy.check(&mount).map_err(MountServiceError::NotAllowed)?;
        // Fail fast on a conflict before touching the UFS, which may be slow; checked again under the lock.
        self.table().await?.check_add(&mount)?;
        if let Err(e) = self.check_ufs(&mount).await {
            // No mount uses this root (`check_add` passed), so its client, built for the check, can go.
            self.ufs.forget(&mount.ufs);
            return Err(e);
        }

        let _guard = self.write_lock.lock().await;
        self.table().await?.check_add(&mount)?;
        let value = serde_json::to_vec(&mount).map_err(|e| MountServiceError::CorruptRecord {
            key: mount_key(&self.cluster, mount.name()),
            reason: format!("cannot encode: {e}"),
        })?;
        let key = mount_key(&self.cluster, mount.name());
        match self.store.compare_and_set(&key, Expect::Absent, Bytes::from(value), None).await? {
            CasOutcome::Written(_) => {
                tracing::info!(path = %mount.path, ufs = %mount.ufs, "mounted");
                Ok(mount)
            }
            CasOutcome::Conflict(_) => {
                Err(MountError::Conflict(format!("path {} is already mounted", mount.path)).into())
            }
        }
    }

    /// With a static table, makes the store's table exactly the static one, so that the workers (which
    /// follow the table in the store) see the same mounts; without one, does nothing.
    pub async fn publish_static(&self) -> Result<(), MountServiceError> {
        let Some(table) = &self.static_table else { return Ok(()) };
        let _guard = self.write_lock.lock().await;
        for kv in list_all(self.store.as_ref(), &mounts_prefix(&self.cluster)).await? {
            if table.iter().all(|m| mount_key(&self.cluster, m.name()) != kv.key) {
                self.store.delete(&kv.key).await?;
            }
        }
        for mount in table.iter() {
            let key = mount_key(&self.cluster, mount.name());
            let value = serde_json::to_vec(mount).map_err(|e| MountServiceError::CorruptRecord {
                key: key.clone(),
                reason: format!("cannot encode: {e}"),
            })?;
            self.store.put(&key, Bytes::from(value), None).await?;
        }
        tracing::info!(mounts = table.len(), "published the static mount table");
        Ok(())
    }

    /// Unmounts `path`; `NotMounted` when nothing is mounted there.
    pub async fn remove(&self, path: &str) -> Result<(), MountServiceError> {
        if self.is_static() {
            return Err(MountServiceError::Static);
        }
        let p = mount_point_path(path)?;
        let key = mount_key(&self.cluster, &p[1..]);
        let _guard = self.write_lock.lock().await;
        let Some(kv) = self.store.get(&key).await? else {
            return Err(MountServiceError::NotMounted(format!("{p}/")));
        };
        if !self.store.delete(&key).await? {
            return Err(MountServiceError::NotMounted(format!("{p}/")));
        }
        tracing::info!(path = %p, "unmounted");
        // Drop the cached UFS client and its credentials. A record that does not decode is deleted all the
        // same (unmounting is how an operator gets rid of it); it has no client to drop.
        if let Ok(m) = decode_record(&kv) {
            self.ufs.forget(&m.ufs);
        }
        Ok(())
    }

    /// Checks that the registry accepts the mount and that its root is an existing directory.
    async fn check_ufs(&self, mount: &Mount) -> Result<(), MountServiceError> {
        let uri = mount.display_ufs();
        let probe = async {
            // Building the UFS may already look at it (the fs backend checks its root directory).
            let ufs = self.ufs.for_mount(mount)?;
            let stat = ufs.stat(&uri).await?;
            if stat.is_dir {
                // A stat of a bucket's root answers "directory" without asking S3; reading the first
                // entry is what finds out that the bucket is missing or the credentials are refused.
                let opts = ListOptions { recursive: false, page_size: Some(1) };
                if let Some(Err(e)) = ufs.list(&uri, opts).next().await {
                    return Err(e);
                }
            }
            Ok(stat)
        };
        let stat = tokio::time::timeout(UFS_CHECK_TIMEOUT, probe).await.unwrap_or_else(|_| {
            Err(UfsError::Unavailable(format!("no answer within {} s", UFS_CHECK_TIMEOUT.as_secs())))
        });
        match stat {
            Ok(s) if s.is_dir => Ok(()),
            Ok(_) => Err(MountServiceError::UfsNotDirectory(uri)),
            Err(UfsError::NotFound(_)) => Err(MountServiceError::UfsMissing(uri)),
            // OpenDAL classifies S3's NoSuchBucket as a configuration error; to the user it is a missing path.
            Err(UfsError::InvalidInput(m)) if m.contains("NoSuchBucket") => Err(MountServiceError::UfsMissing(uri)),
            Err(
                e @ (UfsError::InvalidInput(_)
                | UfsError::PermissionDenied(_)
                | UfsError::Conflict(_)
                | UfsError::Unsupported(_)
                | UfsError::ConditionFailed(_)),
            ) => Err(MountServiceError::UfsRejected { uri, reason: e.to_string() }),
            // Network errors arrive as `Other` once the UFS layer's retries are exhausted, not only as
            // `Unavailable`; either way the user must look at the endpoint, so both read as unreachable.
            Err(e @ (UfsError::Unavailable(_) | UfsError::Other(_) | UfsError::Changed(_))) => {
                Err(MountServiceError::UfsUnreachable { uri, reason: e.to_string() })
            }
        }
    }
}

/// Decodes a stored mount record, re-validating it so that a hand-edited or foreign record cannot break
/// the rules the rest of the system relies on (a `Mount`'s URI is assumed valid everywhere).
fn decode_record(kv: &KeyValue) -> Result<Mount, MountServiceError> {
    let corrupt = |reason: String| MountServiceError::CorruptRecord { key: kv.key.clone(), reason };
    let m: Mount = serde_json::from_slice(&kv.value).map_err(|e| corrupt(e.to_string()))?;
    if m.version != MOUNT_RECORD_VERSION {
        return Err(corrupt(format!("record version {} (this coordinator reads {MOUNT_RECORD_VERSION})", m.version)));
    }
    Mount::new(&m.path, &m.ufs, m.options).map_err(|e| corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_point_rules() {
        assert_eq!(mount_point_path("/data/").unwrap(), "/data");
        assert!(matches!(mount_point_path("/"), Err(MountError::Invalid(_))));
        assert!(matches!(mount_point_path("/a/b"), Err(MountError::Invalid(_))));
        assert!(matches!(mount_point_path("a"), Err(MountError::Path(_))));
        assert!(matches!(mount_point_path("/a/../b"), Err(MountError::Path(_))));
    }

    #[test]
    fn records_are_validated_on_read() {
        let kv = |v: &str| KeyValue {
            key: "/loam/c/mounts/x".into(),
            value: Bytes::from(v.to_string()),
            create_revision: 1,
            mod_revision: 1,
            lease: None,
        };
        let ok = decode_record(&kv(r#"{"version":1,"path":"/x","ufs":"file:///tmp/x"}"#)).unwrap();
        assert_eq!(ok.ufs, "file:///tmp/x");
        for bad in [
            r#"{"version":2,"path":"/x","ufs":"file:///tmp/x"}"#,
            r#"{"version":1,"path":"/x","ufs":"gopher://x"}"#,
            r#"{"version":1,"path":"/x/y","ufs":"file:///tmp/x"}"#,
            "not json",
        ] {
            assert!(matches!(decode_record(&kv(bad)), Err(MountServiceError::CorruptRecord { .. })), "{bad}");
        }
    }
}
