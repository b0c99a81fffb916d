//! `/api/v1/free`: submit, list, look up and stop jobs that drop files from every worker's cache (spec
//! "Free cache"). Same shapes and status codes as `/api/v1/load` (see `load`).

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Paging, QueryParams};
use super::load::submitted;
use crate::jobs::record::JobKind;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use loam_core::coordinator_api::{Results, StatusBody};
use loam_core::job_api::{FreeProgress, FreeRequest, JobId};

/// The free routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/free", get(get_free).post(post_free).delete(stop_free))
}

async fn get_free(State(c): State<AppState>, q: QueryParams) -> Result<Response, ApiError> {
    if let Some(id) = q.optional("id")? {
        return Ok(Json(c.jobs().free_progress(id).await?).into_response());
    }
    let paging = Paging::from_query(&q)?;
    let all: Vec<FreeProgress> = c.jobs().records(JobKind::Free).await?.iter().map(|r| r.free_progress()).collect();
    Ok(Json(Results { results: paging.apply(all) }).into_response())
}

async fn post_free(State(c): State<AppState>, ApiJson(req): ApiJson<FreeRequest>) -> Result<Response, ApiError> {
    let sync = req.options.sync;
    submitted(c.jobs().submit_free(req).await?, sync, &c, |c, id| async move {
        Ok(Json(c.jobs().free_progress(&id).await?).into_response())
    })
    .await
}

async fn stop_free(State(c): State<AppState>, ApiJson(body): ApiJson<JobId>) -> Result<Json<StatusBody>, ApiError> {
    c.jobs().stop(JobKind::Free, &body.id).await?;
    Ok(Json(StatusBody::ok()))
}
