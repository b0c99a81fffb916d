//! `/api/v1/load`: submit, list, look up and stop distributed load jobs (spec "Distributed load").
//!
//! The handlers translate only; the rules live in `crate::jobs`. A `409` answers `{"id"}` (not an error
//! body: the spec gives the twin's id). With `sync`, the `POST` waits for the job to end and answers its
//! full progress with `200` whatever the final state (it also returns when the job is stopped or the
//! coordinator shuts down, with the state at that moment).

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Paging, QueryParams};
use crate::jobs::Submitted;
use crate::jobs::record::JobKind;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use loam_core::coordinator_api::{Results, StatusBody};
use loam_core::job_api::{JobId, LoadProgress, LoadRequest};

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

async fn post_load(State(c): State<AppState>, ApiJson(req): ApiJson<LoadRequest>) -> Result<Response, ApiError> {
    let sync = req.options.sync;
    if c.quota().enabled() {
        crate::quota::check_load(&c, req.paths.as_deref().unwrap_or_default()).await?;
    }
    submitted(c.jobs().submit_load(req).await?, sync, &c, |c, id| async move {
        Ok(Json(c.jobs().load_progress(&id).await?).into_response())
    })
    .await
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
