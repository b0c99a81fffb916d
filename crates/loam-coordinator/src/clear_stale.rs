//! Clear stale cache (spec "Clear stale cache"): the coordinator broadcasts the command to every live
//! worker (`POST /v1/internal/clear_stale`, or `DELETE` to stop); each worker then scans its own cache in
//! the background and drops the files it no longer owns under its current ring.
//!
//! - **Decision (replicas):** a file is kept when the worker is among the first `replicas` owners the ring
//!   gives it; `replicas` comes from the request body (`{"op": "clear-stale", "replicas": 2}`), default 1,
//!   and is passed in the broadcast, so every worker applies the same rule.
//! - **Decision (error keys):** `errors` is keyed by the worker's `host:port`, since several workers may
//!   share a host; the value says why that worker did not accept (unreachable, or its answer).
//! - The call returns once every worker answered; the POST does not wait for the scans to finish.

use crate::jobs::workers::live_workers;
use loam_client::PeerClient;
use loam_client::peer::worker_name;
use loam_core::cluster_ops_api::{CLEAR_STALE_PATH, CLUSTER_OPS_API_VERSION, ClearStaleTask};
use loam_store::{ClusterStore, StoreResult};
use std::collections::BTreeMap;
use std::time::Duration;

/// Default owners kept per file.
pub const DEFAULT_REPLICAS_KEPT: u32 = 1;
/// How long a worker may take to accept the command.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts (`Some(replicas)`) or stops (`None`) clear-stale on every live worker; the per-worker errors.
pub async fn broadcast(
    store: &dyn ClusterStore,
    cluster: &str,
    peers: &PeerClient,
    replicas: Option<u32>,
) -> StoreResult<BTreeMap<String, String>> {
    let workers = live_workers(store, cluster).await?;
    let answers = futures::future::join_all(workers.iter().map(|w| async move {
        let url = format!("{}{CLEAR_STALE_PATH}", w.http_base());
        let req = match replicas {
            Some(replicas) => peers
                .request(reqwest::Method::POST, &url)
                .json(&ClearStaleTask { version: CLUSTER_OPS_API_VERSION, replicas }),
            None => peers.request(reqwest::Method::DELETE, &url),
        };
        peers.send(&worker_name(w), req.timeout(ACCEPT_TIMEOUT)).await.map(|_| ()).map_err(|e| e.to_string())
    }))
    .await;
    Ok(workers
        .iter()
        .zip(answers)
        .filter_map(|(w, a)| a.err().map(|e| (format!("{}:{}", w.host, w.http_port), e)))
        .collect())
}
