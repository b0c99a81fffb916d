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
use super::openapi::{ListQuery, PathBody};
use crate::coordinator::Coordinator;
use crate::rules::RuleService;
use axum::Json;
use axum::extract::State;
use loam_core::coordinator_api::{OneOrAll, Results, StatusBody};
use loam_core::rules::{PathRule, PriorityRule, RuleKind, TtlRule};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// A module of documented handlers for one rule kind, over the generic ones below (utoipa documents no
/// generic handler), with its `routes()`: `$kind` the rule type (its path is its `RuleEndpoint::ROUTE`), `$tag` its OpenAPI tag,
/// `$disabled` the `501` text, `$set` and `$remove` what setting and removing a rule do.
macro_rules! rule_endpoints {
    ($module:ident, $kind:ident, $tag:literal, $disabled:literal, $set:literal, $remove:literal) => {
        mod $module {
            use super::*;
            use loam_core::rules::$kind;

            const ROUTE: &str = <$kind as RuleEndpoint>::ROUTE;

            /// The routes.
            pub fn routes() -> OpenApiRouter<AppState> {
                OpenApiRouter::new().routes(routes!(get, set, remove))
            }

            /// The rules, or the rule of one path.
            #[utoipa::path(get, path = ROUTE, tag = $tag, params(ListQuery,
                ("path" = Option<String>, Query, description = "A path with a rule: answer only it")),
                responses(
                    (status = 200, description = "The rule, or `{\"results\"}`", body = OneOrAll<PathRule<$kind>>),
                    (status = 404, description = "No rule at `path`", body = StatusBody),
                    (status = 501, description = $disabled, body = StatusBody)))]
            async fn get(c: State<AppState>, q: QueryParams) -> Result<Json<OneOrAll<PathRule<$kind>>>, ApiError> {
                get_rules(c, q).await
            }

            #[utoipa::path(post, path = ROUTE, tag = $tag, description = $set, request_body = PathRule<$kind>,
                responses(
                    (status = 200, description = "Set", body = StatusBody),
                    (status = 501, description = $disabled, body = StatusBody)))]
            async fn set(c: State<AppState>, body: ApiJson<PathRule<$kind>>) -> Result<Json<StatusBody>, ApiError> {
                set_rule(c, body).await
            }

            #[utoipa::path(delete, path = ROUTE, tag = $tag, description = $remove, request_body = PathBody,
                responses(
                    (status = 200, description = "Removed", body = StatusBody),
                    (status = 501, description = $disabled, body = StatusBody)))]
            async fn remove(c: State<AppState>, body: ApiJson<PathBody>) -> Result<Json<StatusBody>, ApiError> {
                remove_rule::<$kind>(c, body).await
            }
        }
    };
}

rule_endpoints!(
    ttl,
    TtlRule,
    "ttl",
    "TTL is not enabled",
    "Sets the TTL of a path: its cached data is evicted once cached longer than `ttlSeconds`.",
    "Removes the TTL rule of a path (`400` when it has none)."
);
rule_endpoints!(
    priority,
    PriorityRule,
    "priority",
    "Priority eviction is not enabled",
    "Sets the eviction priority of a path (`low` is evicted first).",
    "Removes the priority rule of a path (idempotent)."
);

/// The TTL routes.
pub fn ttl_routes() -> OpenApiRouter<AppState> {
    ttl::routes()
}

/// The priority routes.
pub fn priority_routes() -> OpenApiRouter<AppState> {
    priority::routes()
}

async fn get_rules<T: RuleEndpoint>(
    State(c): State<AppState>,
    q: QueryParams,
) -> Result<Json<OneOrAll<PathRule<T>>>, ApiError> {
    let service = T::service(&c);
    if let Some(path) = q.optional("path")? {
        return Ok(Json(OneOrAll::One(service.get(path).await?)));
    }
    let paging = Paging::from_query(&q)?;
    Ok(Json(OneOrAll::All(Results { results: paging.apply(service.list().await?) })))
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
