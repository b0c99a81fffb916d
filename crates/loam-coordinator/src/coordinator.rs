//! The [`Coordinator`]: the services of one coordinator process, shared by every request handler.
//!
//! It owns no background loop yet; `serve` runs the HTTP server until the caller's shutdown future
//! resolves, then stops accepting connections and waits for the requests in flight (graceful shutdown).
//! Later services (jobs, quota, TTL, ...) become fields here, each with its own API module.

use crate::api;
use crate::mounts::MountService;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_store::ClusterStore;
use loam_ufs::{Mount, UfsRegistry};
use std::future::Future;
use std::sync::Arc;

/// How a coordinator is set up.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// The cluster name in membership and Loam keys (`DefaultAlluxioCluster` by default).
    pub cluster_name: String,
    /// A fixed mount table (from a file given at start-up); `None` manages mounts through the API.
    pub static_mounts: Option<Vec<Mount>>,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self { cluster_name: DEFAULT_CLUSTER_NAME.to_string(), static_mounts: None }
    }
}

/// One coordinator: the cluster store, the mount table and (later) the job scheduler.
pub struct Coordinator {
    store: Arc<dyn ClusterStore>,
    cluster_name: String,
    mounts: MountService,
}

impl Coordinator {
    /// A coordinator over `store`, reaching UFSs through `ufs`.
    pub fn new(store: Arc<dyn ClusterStore>, ufs: UfsRegistry, cfg: CoordinatorConfig) -> Arc<Self> {
        let mounts = MountService::new(store.clone(), cfg.cluster_name.clone(), ufs, cfg.static_mounts);
        Arc::new(Self { store, cluster_name: cfg.cluster_name, mounts })
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
        tracing::info!(%addr, cluster = %self.cluster_name, "coordinator serving");
        axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await?;
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

    /// The mount table service.
    pub fn mounts(&self) -> &MountService {
        &self.mounts
    }
}
