//! `/api/v1/quota`: list, get, set and remove quotas (spec: "Quota").
//!
//! Quotas are path rules (`crate::rules`) plus usage: each listed quota carries the cluster-wide cached
//! bytes under it (`crate::quota::cluster_usage`), the bytes running loads reserved under it (the job
//! service's, in memory) and the state that follows from both. Nested quotas are refused.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Paging, QueryParams};
use crate::quota::{check_not_nested, cluster_usage, status};
use crate::rules::RuleError;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use loam_core::coordinator_api::{Results, StatusBody};
use loam_core::rules::{PathRule, QuotaRule, RuleKind};
use serde::Deserialize;

/// The quota routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/quota", get(get_quotas).post(set_quota).delete(remove_quota))
}

/// `DELETE` body.
#[derive(Debug, Deserialize)]
struct PathBody {
    path: String,
}

async fn get_quotas(State(c): State<AppState>, q: QueryParams) -> Result<Response, ApiError> {
    if let Some(path) = q.optional("path")? {
        let rule = c.quota().get(path).await?;
        let usage = cluster_usage(c.store().as_ref(), c.cluster_name()).await?;
        return Ok(Json(status(rule, &usage, &c.jobs().reserved())).into_response());
    }
    let paging = Paging::from_query(&q)?;
    let rules = paging.apply(c.quota().list().await?);
    let usage = cluster_usage(c.store().as_ref(), c.cluster_name()).await?;
    let reserved = c.jobs().reserved();
    let results: Vec<_> = rules.into_iter().map(|r| status(r, &usage, &reserved)).collect();
    Ok(Json(Results { results }).into_response())
}

async fn set_quota(
    State(c): State<AppState>,
    ApiJson(body): ApiJson<PathRule<QuotaRule>>,
) -> Result<Json<StatusBody>, ApiError> {
    if !c.quota().enabled() {
        return Err(RuleError::Disabled(QuotaRule::DISABLED).into());
    }
    let mounts = c.mounts().table().await?;
    c.quota().set(&mounts, &body.path, body.rule, check_not_nested).await?;
    Ok(Json(StatusBody::ok()))
}

async fn remove_quota(
    State(c): State<AppState>,
    ApiJson(body): ApiJson<PathBody>,
) -> Result<Json<StatusBody>, ApiError> {
    c.quota().remove_existing(&body.path).await?;
    Ok(Json(StatusBody::ok()))
}
