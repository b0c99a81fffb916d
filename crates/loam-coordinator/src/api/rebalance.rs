//! `/api/v1/rebalance`: submit, list, look up and stop rebalance jobs (spec "Rebalance"). The rules live
//! in `crate::jobs::rebalance`; as for load, a `409` answers `{"id"}` of the unfinished job of the same
//! target (resumed if it was stopped).
//!
//! - `GET` takes at most one of `?id=` and `?target=` (the newest job of that target); both are a `400`.
//! - `DELETE` takes exactly one of `{"id"}` and `{"target"}` (the target's unfinished job).

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
use loam_core::job_api::{JobId, RebalanceProgress, RebalanceRequest, RebalanceStop};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The rebalance routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_rebalance, post_rebalance, stop_rebalance))
}

/// The path of the rebalance jobs.
pub const PATH: &str = "/api/v1/rebalance";

/// The rebalance jobs, oldest first, or one of them (by `id` or by `target`).
#[utoipa::path(get, path = PATH, tag = "rebalance", params(ListQuery,
    ("id" = Option<String>, Query, description = "A job id: answer only its progress"),
    ("target" = Option<String>, Query, description = "A worker identity: the newest job for it")),
    responses(
        (status = 200, description = "The job's progress, or `{\"results\"}`", body = OneOrAll<RebalanceProgress>),
        (status = 404, description = "No such job", body = StatusBody)))]
async fn get_rebalance(
    State(c): State<AppState>,
    q: QueryParams,
) -> Result<Json<OneOrAll<RebalanceProgress>>, ApiError> {
    match (q.optional("id")?, q.optional("target")?) {
        (Some(_), Some(_)) => {
            Err(ApiError::MissingParameters("give at most one of the query parameters `id` and `target`".into()))
        }
        (Some(id), None) => Ok(Json(OneOrAll::One(c.jobs().rebalance_progress(id).await?))),
        (None, Some(target)) => Ok(Json(OneOrAll::One(c.jobs().rebalance_of_target(target).await?))),
        (None, None) => {
            let paging = Paging::from_query(&q)?;
            let all: Vec<RebalanceProgress> =
                c.jobs().records(JobKind::Rebalance).await?.iter().map(|r| r.rebalance_progress()).collect();
            Ok(Json(OneOrAll::All(Results { results: paging.apply(all) })))
        }
    }
}

/// Submits a rebalance job for a worker that joined or left.
#[utoipa::path(post, path = PATH, tag = "rebalance", request_body = RebalanceRequest,
    responses(
        (status = 200, description = "`{\"id\"}` of the new job", body = JobId),
        (status = 409, description = "A job for the same target is running: its `{\"id\"}`", body = JobId)))]
async fn post_rebalance(
    State(c): State<AppState>,
    ApiJson(req): ApiJson<RebalanceRequest>,
) -> Result<Response, ApiError> {
    submitted(c.jobs().submit_rebalance(req).await?, false, &c, |c, id| async move {
        Ok(Json(c.jobs().rebalance_progress(&id).await?).into_response())
    })
    .await
}

/// Stops a running rebalance job (by `id` or `target`).
#[utoipa::path(delete, path = PATH, tag = "rebalance", request_body = RebalanceStop,
    responses(
        (status = 200, description = "Stopped", body = StatusBody),
        (status = 404, description = "No such job", body = StatusBody),
        (status = 410, description = "The job doesn't exist or has already finished", body = StatusBody)))]
async fn stop_rebalance(
    State(c): State<AppState>,
    ApiJson(body): ApiJson<RebalanceStop>,
) -> Result<Json<StatusBody>, ApiError> {
    c.jobs().stop_rebalance(body).await?;
    Ok(Json(StatusBody::ok()))
}
