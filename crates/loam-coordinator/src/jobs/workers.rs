//! The Coordinator's side of the worker task API (`/v1/internal/load|free|verify`): which workers are
//! live (the membership store, the same one workers register in), one HTTP call per batch, and the full
//! list of a worker's cached files (`/v1/internal/cached_files`, which a rebalance plans from).
//!
//! A batch either answers one result per file, or fails as a whole (worker unreachable, an error
//! status, an answer of the wrong length or version): the runner then treats every file of it as failed
//! on that worker and retries them.

use loam_client::{Ring, WorkerEndpoint};
use loam_core::HashRing;
use loam_core::cluster_ops_api::{CLUSTER_OPS_API_VERSION, CachedFiles};
use loam_core::job_api::{FileListTask, FileResult, LoadTask, LoadTaskFile, TASK_API_VERSION, TaskResults};
use loam_store::{ClusterStore, StoreResult, membership};
use serde::Serialize;
use std::time::Duration;

/// How long one batch may take before the worker counts as failing it.
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a worker may take to list its cached files.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// The online workers.
pub async fn live_workers(store: &dyn ClusterStore, cluster: &str) -> StoreResult<Vec<WorkerEndpoint>> {
    Ok(membership::list_workers(store, cluster)
        .await?
        .iter()
        .filter(|m| m.online)
        .filter_map(|m| WorkerEndpoint::from_record(&m.record))
        .collect())
}

/// The ring over `workers`, as clients build it.
pub fn ring(workers: &[WorkerEndpoint]) -> Ring {
    HashRing::new(workers.iter().map(|w| (w.id.identity(), w.clone())), loam_core::hash_ring::DEFAULT_VIRTUAL_NODES)
}

/// Calls to workers' task API.
#[derive(Clone)]
pub struct WorkerClient {
    http: reqwest::Client,
}

impl WorkerClient {
    /// A client over `http`.
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    /// Loads `files` on `w`.
    pub async fn load(
        &self,
        w: &WorkerEndpoint,
        files: Vec<LoadTaskFile>,
        bandwidth: u64,
    ) -> Result<Vec<FileResult>, String> {
        let n = files.len();
        self.call(w, "load", &LoadTask { version: TASK_API_VERSION, files, bandwidth }, n).await
    }

    /// Frees `uris` on `w`, dropping at most `bandwidth` cached bytes per second (0: unlimited).
    pub async fn free(&self, w: &WorkerEndpoint, uris: Vec<String>, bandwidth: u64) -> Result<Vec<FileResult>, String> {
        let n = uris.len();
        self.call(w, "free", &FileListTask { version: TASK_API_VERSION, uris, bandwidth }, n).await
    }

    /// Every file `w` holds (UFS URIs).
    pub async fn cached_files(&self, w: &WorkerEndpoint) -> Result<Vec<String>, String> {
        let url = format!("{}/v1/internal/cached_files", w.http_base());
        let fail = |e: String| format!("worker {} ({}): {e}", w.id, w.http_base());
        let resp = self.http.get(&url).timeout(LIST_TIMEOUT).send().await.map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("answered {}: {text}", status.as_u16())));
        }
        let list: CachedFiles = serde_json::from_str(&text).map_err(|e| fail(format!("malformed file list: {e}")))?;
        if list.version != CLUSTER_OPS_API_VERSION {
            return Err(fail(format!("answered version {}", list.version)));
        }
        // Another process may have taken a dead worker's port: its files are not this worker's.
        if list.worker != w.id.to_string() {
            return Err(fail(format!("answered as {}", list.worker)));
        }
        Ok(list.files)
    }

    /// Checks that `uris` are fully cached on `w`.
    pub async fn verify(
        &self,
        w: &WorkerEndpoint,
        uris: Vec<String>,
        metadata_only: bool,
    ) -> Result<Vec<FileResult>, String> {
        let n = uris.len();
        let op = if metadata_only { "verify?metadataOnly=true" } else { "verify" };
        self.call(w, op, &FileListTask { version: TASK_API_VERSION, uris, bandwidth: 0 }, n).await
    }

    async fn call<B: Serialize>(
        &self,
        w: &WorkerEndpoint,
        op: &str,
        body: &B,
        n: usize,
    ) -> Result<Vec<FileResult>, String> {
        let url = format!("{}/v1/internal/{op}", w.http_base());
        let resp = self
            .http
            .post(&url)
            .json(body)
            .timeout(BATCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("worker {} ({}) unreachable: {e}", w.id, w.http_base()))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("worker {} answer lost: {e}", w.id))?;
        if !status.is_success() {
            return Err(format!("worker {} answered {}: {text}", w.id, status.as_u16()));
        }
        let r: TaskResults =
            serde_json::from_str(&text).map_err(|e| format!("worker {} answered malformed results: {e}", w.id))?;
        if r.version != TASK_API_VERSION || r.results.len() != n {
            return Err(format!(
                "worker {} answered {} results of version {} for {n} files",
                w.id,
                r.results.len(),
                r.version
            ));
        }
        Ok(r.results)
    }
}
