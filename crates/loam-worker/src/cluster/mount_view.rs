//! The worker's copy of the mount table, kept current from the cluster store by a watch, so that a mount
//! added on the coordinator is usable on every worker within moments and the data path never asks the
//! coordinator or the store.

use loam_store::follow::{PrefixView, follow_prefix};
use loam_store::{ClusterStore, KeyValue, StoreResult, WatchEvent};
use loam_ufs::mount_table::{MountError, Resolved};
use loam_ufs::{Mount, MountTable};
use parking_lot::RwLock;
use std::sync::Arc;
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
        shutdown: watch::Receiver<bool>,
    ) -> StoreResult<(Self, JoinHandle<()>)> {
        let prefix = loam_core::store_keys::mounts_prefix(cluster);
        let view = Self::default();
        let follower = Arc::new(MountFollower { view: view.clone(), prefix: prefix.clone() });
        let task = follow_prefix(store, prefix, follower, shutdown).await?;
        Ok((view, task))
    }
}

/// Applies the store's mount records to a [`MountView`].
struct MountFollower {
    view: MountView,
    prefix: String,
}

impl PrefixView for MountFollower {
    fn reset(&self, kvs: Vec<KeyValue>) {
        *self.view.table.write() = MountTable::from_mounts(kvs.iter().filter_map(|kv| decode(&kv.value)));
    }

    fn apply(&self, event: WatchEvent) {
        match event {
            WatchEvent::Put(kv) => {
                if let Some(m) = decode(&kv.value) {
                    self.view.table.write().upsert(m);
                }
            }
            WatchEvent::Delete { key, .. } => {
                let name = key.strip_prefix(&self.prefix).unwrap_or(&key);
                let _ = self.view.table.write().remove(&format!("/{name}"));
            }
        }
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
