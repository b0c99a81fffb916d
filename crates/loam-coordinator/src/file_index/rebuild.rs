//! Rebuilding the index when a Coordinator comes to lead (at start, or when it takes over from a leader that
//! died: a follower's index is not kept current, since the reports go to the leader): every live worker is asked for its full list
//! (`PeerClient::cached_files`, which refuses an answer from another worker than the one asked), which
//! replaces what the index holds for it. Workers are asked concurrently; one that cannot answer is logged
//! and skipped (its next reports still add what changes).

use super::FileIndex;
use crate::jobs::workers::live_workers;
use loam_client::PeerClient;
use loam_store::ClusterStore;

/// Rebuilds `index` from the live workers of `cluster`; answers how many workers were read.
pub async fn rebuild(index: &FileIndex, store: &dyn ClusterStore, cluster: &str, peers: &PeerClient) -> usize {
    if !index.enabled() {
        return 0;
    }
    let workers = match live_workers(store, cluster).await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("file index rebuild: cannot list the workers: {e}");
            return 0;
        }
    };
    let lists = futures::future::join_all(workers.iter().map(|w| peers.cached_files(w))).await;
    let mut read = 0;
    for (w, list) in workers.iter().zip(lists) {
        let list = list.map_err(|e| e.to_string());
        match list.map(|files| index.replace_worker(&w.id.to_string(), &files).map_err(|e| e.to_string())) {
            Ok(Ok(())) => read += 1,
            Ok(Err(e)) | Err(e) => tracing::warn!("file index rebuild: worker {} skipped: {e}", w.id),
        }
    }
    tracing::info!(workers = read, entries = index.len(), "file index rebuilt");
    read
}
