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
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use loam_core::cluster_ops_api::{
    CLUSTER_OPS_API_VERSION, FILE_INDEX_REPORT_PATH, FileLocation, IndexEntries, IndexFiles, IndexReport, IndexedWorker,
};
use loam_core::coordinator_api::{Results, StatusBody};

/// The file index routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/file_index", get(list).post(add).delete(remove))
        .route(FILE_INDEX_REPORT_PATH, post(report))
}

async fn list(State(c): State<AppState>, q: QueryParams) -> Result<Response, ApiError> {
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
        return Ok(Json(FileLocation { file: uri, workers }).into_response());
    }
    let paging = Paging::from_query(&q)?;
    let prefix = match q.optional("prefix")? {
        Some(p) if p.starts_with('/') => resolve(&c, p).await?,
        Some(p) => p.to_string(),
        None => String::new(),
    };
    Ok(Json(Results { results: index.list(&prefix, paging.offset, paging.limit)? }).into_response())
}

async fn add(State(c): State<AppState>, ApiJson(body): ApiJson<IndexFiles>) -> Result<Json<IndexEntries>, ApiError> {
    c.file_index().ensure_enabled()?;
    let files = resolve_all(&c, body.files).await?;
    Ok(Json(IndexEntries { entries: c.file_index().add(&files)? }))
}

async fn remove(State(c): State<AppState>, ApiJson(body): ApiJson<IndexFiles>) -> Result<Json<IndexEntries>, ApiError> {
    c.file_index().ensure_enabled()?;
    let files = resolve_all(&c, body.files).await?;
    Ok(Json(IndexEntries { entries: c.file_index().remove(&files)? }))
}

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
