//! Stand-in workers for `loam-bench scale`. Each registers in the cluster store exactly as a worker does
//! (`loam_store::membership::register`: the registration key, the liveness key on a lease of the
//! worker's default TTL, and the same keepalive task) and serves, on a port of its own (so the address in
//! its record is its own, and `cached_files` can answer as itself), the part of the worker's internal API
//! that a Coordinator calls while it plans and runs load and rebalance jobs:
//!
//! - `POST /v1/internal/load` and `/v1/internal/free`: every file answered as done, counted; no byte is
//!   moved (the benchmark measures the Coordinator, not the data path).
//! - `GET /v1/internal/cached_files`: the files the stand-in holds ([`Holdings`], none until the
//!   rebalance part sets them), a page at a time as a worker answers them (`CachedFilesQuery::page_of`).
//!
//! The servers are tokio tasks of this process, one listener each: a thousand stand-ins take a thousand
//! descriptors (and the Coordinator's connections to them as many again), so [`raise_fd_limit`] lifts the
//! soft limit to the hard one first.

use anyhow::Context;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use loam_client::WorkerEndpoint;
use loam_core::WorkerId;
use loam_core::cluster_ops_api::{CACHED_FILES_PATH, CLUSTER_OPS_API_VERSION, CachedFiles, CachedFilesQuery};
use loam_core::job_api::{
    FREE_TASK_PATH, FileListTask, FileResult, LOAD_TASK_PATH, LoadTask, TASK_API_VERSION, TaskResults,
};
use loam_core::membership::{DEFAULT_LEASE_TTL, WorkerRecord};
use loam_store::ClusterStore;
use loam_store::membership::{MembershipHandle, register};
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::task::JoinHandle;

/// Registrations in flight at once while stand-ins join (a thousand workers starting together).
const JOINING_AT_ONCE: usize = 64;

/// Which files each stand-in holds, by its index in [`StandIns::endpoints`]: the indices of generated
/// files (named by `uri`).
pub struct Holdings {
    /// Stand-in index → indices of the files it holds.
    pub files: Vec<Vec<u32>>,
    /// The URI of file `i`.
    pub uri: Box<dyn Fn(u64) -> String + Send + Sync>,
}

/// What every stand-in's server shares.
#[derive(Default)]
pub struct Shared {
    holdings: RwLock<Option<Arc<Holdings>>>,
    /// Files answered as loaded, by every stand-in.
    pub loaded: AtomicU64,
    /// Files answered as freed.
    pub freed: AtomicU64,
}

/// Registered stand-ins and their servers.
pub struct StandIns {
    store: Arc<dyn ClusterStore>,
    cluster: String,
    /// Every stand-in started, in order (those that left too).
    pub endpoints: Vec<WorkerEndpoint>,
    /// The keepalive of each stand-in still registered.
    handles: Vec<Option<MembershipHandle>>,
    /// Files each stand-in answered as loaded.
    pub loads: Vec<Arc<AtomicU64>>,
    /// What the servers share.
    pub shared: Arc<Shared>,
    servers: Vec<JoinHandle<()>>,
}

/// Lifts this process's soft limit on open descriptors to its hard limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill and read.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}

impl StandIns {
    /// No stand-in yet, over `store` in `cluster`.
    pub fn new(store: Arc<dyn ClusterStore>, cluster: &str) -> Self {
        Self {
            store,
            cluster: cluster.to_string(),
            endpoints: Vec::new(),
            handles: Vec::new(),
            loads: Vec::new(),
            shared: Arc::new(Shared::default()),
            servers: Vec::new(),
        }
    }

    /// Starts `n` more stand-ins: binds their listeners, serves them, registers them
    /// ([`JOINING_AT_ONCE`] at a time); answers their indices.
    pub async fn join(&mut self, n: usize) -> anyhow::Result<std::ops::Range<usize>> {
        let first = self.endpoints.len();
        let mut records = Vec::with_capacity(n);
        for i in first..first + n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding a stand-in's port")?;
            let port = listener.local_addr()?.port();
            let id = WorkerId::random();
            let loads = Arc::new(AtomicU64::new(0));
            let state = Server { id, index: i, shared: self.shared.clone(), loads: loads.clone() };
            let app = Router::new()
                .route(LOAD_TASK_PATH, post(load))
                .route(FREE_TASK_PATH, post(free))
                .route(CACHED_FILES_PATH, get(cached_files))
                .with_state(Arc::new(state));
            self.servers.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
            self.endpoints.push(WorkerEndpoint {
                id,
                host: "127.0.0.1".into(),
                http_port: port,
                s3_port: 0,
                tls: false,
            });
            self.loads.push(loads);
            records.push(WorkerRecord::new(id, "127.0.0.1", port, 0));
        }
        let (store, cluster) = (self.store.clone(), self.cluster.clone());
        let handles: Vec<_> = futures::stream::iter(records)
            .map(|r| register(store.clone(), &cluster, r, DEFAULT_LEASE_TTL))
            .buffered(JOINING_AT_ONCE)
            .collect()
            .await;
        for h in handles {
            self.handles.push(Some(h.context("registering a stand-in")?));
        }
        Ok(first..first + n)
    }

    /// Stand-in `i` leaves as a stopping worker does: its keepalive stops and revokes the lease.
    pub async fn leave(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(h) = self.handles.get_mut(i).and_then(Option::take) {
            h.shutdown().await.context("a stand-in leaving")?;
        }
        Ok(())
    }

    /// The endpoints of the stand-ins still registered.
    pub fn live(&self) -> Vec<WorkerEndpoint> {
        self.endpoints.iter().zip(&self.handles).filter(|(_, h)| h.is_some()).map(|(e, _)| e.clone()).collect()
    }

    /// Sets what each stand-in answers to `cached_files`.
    pub fn set_holdings(&self, holdings: Holdings) {
        *self.shared.holdings.write() = Some(Arc::new(holdings));
    }

    /// Every stand-in leaves and its server stops.
    pub async fn stop(mut self) {
        let left = futures::future::join_all(self.handles.iter_mut().filter_map(Option::take).map(|h| h.shutdown()));
        let _ = left.await;
        self.servers.iter().for_each(JoinHandle::abort);
    }
}

/// One stand-in's server state.
struct Server {
    id: WorkerId,
    index: usize,
    shared: Arc<Shared>,
    loads: Arc<AtomicU64>,
}

fn done(uri: String, bytes: u64) -> FileResult {
    FileResult { uri, ok: true, bytes, ..FileResult::default() }
}

async fn load(State(s): State<Arc<Server>>, Json(task): Json<LoadTask>) -> Json<TaskResults> {
    let n = task.files.iter().filter(|f| !f.skip_if_exists).count() as u64;
    s.loads.fetch_add(n, Ordering::Relaxed);
    s.shared.loaded.fetch_add(n, Ordering::Relaxed);
    // A rebalance asks a worker to skip a file it reported holding (`skip_if_exists`); a worker that holds
    // it whole answers "skipped", which the Coordinator counts as preserved, not loaded. The stand-in
    // holds exactly what it reported.
    let results = task
        .files
        .into_iter()
        .map(|f| FileResult { skipped: f.skip_if_exists, ..done(f.ufs_uri, f.length.unwrap_or(0)) })
        .collect();
    Json(TaskResults { version: TASK_API_VERSION, results })
}

async fn free(State(s): State<Arc<Server>>, Json(task): Json<FileListTask>) -> Json<TaskResults> {
    s.shared.freed.fetch_add(task.uris.len() as u64, Ordering::Relaxed);
    Json(TaskResults { version: TASK_API_VERSION, results: task.uris.into_iter().map(|u| done(u, 0)).collect() })
}

async fn cached_files(State(s): State<Arc<Server>>, Query(q): Query<CachedFilesQuery>) -> Json<CachedFiles> {
    let holdings = s.shared.holdings.read().clone();
    let mut all: Vec<String> = holdings
        .map(|h| h.files.get(s.index).map(|f| f.iter().map(|i| (h.uri)(u64::from(*i))).collect()).unwrap_or_default())
        .unwrap_or_default();
    all.sort_unstable();
    let (files, next) = q.page_of(&all);
    Json(CachedFiles { version: CLUSTER_OPS_API_VERSION, worker: s.id.to_string(), files, next })
}
