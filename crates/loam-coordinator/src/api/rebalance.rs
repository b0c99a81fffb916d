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
use crate::jobs::record::JobKind;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use loam_core::coordinator_api::{Results, StatusBody};
use loam_core::job_api::{RebalanceProgress, RebalanceRequest, RebalanceStop};

/// The rebalance routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/rebalance", get(get_rebalance).post(post_rebalance).delete(stop_rebalance))
}

async fn get_rebalance(State(c): State<AppState>, q: QueryParams) -> Result<Response, ApiError> {
    match (q.optional("id")?, q.optional("target")?) {
        (Some(_), Some(_)) => {
            Err(ApiError::MissingParameters("give at most one of the query parameters `id` and `target`".into()))
        }
        (Some(id), None) => Ok(Json(c.jobs().rebalance_progress(id).await?).into_response()),
        (None, Some(target)) => Ok(Json(c.jobs().rebalance_of_target(target).await?).into_response()),
        (None, None) => {
            let paging = Paging::from_query(&q)?;
            let all: Vec<RebalanceProgress> =
                c.jobs().records(JobKind::Rebalance).await?.iter().map(|r| r.rebalance_progress()).collect();
            Ok(Json(Results { results: paging.apply(all) }).into_response())
        }
    }
}

async fn post_rebalance(
    State(c): State<AppState>,
    ApiJson(req): ApiJson<RebalanceRequest>,
) -> Result<Response, ApiError> {
    submitted(c.jobs().submit_rebalance(req).await?, false, &c, |c, id| async move {
        Ok(Json(c.jobs().rebalance_progress(&id).await?).into_response())
    })
    .await
}

async fn stop_rebalance(
    State(c): State<AppState>,
    ApiJson(body): ApiJson<RebalanceStop>,
) -> Result<Json<StatusBody>, ApiError> {
    c.jobs().stop_rebalance(body).await?;
    Ok(Json(StatusBody::ok()))
}
