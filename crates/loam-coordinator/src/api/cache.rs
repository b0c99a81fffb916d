//! `/api/v1/cache`: clear stale cache on every worker (`POST {"op": "clear-stale"}`) or stop it
//! (`DELETE {"op": "clear-stale"}`). Both answer `200 {"errors": {...}}`, keyed by worker; another `op` is
//! `501 {"status": "OP not implemented"}`. See `crate::clear_stale` for the Decisions.

use super::AppState;
use super::error::ApiError;
use super::extract::ApiJson;
use crate::clear_stale::DEFAULT_REPLICAS_KEPT;
use axum::Json;
use axum::extract::State;
use loam_core::cluster_ops_api::{CacheOp, CacheOpErrors};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The only implemented `op`.
pub const CLEAR_STALE: &str = "clear-stale";

/// The cache routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start, stop))
}

/// The path of the cache operations.
pub const PATH: &str = "/api/v1/cache";

fn check(op: &CacheOp) -> Result<(), ApiError> {
    if op.op != CLEAR_STALE {
        return Err(ApiError::OpNotImplemented);
    }
    if op.replicas == Some(0) {
        return Err(ApiError::InvalidInput("replicas must be at least 1".into()));
    }
    Ok(())
}

/// Starts a cache operation on every worker (`clear-stale`: drop the copies a worker no longer owns).
#[utoipa::path(post, path = PATH, tag = "cache", request_body = CacheOp,
    responses(
        (status = 200, description = "Started; the workers that could not be reached", body = CacheOpErrors),
        (status = 501, description = "An operation other than `clear-stale`", body = loam_core::coordinator_api::StatusBody)))]
async fn start(State(c): State<AppState>, ApiJson(op): ApiJson<CacheOp>) -> Result<Json<CacheOpErrors>, ApiError> {
    check(&op)?;
    let replicas = op.replicas.unwrap_or(DEFAULT_REPLICAS_KEPT);
    Ok(Json(CacheOpErrors { errors: c.clear_stale(Some(replicas)).await? }))
}

/// Stops a cache operation on every worker.
#[utoipa::path(delete, path = PATH, tag = "cache", request_body = CacheOp,
    responses(
        (status = 200, description = "Stopped; the workers that could not be reached", body = CacheOpErrors),
        (status = 501, description = "An operation other than `clear-stale`", body = loam_core::coordinator_api::StatusBody)))]
async fn stop(State(c): State<AppState>, ApiJson(op): ApiJson<CacheOp>) -> Result<Json<CacheOpErrors>, ApiError> {
    check(&op)?;
    Ok(Json(CacheOpErrors { errors: c.clear_stale(None).await? }))
}
