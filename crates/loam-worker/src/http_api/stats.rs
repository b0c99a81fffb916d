//! `GET /v1/stats`: this worker's cache usage as JSON, for the Coordinator's `GET /api/v1/nodes/stats`
//! (which the console and `loam status` read). Role `read`, like `/metrics`. The numbers are read off the
//! page store's own state and the counters `/metrics` exports, so the two never disagree.

use super::WorkerState;
use crate::metrics::{DISK, MEMORY};
use axum::Json;
use axum::extract::State;
use loam_core::stats_api::{WORKER_STATS_PATH, WorkerStats};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The stats route.
pub fn routes() -> OpenApiRouter<Arc<WorkerState>> {
    OpenApiRouter::new().routes(routes!(stats))
}

/// This worker's capacity and usage per tier and cache directory, hits, misses and bytes served.
#[utoipa::path(get, path = WORKER_STATS_PATH, tag = "meta",
    responses((status = 200, description = "This worker's cache usage", body = WorkerStats)))]
pub async fn stats(State(s): State<Arc<WorkerState>>) -> Json<WorkerStats> {
    Json(s.stats())
}

impl WorkerState {
    /// What `GET /v1/stats` answers.
    pub fn stats(&self) -> WorkerStats {
        let (memory, disk) = self.pages.tier_stats();
        let p = &self.metrics.page_store;
        let page_hits = p.page_hits.get_or_create(&MEMORY).get() + p.page_hits.get_or_create(&DISK).get();
        WorkerStats {
            version: env!("CARGO_PKG_VERSION").to_string(),
            start_time_ms: self.start_time_ms,
            memory,
            disk,
            dirs: self.pages.dir_stats(),
            page_hits,
            page_misses: p.page_misses.get(),
            served_bytes: self.metrics.served_bytes.get(),
            cached_files: self.pages.usage().files,
        }
    }
}
