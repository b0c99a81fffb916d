//! The worker's side of the cluster-wide cache operations, under `/v1/internal/`:
//! `POST /v1/internal/clear_stale` ([`ClearStaleTask`]) starts a background clear-stale scan and
//! `DELETE` stops it (see `crate::cluster::clear_stale`); `GET /v1/internal/cached_files` answers every cached
//! file's UFS URI ([`CachedFiles`]), which the Coordinator reads to rebuild its global file index;
//! `POST /v1/internal/cached_percent` says how much of each of a batch of files this worker holds (a
//! listing worker asks the entries' owners, see `owners`).
//!
//! `POST /v1/drain` (not internal: role `cluster` or `admin`) leaves the ring and moves every cached file
//! to its next owner, answering the counts ([`DrainReport`]) when it ends (see `crate::cluster::drain`).

use super::WorkerState;
use crate::cluster::clear_stale::ClearStale;
use crate::error::WorkerError;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use loam_core::cluster_ops_api::{
    CACHED_FILES_PATH, CLEAR_STALE_PATH, CLUSTER_OPS_API_VERSION, CachedFiles, ClearStaleTask, DRAIN_PATH, DrainReport,
};
use loam_core::coordinator_api::StatusBody;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What these routes share: the worker state and its clear-stale scans.
pub struct OpsState {
    worker: Arc<WorkerState>,
    clear_stale: Arc<ClearStale>,
}

/// The routes, over `state`.
pub fn routes(state: &Arc<WorkerState>) -> OpenApiRouter<Arc<WorkerState>> {
    let clear_stale = ClearStale::new(state.id, state.pages.clone(), state.members.clone());
    OpenApiRouter::new()
        .routes(routes!(start, stop))
        .routes(routes!(cached_files))
        .route_layer(axum::middleware::from_fn(super::json_only::require_json))
        .with_state(Arc::new(OpsState { worker: state.clone(), clear_stale }))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(super::owners::cached_percent))
                .route_layer(axum::middleware::from_fn(super::json_only::require_json)),
        )
}

/// Starts a background clear-stale scan: drop the files this worker no longer owns.
#[utoipa::path(post, path = CLEAR_STALE_PATH, tag = "internal", request_body = ClearStaleTask,
    responses((status = 200, description = "Started", body = StatusBody)))]
async fn start(State(s): State<Arc<OpsState>>, body: Bytes) -> Response {
    let task: ClearStaleTask = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) => return WorkerError::InvalidInput(format!("malformed clear-stale task: {e}")).into_response(),
    };
    if task.version != CLUSTER_OPS_API_VERSION {
        let msg =
            format!("task version {} is not supported (this worker speaks {CLUSTER_OPS_API_VERSION})", task.version);
        return WorkerError::InvalidInput(msg).into_response();
    }
    s.clear_stale.start(task.replicas.max(1));
    Json(StatusBody::ok()).into_response()
}

/// Stops the clear-stale scan.
#[utoipa::path(delete, path = CLEAR_STALE_PATH, tag = "internal",
    responses((status = 200, description = "Stopped", body = StatusBody)))]
async fn stop(State(s): State<Arc<OpsState>>) -> Json<StatusBody> {
    s.clear_stale.stop();
    Json(StatusBody::ok())
}

/// Every file this worker holds, for the Coordinator's file index.
#[utoipa::path(get, path = CACHED_FILES_PATH, tag = "internal",
    responses((status = 200, description = "The cached files' UFS URIs", body = CachedFiles)))]
async fn cached_files(State(s): State<Arc<OpsState>>) -> Json<CachedFiles> {
    let files = crate::cluster::file_report::cached_uris(&s.worker.pages);
    Json(CachedFiles { version: CLUSTER_OPS_API_VERSION, worker: s.worker.id.to_string(), files })
}

/// The drain route (no body, so no JSON check).
pub fn drain_routes() -> OpenApiRouter<Arc<WorkerState>> {
    OpenApiRouter::new().routes(routes!(drain))
}

/// Leaves the ring and moves every cached file to its next owner; answers when done. Reads are served
/// until the process exits.
#[utoipa::path(post, path = DRAIN_PATH, tag = "cluster",
    responses(
        (status = 200, description = "The drain ended: what moved and what failed", body = DrainReport),
        (status = 503, description = "The worker has not joined the cluster yet", body = StatusBody)))]
async fn drain(State(s): State<Arc<WorkerState>>) -> Response {
    match s.drain.run().await {
        Ok(report) => Json(report).into_response(),
        Err(e) => e.into_response(),
    }
}
