//! `/api/v1/mount`: list, get, add and remove mount points (spec: "Mount table").
//!
//! The handlers only translate: the rules live in `loam_ufs::mount_table` and the storage in
//! `crate::mounts`. Paths and UFS URIs are listed with trailing slashes (`/data/`, `s3://bucket/`) and
//! option values naming a secret are masked.
//!
//! **Decision:** `GET ?path=` validates the path like `POST` and `DELETE` do: `..`, NUL, a relative path,
//! `/` and a nested path (`/a/b`, which can never be a mount point) are a `400` naming the problem.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Paging, QueryParams};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use loam_core::coordinator_api::{MountPoint, Results, StatusBody, mask_secrets};
use loam_ufs::{Mount, MountOptions};
use serde::Deserialize;

/// The mount routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/mount", get(get_mounts).post(add_mount).delete(remove_mount))
}

/// `POST` body.
#[derive(Debug, Deserialize)]
struct AddMountBody {
    path: String,
    ufs: String,
    #[serde(default)]
    options: MountOptions,
}

/// `DELETE` body.
#[derive(Debug, Deserialize)]
struct RemoveMountBody {
    path: String,
}

/// How a mount is shown to users.
fn mount_point(m: &Mount) -> MountPoint {
    MountPoint { path: m.display_path(), ufs: m.display_ufs(), options: mask_secrets(&m.options) }
}

async fn get_mounts(State(c): State<AppState>, q: QueryParams) -> Result<Response, ApiError> {
    if let Some(path) = q.optional("path")? {
        let m = c.mounts().get(path).await?;
        return Ok(Json(mount_point(&m)).into_response());
    }
    let paging = Paging::from_query(&q)?;
    // The table iterates in path order, which is the stable order paging needs.
    let all: Vec<MountPoint> = c.mounts().table().await?.iter().map(mount_point).collect();
    Ok(Json(Results { results: paging.apply(all) }).into_response())
}

async fn add_mount(
    State(c): State<AppState>,
    ApiJson(body): ApiJson<AddMountBody>,
) -> Result<Json<StatusBody>, ApiError> {
    c.mounts().add(&body.path, &body.ufs, body.options).await?;
    Ok(Json(StatusBody::ok()))
}

async fn remove_mount(
    State(c): State<AppState>,
    ApiJson(body): ApiJson<RemoveMountBody>,
) -> Result<Json<StatusBody>, ApiError> {
    c.mounts().remove(&body.path).await?;
    Ok(Json(StatusBody::ok()))
}
