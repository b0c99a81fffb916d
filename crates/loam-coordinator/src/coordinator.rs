//! The [`Coordinator`]: the services of one coordinator process, shared by every request handler.
//!
//! Its background loops are the job runners (`jobs`): `serve` resumes the stored running jobs first, and
//! when shutdown begins it stops them (they persist their progress and resume on the next start). `serve` runs the HTTP server until the caller's shutdown future
//! resolves, then stops accepting connections and waits for the requests in flight (graceful shutdown).
//! Later services (jobs, quota, TTL, ...) become fields here, each with its own API module.

use crate::api;
use crate::jobs::{DEFAULT_JOB_RETENTION, JobService, JobsConfig};
use crate::mounts::MountService;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_store::ClusterStore;
use loam_ufs::{Mount, UfsRegistry};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How a coordinator is set up.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// The cluster name in membership and Loam keys (`DefaultAlluxioCluster` by default).
    pub cluster_name: String,
    /// A fixed mount table (from a file given at start-up); `None` manages mounts through the API.
    pub static_mounts: Option<Vec<Mount>>,
    /// The coordinator's own files (failed-file lists of jobs under `jobs/`).
    pub data_dir: PathBuf,
    /// How long finished jobs are kept.
    pub job_retention: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            cluster_name: DEFAULT_CLUSTER_NAME.to_string(),
            static_mounts: None,
            data_dir: std::env::temp_dir().join("loam-coordinator"),
            job_retention: DEFAULT_JOB_RETENTION,
        }
    }
}

/// One coordinator: the cluster store, the mount table and (later) the job scheduler.
pub struct Coordinator {
    store: Arc<dyn ClusterStore>,
    cluster_name: String,
    mounts: MountService,
    jobs: JobService,
}

impl Coordinator {
    /// A coordinator over `store`, reaching UFSs through `ufs`.
    ///
    /// Panics only if no HTTP client can be built (no TLS provider), which is a broken installation.
    pub fn new(store: Arc<dyn ClusterStore>, ufs: UfsRegistry, cfg: CoordinatorConfig) -> Arc<Self> {
        let mounts = MountService::new(store.clone(), cfg.cluster_name.clone(), ufs.clone(), cfg.static_mounts.clone());
        let jobs_cfg = JobsConfig { data_dir: cfg.data_dir, retention: cfg.job_retention };
        let jobs = JobService::new(store.clone(), cfg.cluster_name.clone(), ufs, cfg.static_mounts, jobs_cfg)
            .expect("building the job service's HTTP client");
        Arc::new(Self { store, cluster_name: cfg.cluster_name, mounts, jobs })
    }

    /// The REST API (`/api/v1/...`) as an axum router.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        api::router(self.clone())
    }

    /// Serves the REST API on `listener` until `shutdown` resolves, then drains requests in flight.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        if let Err(e) = self.jobs.start().await {
            tracing::error!("cannot resume the stored jobs: {e}");
        }
        tracing::info!(%addr, cluster = %self.cluster_name, "coordinator serving");
        let me = self.clone();
        // Runners stop as soon as shutdown begins, so `sync` requests in flight return and the drain ends.
        let shutdown = async move {
            shutdown.await;
            me.jobs.begin_shutdown();
        };
        let served = axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await;
        self.jobs.shutdown().await;
        served?;
        tracing::info!(%addr, "coordinator stopped");
        Ok(())
    }

    /// The cluster name.
    pub fn cluster_name(&self) -> &str {
        &self.cluster_name
    }

    /// The cluster store.
    pub fn store(&self) -> &Arc<dyn ClusterStore> {
        &self.store
    }

    /// The load and free jobs.
    pub fn jobs(&self) -> &JobService {
        &self.jobs
    }

    /// The mount table service.
    pub fn mounts(&self) -> &MountService {
        &self.mounts
    }
}
