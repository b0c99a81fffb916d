//! The Coordinator's side of the worker task API (`/v1/internal/load|free|verify`): which workers are
//! live (the membership store, the same one workers register in), one HTTP call per batch, and the full
//! listing of a worker's cached files (`/v1/internal/cached_files`, a page at a time, which a rebalance plans
//! from).
//!
//! A batch either answers one result per file, or fails as a whole with a `PeerError` (worker
//! unreachable, an error status, an answer of the wrong length or version): the runner then treats every
//! file of it as failed on that worker, and retries them unless the error says a retry cannot help (a
//! `4xx`, a malformed answer). The calls go through `loam_client::peer`, the one client between nodes.

use loam_client::peer::worker_name;
use loam_client::{PeerClient, PeerError, Ring, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::job_api::{
    FREE_TASK_PATH, FileListTask, FileResult, LOAD_TASK_PATH, LoadTask, LoadTaskFile, TASK_API_VERSION, TaskResults,
    VERIFY_TASK_PATH,
};
use loam_core::{ErrorKind, HashRing};
use loam_store::{ClusterStore, StoreResult, membership};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::time::{Duration, Instant};

/// How long one batch may take before the worker counts as failing it.
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(600);

/// The online workers.
pub async fn live_workers(store: &dyn ClusterStore, cluster: &str) -> StoreResult<Vec<WorkerEndpoint>> {
    Ok(membership::list_workers(store, cluster)
        .await?
        .iter()
        .filter(|m| m.online)
        .filter_map(|m| WorkerEndpoint::from_record(&m.record))
        .collect())
}

/// How often, at most, a pass re-reads the live workers while it retries an unreachable one.
pub const LIVE_REFRESH: Duration = Duration::from_secs(1);

/// The live workers as a job's pass last read them: at its start, and again (at most every
/// [`LIVE_REFRESH`]) while it retries a worker it cannot reach, so that a retry finds a restarted worker
/// at its new address, or a ring without a worker that left.
pub struct LiveView {
    workers: RwLock<Vec<WorkerEndpoint>>,
    refreshed: Mutex<Instant>,
}

impl LiveView {
    /// The view of `workers`, read now.
    pub fn new(workers: Vec<WorkerEndpoint>) -> Self {
        Self { workers: RwLock::new(workers), refreshed: Mutex::new(Instant::now()) }
    }

    /// Reads the live workers again unless that was done less than [`LIVE_REFRESH`] ago; `true` when the
    /// view changed. The store unreachable: the view stays as it was (a later retry reads it again).
    pub async fn refresh(&self, store: &dyn ClusterStore, cluster: &str) -> bool {
        {
            let mut last = self.refreshed.lock();
            if last.elapsed() < LIVE_REFRESH {
                return false;
            }
            *last = Instant::now();
        }
        match live_workers(store, cluster).await {
            Ok(now) => {
                let mut workers = self.workers.write();
                let changed = *workers != now;
                *workers = now;
                changed
            }
            Err(_) => false,
        }
    }

    /// The live workers as last read.
    pub fn workers(&self) -> Vec<WorkerEndpoint> {
        self.workers.read().clone()
    }

    /// Worker `id` at its address as last read, when it is live.
    pub fn find(&self, id: &WorkerId) -> Option<WorkerEndpoint> {
        self.workers.read().iter().find(|w| w.id == *id).cloned()
    }
}

/// The ring over `workers`, as clients build it.
pub fn ring(workers: &[WorkerEndpoint]) -> Ring {
    HashRing::new(workers.iter().map(|w| (w.id.identity(), w.clone())), loam_core::hash_ring::DEFAULT_VIRTUAL_NODES)
}

/// Calls to workers' task API.
#[derive(Clone)]
pub struct WorkerClient {
    peers: PeerClient,
}

impl WorkerClient {
    /// A client over `peers`.
    pub fn new(peers: PeerClient) -> Self {
        Self { peers }
    }

    /// Loads `files` on `w`.
    pub async fn load(
        &self,
        w: &WorkerEndpoint,
        files: Vec<LoadTaskFile>,
        bandwidth: u64,
    ) -> Result<Vec<FileResult>, PeerError> {
        let n = files.len();
        self.call(w, LOAD_TASK_PATH, &LoadTask { version: TASK_API_VERSION, files, bandwidth }, n).await
    }

    /// Frees `uris` on `w`, dropping at most `bandwidth` cached bytes per second (0: unlimited).
    pub async fn free(
        &self,
        w: &WorkerEndpoint,
        uris: Vec<String>,
        bandwidth: u64,
    ) -> Result<Vec<FileResult>, PeerError> {
        let n = uris.len();
        self.call(w, FREE_TASK_PATH, &FileListTask { version: TASK_API_VERSION, uris, bandwidth }, n).await
    }

    /// The page of at most `limit` files `w` holds after `after` (ascending).
    pub async fn cached_files_page(
        &self,
        w: &WorkerEndpoint,
        after: Option<&str>,
        limit: u64,
    ) -> Result<loam_core::cluster_ops_api::CachedFiles, PeerError> {
        self.peers.cached_files_page(w, after, limit).await
    }

    /// Checks that `uris` are fully cached on `w`.
    pub async fn verify(
        &self,
        w: &WorkerEndpoint,
        uris: Vec<String>,
        metadata_only: bool,
    ) -> Result<Vec<FileResult>, PeerError> {
        let n = uris.len();
        let path =
            if metadata_only { format!("{VERIFY_TASK_PATH}?metadataOnly=true") } else { VERIFY_TASK_PATH.into() };
        self.call(w, &path, &FileListTask { version: TASK_API_VERSION, uris, bandwidth: 0 }, n).await
    }

    async fn call<B: Serialize>(
        &self,
        w: &WorkerEndpoint,
        path: &str,
        body: &B,
        n: usize,
    ) -> Result<Vec<FileResult>, PeerError> {
        let peer = worker_name(w);
        let url = format!("{}{path}", w.http_base());
        let r: TaskResults = self.peers.post(&peer, &url, body, BATCH_TIMEOUT).await?;
        if r.version != TASK_API_VERSION || r.results.len() != n {
            return Err(PeerError::new(
                ErrorKind::InvalidInput,
                format!("{peer} answered {} results of version {} for {n} files", r.results.len(), r.version),
            ));
        }
        Ok(r.results)
    }
}
