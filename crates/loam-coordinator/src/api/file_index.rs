//! `/api/v1/file_index` (spec "Global file index") and the workers' reports to it
//! (`POST /api/v1/internal/file_index`, an [`IndexReport`]).
//!
//! - `GET` lists the indexed UFS URIs in order, with `?prefix=`, `?offset=` and `?limit=`; `GET ?file=`
//!   answers which workers hold one file (`{"file", "workers": [{"identity", "address"}]}`, `404` when it
//!   is not indexed) — `loam fs locate` uses it.
//! - `POST`/`DELETE {"files": [...]}` answer `{"entries": n}`, the number added or removed.
//! - Reports are taken only for workers that are current members of the ring (`400` otherwise, nothing
//!   changed); past the index's size cap they answer `507` (see `crate::file_index`).
//! - **Decision:** wherever a file is taken, an Alluxio path (`/data/f`) is accepted and resolved through
//!   the mount table; one under no mount is a `400 No mounted UFS found`. UFS URIs are taken as they are.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Paging, QueryParams};
use super::openapi::ListQuery;
use axum::Json;
use axum::extract::State;
use loam_core::cluster_ops_api::{
    CLUSTER_OPS_API_VERSION, FILE_INDEX_REPORT_PATH, FileLocation, IndexEntries, IndexFiles, IndexReport, IndexedWorker,
};
use loam_core::coordinator_api::{Results, StatusBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The file index routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, add, remove)).routes(routes!(report))
}

/// The path of the global file index.
pub const PATH: &str = "/api/v1/file_index";

/// Where one file is cached (`?file=`), or a page of indexed files.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum IndexAnswer {
    One(FileLocation),
    All(Results<String>),
}

/// The indexed files (under `prefix`), or the workers holding one file.
#[utoipa::path(get, path = PATH, tag = "file_index", params(ListQuery,
    ("file" = Option<String>, Query, description = "A UFS URI or cluster path: answer where it is cached"),
    ("prefix" = Option<String>, Query, description = "List only files under this UFS URI or cluster path")),
    responses(
        (status = 200, description = "The file's holders, or `{\"results\"}` of UFS URIs", body = IndexAnswer),
        (status = 404, description = "`file` is not indexed", body = StatusBody),
        (status = 501, description = "The file index is not enabled", body = StatusBody)))]
async fn list(State(c): State<AppState>, q: QueryParams) -> Result<Json<IndexAnswer>, ApiError> {
    let index = c.file_index();
    if let Some(file) = q.optional("file")? {
        let uri = resolve(&c, file).await?;
        let holders = index.locate(&uri)?.ok_or_else(|| ApiError::NotIndexed(uri.clone()))?;
        let live = crate::jobs::workers::live_workers(c.store().as_ref(), c.cluster_name()).await?;
        let workers = holders
            .into_iter()
            .map(|identity| {
                let address = live
                    .iter()
                    .find(|w| w.id.to_string() == identity)
                    .map(|w| format!("{}:{}", w.host, w.http_port))
                    .unwrap_or_default();
                IndexedWorker { identity, address }
            })
            .collect();
        return Ok(Json(IndexAnswer::One(FileLocation { file: uri, workers })));
    }
    let paging = Paging::from_query(&q)?;
    let prefix = match q.optional("prefix")? {
        Some(p) if p.starts_with('/') => resolve(&c, p).await?,
        Some(p) => p.to_string(),
        None => String::new(),
    };
    Ok(Json(IndexAnswer::All(Results { results: index.list(&prefix, paging.offset, paging.limit)? })))
}

/// Adds files to the index (without a holder: a hint of what is worth caching).
#[utoipa::path(post, path = PATH, tag = "file_index", request_body = IndexFiles,
    responses(
        (status = 200, description = "How many entries were added", body = IndexEntries),
        (status = 501, description = "The file index is not enabled", body = StatusBody),
        (status = 507, description = "The index is full (`--file-index-max-entries`)", body = StatusBody)))]
async fn add(State(c): State<AppState>, ApiJson(body): ApiJson<IndexFiles>) -> Result<Json<IndexEntries>, ApiError> {
    c.file_index().ensure_enabled()?;
    let files = resolve_all(&c, body.files).await?;
    Ok(Json(IndexEntries { entries: c.file_index().add(&files)? }))
}

/// Removes files from the index.
#[utoipa::path(delete, path = PATH, tag = "file_index", request_body = IndexFiles,
    responses(
        (status = 200, description = "How many entries were removed", body = IndexEntries),
        (status = 501, description = "The file index is not enabled", body = StatusBody)))]
async fn remove(State(c): State<AppState>, ApiJson(body): ApiJson<IndexFiles>) -> Result<Json<IndexEntries>, ApiError> {
    c.file_index().ensure_enabled()?;
    let files = resolve_all(&c, body.files).await?;
    Ok(Json(IndexEntries { entries: c.file_index().remove(&files)? }))
}

/// A worker's report of the change in its cached files (members only).
#[utoipa::path(post, path = FILE_INDEX_REPORT_PATH, tag = "internal", request_body = IndexReport,
    responses(
        (status = 200, description = "Applied", body = StatusBody),
        (status = 501, description = "The file index is not enabled", body = StatusBody),
        (status = 507, description = "The index is full (`--file-index-max-entries`)", body = StatusBody)))]
async fn report(State(c): State<AppState>, ApiJson(r): ApiJson<IndexReport>) -> Result<Json<StatusBody>, ApiError> {
    if r.version != CLUSTER_OPS_API_VERSION {
        return Err(ApiError::InvalidInput(format!(
            "report version {} is not supported (this coordinator speaks {CLUSTER_OPS_API_VERSION})",
            r.version
        )));
    }
    c.file_index().ensure_enabled()?;
    // Only a current member reports for itself: a report naming any other worker changes nothing.
    let live = crate::jobs::workers::live_workers(c.store().as_ref(), c.cluster_name()).await?;
    if !live.iter().any(|w| w.id.to_string() == r.worker) {
        return Err(ApiError::NotAMember(r.worker));
    }
    if r.reset {
        c.file_index().replace_worker(&r.worker, &r.added)?;
    } else {
        c.file_index().apply_report(&r.worker, &r.added, &r.removed)?;
    }
    Ok(Json(StatusBody::ok()))
}

async fn resolve_all(c: &AppState, files: Vec<String>) -> Result<Vec<String>, ApiError> {
    if !files.iter().any(|f| f.starts_with('/')) {
        return Ok(files);
    }
    let table = c.mounts().table().await?;
    files.into_iter().map(|f| resolve_in(&table, f)).collect()
}

async fn resolve(c: &AppState, file: &str) -> Result<String, ApiError> {
    if !file.starts_with('/') {
        return Ok(file.to_string());
    }
    resolve_in(&c.mounts().table().await?, file.to_string())
}

fn resolve_in(table: &loam_ufs::MountTable, file: String) -> Result<String, ApiError> {
    if !file.starts_with('/') {
        return Ok(file);
    }
    table
        .resolve_cluster_path(&file)
        .map(|r| r.ufs_uri)
        .map_err(|_| ApiError::InvalidInput(format!("No mounted UFS found for path: {file}")))
}
