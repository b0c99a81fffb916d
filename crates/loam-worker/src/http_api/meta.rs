//! Metadata endpoints: `/v1/health`, `/v1/ready`, `/v1/node`, `/v1/info`, `/v1/files` and `/metrics`.
//!
//! The cached percentage of a file (`mInAlluxioPercentage`) is what its owner on the ring holds of the
//! version the UFS lists: `/v1/info` is asked of the owner by every client, and `/v1/files`, which any
//! worker may answer, asks each entry's owner (`owners`), so `loam fs ls` and `loam fs stat` agree.

use super::WorkerState;
use super::openapi::InfoErrors;
use super::query::Query;
use crate::error::{WorkerError, WorkerResult};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use loam_core::cluster_ops_api::FileVersion;
use loam_core::coordinator_api::StatusBody;
use loam_core::path::UfsUri;
use loam_core::probe_api::Readiness;
use loam_core::time::epoch_millis;
use loam_core::worker_api::{FileInfo, NodeAddress, human_readable_size};
use loam_ufs::{ListOptions, UfsError, UfsStatus};
use std::sync::Arc;

/// `GET /v1/health`: 200 while the worker serves.
#[utoipa::path(get, path = super::HEALTH_PATH, tag = "meta",
    responses((status = 200, description = "`OK` while the worker serves", body = String, content_type = "text/plain")))]
pub async fn health() -> &'static str {
    "OK"
}

/// `GET /v1/ready`: 200 `{"ready":true}` when the worker is registered in the membership, else 503 with the
/// reason ([`WorkerState::readiness`]).
#[utoipa::path(get, path = super::READY_PATH, tag = "meta",
    responses(
        (status = 200, description = "Ready: registered in the membership, its page store open", body = Readiness),
        (status = 503, description = "Not ready, and why", body = Readiness)))]
pub async fn ready(State(s): State<Arc<WorkerState>>) -> Response {
    let r = s.readiness();
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, Json(r)).into_response()
}

/// `GET /v1/node?path=`: the primary worker of a path by the current ring.
#[utoipa::path(get, path = "/v1/node", tag = "meta",
    params(("path" = String, Query, description = "A cluster path (`/mount/key`) or a UFS URI")),
    responses(
        (status = 200, description = "The worker that owns the path", body = NodeAddress),
        (status = 404, description = "A cluster path under no mount", body = StatusBody),
        (status = 503, description = "No live worker on the ring", body = StatusBody)))]
pub async fn node(State(s): State<Arc<WorkerState>>, RawQuery(q): RawQuery) -> WorkerResult<Json<NodeAddress>> {
    let q = Query::raw(q.as_deref(), &["path"]);
    let path = q.required("path")?;
    let key = if path.starts_with('/') { s.mounts.resolve(path)?.ufs_uri } else { path.to_string() };
    // A client that asks where a file lives reads it next, by id only: remember which file that id is.
    if let Ok(r) = s.mounts.resolve(path) {
        s.path_ids.remember_as(path, &r.ufs_uri);
    }
    let ring = s.members.ring();
    let (_, w) = ring.primary(&key).ok_or_else(|| WorkerError::Unavailable("no live worker on the ring".into()))?;
    Ok(Json(NodeAddress { host: w.host.clone(), http_server_port: w.http_port }))
}

/// Maps "does not exist" to the 500 that Alluxio's clients read as not-found (spec: keep it).
fn not_found_is_500(e: WorkerError) -> Response {
    match e {
        WorkerError::Ufs(UfsError::NotFound(m)) => {
            let body = StatusBody { status: format!("File does not exist: {m}") };
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
        e => e.into_response(),
    }
}

/// `GET /v1/info?path=`: a list with the file-info of one path.
#[utoipa::path(get, path = "/v1/info", tag = "meta",
    params(("path" = String, Query, description = "A cluster path or UFS URI (form-encoded: `+` is a space)")),
    responses(
        (status = 200, description = "A list with one file-info", body = Vec<FileInfo>),
        InfoErrors))]
pub async fn info(State(s): State<Arc<WorkerState>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::form(q.as_deref());
    let run = async {
        let path = q.required("path")?;
        let (resolved, ufs) = s.rt.resolve(path)?;
        let st = ufs.stat(&resolved.ufs_uri).await?;
        if !st.is_dir {
            s.path_ids.remember_as(path, &st.uri);
        }
        Ok::<_, WorkerError>(vec![file_info(&s, &resolved.cluster_path, &st)])
    };
    match run.await {
        Ok(v) => Json(v).into_response(),
        Err(e) => not_found_is_500(e),
    }
}

/// `GET /v1/files?path=`: the entries of a directory (a file lists as itself).
#[utoipa::path(get, path = "/v1/files", tag = "meta",
    params(("path" = String, Query, description = "A cluster path or UFS URI (form-encoded: `+` is a space)")),
    responses(
        (status = 200, description = "The entries' file-infos", body = Vec<FileInfo>),
        InfoErrors))]
pub async fn files(State(s): State<Arc<WorkerState>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::form(q.as_deref());
    let run = async {
        let path = q.required("path")?;
        let (resolved, ufs) = s.rt.resolve(path)?;
        let st = ufs.stat(&resolved.ufs_uri).await?;
        if !st.is_dir {
            s.path_ids.remember_as(path, &st.uri);
            return Ok(vec![file_info(&s, &resolved.cluster_path, &st)]);
        }
        let root = resolved.mount.ufs_uri();
        let entries: Vec<UfsStatus> =
            ufs.list(&resolved.ufs_uri, ListOptions { recursive: false, page_size: None }).try_collect().await?;
        let mut out = Vec::with_capacity(entries.len());
        let mut files = Vec::new();
        for e in entries {
            let rel = UfsUri::parse(&e.uri).ok().and_then(|u| u.strip_prefix(&root)).unwrap_or_default();
            let cluster =
                if rel.is_empty() { resolved.mount.path.clone() } else { format!("{}/{rel}", resolved.mount.path) };
            if !e.is_dir {
                s.path_ids.remember(&e.uri);
                files.push((out.len(), FileVersion { uri: e.uri.clone(), length: e.length, etag: e.etag.clone() }));
            }
            out.push(file_info(&s, &cluster, &e));
        }
        // This worker holds only the entries it owns; each owner says what it holds of the others.
        super::owners::fill_from_owners(&s, &mut out, files).await;
        Ok::<_, WorkerError>(out)
    };
    match run.await {
        Ok(v) => Json(v).into_response(),
        Err(e) => not_found_is_500(e),
    }
}

/// How much of version (`length`, `etag`) of `uri` this worker holds, in percent (0 for another version).
pub(super) fn cached_percent(s: &WorkerState, uri: &str, length: u64, etag: &Option<String>) -> u32 {
    let pages = &s.pages;
    let id = loam_core::file_id(uri);
    match pages.file(&id) {
        Some(rec) if rec.length == length && &rec.etag == etag => {
            let total = s.rt.page_count(length);
            // An empty file is wholly cached.
            (pages.cached_page_count(&id) * 100).checked_div(total).map_or(100, |p| p as u32)
        }
        _ => 0,
    }
}

fn file_info(s: &WorkerState, cluster_path: &str, st: &UfsStatus) -> FileInfo {
    let modified = st.modified.map(epoch_millis).unwrap_or(0);
    let name = cluster_path.rsplit('/').next().unwrap_or("").to_string();
    let percent = if st.is_dir { 0 } else { cached_percent(s, &st.uri, st.length, &st.etag) };
    FileInfo {
        m_type: if st.is_dir { "directory" } else { "file" }.into(),
        m_name: name,
        m_path: cluster_path.to_string(),
        m_ufs_path: st.uri.clone(),
        m_length: if st.is_dir { 0 } else { st.length },
        m_human_readable_file_size: human_readable_size(if st.is_dir { 0 } else { st.length }),
        m_completed: true,
        m_owner: String::new(),
        m_group: String::new(),
        m_mode: if st.is_dir { 0o755 } else { 0o644 },
        m_creation_time_ms: modified,
        m_last_modification_time_ms: modified,
        m_last_access_time_ms: modified,
        m_persisted: true,
        m_in_alluxio_percentage: percent,
        m_content_hash: st.etag.clone().unwrap_or_default(),
    }
}

/// `GET /metrics`: Prometheus (OpenMetrics) text of this worker's registry.
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text")))]
pub async fn metrics(State(s): State<Arc<WorkerState>>) -> Response {
    s.refresh_gauges();
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &s.registry) {
        return WorkerError::Unavailable(format!("metrics encoding failed: {e}")).into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}
