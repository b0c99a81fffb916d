//! [`UfsRegistry`]: one [`Ufs`] per (UFS root, mount options), built on first use and shared by every
//! reader of that mount — an OpenDAL operator holds an HTTP connection pool and resolved credentials,
//! so building one per request would throw both away.
//!
//! Overrides let a test put a fault-injecting UFS in front of a mount; they win over built instances.
//! The cache key includes the options, so re-mounting with new credentials builds a fresh operator.

use crate::{Mount, MountOptions, OpendalUfs, Ufs, UfsResult};
use loam_core::path::UfsUri;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Builds and caches the [`Ufs`] of each mount; clones share the cache.
#[derive(Clone, Default)]
pub struct UfsRegistry {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    built: Mutex<HashMap<(String, MountOptions), Arc<dyn Ufs>>>,
    overrides: Mutex<HashMap<String, Arc<dyn Ufs>>>,
}

/// Canonical spelling of a UFS root, so `s3a://b/p/` and `s3://b/p` share one entry.
fn canonical_root(ufs_root: &str) -> String {
    UfsUri::parse(ufs_root).map(|u| u.as_string()).unwrap_or_else(|_| ufs_root.to_string())
}

impl UfsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The UFS of `mount`: its override if one was inserted, else the cached or a newly built one.
    pub fn for_mount(&self, mount: &Mount) -> UfsResult<Arc<dyn Ufs>> {
        let root = canonical_root(&mount.ufs);
        if let Some(ufs) = self.inner.overrides.lock().get(&root) {
            return Ok(ufs.clone());
        }
        let key = (root, mount.options.clone());
        // Building under the lock keeps it to one build per key; a build does no network I/O.
        let mut built = self.inner.built.lock();
        if let Some(ufs) = built.get(&key) {
            return Ok(ufs.clone());
        }
        let ufs: Arc<dyn Ufs> = Arc::new(OpendalUfs::new(&mount.ufs_uri(), &mount.options)?);
        built.insert(key, ufs.clone());
        Ok(ufs)
    }

    /// Serves `ufs` for every mount whose UFS root is `ufs_root` (tests: fault injection).
    pub fn insert_override(&self, ufs_root: &str, ufs: Arc<dyn Ufs>) {
        self.inner.overrides.lock().insert(canonical_root(ufs_root), ufs);
    }

    /// Removes the override of `ufs_root`, if any.
    pub fn remove_override(&self, ufs_root: &str) {
        self.inner.overrides.lock().remove(&canonical_root(ufs_root));
    }

    /// Drops the built instances of `ufs_root` (after an unmount), whatever their options.
    pub fn forget(&self, ufs_root: &str) {
        let root = canonical_root(ufs_root);
        self.inner.built.lock().retain(|(r, _), _| *r != root);
    }

    /// Number of built (not overridden) instances held.
    pub fn built_count(&self) -> usize {
        self.inner.built.lock().len()
    }
}
