//! Following a prefix of the cluster store: load everything under it, then apply watch events as they
//! come; when the watch breaks (etcd restarted, a lagging watcher, compaction), wait a moment and load
//! the prefix again. Every local view of store state (mount table, rules, membership) is one
//! [`PrefixView`] driven by [`follow_prefix`], so the recovery logic lives in one place.

use crate::{ClusterStore, KeyValue, StoreResult, WatchEvent, list_all};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long to wait before reloading after a watch broke.
const RELOAD_DELAY: Duration = Duration::from_millis(500);

/// A local view of the keys under one prefix.
pub trait PrefixView: Send + Sync + 'static {
    /// Replaces the whole view with `kvs` (every key under the prefix, in key order).
    fn reset(&self, kvs: Vec<KeyValue>);
    /// Applies one change.
    fn apply(&self, event: WatchEvent);
}

/// Loads `prefix` into `view`, then keeps it current until `shutdown` flips to true (or its sender is
/// dropped). Fails only if the first load fails; later failures are logged and retried, keeping the last
/// known state meanwhile.
pub async fn follow_prefix<V: PrefixView>(
    store: Arc<dyn ClusterStore>,
    prefix: String,
    view: Arc<V>,
    mut shutdown: watch::Receiver<bool>,
) -> StoreResult<JoinHandle<()>> {
    let mut rev = reload(store.as_ref(), &prefix, view.as_ref()).await?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                r = watch_once(store.as_ref(), &prefix, view.as_ref(), rev) => match r {
                    Ok(r) => rev = r,
                    Err(e) => {
                        tracing::warn!(%prefix, "watch ended: {e}; reloading");
                        tokio::select! {
                            _ = shutdown.changed() => return,
                            _ = tokio::time::sleep(RELOAD_DELAY) => {}
                        }
                        if let Ok(r) = reload(store.as_ref(), &prefix, view.as_ref()).await {
                            rev = r;
                        }
                    }
                },
            }
        }
    }))
}

async fn reload<V: PrefixView>(store: &dyn ClusterStore, prefix: &str, view: &V) -> StoreResult<i64> {
    let rev = store.revision().await?;
    view.reset(list_all(store, prefix).await?);
    Ok(rev)
}

/// Applies events until the watch ends; the revision of the last event applied.
async fn watch_once<V: PrefixView>(store: &dyn ClusterStore, prefix: &str, view: &V, after: i64) -> StoreResult<i64> {
    let mut events = store.watch(prefix, after).await?;
    let mut rev = after;
    while let Some(ev) = events.next().await {
        let ev = ev?;
        rev = match &ev {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        };
        view.apply(ev);
    }
    Ok(rev)
}
