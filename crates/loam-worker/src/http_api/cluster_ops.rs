//! The worker's side of the cluster-wide cache operations, under `/v1/internal/`:
//! `POST /v1/internal/clear_stale` ([`ClearStaleTask`]) starts a background clear-stale scan and
//! `DELETE` stops it (see `crate::cluster::clear_stale`); `GET /v1/internal/cached_files` answers the cached
//! files' UFS URIs in order, a page at a time ([`CachedFiles`]), which the Coordinator reads to rebuild its
//! global file index and to plan a rebalance;
//! `POST /v1/internal/cached_percent` says how much of each of a batch of files this worker holds (a
//! listing worker asks the entries' owners, see `owners`).
//!
//! A listing's pages come from one sorted snapshot of the cached files, taken by its first page (no
//! `after`) and kept for [`SNAPSHOT_REUSE`], or until a page reaches its end: sorting a million names per
//! page would cost the worker more than the listing. A page asked after that takes a new snapshot and goes
//! on from its cursor, which skips nothing held in both (see `cluster_ops_api::page_after`); a file cached
//! or dropped while a listing runs may or may not be in it, as with one answer of the whole list.
//!
//! `POST /v1/drain` (not internal: role `cluster` or `admin`) leaves the ring and moves every cached file
//! to its next owner, answering the counts ([`DrainReport`]) when it ends (see `crate::cluster::drain`).

use super::WorkerState;
use crate::cluster::clear_stale::ClearStale;
use crate::error::WorkerError;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use loam_core::cluster_ops_api::{
    CACHED_FILES_PATH, CLEAR_STALE_PATH, CLUSTER_OPS_API_VERSION, CachedFiles, CachedFilesQuery, ClearStaleTask,
    DRAIN_PATH, DrainReport, MAX_CACHED_FILES_PAGE,
};
use loam_core::coordinator_api::StatusBody;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long a listing's snapshot serves its later pages.
pub const SNAPSHOT_REUSE: Duration = Duration::from_secs(60);

/// What these routes share: the worker state, its clear-stale scans, and the last listing's snapshot.
pub struct OpsState {
    worker: Arc<WorkerState>,
    clear_stale: Arc<ClearStale>,
    snapshot: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

/// The routes, over `state`.
pub fn routes(state: &Arc<WorkerState>) -> OpenApiRouter<Arc<WorkerState>> {
    let clear_stale = ClearStale::new(state.id, state.pages.clone(), state.members.clone());
    OpenApiRouter::new()
        .routes(routes!(start, stop))
        .routes(routes!(cached_files))
        .route_layer(axum::middleware::from_fn(super::json_only::require_json))
        .with_state(Arc::new(OpsState { worker: state.clone(), clear_stale, snapshot: Mutex::new(None) }))
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

/// The files this worker holds, in URI order, a page at a time: for the Coordinator's file index and its
/// rebalance plans.
#[utoipa::path(get, path = CACHED_FILES_PATH, tag = "internal",
    params(
        ("limit" = Option<u64>, Query, description = "The most URIs in the answer (1 to 100000); none: all"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page")),
    responses(
        (status = 200, description = "The cached files' UFS URIs", body = CachedFiles),
        (status = 400, description = "A bad `limit`", body = StatusBody)))]
async fn cached_files(State(s): State<Arc<OpsState>>, RawQuery(q): RawQuery) -> Response {
    let q = super::query::Query::raw(q.as_deref(), &["limit", "after"]);
    let limit = match q.u64("limit") {
        Ok(Some(l)) if !(1..=MAX_CACHED_FILES_PAGE).contains(&l) => {
            let msg = format!("query parameter `limit` must be 1 to {MAX_CACHED_FILES_PAGE}, got {l}");
            return WorkerError::InvalidInput(msg).into_response();
        }
        Ok(l) => l.map(|l| l as usize),
        Err(e) => return e.into_response(),
    };
    let after = q.get("after").filter(|a| !a.is_empty()).map(str::to_string);
    let sorted = match s.snapshot(after.is_none()).await {
        Ok(sorted) => sorted,
        Err(e) => return e.into_response(),
    };
    let (files, next) = CachedFilesQuery { limit, after }.page_of(&sorted);
    if next.is_none() {
        s.forget(&sorted);
    }
    Json(CachedFiles { version: CLUSTER_OPS_API_VERSION, worker: s.worker.id.to_string(), files, next }).into_response()
}

impl OpsState {
    /// Drops the snapshot `done` when it is still the last one: a listing that reached its end frees it
    /// at once rather than after [`SNAPSHOT_REUSE`] (a million names are about 100 MB).
    fn forget(&self, done: &Arc<Vec<String>>) {
        let mut last = self.snapshot.lock();
        if last.as_ref().is_some_and(|(_, sorted)| Arc::ptr_eq(sorted, done)) {
            *last = None;
        }
    }

    /// The sorted cached files: the last snapshot while it is recent and `fresh` is not asked, else a new one.
    async fn snapshot(&self, fresh: bool) -> Result<Arc<Vec<String>>, WorkerError> {
        if !fresh
            && let Some((taken, sorted)) = self.snapshot.lock().as_ref()
            && taken.elapsed() < SNAPSHOT_REUSE
        {
            return Ok(sorted.clone());
        }
        let pages = self.worker.pages.clone();
        let sorted = tokio::task::spawn_blocking(move || {
            let mut uris = crate::cluster::file_report::cached_uris(&pages);
            uris.sort_unstable();
            uris.dedup();
            Arc::new(uris)
        })
        .await
        .map_err(|e| WorkerError::Unavailable(format!("listing the cached files failed: {e}")))?;
        *self.snapshot.lock() = Some((Instant::now(), sorted.clone()));
        Ok(sorted)
    }
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
