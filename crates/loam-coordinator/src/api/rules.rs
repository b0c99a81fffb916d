//! `/api/v1/ttl` and `/api/v1/priority`: the generic list/get/set/remove endpoints of a path-rule kind
//! (spec: "TTL", "Priority eviction").
//!
//! Both families have the same shape (`GET` lists or `?path=` gets, `POST {"path", <field>}` sets,
//! `DELETE {"path"}` removes), so one set of handlers serves both, parameterised by [`RuleEndpoint`];
//! the rules and their storage live in `crate::rules`.
//!
//! **Decision:** `DELETE` of a path with no TTL rule is a `400` (the spec lists it); the priority table
//! lists no such error, so a priority `DELETE` is idempotent (`200` whether or not a rule was there).

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Paging, QueryParams};
use crate::coordinator::Coordinator;
use crate::rules::RuleService;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use loam_core::coordinator_api::{Results, StatusBody};
use loam_core::rules::{PathRule, PriorityRule, RuleKind, TtlRule};
use serde::Deserialize;

/// A rule kind served over HTTP.
pub trait RuleEndpoint: RuleKind {
    /// The route (`/api/v1/ttl`).
    const ROUTE: &'static str;
    /// Whether `DELETE` of a path with no rule is a `400`.
    const DELETE_ABSENT_IS_ERROR: bool;
    /// The coordinator's service for this kind.
    fn service(c: &Coordinator) -> &RuleService<Self>;
}

impl RuleEndpoint for TtlRule {
    const ROUTE: &'static str = "/api/v1/ttl";
    const DELETE_ABSENT_IS_ERROR: bool = true;
    fn service(c: &Coordinator) -> &RuleService<Self> {
        c.ttl()
    }
}

impl RuleEndpoint for PriorityRule {
    const ROUTE: &'static str = "/api/v1/priority";
    const DELETE_ABSENT_IS_ERROR: bool = false;
    fn service(c: &Coordinator) -> &RuleService<Self> {
        c.priority()
    }
}

/// The routes of rule kind `T`.
pub fn routes<T: RuleEndpoint>() -> Router<AppState> {
    Router::new().route(T::ROUTE, get(get_rules::<T>).post(set_rule::<T>).delete(remove_rule::<T>))
}

/// `DELETE` body.
#[derive(Debug, Deserialize)]
struct PathBody {
    path: String,
}

async fn get_rules<T: RuleEndpoint>(State(c): State<AppState>, q: QueryParams) -> Result<Response, ApiError> {
    let service = T::service(&c);
    if let Some(path) = q.optional("path")? {
        return Ok(Json(service.get(path).await?).into_response());
    }
    let paging = Paging::from_query(&q)?;
    Ok(Json(Results { results: paging.apply(service.list().await?) }).into_response())
}

async fn set_rule<T: RuleEndpoint>(
    State(c): State<AppState>,
    ApiJson(body): ApiJson<PathRule<T>>,
) -> Result<Json<StatusBody>, ApiError> {
    let service = T::service(&c);
    // Refuse a disabled kind before reading the mount table, so a 501 does not depend on the store.
    if !service.enabled() {
        return Err(crate::rules::RuleError::Disabled(T::DISABLED).into());
    }
    let mounts = c.mounts().table().await?;
    service.set(&mounts, &body.path, body.rule, |_, _| Ok(())).await?;
    Ok(Json(StatusBody::ok()))
}

async fn remove_rule<T: RuleEndpoint>(
    State(c): State<AppState>,
    ApiJson(body): ApiJson<PathBody>,
) -> Result<Json<StatusBody>, ApiError> {
    let service = T::service(&c);
    if T::DELETE_ABSENT_IS_ERROR {
        service.remove_existing(&body.path).await?;
    } else {
        service.remove(&body.path).await?;
    }
    Ok(Json(StatusBody::ok()))
}
