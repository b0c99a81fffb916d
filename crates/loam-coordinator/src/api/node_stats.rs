//! `GET /api/v1/nodes/stats`: every registered worker's `GET /v1/stats`, asked in parallel, and the
//! cluster's totals over those that answered (`loam_core::stats_api`). The console's overview and
//! workers pages and `loam status` read it, so the Coordinator is the one place that gathers usage.
//!
//! - **Never waits on a dead worker.** Each ask has `--worker-stats-timeout` (default
//!   [`DEFAULT_WORKER_STATS_TIMEOUT`]) for the whole exchange; the asks run at once, so the answer comes
//!   within one timeout however many workers hang. An offline worker (no liveness record) is not asked.
//! - **Errors are per worker.** A worker that is offline, unreachable, slow or refuses gets `"error"` and
//!   no `"stats"`; the totals cover the others (`workers_answered` says how many). The endpoint itself
//!   fails only when the membership cannot be read (the store's error, as every endpoint maps it).
//! - **Any Coordinator answers** (a read): a follower asks the workers itself, with the cluster token that
//!   job batches carry (`Coordinator::peers`).

use super::AppState;
use super::error::ApiError;
use axum::Json;
use axum::extract::State;
use loam_core::stats_api::{ClusterStats, ClusterTotals, NODES_STATS_PATH, NodeStats, WORKER_STATS_PATH, WorkerStats};
use loam_store::membership::{self, MemberInfo};
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long the Coordinator waits for one worker's stats by default.
pub const DEFAULT_WORKER_STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// The stats route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(nodes_stats))
}

/// Every registered worker's cache usage (or why it has none) and the cluster's totals.
#[utoipa::path(get, path = NODES_STATS_PATH, tag = "nodes",
    responses((status = 200, description = "Each worker's stats or `error`, and the totals", body = ClusterStats)))]
async fn nodes_stats(State(c): State<AppState>) -> Result<Json<ClusterStats>, ApiError> {
    let members = membership::list_workers(c.store().as_ref(), c.cluster_name()).await?;
    let timeout = c.worker_stats_timeout();
    let mut workers = futures::future::join_all(members.iter().map(|m| ask(&c, m, timeout))).await;
    workers.sort_by(|a, b| a.identity.cmp(&b.identity));
    let totals = ClusterTotals::sum(workers.iter().filter_map(|w| w.stats.as_ref()));
    Ok(Json(ClusterStats { workers, totals }))
}

/// One worker's entry: its stats, or why not.
async fn ask(c: &AppState, m: &MemberInfo, timeout: Duration) -> NodeStats {
    let info = super::nodes::node_info(m);
    let mut entry =
        NodeStats { identity: info.identity, address: info.address, status: info.status, stats: None, error: None };
    match fetch(c, m, timeout).await {
        Ok(s) => entry.stats = Some(s),
        Err(why) => entry.error = Some(why),
    }
    entry
}

async fn fetch(c: &AppState, m: &MemberInfo, timeout: Duration) -> Result<WorkerStats, String> {
    if !m.online {
        return Err("offline: its liveness record is gone".into());
    }
    let w = loam_client::WorkerEndpoint::from_record(&m.record).ok_or("no HTTP address registered")?;
    let url = format!("{}{WORKER_STATS_PATH}", w.http_base());
    let peer = loam_client::peer::worker_name(&w);
    // The client's timeout covers the exchange; this one also covers what it may not (a stalled body).
    match tokio::time::timeout(timeout, c.peers().get::<WorkerStats>(&peer, &url, timeout)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}
