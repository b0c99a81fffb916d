//! `GET /v1/short-circuit?path=`: what a FUSE mount on this worker's host needs to read this worker's page
//! files itself (`loam-fuse/src/short_circuit.rs`): the page store's directories, layout version and
//! instance ([`loam_page_store::LocalDirs`]), and the cached version of the file at `path` (id, generation,
//! page size, length, version tag), or none when this worker holds no record of it.
//!
//! The `read` role, as every read: the answer gives away no bytes, only where this worker keeps its pages
//! and which version of a file it holds; reading those pages still needs the file system's permission
//! (the page files are `0600`, `loam_core::private_fs`), which only a process of the worker's user has.
//! `path` must be under a mount (`400`/`404` as `/v1/info`), so it names no file outside the namespace.
//! Nothing is read from the UFS and nothing changes.

use super::WorkerState;
use super::query::Query;
use crate::error::WorkerResult;
use axum::Json;
use axum::extract::{RawQuery, State};
use loam_core::coordinator_api::StatusBody;
use loam_core::worker_api::{SHORT_CIRCUIT_API_VERSION, SHORT_CIRCUIT_PATH, ShortCircuitFile, ShortCircuitInfo};
use std::sync::Arc;

/// `GET /v1/short-circuit?path=`: this worker's page directories and its cached version of `path`.
#[utoipa::path(get, path = SHORT_CIRCUIT_PATH, tag = "meta",
    params(("path" = String, Query, description = "A cluster path or UFS URI (form-encoded: `+` is a space)")),
    responses(
        (status = 200, description = "The page directories, and the file's cached version if held here", body = ShortCircuitInfo),
        (status = 400, description = "No `path`", body = StatusBody),
        (status = 404, description = "A path under no mount", body = StatusBody)))]
pub async fn short_circuit(
    State(s): State<Arc<WorkerState>>,
    RawQuery(q): RawQuery,
) -> WorkerResult<Json<ShortCircuitInfo>> {
    let q = Query::form(q.as_deref());
    let resolved = s.mounts.resolve(q.required("path")?)?;
    let id = loam_core::file_id(&resolved.ufs_uri);
    let pages = &s.pages;
    let local = pages.local_dirs();
    // A directory that is not UTF-8 cannot travel in JSON: then no directories, and no short-circuit.
    let dirs: Option<Vec<String>> =
        local.as_ref().map_or(Some(Vec::new()), |l| l.dirs.iter().map(|d| d.to_str().map(str::to_owned)).collect());
    let file = pages.file_version(&id).map(|(rec, generation)| ShortCircuitFile {
        version_tag: loam_core::version::version_tag(rec.length, rec.etag.as_deref(), rec.modified_ms),
        file_id: id,
        generation,
        page_size: pages.page_size(),
        length: rec.length,
    });
    Ok(Json(ShortCircuitInfo {
        version: SHORT_CIRCUIT_API_VERSION,
        layout: loam_page_store::LAYOUT_VERSION.to_string(),
        dirs: dirs.unwrap_or_default(),
        instance: local.map(|l| l.instance).unwrap_or_default(),
        file,
    }))
}
