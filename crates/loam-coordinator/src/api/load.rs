//! `/api/v1/load`: submit, list, look up and stop distributed load jobs (spec "Distributed load").
//!
//! The handlers translate only; the rules live in `crate::jobs`. A `409` answers `{"id"}` (not an error
//! body: the spec gives the twin's id). With `sync`, the `POST` waits for the job to end and answers its
//! full progress with `200` whatever the final state (it also returns when the job is stopped or the
//! coordinator shuts down, with the state at that moment).
//!
//! A load refused for quota answers `400` with the reason twice: in `status`, like every error body, and
//! in `quotaCheckError`, the load progress's field for it (spec: "refused or stopped with
//! `quotaCheckError` set"), so a client reads it where it would for a job stopped for quota.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Paging, QueryParams};
use crate::jobs::record::JobKind;
use crate::jobs::{JobError, Submitted};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use loam_core::coordinator_api::{Results, StatusBody};
use loam_core::job_api::{JobId, LoadProgress, LoadRequest};
use serde::Serialize;

/// The load routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/load", get(get_load).post(post_load).delete(stop_load))
}

async fn get_load(State(c): State<AppState>, q: QueryParams) -> Result<Response, ApiError> {
    if let Some(id) = q.optional("id")? {
        return Ok(Json(c.jobs().load_progress(id).await?).into_response());
    }
    let paging = Paging::from_query(&q)?;
    let all: Vec<LoadProgress> = c.jobs().records(JobKind::Load).await?.iter().map(|r| r.load_progress()).collect();
    Ok(Json(Results { results: paging.apply(all) }).into_response())
}

/// The `400` body of a load refused for quota.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuotaRefused {
    status: String,
    quota_check_error: String,
}

async fn post_load(State(c): State<AppState>, ApiJson(req): ApiJson<LoadRequest>) -> Result<Response, ApiError> {
    let sync = req.options.sync;
    let s = match c.jobs().submit_load(req).await {
        Err(JobError::QuotaExceeded(why)) => {
            tracing::debug!("load refused: {why}");
            let body = QuotaRefused { status: why.clone(), quota_check_error: why };
            return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
        other => other?,
    };
    submitted(s, sync, &c, |c, id| async move { Ok(Json(c.jobs().load_progress(&id).await?).into_response()) }).await
}

/// The answer to a submission: `{"id"}` (`200` or `409`), or with `sync` the progress once the job ends.
pub(super) async fn submitted<F, Fut>(s: Submitted, sync: bool, c: &AppState, progress: F) -> Result<Response, ApiError>
where
    F: FnOnce(AppState, String) -> Fut,
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    match s {
        Submitted::Existing(id) => Ok((StatusCode::CONFLICT, Json(JobId { id })).into_response()),
        Submitted::New(id) if sync => {
            c.jobs().wait(&id).await;
            progress(c.clone(), id).await
        }
        Submitted::New(id) => Ok(Json(JobId { id }).into_response()),
    }
}

async fn stop_load(State(c): State<AppState>, ApiJson(body): ApiJson<JobId>) -> Result<Json<StatusBody>, ApiError> {
    c.jobs().stop(JobKind::Load, &body.id).await?;
    Ok(Json(StatusBody::ok()))
}
