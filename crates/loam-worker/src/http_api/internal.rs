//! The worker's internal task API, driven by the Coordinator's load, free and rebalance jobs (same port as
//! the public API, under `/v1/internal/`): `POST /v1/internal/load` ([`LoadTask`]), `POST /v1/internal/free`
//! and `POST /v1/internal/verify` ([`FileListTask`]; verify takes `?metadataOnly=true`). Each answers
//! [`TaskResults`], one result per file in request order. A body of another `version` is a `400`, so
//! mismatched releases fail loudly instead of misreading each other. A load batch's `source` peers must be
//! current ring members or registered workers (a draining worker has left the ring but pushes its files
//! from itself; `400` otherwise). `GET /v1/internal/file/<id>` answers
//! the record of a cached file ([`PeerFile`], `404` when not cached), which a peer copying the file reads.

use super::WorkerState;
use super::query::Query;
use crate::error::WorkerError;
use crate::tasks::TaskRunner;
use axum::Json;
use axum::extract::Path;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use loam_client::{MembershipView, WorkerEndpoint};
use loam_core::coordinator_api::StatusBody;
use loam_core::job_api::{
    FREE_TASK_PATH, FileListTask, LOAD_TASK_PATH, LoadTask, PEER_FILE_ROUTE, PeerFile, TASK_API_VERSION, TaskResults,
    VERIFY_TASK_PATH,
};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the internal handlers share: the task runner and the ring (whose members a load may copy from).
pub struct Tasks {
    runner: Arc<TaskRunner>,
    members: MembershipView,
    store: Arc<dyn loam_store::ClusterStore>,
    cluster: String,
}

/// The internal routes, over a task runner of `state`'s read-through layer.
pub fn routes(state: &Arc<WorkerState>) -> OpenApiRouter<Arc<WorkerState>> {
    let runner = TaskRunner::new(state.rt.clone(), state.cluster_token.clone());
    OpenApiRouter::new()
        .routes(routes!(load))
        .routes(routes!(free))
        .routes(routes!(verify))
        .routes(routes!(file))
        .route_layer(axum::middleware::from_fn(super::json_only::require_json))
        .with_state(Arc::new(Tasks {
            runner,
            members: state.members.clone(),
            store: state.store.clone(),
            cluster: state.cluster_name.clone(),
        }))
}

fn parse<T: DeserializeOwned>(body: &[u8], version: impl Fn(&T) -> u32) -> Result<T, WorkerError> {
    let t: T = serde_json::from_slice(body).map_err(|e| WorkerError::InvalidInput(format!("malformed task: {e}")))?;
    match version(&t) {
        TASK_API_VERSION => Ok(t),
        v => Err(WorkerError::InvalidInput(format!(
            "task version {v} is not supported (this worker speaks {TASK_API_VERSION})"
        ))),
    }
}

fn answer(results: Vec<loam_core::job_api::FileResult>) -> Response {
    Json(TaskResults { version: TASK_API_VERSION, results }).into_response()
}

/// A batch whose files name a `source` that is not the HTTP address of a current ring member nor of a
/// registered worker is refused whole (`400`, nothing loaded): pages are copied only from workers of this
/// cluster, never from any URL. Registrations are read only when a source is not in the ring (a drain).
async fn check_sources(t: &LoadTask, tasks: &Tasks) -> Result<(), WorkerError> {
    let ring = tasks.members.ring();
    let mut registered: Option<Vec<String>> = None;
    for f in t.files.iter() {
        if let Some(source) = &f.source {
            let source = source.trim_end_matches('/');
            if ring.members().any(|(_, w)| w.http_base() == source) {
                continue;
            }
            if registered.is_none() {
                let all = loam_store::membership::list_workers(tasks.store.as_ref(), &tasks.cluster)
                    .await
                    .map_err(|e| WorkerError::Unavailable(format!("cannot read the membership: {e}")))?;
                let bases = all.iter().filter_map(|m| WorkerEndpoint::from_record(&m.record)).map(|w| w.http_base());
                registered = Some(bases.collect());
            }
            if !registered.as_ref().is_some_and(|r| r.iter().any(|b| b == source)) {
                return Err(WorkerError::InvalidInput(format!(
                    "source {source} of {} is not a current member of the cluster",
                    f.ufs_uri
                )));
            }
        }
    }
    Ok(())
}

/// Caches a batch of files (from the UFS, or copied from a peer `source`); one result per file.
#[utoipa::path(post, path = LOAD_TASK_PATH, tag = "internal", request_body = LoadTask,
    responses((status = 200, description = "One result per file, in request order", body = TaskResults)))]
async fn load(State(t): State<Arc<Tasks>>, body: Bytes) -> Response {
    let r = t.runner.clone();
    let task = match parse::<LoadTask>(&body, |t| t.version) {
        Ok(task) => check_sources(&task, &t).await.map(|()| task),
        Err(e) => Err(e),
    };
    match task {
        // The batch runs on its own task: if the coordinator goes away mid-batch (a restart), the reads
        // already started still finish and cache their pages, instead of being dropped half-way and
        // read again when the job resumes.
        Ok(t) => {
            tracing::info!(files = t.files.len(), "load batch");
            // The task keeps the request's span and id, so its log lines and peer copies carry the id.
            // (The listeners' edge always sets an id; a fresh one stands in where there is none.)
            let id = loam_core::request_id::current().unwrap_or_else(loam_core::request_id::fresh);
            let batch = loam_core::request_id::scope(id, async move { r.load(t.files, t.bandwidth).await });
            match tokio::spawn(batch.instrument(tracing::Span::current())).await {
                Ok(results) => answer(results),
                Err(e) => WorkerError::Unavailable(format!("load batch failed: {e}")).into_response(),
            }
        }
        Err(e) => e.into_response(),
    }
}

/// Drops a batch of files from this worker's cache; one result per file.
#[utoipa::path(post, path = FREE_TASK_PATH, tag = "internal", request_body = FileListTask,
    responses((status = 200, description = "One result per file, in request order", body = TaskResults)))]
async fn free(State(s): State<Arc<Tasks>>, body: Bytes) -> Response {
    match parse::<FileListTask>(&body, |t| t.version) {
        Ok(t) => {
            tracing::info!(files = t.uris.len(), "free batch");
            answer(s.runner.free(t.uris, t.bandwidth).await)
        }
        Err(e) => e.into_response(),
    }
}

/// Whether each file of a batch is wholly cached here (with `metadataOnly`, whether its record is).
#[utoipa::path(post, path = VERIFY_TASK_PATH, tag = "internal", request_body = FileListTask,
    params(("metadataOnly" = Option<bool>, Query, description = "Check the records only")),
    responses((status = 200, description = "One result per file, in request order", body = TaskResults)))]
async fn verify(State(s): State<Arc<Tasks>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let metadata_only = Query::form(q.as_deref()).get("metadataOnly") == Some("true");
    match parse::<FileListTask>(&body, |t| t.version) {
        Ok(t) => answer(s.runner.verify(t.uris, metadata_only)),
        Err(e) => e.into_response(),
    }
}

/// The record of a cached file, which a peer copying it reads first.
#[utoipa::path(get, path = PEER_FILE_ROUTE, tag = "internal",
    params(("id" = String, Path, description = "The file id")),
    responses(
        (status = 200, description = "The file's record", body = PeerFile),
        (status = 404, description = "Not cached here", body = StatusBody)))]
async fn file(State(s): State<Arc<Tasks>>, Path(id): Path<String>) -> Response {
    let pages = s.runner.pages();
    match pages.file(&id) {
        Some(rec) => Json(PeerFile {
            version: TASK_API_VERSION,
            uri: rec.ufs_uri,
            length: rec.length,
            etag: rec.etag,
            modified_ms: rec.modified_ms,
            validated_ms: rec.validated_ms,
            page_size: pages.page_size(),
        })
        .into_response(),
        None => WorkerError::NotFound(format!("file {id} is not cached on this worker")).into_response(),
    }
}
