//! Rebuilding the index when the coordinator starts: every live worker is asked for its full list
//! (`GET /v1/internal/cached_files`), which replaces what the index holds for it. Workers are asked
//! concurrently; one that cannot answer is logged and skipped (its next reports still add what changes).

use super::FileIndex;
use crate::jobs::workers::live_workers;
use loam_core::cluster_ops_api::{CLUSTER_OPS_API_VERSION, CachedFiles};
use loam_store::ClusterStore;
use std::time::Duration;

/// How long one worker may take to list its files.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// Rebuilds `index` from the live workers of `cluster`; answers how many workers were read.
pub async fn rebuild(index: &FileIndex, store: &dyn ClusterStore, cluster: &str, http: &reqwest::Client) -> usize {
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
    let lists = futures::future::join_all(workers.iter().map(|w| async move {
        let url = format!("{}/v1/internal/cached_files", w.http_base());
        let resp = http.get(&url).timeout(LIST_TIMEOUT).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("answered {}", resp.status().as_u16()));
        }
        let list: CachedFiles = resp.json().await.map_err(|e| e.to_string())?;
        if list.version != CLUSTER_OPS_API_VERSION {
            return Err(format!("answered version {}", list.version));
        }
        Ok(list)
    }))
    .await;
    let mut read = 0;
    for (w, list) in workers.iter().zip(lists) {
        match list.map(|l| index.replace_worker(&w.id.to_string(), &l.files).map_err(|e| e.to_string())) {
            Ok(Ok(())) => read += 1,
            Ok(Err(e)) | Err(e) => tracing::warn!("file index rebuild: worker {} skipped: {e}", w.id),
        }
    }
    tracing::info!(workers = read, entries = index.len(), "file index rebuilt");
    read
}
