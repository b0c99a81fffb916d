//! The worker's copy of the mount table, kept current from the cluster store by a watch, so that a mount
//! added on the coordinator is usable on every worker within moments and the data path never asks the
//! coordinator or the store.

use loam_store::{ClusterStore, StoreResult, WatchEvent, list_all};
use loam_ufs::mount_table::{MountError, Resolved};
use loam_ufs::{Mount, MountTable};
use parking_lot::RwLock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A shared, live view of the mount table.
#[derive(Clone, Default)]
pub struct MountView {
    table: Arc<RwLock<MountTable>>,
}

impl MountView {
    /// A view of a fixed table (static mounts, tests).
    pub fn fixed(table: MountTable) -> Self {
        Self { table: Arc::new(RwLock::new(table)) }
    }

    /// A snapshot of the table.
    pub fn snapshot(&self) -> MountTable {
        self.table.read().clone()
    }

    /// Resolves a cluster path or UFS URI.
    pub fn resolve(&self, path: &str) -> Result<Resolved, MountError> {
        self.table.read().resolve(path)
    }

    /// Loads the table from the store and follows its changes until `shutdown` flips to true.
    pub async fn follow(
        store: Arc<dyn ClusterStore>,
        cluster: &str,
        mut shutdown: watch::Receiver<bool>,
    ) -> StoreResult<(Self, JoinHandle<()>)> {
        let prefix = loam_core::store_keys::mounts_prefix(cluster);
        let view = Self::default();
        let rev = view.reload(store.as_ref(), &prefix).await?;
        let v = view.clone();
        let task = tokio::spawn(async move {
            let mut rev = rev;
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    r = v.watch_once(store.as_ref(), &prefix, rev) => match r {
                        Ok(r) => rev = r,
                        Err(e) => {
                            tracing::warn!("mount table watch ended: {e}; reloading");
                            tokio::select! {
                                _ = shutdown.changed() => return,
                                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            }
                            if let Ok(r) = v.reload(store.as_ref(), &prefix).await {
                                rev = r;
                            }
                        }
                    },
                }
            }
        });
        Ok((view, task))
    }

    async fn reload(&self, store: &dyn ClusterStore, prefix: &str) -> StoreResult<i64> {
        let rev = store.revision().await?;
        let mounts = list_all(store, prefix).await?.into_iter().filter_map(|kv| decode(&kv.value));
        *self.table.write() = MountTable::from_mounts(mounts);
        Ok(rev)
    }

    /// Applies watch events until the watch ends; returns the last revision seen on error-free end.
    async fn watch_once(&self, store: &dyn ClusterStore, prefix: &str, after: i64) -> StoreResult<i64> {
        use futures::StreamExt;
        let mut events = store.watch(prefix, after).await?;
        let mut rev = after;
        while let Some(ev) = events.next().await {
            match ev? {
                WatchEvent::Put(kv) => {
                    rev = kv.mod_revision;
                    if let Some(m) = decode(&kv.value) {
                        self.table.write().upsert(m);
                    }
                }
                WatchEvent::Delete { key, revision } => {
                    rev = revision;
                    let name = key.strip_prefix(prefix).unwrap_or(&key);
                    let _ = self.table.write().remove(&format!("/{name}"));
                }
            }
        }
        Ok(rev)
    }
}

fn decode(raw: &[u8]) -> Option<Mount> {
    match serde_json::from_slice::<Mount>(raw) {
        Ok(m) if m.version == loam_ufs::mount_table::MOUNT_RECORD_VERSION => Some(m),
        Ok(m) => {
            tracing::warn!("ignoring mount record of unknown version {}", m.version);
            None
        }
        Err(e) => {
            tracing::warn!("ignoring undecodable mount record: {e}");
            None
        }
    }
}
