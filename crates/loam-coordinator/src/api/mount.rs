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
use super::openapi::{ListQuery, PathBody};
use axum::Json;
use axum::extract::State;
use loam_core::coordinator_api::{MountPoint, OneOrAll, Results, StatusBody, mask_secrets};
use loam_ufs::{Mount, MountOptions};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The path of the mount table.
pub const MOUNT_PATH: &str = "/api/v1/mount";

/// The mount routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_mounts, add_mount, remove_mount))
}

/// `POST` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct AddMountBody {
    /// The mount point in the cluster namespace, `/<name>`.
    path: String,
    /// The UFS URI (`s3://bucket/prefix`, `file:///data`).
    ufs: String,
    /// UFS options (`s3.endpoint`, `s3.access_key`, ...); a secret may be a reference (`env:NAME`, `file:/path`).
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    options: MountOptions,
}

/// How a mount is shown to users.
fn mount_point(m: &Mount) -> MountPoint {
    MountPoint { path: m.display_path(), ufs: m.display_ufs(), options: mask_secrets(&m.options) }
}

/// The mount at `path`, or the whole table in path order (secrets masked).
#[utoipa::path(get, path = MOUNT_PATH, tag = "mount", params(ListQuery,
    ("path" = Option<String>, Query, description = "A mount point: answer only it")),
    responses(
        (status = 200, description = "The mount, or `{\"results\"}`", body = OneOrAll<MountPoint>),
        (status = 404, description = "No mount at `path`", body = StatusBody)))]
async fn get_mounts(State(c): State<AppState>, q: QueryParams) -> Result<Json<OneOrAll<MountPoint>>, ApiError> {
    if let Some(path) = q.optional("path")? {
        let m = c.mounts().get(path).await?;
        return Ok(Json(OneOrAll::One(mount_point(&m))));
    }
    let paging = Paging::from_query(&q)?;
    // The table iterates in path order, which is the stable order paging needs.
    let all: Vec<MountPoint> = c.mounts().table().await?.iter().map(mount_point).collect();
    Ok(Json(OneOrAll::All(Results { results: paging.apply(all) })))
}

/// Adds a mount point; the UFS is reached once to check it.
#[utoipa::path(post, path = MOUNT_PATH, tag = "mount", request_body = AddMountBody,
    responses(
        (status = 200, description = "Mounted", body = StatusBody),
        (status = 409, description = "The path is mounted already, or the UFS is mounted elsewhere", body = StatusBody),
        (status = 501, description = "The mount table is static (from the config file)", body = StatusBody)))]
async fn add_mount(
    State(c): State<AppState>,
    ApiJson(body): ApiJson<AddMountBody>,
) -> Result<Json<StatusBody>, ApiError> {
    c.mounts().add(&body.path, &body.ufs, body.options).await?;
    Ok(Json(StatusBody::ok()))
}

/// Removes a mount point.
#[utoipa::path(delete, path = MOUNT_PATH, tag = "mount", request_body = PathBody,
    responses(
        (status = 200, description = "Unmounted", body = StatusBody),
        (status = 410, description = "The path is not mounted", body = StatusBody),
        (status = 501, description = "The mount table is static (from the config file)", body = StatusBody)))]
async fn remove_mount(
    State(c): State<AppState>,
    ApiJson(body): ApiJson<PathBody>,
) -> Result<Json<StatusBody>, ApiError> {
    c.mounts().remove(&body.path).await?;
    Ok(Json(StatusBody::ok()))
}
