//! Write endpoints, through to the UFS and keeping the caches coherent (see `crate::write_through`):
//! `POST /v1/chunk/<id>?ufsFullPath=&chunkSize=` (the request body, chunked or not, streamed to the UFS
//! without being held whole), `POST /v1/mkdir/<id>?ufsFullPath=`, `POST /v1/touch/<id>?ufsFullPath=`,
//! `POST /v1/rm/<id>?ufsFullPath=&recursive=True|False`, `POST /v1/mv/<id>?srcPath=&dstPath=` and
//! `POST /v1/copy/<id>?srcPath=&dstPath=`, each answering `{"success": true}`; and the peers' side of the
//! coherence, `POST /v1/internal/invalidate` ([`Invalidation`]).
//!
//! Query values are raw UFS URIs (`+` is a plus), as for the read endpoints. The `<id>` of a one-path
//! endpoint must be the file id of its `ufsFullPath`, as for reads; for `mv` and `copy` it need only be a
//! well-formed id, since nothing fixes whether a client derives it from the source or the destination.
//! `chunkSize` is accepted for symmetry with `GET /v1/chunk` and otherwise ignored: the UFS writer cuts
//! its own parts.

use super::WorkerState;
use super::openapi::{SrcDstQuery, TargetQuery, WriteErrors};
use super::query::Query;
use crate::error::{WorkerError, WorkerResult};
use crate::write_through::{INVALIDATION_VERSION, Invalidated, Invalidation};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use futures::TryStreamExt;
use loam_core::path::UfsUri;
use loam_core::worker_api::Success;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The write routes other than `POST /v1/chunk` (which shares its path with the read, see `http_api`).
pub fn routes() -> OpenApiRouter<Arc<WorkerState>> {
    let (s, p, invalidate) = routes!(invalidate);
    OpenApiRouter::new()
        .routes(routes!(mkdir))
        .routes(routes!(touch))
        .routes(routes!(rm))
        .routes(routes!(mv))
        .routes(routes!(copy))
        .routes((s, p, invalidate.layer(axum::middleware::from_fn(super::json_only::require_json))))
}

/// The `ufsFullPath` of a one-path endpoint, checked against the `<id>` of the URL.
fn target(id: &str, q: &Query) -> WorkerResult<String> {
    let raw = q.required("ufsFullPath")?;
    let normalized = UfsUri::parse(raw).map_err(|e| WorkerError::InvalidInput(e.to_string()))?.as_string();
    if loam_core::file_id(raw) != id && loam_core::file_id(&normalized) != id {
        return Err(WorkerError::InvalidInput(format!("file id {id} is not the SHA-256 of ufsFullPath {raw}")));
    }
    Ok(normalized)
}

/// `srcPath` and `dstPath` of `mv` and `copy`.
fn src_dst(id: &str, q: &Query) -> WorkerResult<(String, String)> {
    if !loam_core::id::is_file_id(id) {
        return Err(WorkerError::InvalidInput(format!("{id:?} is not a file id (64 lowercase hex digits)")));
    }
    Ok((q.required("srcPath")?.to_string(), q.required("dstPath")?.to_string()))
}

fn ok() -> Json<Success> {
    Json(Success { success: true })
}

/// `POST /v1/chunk/<id>?ufsFullPath=&chunkSize=`: the body becomes the file.
#[utoipa::path(post, path = "/v1/chunk/{id}", tag = "write",
    params(("id" = String, Path, description = "The file id of `ufsFullPath`"), TargetQuery,
        ("chunkSize" = Option<u64>, Query, description = "Accepted (positive) and ignored")),
    request_body(content = [u8], description = "The file's new content (streamed)",
        content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Done", body = Success),
        WriteErrors))]
pub async fn chunk(
    State(s): State<Arc<WorkerState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> WorkerResult<Json<Success>> {
    let q = Query::raw(q.as_deref(), &["ufsFullPath", "chunkSize"]);
    if q.u64("chunkSize")? == Some(0) {
        return Err(WorkerError::InvalidInput("query parameter `chunkSize` must be positive".into()));
    }
    let uri = target(&id, &q)?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    s.writes.put(&uri, Box::pin(stream), Default::default()).await?;
    Ok(ok())
}

/// Makes a directory (and its parents).
#[utoipa::path(post, path = "/v1/mkdir/{id}", tag = "write",
    params(("id" = String, Path, description = "The file id of `ufsFullPath`"), TargetQuery),
    responses(
        (status = 200, description = "Done", body = Success),
        WriteErrors))]
async fn mkdir(
    State(s): State<Arc<WorkerState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> WorkerResult<Json<Success>> {
    let q = Query::raw(q.as_deref(), &["ufsFullPath"]);
    s.writes.mkdir(&target(&id, &q)?).await?;
    Ok(ok())
}

/// Makes an empty file (one that exists is left as it is).
#[utoipa::path(post, path = "/v1/touch/{id}", tag = "write",
    params(("id" = String, Path, description = "The file id of `ufsFullPath`"), TargetQuery),
    responses(
        (status = 200, description = "Done", body = Success),
        WriteErrors))]
async fn touch(
    State(s): State<Arc<WorkerState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> WorkerResult<Json<Success>> {
    let q = Query::raw(q.as_deref(), &["ufsFullPath"]);
    s.writes.touch(&target(&id, &q)?).await?;
    Ok(ok())
}

/// Deletes a file, or a directory (`recursive=True` when it is not empty).
#[utoipa::path(post, path = "/v1/rm/{id}", tag = "write",
    params(("id" = String, Path, description = "The file id of `ufsFullPath`"), TargetQuery,
        ("recursive" = Option<String>, Query, description = "`True` or `False` (any case)")),
    responses(
        (status = 200, description = "Done", body = Success),
        WriteErrors))]
async fn rm(
    State(s): State<Arc<WorkerState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> WorkerResult<Json<Success>> {
    let q = Query::raw(q.as_deref(), &["ufsFullPath", "recursive"]);
    let uri = target(&id, &q)?;
    // Alluxio's clients send Python's spelling (`True`); any case of true/false is taken.
    let recursive = match q.get("recursive").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(WorkerError::InvalidInput(format!(
                "query parameter `recursive` must be True or False, got {other:?}"
            )));
        }
    };
    s.writes.delete(&uri, recursive).await?;
    Ok(ok())
}

/// Renames a file or directory.
#[utoipa::path(post, path = "/v1/mv/{id}", tag = "write",
    params(("id" = String, Path, description = "A file id (of the source or the destination)"), SrcDstQuery),
    responses(
        (status = 200, description = "Done", body = Success),
        WriteErrors))]
async fn mv(
    State(s): State<Arc<WorkerState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> WorkerResult<Json<Success>> {
    let (src, dst) = src_dst(&id, &Query::raw(q.as_deref(), &["srcPath", "dstPath"]))?;
    s.writes.rename(&src, &dst).await?;
    Ok(ok())
}

/// Copies a file.
#[utoipa::path(post, path = "/v1/copy/{id}", tag = "write",
    params(("id" = String, Path, description = "A file id (of the source or the destination)"), SrcDstQuery),
    responses(
        (status = 200, description = "Done", body = Success),
        WriteErrors))]
async fn copy(
    State(s): State<Arc<WorkerState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> WorkerResult<Json<Success>> {
    let (src, dst) = src_dst(&id, &Query::raw(q.as_deref(), &["srcPath", "dstPath"]))?;
    s.writes.copy(&src, &dst).await?;
    Ok(ok())
}

/// `POST /v1/internal/invalidate`: a peer wrote through; drop what it changed.
#[utoipa::path(post, path = crate::write_through::INVALIDATE_PATH, tag = "internal", request_body = Invalidation,
    responses((status = 200, description = "The files dropped here", body = Invalidated)))]
async fn invalidate(State(s): State<Arc<WorkerState>>, body: Bytes) -> WorkerResult<Json<Invalidated>> {
    let inv: Invalidation =
        serde_json::from_slice(&body).map_err(|e| WorkerError::InvalidInput(format!("malformed invalidation: {e}")))?;
    if inv.version != INVALIDATION_VERSION {
        return Err(WorkerError::InvalidInput(format!(
            "invalidation version {} is not supported (this worker speaks {INVALIDATION_VERSION})",
            inv.version
        )));
    }
    let files = s.writes.invalidate_local(&inv).await?;
    Ok(Json(Invalidated { version: INVALIDATION_VERSION, files }))
}
