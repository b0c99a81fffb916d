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
use super::openapi::ListQuery;
use crate::jobs::record::JobKind;
use crate::jobs::{JobError, Submitted};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use loam_core::coordinator_api::{OneOrAll, Results, StatusBody};
use loam_core::job_api::{JobId, LoadProgress, LoadRequest, SubmitAnswer};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The load routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_load, post_load, stop_load))
}

/// The path of the load jobs.
pub const PATH: &str = "/api/v1/load";

/// The load jobs, oldest first, or one of them.
#[utoipa::path(get, path = PATH, tag = "load", params(ListQuery,
    ("id" = Option<String>, Query, description = "A job id: answer only its progress")),
    responses(
        (status = 200, description = "The job's progress, or `{\"results\"}`", body = OneOrAll<LoadProgress>),
        (status = 404, description = "No job `id`", body = StatusBody)))]
async fn get_load(State(c): State<AppState>, q: QueryParams) -> Result<Json<OneOrAll<LoadProgress>>, ApiError> {
    if let Some(id) = q.optional("id")? {
        return Ok(Json(OneOrAll::One(c.jobs().load_progress(id).await?)));
    }
    let paging = Paging::from_query(&q)?;
    let all: Vec<LoadProgress> = c.jobs().records(JobKind::Load).await?.iter().map(|r| r.load_progress()).collect();
    Ok(Json(OneOrAll::All(Results { results: paging.apply(all) })))
}

/// The `400` body of a load refused for quota.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct QuotaRefused {
    status: String,
    /// Only when refused for quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    quota_check_error: Option<String>,
}

/// Submits a load job (with `options.sync`, waits for it to end).
#[utoipa::path(post, path = PATH, tag = "load", request_body = LoadRequest,
    responses(
        (status = 200, description = "`{\"id\"}` of the new job; with `sync`, its final progress",
            body = SubmitAnswer<LoadProgress>),
        (status = 400, description = "Bad input, or refused for quota (`quotaCheckError`)", body = QuotaRefused),
        (status = 409, description = "A job for the same paths exists: its `{\"id\"}`", body = JobId)))]
async fn post_load(State(c): State<AppState>, ApiJson(req): ApiJson<LoadRequest>) -> Result<Response, ApiError> {
    let sync = req.options.sync;
    let s = match c.jobs().submit_load(req).await {
        Err(JobError::QuotaExceeded(why)) => {
            tracing::debug!("load refused: {why}");
            let body = QuotaRefused { status: why.clone(), quota_check_error: Some(why) };
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

/// Stops a running load job.
#[utoipa::path(delete, path = PATH, tag = "load", request_body = JobId,
    responses(
        (status = 200, description = "Stopped", body = StatusBody),
        (status = 404, description = "No job `id`", body = StatusBody),
        (status = 410, description = "The job doesn't exist or has already finished", body = StatusBody)))]
async fn stop_load(State(c): State<AppState>, ApiJson(body): ApiJson<JobId>) -> Result<Json<StatusBody>, ApiError> {
    c.jobs().stop(JobKind::Load, &body.id).await?;
    Ok(Json(StatusBody::ok()))
}
