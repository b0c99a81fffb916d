//! `/api/v1/quota`: list, get, set and remove quotas (spec: "Quota").
//!
//! Quotas are path rules (`crate::rules`) plus usage: each listed quota carries the cluster-wide cached
//! bytes under it (`crate::quota::cluster_usage`), the bytes running loads reserved under it (the job
//! service's, in memory) and the state that follows from both. Nested quotas are refused.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Paging, QueryParams};
use super::openapi::{ListQuery, PathBody};
use crate::quota::{check_not_nested, cluster_usage, status};
use crate::rules::RuleError;
use axum::Json;
use axum::extract::State;
use loam_core::coordinator_api::{OneOrAll, Results, StatusBody};
use loam_core::rules::{PathRule, QuotaRule, QuotaStatus, RuleKind};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The quota routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_quotas, set_quota, remove_quota))
}

/// The path of the quotas.
pub const PATH: &str = "/api/v1/quota";

/// `DELETE` body.
/// The quotas with their usage, or the quota of one path.
#[utoipa::path(get, path = PATH, tag = "quota", params(ListQuery,
    ("path" = Option<String>, Query, description = "A path with a quota: answer only it")),
    responses(
        (status = 200, description = "The quota, or `{\"results\"}`", body = OneOrAll<QuotaStatus>),
        (status = 404, description = "No quota at `path`", body = StatusBody),
        (status = 501, description = "Quotas are not enabled", body = StatusBody)))]
async fn get_quotas(State(c): State<AppState>, q: QueryParams) -> Result<Json<OneOrAll<QuotaStatus>>, ApiError> {
    if let Some(path) = q.optional("path")? {
        let rule = c.quota().get(path).await?;
        let usage = cluster_usage(c.store().as_ref(), c.cluster_name()).await?;
        return Ok(Json(OneOrAll::One(status(rule, &usage, &c.jobs().reserved()))));
    }
    let paging = Paging::from_query(&q)?;
    let rules = paging.apply(c.quota().list().await?);
    let usage = cluster_usage(c.store().as_ref(), c.cluster_name()).await?;
    let reserved = c.jobs().reserved();
    let results: Vec<_> = rules.into_iter().map(|r| status(r, &usage, &reserved)).collect();
    Ok(Json(OneOrAll::All(Results { results })))
}

/// Sets the quota of a path (a mount or beneath one; quotas do not nest).
#[utoipa::path(post, path = PATH, tag = "quota", request_body = PathRule<QuotaRule>,
    responses(
        (status = 200, description = "Set", body = StatusBody),
        (status = 501, description = "Quotas are not enabled", body = StatusBody)))]
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

/// Removes the quota of a path.
#[utoipa::path(delete, path = PATH, tag = "quota", request_body = PathBody,
    responses(
        (status = 200, description = "Removed", body = StatusBody),
        (status = 501, description = "Quotas are not enabled", body = StatusBody)))]
async fn remove_quota(
    State(c): State<AppState>,
    ApiJson(body): ApiJson<PathBody>,
) -> Result<Json<StatusBody>, ApiError> {
    c.quota().remove_existing(&body.path).await?;
    Ok(Json(StatusBody::ok()))
}
