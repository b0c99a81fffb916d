//! Quota admission on a worker: report this worker's cached bytes per quota path, learn the cluster's,
//! and stop caching new pages under a quota that is exceeded.
//!
//! Every `interval` a pass ([`QuotaTracker::refresh`]) sums the cached bytes of the page store's files by
//! the quota rule above each (UFS URI -> cluster path -> most specific quota rule), writes that record to
//! the cluster store under this worker's id when it changed, then reads every registered worker's record
//! and marks the quotas whose cluster-wide usage reached their limit. The page store asks
//! [`QuotaTracker::admits`] before caching a page (`PageStore::set_admission`); reads of refused data still
//! succeed, served from the UFS. The coordinator sums the same records for `GET /api/v1/quota`.
//!
//! **Decision:** admission stops once the limit is reached, so usage may exceed a quota by what the
//! cluster cached during one interval (the pages admitted before every worker's next pass); nothing is
//! evicted to get back under a limit lowered after the fact, the cache's own eviction and TTL shrink it.

use crate::cluster::mount_view::MountView;
use crate::rules::rule_view::RuleView;
use loam_core::WorkerId;
use loam_core::rules::{QUOTA_USAGE_VERSION, QuotaRule, QuotaState, QuotaUsageRecord};
use loam_core::store_keys::quota_usage_key;
use loam_page_store::PageStore;
use loam_store::quota_usage::cluster_usage;
use loam_store::{ClusterStore, StoreResult};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Default interval between quota passes ("refreshed at least every few seconds"); one default for the
/// workers and the Coordinator's running loads, in the settings they share.
pub use loam_config::DEFAULT_QUOTA_CHECK_INTERVAL;

/// One worker's view of the quotas.
#[derive(Clone)]
pub struct QuotaTracker {
    inner: Arc<Inner>,
}

struct Inner {
    pages: Arc<PageStore>,
    mounts: MountView,
    rules: RuleView<QuotaRule>,
    store: Arc<dyn ClusterStore>,
    cluster: String,
    id: WorkerId,
    exceeded: RwLock<HashSet<String>>,
    last_reported: Mutex<Option<QuotaUsageRecord>>,
}

impl QuotaTracker {
    /// A tracker of `pages` for worker `id`, following `rules`.
    pub fn new(
        pages: Arc<PageStore>,
        mounts: MountView,
        rules: RuleView<QuotaRule>,
        store: Arc<dyn ClusterStore>,
        cluster: &str,
        id: WorkerId,
    ) -> Self {
        let inner = Inner {
            pages,
            mounts,
            rules,
            store,
            cluster: cluster.to_string(),
            id,
            exceeded: RwLock::new(HashSet::new()),
            last_reported: Mutex::new(None),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The page store's admission check: this tracker's [`admits`](Self::admits), through a weak reference,
    /// since the tracker holds the store (a strong one would keep both alive, and the store's directory locks
    /// held, after the worker stops).
    pub fn admission_source(&self) -> loam_page_store::AdmissionSource {
        let inner = Arc::downgrade(&self.inner);
        Arc::new(move |uri: &str| inner.upgrade().is_none_or(|inner| QuotaTracker { inner }.admits(uri)))
    }

    /// The quota path above the data at `uri`, if any.
    fn quota_path(&self, uri: &str) -> Option<String> {
        let resolved = self.inner.mounts.resolve(uri).ok()?;
        self.inner.rules.lookup_with_path(&resolved.cluster_path).map(|(p, _)| p)
    }

    /// Whether new pages of the data at `uri` may be cached.
    pub fn admits(&self, uri: &str) -> bool {
        let exceeded = self.inner.exceeded.read();
        if exceeded.is_empty() {
            return true;
        }
        self.quota_path(uri).is_none_or(|p| !exceeded.contains(&p))
    }

    /// The quota paths found exceeded by the last pass.
    pub fn exceeded(&self) -> Vec<String> {
        let mut v: Vec<String> = self.inner.exceeded.read().iter().cloned().collect();
        v.sort();
        v
    }

    /// This worker's cached bytes per quota path.
    pub fn local_usage(&self) -> BTreeMap<String, u64> {
        let mut used = BTreeMap::new();
        if self.inner.rules.is_empty() {
            return used;
        }
        for id in self.inner.pages.file_ids() {
            let Some(rec) = self.inner.pages.file(&id) else { continue };
            let Some(path) = self.quota_path(&rec.ufs_uri) else { continue };
            let bytes = self.inner.pages.cached_bytes(&id);
            if bytes > 0 {
                *used.entry(path).or_insert(0) += bytes;
            }
        }
        used
    }

    /// One pass: report this worker's usage, read the cluster's, and update which quotas are exceeded.
    pub async fn refresh(&self) -> StoreResult<()> {
        let record = QuotaUsageRecord { version: QUOTA_USAGE_VERSION, used: self.local_usage() };
        let changed = self.inner.last_reported.lock().as_ref() != Some(&record);
        if changed {
            let key = quota_usage_key(&self.inner.cluster, &self.inner.id.to_string());
            let value = serde_json::to_vec(&record).unwrap_or_default();
            self.inner.store.put(&key, value.into(), None).await?;
            *self.inner.last_reported.lock() = Some(record);
        }
        let usage = cluster_usage(self.inner.store.as_ref(), &self.inner.cluster).await?;
        let exceeded: HashSet<String> = self
            .inner
            .rules
            .snapshot()
            .into_iter()
            .filter(|(path, rule)| {
                let used = usage.get(path).copied().unwrap_or(0);
                QuotaState::of(rule.quota_bytes, used, 0) == QuotaState::Exceeded
            })
            .map(|(path, _)| path)
            .collect();
        *self.inner.exceeded.write() = exceeded;
        Ok(())
    }

    /// Runs a pass every `interval` until `shutdown` flips to true (or its sender is dropped).
    pub fn spawn(self, interval: Duration, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let this = Arc::new(self);
        crate::rules::periodic::every(interval, shutdown, move || {
            let this = this.clone();
            async move {
                if let Err(e) = this.refresh().await {
                    tracing::warn!("quota pass failed (kept the last known state): {e}");
                }
            }
        })
    }
}
