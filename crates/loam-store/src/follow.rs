//! Following a prefix of the cluster store: load everything under it, then apply watch events as they
//! come; when the watch breaks (etcd restarted, a lagging watcher, compaction), wait a moment and load
//! the prefix again. Every local view of store state (mount table, rules, membership) is one
//! [`PrefixView`] driven by [`follow_prefix`], so the recovery logic lives in one place.
//!
//! Events that arrive together (one etcd watch response carries every event of a transaction or of a
//! burst, e.g. a thousand workers registering at once) are handed to the view as one batch
//! ([`PrefixView::apply_batch`], at most [`MAX_BATCH`] events): a view that derives something costly from
//! its keys (the client's hash ring) derives it once per batch, not once per event.
//!
//! The first load retries an unavailable store for [`FIRST_LOAD_PATIENCE`]: a process starts once one
//! etcd member answers, and the next request may still go to a member that is not up yet (the etcd
//! client balances requests over every endpoint). Failing the start for that made a worker exit while
//! its etcd cluster was forming.

use crate::{ClusterStore, KeyValue, StoreResult, WatchEvent, list_all};
use futures::StreamExt;
use loam_core::ErrorKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long to wait before reloading after a watch broke.
const RELOAD_DELAY: Duration = Duration::from_millis(500);

/// How long the first load retries a store that answers `Unavailable` before the follow fails.
pub const FIRST_LOAD_PATIENCE: Duration = Duration::from_secs(30);

/// The most watch events handed to a view in one [`PrefixView::apply_batch`].
pub const MAX_BATCH: usize = 4096;

/// A local view of the keys under one prefix.
pub trait PrefixView: Send + Sync + 'static {
    /// Replaces the whole view with `kvs` (every key under the prefix, in key order).
    fn reset(&self, kvs: Vec<KeyValue>);
    /// Applies one change.
    fn apply(&self, event: WatchEvent);
    /// Applies changes that arrived together, in order; by default one [`PrefixView::apply`] each. A view
    /// that derives state from its keys overrides it to derive once for the batch.
    fn apply_batch(&self, events: Vec<WatchEvent>) {
        events.into_iter().for_each(|e| self.apply(e));
    }
}

/// Loads `prefix` into `view`, then keeps it current until `shutdown` flips to true (or its sender is
/// dropped). Fails only if the first load fails (after retrying an unavailable store for
/// [`FIRST_LOAD_PATIENCE`]); later failures are logged and retried, keeping the last known state meanwhile.
pub async fn follow_prefix<V: PrefixView>(
    store: Arc<dyn ClusterStore>,
    prefix: String,
    view: Arc<V>,
    mut shutdown: watch::Receiver<bool>,
) -> StoreResult<JoinHandle<()>> {
    let mut rev = first_load(store.as_ref(), &prefix, view.as_ref()).await?;
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

/// [`reload`], retried with backoff while the store is unavailable, for at most [`FIRST_LOAD_PATIENCE`].
async fn first_load<V: PrefixView>(store: &dyn ClusterStore, prefix: &str, view: &V) -> StoreResult<i64> {
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        match reload(store, prefix, view).await {
            Err(e) if e.kind() == ErrorKind::Unavailable && started.elapsed() + backoff < FIRST_LOAD_PATIENCE => {
                tracing::warn!(%prefix, "loading: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            r => return r,
        }
    }
}

async fn reload<V: PrefixView>(store: &dyn ClusterStore, prefix: &str, view: &V) -> StoreResult<i64> {
    let rev = store.revision().await?;
    view.reset(list_all(store, prefix).await?);
    Ok(rev)
}

/// Applies events until the watch ends, those already arrived together as one batch; the revision of
/// the last event applied. An error ends the watch after the events before it are applied.
async fn watch_once<V: PrefixView>(store: &dyn ClusterStore, prefix: &str, view: &V, after: i64) -> StoreResult<i64> {
    let mut events = store.watch(prefix, after).await?.ready_chunks(MAX_BATCH);
    let mut rev = after;
    while let Some(chunk) = events.next().await {
        let mut batch = Vec::with_capacity(chunk.len());
        let mut failed = None;
        for ev in chunk {
            match ev {
                Ok(ev) => {
                    rev = match &ev {
                        WatchEvent::Put(kv) => kv.mod_revision,
                        WatchEvent::Delete { revision, .. } => *revision,
                    };
                    batch.push(ev);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if !batch.is_empty() {
            view.apply_batch(batch);
        }
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(rev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CasOutcome, EmbeddedStore, Expect, LeaseId, ListPage, Revision, StoreError};
    use async_trait::async_trait;
    use bytes::Bytes;
    use futures::stream::BoxStream;
    use parking_lot::Mutex;

    /// A store whose first `failures` `revision` calls answer `error()`, then the embedded store's.
    struct Flaky {
        inner: Arc<EmbeddedStore>,
        failures: Mutex<usize>,
        error: fn() -> StoreError,
    }

    impl Flaky {
        fn check(&self) -> StoreResult<()> {
            let mut left = self.failures.lock();
            if *left == 0 {
                return Ok(());
            }
            *left -= 1;
            Err((self.error)())
        }
    }

    #[async_trait]
    impl ClusterStore for Flaky {
        async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
            self.inner.get(key).await
        }
        async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> StoreResult<Revision> {
            self.inner.put(key, value, lease).await
        }
        async fn delete(&self, key: &str) -> StoreResult<bool> {
            self.inner.delete(key).await
        }
        async fn delete_prefix(&self, prefix: &str) -> StoreResult<u64> {
            self.inner.delete_prefix(prefix).await
        }
        async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StoreResult<ListPage> {
            self.inner.list(prefix, start_after, limit).await
        }
        async fn compare_and_set(
            &self,
            key: &str,
            expect: Expect,
            value: Bytes,
            lease: Option<LeaseId>,
        ) -> StoreResult<CasOutcome> {
            self.inner.compare_and_set(key, expect, value, lease).await
        }
        async fn grant_lease(&self, ttl: Duration) -> StoreResult<LeaseId> {
            self.inner.grant_lease(ttl).await
        }
        async fn keep_alive(&self, lease: LeaseId) -> StoreResult<()> {
            self.inner.keep_alive(lease).await
        }
        async fn revoke_lease(&self, lease: LeaseId) -> StoreResult<()> {
            self.inner.revoke_lease(lease).await
        }
        async fn watch(
            &self,
            prefix: &str,
            after: Revision,
        ) -> StoreResult<BoxStream<'static, StoreResult<WatchEvent>>> {
            self.inner.watch(prefix, after).await
        }
        async fn revision(&self) -> StoreResult<Revision> {
            self.check()?;
            self.inner.revision().await
        }
    }

    #[derive(Default)]
    struct Keys(Mutex<Vec<String>>);

    impl PrefixView for Keys {
        fn reset(&self, kvs: Vec<KeyValue>) {
            *self.0.lock() = kvs.into_iter().map(|kv| kv.key).collect();
        }
        fn apply(&self, _: WatchEvent) {}
    }

    async fn follow(failures: usize, error: fn() -> StoreError) -> (StoreResult<JoinHandle<()>>, Arc<Keys>) {
        let inner = EmbeddedStore::in_memory().unwrap();
        inner.put("p/a", Bytes::from_static(b"1"), None).await.unwrap();
        let store = Arc::new(Flaky { inner, failures: Mutex::new(failures), error });
        let keys = Arc::new(Keys::default());
        let (_tx, rx) = watch::channel(false);
        (follow_prefix(store, "p/".into(), keys.clone(), rx).await, keys)
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_load_waits_out_an_unavailable_store_and_fails_on_anything_else() {
        // A store unavailable for a few calls (an etcd member not up yet): the follow starts, loaded.
        let (task, keys) = follow(3, || StoreError::Unavailable("tcp connect error".into())).await;
        assert!(task.is_ok(), "{:?}", task.err());
        assert_eq!(*keys.0.lock(), ["p/a"]);
        // One that stays unavailable past the patience: the error, after the patience.
        let started = tokio::time::Instant::now();
        let (task, _) = follow(usize::MAX, || StoreError::Unavailable("down".into())).await;
        assert!(matches!(task, Err(StoreError::Unavailable(_))));
        assert!(started.elapsed() <= FIRST_LOAD_PATIENCE, "{:?}", started.elapsed());
        assert!(started.elapsed() >= FIRST_LOAD_PATIENCE - Duration::from_secs(3), "{:?}", started.elapsed());
        // Any other error is not waited out.
        let started = tokio::time::Instant::now();
        let (task, _) = follow(1, || StoreError::Other("broken".into())).await;
        assert!(matches!(task, Err(StoreError::Other(_))));
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
