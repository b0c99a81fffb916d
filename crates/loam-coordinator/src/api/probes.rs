//! `/api/v1/health` and `/api/v1/ready`: the Coordinator's probes (`loam_core::probe_api`), open to
//! everyone like the worker's `/v1/health`.
//!
//! Liveness answers `200` while the process serves HTTP and asks nothing else, so a Coordinator whose
//! etcd is down is not restarted for it. Readiness is [`Coordinator::readiness`]: the one function that
//! says whether this Coordinator can serve the API (the cluster store answers; with HA, a leader is known).

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use loam_core::probe_api::{COORDINATOR_HEALTH_PATH, COORDINATOR_READY_PATH, Readiness};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The probe routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready))
}

/// Liveness: `200 OK` while the Coordinator serves HTTP.
#[utoipa::path(get, path = COORDINATOR_HEALTH_PATH, tag = "probes",
    responses((status = 200, description = "`OK` while the Coordinator serves HTTP", body = String,
        content_type = "text/plain")))]
async fn health() -> &'static str {
    "OK"
}

/// Readiness: `200 {"ready":true}` when the cluster store answers; `503 {"ready":false,"reason"}` otherwise.
#[utoipa::path(get, path = COORDINATOR_READY_PATH, tag = "probes",
    responses(
        (status = 200, description = "Ready: the cluster store answers", body = Readiness),
        (status = 503, description = "Not ready, and why (`cluster store unreachable: …`)", body = Readiness)))]
async fn ready(State(c): State<AppState>) -> Response {
    answer(c.readiness().await)
}

/// `r` as the probe answers it.
pub fn answer(r: Readiness) -> Response {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, Json(r)).into_response()
}
