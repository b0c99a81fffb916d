//! `GET /metrics` (OpenMetrics text of `crate::metrics`) and the middleware that times every API request.
//!
//! The access rule is the worker's: `/metrics` is a read, so it needs the `read` role (open without
//! credentials while anonymous read is on). The timing layer is added to the router's routes, inside
//! routing, so it sees the matched route template (`MatchedPath`) and labels with it, never the raw path;
//! it sits outside the guard, so refused requests (`401`, `403`) are timed too.

use super::AppState;
use super::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where the metrics are served (the same path as on a worker).
pub const METRICS_PATH: &str = "/metrics";
/// The content type of a scrape (the worker's).
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// `GET /metrics`: Prometheus (OpenMetrics) text of this Coordinator's registry.
#[utoipa::path(get, path = METRICS_PATH, tag = "meta",
    responses((status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text")))]
async fn metrics(State(c): State<AppState>) -> Response {
    match c.scrape().await {
        Ok(text) => ([(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Err(e) => ApiError::Internal(format!("metrics encoding failed: {e}")).into_response(),
    }
}

/// Times one request into `loam_coordinator_api_request_duration_seconds`.
pub async fn time_request(State(c): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| crate::metrics::UNMATCHED_ROUTE.to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    c.metrics().observe_request(&method, &route, response.status().as_u16(), started.elapsed());
    response
}
