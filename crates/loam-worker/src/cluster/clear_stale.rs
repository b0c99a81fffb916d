//! Clear stale cache on this worker (`POST|DELETE /v1/internal/clear_stale`, broadcast by the
//! Coordinator's `/api/v1/cache`): drop every cached file this worker no longer owns under its current
//! ring view.
//!
//! - A file is kept when this worker is among the first `replicas` owners the ring gives its UFS URI —
//!   the same lookup clients and load jobs route by, so exactly the files whose owners moved are dropped.
//! - The scan runs in the background; `start` returns at once. A second `start` replaces a running scan
//!   (it restarts on the newest ring); `stop` cancels it between two files. Dropping the [`ClearStale`]
//!   (the router going away at shutdown) cancels it too, and [`ClearStale::shutdown`] awaits it.
//! - **Decision (safety):** when this worker's ring view does not contain the worker itself (it has not
//!   seen its own registration, or it is leaving), the scan drops nothing: every file would look stale.
//! - The page store is used only through its public calls (`file_ids`, `file`, `remove_file`).

use loam_client::MembershipView;
use loam_core::WorkerId;
use loam_page_store::PageStore;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The clear-stale scans of one worker.
pub struct ClearStale {
    id: WorkerId,
    pages: Arc<PageStore>,
    members: MembershipView,
    running: Mutex<Option<(CancellationToken, JoinHandle<u64>)>>,
}

impl ClearStale {
    /// Scans over `pages` for worker `id` with ring view `members`.
    pub fn new(id: WorkerId, pages: Arc<PageStore>, members: MembershipView) -> Arc<Self> {
        Arc::new(Self { id, pages, members, running: Mutex::new(None) })
    }

    /// Starts a scan keeping files this worker is among the first `replicas` owners of; replaces a running one.
    pub fn start(&self, replicas: u32) {
        let token = CancellationToken::new();
        let task = tokio::spawn(scan(self.id, self.pages.clone(), self.members.clone(), replicas, token.clone()));
        if let Some((old, _)) = self.running.lock().replace((token, task)) {
            old.cancel();
        }
    }

    /// Stops a running scan; answers whether one was running.
    pub fn stop(&self) -> bool {
        match self.running.lock().take() {
            Some((token, task)) => {
                token.cancel();
                !task.is_finished()
            }
            None => false,
        }
    }

    /// Whether a scan is running.
    pub fn is_running(&self) -> bool {
        self.running.lock().as_ref().is_some_and(|(_, t)| !t.is_finished())
    }

    /// Waits for the running scan (if any) to end; answers the files it dropped.
    pub async fn wait(&self) -> u64 {
        let running = self.running.lock().take();
        match running {
            Some((_, task)) => task.await.unwrap_or(0),
            None => 0,
        }
    }

    /// Cancels the running scan and waits for it.
    pub async fn shutdown(&self) {
        let running = self.running.lock().take();
        if let Some((token, task)) = running {
            token.cancel();
            let _ = task.await;
        }
    }
}

impl Drop for ClearStale {
    fn drop(&mut self) {
        if let Some((token, _)) = self.running.lock().take() {
            token.cancel();
        }
    }
}

/// Drops the files whose first `replicas` owners exclude `id`; answers how many were dropped.
async fn scan(
    id: WorkerId,
    pages: Arc<PageStore>,
    members: MembershipView,
    replicas: u32,
    stop: CancellationToken,
) -> u64 {
    let ring = members.ring();
    let me = id.identity();
    if !ring.members().any(|(ident, _)| *ident == me) {
        tracing::warn!("clear-stale skipped: this worker is not in its own ring view");
        return 0;
    }
    let mut dropped = 0;
    for file_id in pages.file_ids() {
        if stop.is_cancelled() {
            tracing::info!(dropped, "clear-stale stopped");
            return dropped;
        }
        let Some(rec) = pages.file(&file_id) else { continue };
        let owned = ring.lookup(&rec.ufs_uri, replicas.max(1) as usize).iter().any(|(ident, _)| **ident == me);
        if owned {
            continue;
        }
        match pages.remove_file(&file_id).await {
            Ok(_) => dropped += 1,
            Err(e) => tracing::warn!("clear-stale could not drop {}: {e}", rec.ufs_uri),
        }
        tokio::task::yield_now().await;
    }
    tracing::info!(dropped, "clear-stale finished");
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use loam_client::WorkerEndpoint;
    use loam_page_store::metrics::PageStoreMetrics;
    use loam_page_store::{FileRecord, PageStoreConfig};

    fn endpoint(id: WorkerId) -> WorkerEndpoint {
        WorkerEndpoint { id, host: "127.0.0.1".into(), http_port: 1, s3_port: 0, tls: false }
    }

    /// A memory-only store holding one page of each of `n` files, and its ring of `me` and one other worker.
    async fn setup(n: usize) -> (WorkerId, Arc<PageStore>, MembershipView, Vec<String>) {
        let cfg = PageStoreConfig { page_size: 16, memory_capacity: 1 << 20, disk_dirs: vec![], disk_capacity: 0 };
        let pages = PageStore::open(cfg, PageStoreMetrics::default()).unwrap();
        let uris: Vec<String> = (0..n).map(|i| format!("s3://b/f{i}")).collect();
        for uri in &uris {
            let rec = FileRecord::new(uri, 16, None, None, 0);
            let id = rec.file_id.clone();
            pages.put_file(rec).await.unwrap();
            pages.put_page(&id, 0, Bytes::from_static(&[7; 16])).await.unwrap();
        }
        let me = WorkerId::random();
        let members = MembershipView::fixed(vec![endpoint(me), endpoint(WorkerId::random())], 64);
        (me, pages, members, uris)
    }

    fn owned(members: &MembershipView, me: WorkerId, uri: &str, replicas: usize) -> bool {
        members.ring().lookup(uri, replicas).iter().any(|(i, _)| **i == me.identity())
    }

    #[tokio::test]
    async fn drops_exactly_the_files_owned_by_others() {
        let (me, pages, members, uris) = setup(40).await;
        let cs = ClearStale::new(me, pages.clone(), members.clone());
        cs.start(1);
        let dropped = cs.wait().await;
        let kept: Vec<&String> = uris.iter().filter(|u| pages.file(&loam_core::file_id(u)).is_some()).collect();
        let want: Vec<&String> = uris.iter().filter(|u| owned(&members, me, u, 1)).collect();
        assert_eq!(kept, want);
        assert_eq!(dropped as usize, uris.len() - want.len());
        assert!(dropped > 0 && !want.is_empty());
    }

    #[tokio::test]
    async fn two_replicas_on_two_workers_keep_everything() {
        let (me, pages, members, uris) = setup(20).await;
        let cs = ClearStale::new(me, pages.clone(), members);
        cs.start(2);
        assert_eq!(cs.wait().await, 0);
        assert_eq!(pages.file_ids().len(), uris.len());
    }

    #[tokio::test]
    async fn a_worker_missing_from_its_ring_drops_nothing() {
        let (_, pages, members, uris) = setup(10).await;
        let cs = ClearStale::new(WorkerId::random(), pages.clone(), members);
        cs.start(1);
        assert_eq!(cs.wait().await, 0);
        assert_eq!(pages.file_ids().len(), uris.len());
    }

    #[tokio::test]
    async fn stop_cancels_a_scan_before_it_drops_anything() {
        let (me, pages, members, uris) = setup(40).await;
        let cs = ClearStale::new(me, pages.clone(), members);
        // On this single-threaded runtime the scan cannot run before this task yields.
        cs.start(1);
        assert!(cs.stop(), "the scan was running");
        assert!(!cs.stop(), "nothing left to stop");
        tokio::task::yield_now().await;
        assert_eq!(pages.file_ids().len(), uris.len());
    }

    #[tokio::test]
    async fn shutdown_cancels_and_awaits_the_scan() {
        let (me, pages, members, uris) = setup(40).await;
        let cs = ClearStale::new(me, pages.clone(), members);
        cs.start(1);
        cs.shutdown().await;
        assert!(!cs.is_running());
        assert_eq!(pages.file_ids().len(), uris.len(), "cancelled before its first file");
    }
}
