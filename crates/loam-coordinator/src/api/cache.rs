//! `/api/v1/cache`: clear stale cache on every worker (`POST {"op": "clear-stale"}`) or stop it
//! (`DELETE {"op": "clear-stale"}`). Both answer `200 {"errors": {...}}`, keyed by worker; another `op` is
//! `501 {"status": "OP not implemented"}`. See `crate::clear_stale` for the Decisions.

use super::AppState;
use super::error::ApiError;
use super::extract::ApiJson;
use crate::clear_stale::DEFAULT_REPLICAS_KEPT;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use loam_core::cluster_ops_api::{CacheOp, CacheOpErrors};

/// The only implemented `op`.
pub const CLEAR_STALE: &str = "clear-stale";

/// The cache routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/cache", post(start).delete(stop))
}

fn check(op: &CacheOp) -> Result<(), ApiError> {
    if op.op != CLEAR_STALE {
        return Err(ApiError::OpNotImplemented);
    }
    if op.replicas == Some(0) {
        return Err(ApiError::InvalidInput("replicas must be at least 1".into()));
    }
    Ok(())
}

async fn start(State(c): State<AppState>, ApiJson(op): ApiJson<CacheOp>) -> Result<Json<CacheOpErrors>, ApiError> {
    check(&op)?;
    let replicas = op.replicas.unwrap_or(DEFAULT_REPLICAS_KEPT);
    Ok(Json(CacheOpErrors { errors: c.clear_stale(Some(replicas)).await? }))
}

async fn stop(State(c): State<AppState>, ApiJson(op): ApiJson<CacheOp>) -> Result<Json<CacheOpErrors>, ApiError> {
    check(&op)?;
    Ok(Json(CacheOpErrors { errors: c.clear_stale(None).await? }))
}
