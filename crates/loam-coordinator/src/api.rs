//! The HTTP edge: the `/api/v1` router, one module per endpoint family, and what every route shares.
//!
//! Each family module (`mount`, `nodes`, `load`, `free`, `rebalance`, `quota`, ...) exposes `routes()`, a
//! router over the shared `Arc<Coordinator>` state; this module merges them and adds what applies to
//! all of them: the `404 unknown endpoint` fallback, the `405` fallback for a known path with another
//! method, and a guard that turns a panicking handler into a `500` body instead of a dropped connection.
//! Outermost, `leader` sends what only the leader may answer (writes) to the leading Coordinator.
//! `console` adds the web console's static files (`/`, `/console`), public and outside the OpenAPI document.
//! Errors are answered only through [`error::ApiError`], bad input only through [`extract`]'s extractors.

pub mod cache;
pub mod console;
pub mod error;
pub mod extract;
pub mod file_index;
pub mod free;
pub mod leader;
pub mod load;
pub mod metrics;
pub mod mount;
pub mod node_stats;
pub mod nodes;
pub mod openapi;
pub mod probes;
pub mod quota;
pub mod rebalance;
pub mod rules;

use crate::coordinator::Coordinator;
use axum::Router;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use error::ApiError;
use futures::FutureExt;
use loam_auth::{Access, Role};
use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

/// What a request to the REST API needs: nothing for the OpenAPI document, the probes and the web console's
/// files (`console`: static, no data); the cluster's internal endpoints (`/api/v1/internal/…`) the
/// `cluster` role, a read (`GET`, `HEAD`) the `read` role, every other method `admin`.
pub fn access(method: &Method, path: &str) -> Access {
    use loam_core::probe_api::{COORDINATOR_HEALTH_PATH, COORDINATOR_READY_PATH};
    if console::is_console_path(path) {
        return Access::Public;
    }
    let public = [openapi::OPENAPI_PATH, COORDINATOR_HEALTH_PATH, COORDINATOR_READY_PATH];
    loam_auth::http::surface_access(method, path, &public, INTERNAL_PREFIX, Role::Admin)
}

/// The prefix of the endpoints only cluster members call.
pub const INTERNAL_PREFIX: &str = "/api/v1/internal/";

/// The router state every handler receives.
pub type AppState = Arc<Coordinator>;

/// The whole REST API over `coordinator`, behind `guard`, with its OpenAPI document.
pub fn router(coordinator: AppState, guard: loam_auth::Guard) -> Router {
    let (routes, doc) = documented_routes(&guard);
    let doc = Arc::new(loam_core::openapi::to_json(&doc));
    let routes = routes
        .route(
            openapi::OPENAPI_PATH,
            get(move || async move { ([(CONTENT_TYPE, "application/json")], doc.to_string()) }),
        )
        .merge(console::routes())
        .fallback(unknown_endpoint)
        // Registered after the routes: axum applies it to the routes present when it is called.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(catch_panic));
    // Outside the guard: a follower forwards writes with their credentials, and the leader checks them.
    let forward = middleware::from_fn_with_state(coordinator.clone(), leader::forward_to_leader);
    // Inside routing (a router layer wraps each route), so it sees the route template; outside the guard.
    let timed = middleware::from_fn_with_state(coordinator.clone(), metrics::time_request);
    guard.apply(routes).layer(timed).layer(forward).with_state(coordinator)
}

/// Every route with its part of the document, and the finished document.
fn documented_routes(guard: &loam_auth::Guard) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut doc) = OpenApiRouter::with_openapi(openapi::base())
        .merge(mount::routes())
        .merge(nodes::routes())
        .merge(node_stats::routes())
        .merge(leader::routes())
        .merge(load::routes())
        .merge(free::routes())
        .merge(rebalance::routes())
        .merge(file_index::routes())
        .merge(cache::routes())
        .merge(rules::ttl_routes())
        .merge(rules::priority_routes())
        .merge(quota::routes())
        .merge(probes::routes())
        .merge(metrics::routes())
        .split_for_parts();
    openapi::finish(&mut doc, guard);
    (routes, doc)
}

/// The OpenAPI document of the REST API as `guard` enforces it.
pub fn document(guard: &loam_auth::Guard) -> utoipa::openapi::OpenApi {
    documented_routes(guard).1
}

async fn unknown_endpoint(method: Method, uri: Uri) -> ApiError {
    ApiError::UnknownEndpoint { method: method.to_string(), path: uri.path().to_string() }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_string() }
}

/// Answers `500` with a status body when a handler panics, so the client gets an answer and the bug a log line.
async fn catch_panic(req: Request, next: Next) -> Response {
    let what = format!("{} {}", req.method(), req.uri().path());
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            ApiError::Internal(format!("handler of {what} panicked: {}", panic_message(panic.as_ref()))).into_response()
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_a_status_body() {
        async fn boom() -> &'static str {
            panic!("kaboom")
        }
        let app: Router = Router::new().route("/boom", get(boom)).layer(middleware::from_fn(catch_panic));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        // reqwest is built without a default TLS provider here; the UFS layer installs one.
        loam_ufs::opendal_ufs::install_process_defaults();
        let resp = reqwest::get(format!("http://{addr}/boom")).await.unwrap();
        assert_eq!(resp.status().as_u16(), 500);
        let body: serde_json::Value = resp.json().await.unwrap();
        let status = body["status"].as_str().unwrap();
        assert!(status.contains("GET /boom") && status.contains("kaboom"), "{status}");
        server.abort();
    }
}
