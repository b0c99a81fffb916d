//! TTL expiry: a background scan that drops cached files older than their TTL rule allows.
//!
//! Every `interval` the scan walks the page store's files (`file_ids` + `file`, from outside the store),
//! resolves each file's UFS URI to a cluster path through the mount table, finds the most specific TTL
//! rule ([`RuleView`]) and removes the file when `now - cached_ms >= ttlSeconds`. A file outside every
//! mount or under no rule is kept.
//!
//! **Decision:** a file's age counts from its record's `cached_ms`, set when the file was first cached
//! (and again when a UFS change made the worker re-cache it); reads do not make data younger, so a TTL
//! bounds how stale a cached copy can get, as in Alluxio. The whole file goes at once: its pages were
//! cached for the same record, and a partial file would only be re-read from the UFS page by page.

use crate::cluster::mount_view::MountView;
use crate::rules::rule_view::RuleView;
use loam_core::rules::TtlRule;
use loam_page_store::PageStore;
use loam_page_store::metrics::EvictionCause;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Default interval between TTL scans.
pub const DEFAULT_TTL_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// What one TTL scan needs.
#[derive(Clone)]
pub struct TtlScanner {
    pages: Arc<PageStore>,
    mounts: MountView,
    rules: RuleView<TtlRule>,
}

impl TtlScanner {
    /// A scanner of `pages` under `rules`, resolving URIs through `mounts`.
    pub fn new(pages: Arc<PageStore>, mounts: MountView, rules: RuleView<TtlRule>) -> Self {
        Self { pages, mounts, rules }
    }

    /// Removes every file whose TTL has passed at `now_ms`; returns the UFS URIs removed.
    pub async fn expire(&self, now_ms: i64) -> Vec<String> {
        let mut removed = Vec::new();
        if self.rules.is_empty() {
            return removed;
        }
        for id in self.pages.file_ids() {
            let Some(rec) = self.pages.file(&id) else { continue };
            let Some(rule) = self.rules.lookup_ufs(&self.mounts, &rec.ufs_uri) else { continue };
            let ttl_ms = i64::try_from(rule.ttl_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
            if now_ms.saturating_sub(rec.cached_ms) < ttl_ms {
                continue;
            }
            match self.pages.evict_file(&id, EvictionCause::Ttl).await {
                Ok(_) => {
                    tracing::debug!(uri = %rec.ufs_uri, "TTL expired; file removed from the cache");
                    removed.push(rec.ufs_uri);
                }
                Err(e) => tracing::warn!(uri = %rec.ufs_uri, "cannot remove a file past its TTL: {e}"),
            }
        }
        if !removed.is_empty() {
            tracing::info!(files = removed.len(), "TTL scan removed expired files");
        }
        removed
    }

    /// Scans every `interval` until `shutdown` flips to true (or its sender is dropped).
    pub fn spawn(self, interval: Duration, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let this = Arc::new(self);
        crate::rules::periodic::every(interval, shutdown, move || {
            let this = this.clone();
            async move {
                this.expire(loam_core::time::now_millis()).await;
            }
        })
    }
}
