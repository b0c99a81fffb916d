//! The worker HTTP API (port 28080), Alluxio-compatible: field names and shapes are fixed by the existing
//! Python clients. Every handler maps its errors through `http_api::error`, the one place that picks
//! status codes.

pub mod cluster_ops;
pub mod data;
pub mod error;
pub mod internal;
pub mod json_only;
pub mod load;
pub mod meta;
pub mod openapi;
pub mod owners;
pub mod query;
pub mod short_circuit;
pub mod stats;
pub mod write;

use crate::cluster::mount_view::MountView;
use crate::error::WorkerError;
use crate::metrics::{self, WorkerMetrics};
use crate::path_ids::PathIds;
use crate::read_through::ReadThrough;
use crate::write_through::WriteThrough;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use loam_auth::{Access, Guard, Role};
use loam_client::MembershipView;
use loam_core::WorkerId;
use loam_page_store::PageStore;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler shares.
pub struct WorkerState {
    /// This worker's id.
    pub id: WorkerId,
    /// The page store.
    pub pages: Arc<PageStore>,
    /// The mount table as this worker follows it.
    pub mounts: MountView,
    /// The read-through layer: reads over the page store and the UFS.
    pub rt: Arc<ReadThrough>,
    /// The live ring, for `/v1/node`.
    pub members: MembershipView,
    /// This worker's metrics registry.
    pub registry: Arc<Registry>,
    /// This worker's metric handles.
    pub metrics: WorkerMetrics,
    /// The Coordinators, for `/v1/load` forwarding (with the caller's credentials, so no token of its
    /// own); none when no `coordinator` is configured.
    pub coordinators: Option<loam_client::Coordinators>,
    /// UFS writes, deletes, copies and renames that keep the caches coherent.
    pub writes: Arc<WriteThrough>,
    /// The path ids this worker can resolve without `ufsFullPath`.
    pub path_ids: Arc<PathIds>,
    /// The token this worker sends to the other members (peer copies, S3 forwarding).
    pub cluster_token: loam_auth::Credential,
    /// Its registration in the membership, set once it has joined (`/v1/ready`).
    pub registration: std::sync::OnceLock<loam_store::membership::Liveness>,
    /// The cluster store (a load's `source` may be a registered worker that is leaving the ring).
    pub store: Arc<dyn loam_store::ClusterStore>,
    /// The cluster name in the store's keys.
    pub cluster_name: String,
    /// This worker's membership and its drain (`/v1/drain`).
    pub drain: Arc<crate::cluster::drain::Drain>,
    /// When this worker started, ms since the epoch (`/v1/stats`).
    pub start_time_ms: i64,
    /// Whether anonymous reads of files another worker owns are redirected there (`redirect-to-owner`,
    /// `crate::non_owner::redirect`); set from the configuration at start.
    pub redirect_to_owner: std::sync::atomic::AtomicBool,
}

impl WorkerState {
    /// Whether this worker can serve its share of the ring: registered in the membership with its
    /// liveness key in place. The one readiness function of the worker (`/v1/ready`). Its page store is
    /// open by construction: `start` fails without it, and shutdown leaves the ring before it closes it.
    pub fn readiness(&self) -> loam_core::probe_api::Readiness {
        use loam_core::probe_api::Readiness;
        match self.registration.get() {
            None => Readiness::not_ready("not registered in the membership yet"),
            Some(l) if !l.is_live() => Readiness::not_ready(
                "not registered in the membership: its liveness key is not in place (etcd unreachable, or an \
                 admin removed this worker)",
            ),
            Some(_) => Readiness::ready(),
        }
    }

    /// Updates the gauges that are read off the page store rather than counted.
    pub fn refresh_gauges(&self) {
        let u = self.pages.usage();
        let m = &self.metrics.page_store;
        m.cached_bytes.get_or_create(&metrics::MEMORY).set(u.memory_bytes as i64);
        m.cached_bytes.get_or_create(&metrics::DISK).set(u.disk_bytes as i64);
        m.cached_pages.get_or_create(&metrics::MEMORY).set(u.memory_pages as i64);
        m.cached_pages.get_or_create(&metrics::DISK).set(u.disk_pages as i64);
        m.cached_files.set(u.files as i64);
    }
}

/// What a request to the worker HTTP API needs: nothing for `/v1/health`, `/v1/ready`, the OpenAPI document, and `/v1/load`, which is
/// forwarded to the Coordinator with the caller's credentials (the Coordinator decides); the `cluster`
/// role for `/v1/internal/…`; `cluster` or `admin` for `/v1/drain`; `read` for the other reads (`GET`, `HEAD`: open without credentials under
/// `--anonymous-read`); `write` for every other method (the write API, page POSTs).
pub fn access(method: &Method, path: &str) -> Access {
    if path == loam_core::cluster_ops_api::DRAIN_PATH {
        return Access::Either(Role::Cluster, Role::Admin);
    }
    let public = [HEALTH_PATH, READY_PATH, load::LOAD_PATH, openapi::OPENAPI_PATH];
    loam_auth::http::surface_access(method, path, &public, INTERNAL_PREFIX, Role::Write)
}

/// The prefix of the endpoints only cluster members call.
pub const INTERNAL_PREFIX: &str = "/v1/internal/";
/// The liveness check, open to everyone.
pub const HEALTH_PATH: &str = loam_core::probe_api::WORKER_HEALTH_PATH;
/// The readiness check, open to everyone.
pub const READY_PATH: &str = loam_core::probe_api::WORKER_READY_PATH;

/// The worker's router, behind `guard`, with its OpenAPI document.
pub fn router(state: Arc<WorkerState>, guard: Guard) -> Router {
    let (routes, doc) = documented_routes(&state, &guard);
    let doc = Arc::new(loam_core::openapi::to_json(&doc));
    let routes = routes
        .route(
            openapi::OPENAPI_PATH,
            get(move || async move { ([(CONTENT_TYPE, "application/json")], doc.to_string()) }),
        )
        .fallback(unknown)
        // Inside the guard: a request this worker would refuse is refused, not redirected.
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::non_owner::redirect::http));
    // Outside the guard, so refused requests are timed too.
    let timed = axum::middleware::from_fn_with_state(state.clone(), time_request);
    guard.apply(routes).layer(timed).with_state(state)
}

/// Observes each request's latency by method, route template (never the raw path) and status class.
async fn time_request(
    axum::extract::State(s): axum::extract::State<Arc<WorkerState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use crate::metrics::data_path::{HttpLabels, UNMATCHED_ROUTE, method_label, status_class};
    let method = method_label(req.method());
    let route = req.extensions().get::<axum::extract::MatchedPath>().map_or(UNMATCHED_ROUTE, |p| p.as_str());
    let route = route.to_string();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let labels = HttpLabels { method, route, status: status_class(response.status().as_u16()) };
    s.metrics.data.http.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    response
}

/// The OpenAPI document of the worker HTTP API as `guard` enforces it.
pub fn document(state: &Arc<WorkerState>, guard: &Guard) -> utoipa::openapi::OpenApi {
    documented_routes(state, guard).1
}

/// Every route with its part of the document, and the finished document.
fn documented_routes(state: &Arc<WorkerState>, guard: &Guard) -> (Router<Arc<WorkerState>>, utoipa::openapi::OpenApi) {
    let page_limit = state.pages.page_size() as usize + 4096;
    let (pages_s, pages_p, pages_r) = routes!(data::get_page, data::post_page);
    // A written file has no size limit: its body streams through to the UFS.
    let (put_s, put_p, put_r) = routes!(write::chunk);
    let (routes, mut doc) = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(meta::health))
        .routes(routes!(meta::ready))
        .routes(routes!(meta::node))
        .routes(routes!(meta::info))
        .routes(routes!(meta::files))
        .routes(routes!(short_circuit::short_circuit))
        .routes((pages_s, pages_p, pages_r.layer(DefaultBodyLimit::max(page_limit))))
        .routes(routes!(data::range))
        .routes(routes!(data::chunk))
        .routes((put_s, put_p, put_r.layer(DefaultBodyLimit::disable())))
        .routes(routes!(data::head))
        .routes(routes!(data::tail))
        .routes(routes!(meta::metrics))
        .merge(stats::routes())
        .merge(internal::routes(state))
        .merge(crate::non_owner::meta::routes())
        .merge(cluster_ops::routes(state))
        .merge(cluster_ops::drain_routes())
        .merge(load::routes())
        .merge(write::routes())
        .split_for_parts();
    loam_core::openapi::add_shared_errors(&mut doc);
    guard.document(&mut doc);
    (routes, doc)
}

async fn unknown(method: Method, uri: Uri) -> axum::response::Response {
    WorkerError::NotFound(format!("unknown endpoint: {method} {}", uri.path())).into_response()
}
