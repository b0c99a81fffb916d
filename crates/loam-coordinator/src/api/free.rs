//! `/api/v1/free`: submit, list, look up and stop jobs that drop files from every worker's cache (spec
//! "Free cache"). Same shapes and status codes as `/api/v1/load` (see `load`).

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Paging, QueryParams};
use super::load::submitted;
use super::openapi::ListQuery;
use crate::jobs::record::JobKind;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use loam_core::coordinator_api::{OneOrAll, Results, StatusBody};
use loam_core::job_api::{FreeProgress, FreeRequest, JobId, SubmitAnswer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The free routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_free, post_free, stop_free))
}

/// The path of the free jobs.
pub const PATH: &str = "/api/v1/free";

/// The free jobs, oldest first, or one of them.
#[utoipa::path(get, path = PATH, tag = "free", params(ListQuery,
    ("id" = Option<String>, Query, description = "A job id: answer only its progress")),
    responses(
        (status = 200, description = "The job's progress, or `{\"results\"}`", body = OneOrAll<FreeProgress>),
        (status = 404, description = "No job `id`", body = StatusBody)))]
async fn get_free(State(c): State<AppState>, q: QueryParams) -> Result<Json<OneOrAll<FreeProgress>>, ApiError> {
    if let Some(id) = q.optional("id")? {
        return Ok(Json(OneOrAll::One(c.jobs().free_progress(id).await?)));
    }
    let paging = Paging::from_query(&q)?;
    let all: Vec<FreeProgress> = c.jobs().records(JobKind::Free).await?.iter().map(|r| r.free_progress()).collect();
    Ok(Json(OneOrAll::All(Results { results: paging.apply(all) })))
}

/// Submits a free job (with `options.sync`, waits for it to end).
#[utoipa::path(post, path = PATH, tag = "free", request_body = FreeRequest,
    responses(
        (status = 200, description = "`{\"id\"}` of the new job; with `sync`, its final progress",
            body = SubmitAnswer<FreeProgress>),
        (status = 409, description = "A job for the same paths exists: its `{\"id\"}`", body = JobId)))]
async fn post_free(State(c): State<AppState>, ApiJson(req): ApiJson<FreeRequest>) -> Result<Response, ApiError> {
    let sync = req.options.sync;
    submitted(c.jobs().submit_free(req).await?, sync, &c, |c, id| async move {
        Ok(Json(c.jobs().free_progress(&id).await?).into_response())
    })
    .await
}

/// Stops a running free job.
#[utoipa::path(delete, path = PATH, tag = "free", request_body = JobId,
    responses(
        (status = 200, description = "Stopped", body = StatusBody),
        (status = 404, description = "No job `id`", body = StatusBody),
        (status = 410, description = "The job doesn't exist or has already finished", body = StatusBody)))]
async fn stop_free(State(c): State<AppState>, ApiJson(body): ApiJson<JobId>) -> Result<Json<StatusBody>, ApiError> {
    c.jobs().stop(JobKind::Free, &body.id).await?;
    Ok(Json(StatusBody::ok()))
}
