//! The worker HTTP API (port 28080), Alluxio-compatible: field names and shapes are fixed by the existing
//! Python clients. Every handler maps its errors through `http_api::error`, the one place that picks
//! status codes.

pub mod cluster_ops;
pub mod data;
pub mod error;
pub mod internal;
pub mod json_only;
pub mod load;
pub mod meta;
pub mod query;
pub mod write;

use crate::cluster::mount_view::MountView;
use crate::error::WorkerError;
use crate::metrics::{self, WorkerMetrics};
use crate::path_ids::PathIds;
use crate::read_through::ReadThrough;
use crate::write_through::WriteThrough;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use loam_auth::{Access, Guard, Role};
use loam_client::MembershipView;
use loam_core::WorkerId;
use loam_page_store::PageStore;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// What every handler shares.
pub struct WorkerState {
    /// This worker's id.
    pub id: WorkerId,
    /// The page store.
    pub pages: Arc<PageStore>,
    /// The mount table as this worker follows it.
    pub mounts: MountView,
    /// The read-through layer: reads over the page store and the UFS.
    pub rt: Arc<ReadThrough>,
    /// The live ring, for `/v1/node`.
    pub members: MembershipView,
    /// This worker's metrics registry.
    pub registry: Arc<Registry>,
    /// This worker's metric handles.
    pub metrics: WorkerMetrics,
    /// The Coordinator's URL, for `/v1/load` forwarding.
    pub coordinator_url: Option<String>,
    /// UFS writes, deletes, copies and renames that keep the caches coherent.
    pub writes: Arc<WriteThrough>,
    /// The path ids this worker can resolve without `ufsFullPath`.
    pub path_ids: Arc<PathIds>,
    /// The token this worker sends to the other members (peer copies, S3 forwarding).
    pub cluster_token: loam_auth::Credential,
}

impl WorkerState {
    /// Updates the gauges that are read off the page store rather than counted.
    pub fn refresh_gauges(&self) {
        let u = self.pages.usage();
        let m = &self.metrics.page_store;
        m.cached_bytes.get_or_create(&metrics::MEMORY).set(u.memory_bytes as i64);
        m.cached_bytes.get_or_create(&metrics::DISK).set(u.disk_bytes as i64);
        m.cached_pages.get_or_create(&metrics::MEMORY).set(u.memory_pages as i64);
        m.cached_pages.get_or_create(&metrics::DISK).set(u.disk_pages as i64);
        m.cached_files.set(u.files as i64);
    }
}

/// What a request to the worker HTTP API needs: nothing for `/v1/health`, and for `/v1/load`, which is
/// forwarded to the Coordinator with the caller's credentials (the Coordinator decides); the `cluster`
/// role for `/v1/internal/…`; `read` for the other reads (`GET`, `HEAD`: open without credentials under
/// `--anonymous-read`); `write` for every other method (the write API, page POSTs).
pub fn access(method: &Method, path: &str) -> Access {
    if path == HEALTH_PATH || path == load::LOAD_PATH {
        Access::Public
    } else if path.starts_with(INTERNAL_PREFIX) {
        Access::Need(Role::Cluster)
    } else if method == Method::GET || method == Method::HEAD {
        Access::Need(Role::Read)
    } else {
        Access::Need(Role::Write)
    }
}

/// The prefix of the endpoints only cluster members call.
pub const INTERNAL_PREFIX: &str = "/v1/internal/";
/// The liveness check, open to everyone.
pub const HEALTH_PATH: &str = "/v1/health";

/// The worker's router, behind `guard`.
pub fn router(state: Arc<WorkerState>, guard: Guard) -> Router {
    let page_limit = state.pages.page_size() as usize + 4096;
    let router = Router::new()
        .route(HEALTH_PATH, get(meta::health))
        .route("/v1/node", get(meta::node))
        .route("/v1/info", get(meta::info))
        .route("/v1/files", get(meta::files))
        .route(
            "/v1/file/{id}/page/{n}",
            get(data::get_page).post(data::post_page).layer(DefaultBodyLimit::max(page_limit)),
        )
        .route("/v1/range/{id}", get(data::range))
        // A written file has no size limit: its body streams through to the UFS.
        .route("/v1/chunk/{id}", get(data::chunk).merge(post(write::chunk).layer(DefaultBodyLimit::disable())))
        .route("/v1/head/{id}", get(data::head))
        .route("/v1/tail/{id}", get(data::tail))
        .route("/metrics", get(meta::metrics))
        .merge(internal::routes(&state))
        .merge(cluster_ops::routes(&state))
        .merge(load::routes())
        .merge(write::routes())
        .fallback(unknown);
    guard.apply(router).with_state(state)
}

async fn unknown(method: Method, uri: Uri) -> axum::response::Response {
    WorkerError::NotFound(format!("unknown endpoint: {method} {}", uri.path())).into_response()
}
