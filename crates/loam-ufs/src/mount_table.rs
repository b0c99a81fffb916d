//! The mount table: which UFS each top-level cluster directory shows, and the translation between
//! cluster paths (`/data/dir/f`) and UFS URIs (`s3://bucket/prefix/dir/f`).
//!
//! Rules (coordinator-api.md): a mount point is a direct child of `/`; `/` cannot be mounted; mounts do
//! not nest in the cluster namespace nor in UFS space; trailing slashes do not matter.

use crate::MountOptions;
use loam_core::path::{PathError, UfsUri, normalize_cluster_path};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the serialised [`Mount`] record (stored in the cluster store).
pub const MOUNT_RECORD_VERSION: u32 = 1;

/// One mount: cluster path `/name` shows the UFS at `ufs`. Its `Debug` masks secret options, so a mount
/// in a log line or an error shows no credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Format version of this record.
    #[serde(default = "record_version")]
    pub version: u32,
    /// Normalised cluster path, `/name` (no trailing slash).
    pub path: String,
    /// Normalised UFS URI of the mounted root (`s3://bucket/prefix`, `file:///srv/data`).
    pub ufs: String,
    /// Options handed to the UFS (credentials, endpoint, region, ...).
    #[serde(default)]
    pub options: MountOptions,
}

fn record_version() -> u32 {
    MOUNT_RECORD_VERSION
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount")
            .field("version", &self.version)
            .field("path", &self.path)
            .field("ufs", &self.ufs)
            .field("options", &loam_core::secrets::mask_secrets(&self.options))
            .finish()
    }
}

impl Mount {
    /// Validates and normalises a mount request.
    pub fn new(path: &str, ufs: &str, options: MountOptions) -> Result<Self, MountError> {
        let path = normalize_cluster_path(path)?;
        if path == "/" {
            return Err(MountError::Invalid("'/' cannot be mounted".into()));
        }
        if path[1..].contains('/') {
            return Err(MountError::Invalid(format!("mount point {path} must be a direct child of '/'")));
        }
        let uri = UfsUri::parse(ufs)?;
        Ok(Self { version: MOUNT_RECORD_VERSION, path, ufs: uri.as_string(), options })
    }

    /// The parsed UFS root.
    pub fn ufs_uri(&self) -> UfsUri {
        UfsUri::parse(&self.ufs).expect("mount UFS was validated")
    }

    /// The mount's name (the cluster path without its slash), which is also its S3 bucket name.
    pub fn name(&self) -> &str {
        &self.path[1..]
    }

    /// `path` with a trailing slash, as the API lists it.
    pub fn display_path(&self) -> String {
        format!("{}/", self.path)
    }

    /// `ufs` with a trailing slash, as the API lists it.
    pub fn display_ufs(&self) -> String {
        if self.ufs.ends_with('/') { self.ufs.clone() } else { format!("{}/", self.ufs) }
    }
}

/// Why a mount operation or a resolution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// The path or URI is malformed.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The request breaks a mount rule.
    #[error("{0}")]
    Invalid(String),
    /// The cluster path is already mounted, or the UFS overlaps another mount.
    #[error("{0}")]
    Conflict(String),
    /// The path is not mounted / lies under no mount.
    #[error("No mount point found for path: {0}")]
    NotMounted(String),
}

/// Where a path resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The mount it lies under.
    pub mount: Mount,
    /// The cluster path (`/data/dir/f`).
    pub cluster_path: String,
    /// The full UFS URI (`s3://bucket/dir/f`).
    pub ufs_uri: String,
}

/// The mount table, keyed by normalised cluster path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountTable {
    mounts: BTreeMap<String, Mount>,
}

fn overlaps(a: &UfsUri, b: &UfsUri) -> bool {
    a.strip_prefix(b).is_some() || b.strip_prefix(a).is_some()
}

impl MountTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A table of `mounts` (as loaded from the store), without re-checking rules.
    pub fn from_mounts(mounts: impl IntoIterator<Item = Mount>) -> Self {
        Self { mounts: mounts.into_iter().map(|m| (m.path.clone(), m)).collect() }
    }

    /// Checks that `mount` could be added: path free, UFS not inside nor around another mount's UFS.
    pub fn check_add(&self, mount: &Mount) -> Result<(), MountError> {
        if self.mounts.contains_key(&mount.path) {
            return Err(MountError::Conflict(format!("path {} is already mounted", mount.path)));
        }
        let uri = mount.ufs_uri();
        if let Some(other) = self.mounts.values().find(|m| overlaps(&m.ufs_uri(), &uri)) {
            return Err(MountError::Conflict(format!(
                "UFS {} overlaps {} already mounted at {}",
                mount.ufs, other.ufs, other.path
            )));
        }
        Ok(())
    }

    /// Adds a mount after [`check_add`](Self::check_add).
    pub fn add(&mut self, mount: Mount) -> Result<(), MountError> {
        self.check_add(&mount)?;
        self.mounts.insert(mount.path.clone(), mount);
        Ok(())
    }

    /// Inserts or replaces a mount as the store reports it (watch events), without rule checks.
    pub fn upsert(&mut self, mount: Mount) {
        self.mounts.insert(mount.path.clone(), mount);
    }

    /// Removes the mount at `path` (any spelling); `NotMounted` when there is none.
    pub fn remove(&mut self, path: &str) -> Result<Mount, MountError> {
        let p = normalize_cluster_path(path)?;
        self.mounts.remove(&p).ok_or(MountError::NotMounted(format!("{p}/")))
    }

    /// The mount at exactly `path`.
    pub fn get(&self, path: &str) -> Result<&Mount, MountError> {
        let p = normalize_cluster_path(path)?;
        self.mounts.get(&p).ok_or(MountError::NotMounted(format!("{p}/")))
    }

    /// Every mount, by path.
    pub fn iter(&self) -> impl Iterator<Item = &Mount> {
        self.mounts.values()
    }

    /// Number of mounts.
    pub fn len(&self) -> usize {
        self.mounts.len()
    }

    /// Whether nothing is mounted.
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// Resolves a cluster path (`/data/x`) to its mount and UFS URI.
    pub fn resolve_cluster_path(&self, path: &str) -> Result<Resolved, MountError> {
        let p = normalize_cluster_path(path)?;
        let name = p[1..].split('/').next().unwrap_or("");
        let mount = self.mounts.get(&format!("/{name}")).ok_or_else(|| MountError::NotMounted(p.clone()))?;
        let rel = p[1 + name.len()..].trim_start_matches('/');
        let ufs_uri = mount.ufs_uri().join(rel).as_string();
        Ok(Resolved { mount: mount.clone(), cluster_path: p, ufs_uri })
    }

    /// Resolves a UFS URI (`s3://bucket/x`) to its mount and cluster path.
    pub fn resolve_ufs_uri(&self, uri: &str) -> Result<Resolved, MountError> {
        let u = UfsUri::parse(uri)?;
        for mount in self.mounts.values() {
            if let Some(rel) = u.strip_prefix(&mount.ufs_uri()) {
                let cluster_path = if rel.is_empty() { mount.path.clone() } else { format!("{}/{rel}", mount.path) };
                return Ok(Resolved { mount: mount.clone(), cluster_path, ufs_uri: u.as_string() });
            }
        }
        Err(MountError::NotMounted(u.as_string()))
    }

    /// Resolves either form: a path starting with `/` is a cluster path, anything else a UFS URI.
    pub fn resolve(&self, path: &str) -> Result<Resolved, MountError> {
        if path.starts_with('/') { self.resolve_cluster_path(path) } else { self.resolve_ufs_uri(path) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MountTable {
        let mut t = MountTable::new();
        t.add(Mount::new("/data/", "s3://bucket/prefix/", Default::default()).unwrap()).unwrap();
        t.add(Mount::new("/local", "file:///srv/x", Default::default()).unwrap()).unwrap();
        t
    }

    #[test]
    fn resolves_both_ways() {
        let t = table();
        let r = t.resolve("/data/a/b").unwrap();
        assert_eq!(r.ufs_uri, "s3://bucket/prefix/a/b");
        let r = t.resolve("s3://bucket/prefix/a/b").unwrap();
        assert_eq!(r.cluster_path, "/data/a/b");
        assert_eq!(t.resolve("/local").unwrap().ufs_uri, "file:///srv/x");
        assert!(matches!(t.resolve("/nope/x"), Err(MountError::NotMounted(_))));
        assert!(matches!(t.resolve("s3://bucket/prefixed"), Err(MountError::NotMounted(_))));
        assert!(matches!(t.resolve("/data/../x"), Err(MountError::Path(_))));
    }

    #[test]
    fn mount_rules() {
        let t = table();
        assert!(matches!(Mount::new("/", "s3://b", Default::default()), Err(MountError::Invalid(_))));
        assert!(matches!(Mount::new("/a/b", "s3://b", Default::default()), Err(MountError::Invalid(_))));
        let dup = Mount::new("/data", "s3://other", Default::default()).unwrap();
        assert!(matches!(t.check_add(&dup), Err(MountError::Conflict(_))));
        let inner = Mount::new("/inner", "s3://bucket/prefix/sub", Default::default()).unwrap();
        assert!(matches!(t.check_add(&inner), Err(MountError::Conflict(_))));
        let outer = Mount::new("/outer", "s3://bucket", Default::default()).unwrap();
        assert!(matches!(t.check_add(&outer), Err(MountError::Conflict(_))));
        let sibling = Mount::new("/sib", "s3://bucket/prefix2", Default::default()).unwrap();
        assert!(t.check_add(&sibling).is_ok());
    }
}
