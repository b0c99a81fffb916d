//! Wire types of cache usage: a worker's `GET /v1/stats` ([`WorkerStats`]) and the Coordinator's
//! `GET /api/v1/nodes/stats` ([`ClusterStats`]), which asks every registered worker for its stats and sums
//! them. The console and `loam status` read the Coordinator's answer, so the sums live here, once
//! ([`ClusterTotals::sum`]).

use serde::{Deserialize, Serialize};

/// A worker's stats.
pub const WORKER_STATS_PATH: &str = "/v1/stats";
/// Every worker's stats and the cluster's totals.
pub const NODES_STATS_PATH: &str = "/api/v1/nodes/stats";

/// One tier of a worker's cache, or the sum over workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TierStats {
    /// Bytes of page data it may hold (the disk tier: the sum of its directories' capacities now).
    pub capacity_bytes: u64,
    /// Bytes of page data it holds.
    pub used_bytes: u64,
    /// Pages it holds.
    pub pages: u64,
}

impl TierStats {
    fn add(self, o: Self) -> Self {
        Self {
            capacity_bytes: self.capacity_bytes + o.capacity_bytes,
            used_bytes: self.used_bytes + o.used_bytes,
            pages: self.pages + o.pages,
        }
    }
}

/// One cache directory of a worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DirStats {
    /// The directory as configured.
    pub path: String,
    /// Whether it is in use (a failed one holds nothing until the health check re-initialises it).
    pub healthy: bool,
    /// Why it is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Bytes of page data it may hold now (its share, clamped to its file system's room; 0 while failed).
    pub capacity_bytes: u64,
    /// Bytes of page data it holds.
    pub used_bytes: u64,
    /// Pages it holds.
    pub pages: u64,
    /// Writes and reads that failed in it since the worker started (a full disk included).
    pub errors: u64,
}

/// A worker's `GET /v1/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerStats {
    /// The worker's `loam` version.
    pub version: String,
    /// When the worker started, ms since the epoch.
    pub start_time_ms: i64,
    /// The memory tier.
    pub memory: TierStats,
    /// The disk tier (all its directories).
    pub disk: TierStats,
    /// Each cache directory, in the configured order.
    pub dirs: Vec<DirStats>,
    /// Pages served from the cache since the worker started.
    pub page_hits: u64,
    /// Pages not in the cache when asked for, since the worker started.
    pub page_misses: u64,
    /// Bytes sent to clients since the worker started.
    pub served_bytes: u64,
    /// Files with a cache record.
    pub cached_files: u64,
}

/// One registered worker in `GET /api/v1/nodes/stats`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeStats {
    /// `worker-<uuid>`.
    pub identity: String,
    /// `host:port` of its HTTP API.
    pub address: String,
    /// `ONLINE` or `OFFLINE`.
    pub status: String,
    /// Its stats, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<WorkerStats>,
    /// Why it has no stats (offline, unreachable, timed out, refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Sums over the workers that answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterTotals {
    /// Workers whose stats are summed.
    pub workers_answered: u64,
    /// Memory and disk capacity.
    pub capacity_bytes: u64,
    /// Memory and disk usage.
    pub used_bytes: u64,
    /// The memory tiers.
    pub memory: TierStats,
    /// The disk tiers.
    pub disk: TierStats,
    /// Page hits.
    pub page_hits: u64,
    /// Page misses.
    pub page_misses: u64,
    /// `page_hits / (page_hits + page_misses)`; absent before any page was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit_ratio: Option<f64>,
    /// Bytes served.
    pub served_bytes: u64,
    /// Cache directories that are failed now.
    pub unhealthy_dirs: u64,
}

impl ClusterTotals {
    /// The totals of `stats`.
    pub fn sum<'a>(stats: impl IntoIterator<Item = &'a WorkerStats>) -> Self {
        let mut t = Self::default();
        for s in stats {
            t.workers_answered += 1;
            t.memory = t.memory.add(s.memory);
            t.disk = t.disk.add(s.disk);
            t.page_hits += s.page_hits;
            t.page_misses += s.page_misses;
            t.served_bytes += s.served_bytes;
            t.unhealthy_dirs += s.dirs.iter().filter(|d| !d.healthy).count() as u64;
        }
        t.capacity_bytes = t.memory.capacity_bytes + t.disk.capacity_bytes;
        t.used_bytes = t.memory.used_bytes + t.disk.used_bytes;
        let asked = t.page_hits + t.page_misses;
        t.hit_ratio = (asked > 0).then(|| t.page_hits as f64 / asked as f64);
        t
    }
}

/// `GET /api/v1/nodes/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterStats {
    /// Every registered worker, by identity.
    pub workers: Vec<NodeStats>,
    /// Sums over the workers that answered.
    pub totals: ClusterTotals,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_tiers_hits_and_failed_dirs() {
        let dir = |healthy| DirStats {
            path: "/d".into(),
            healthy,
            problem: None,
            capacity_bytes: 0,
            used_bytes: 0,
            pages: 0,
            errors: 0,
        };
        let a = WorkerStats {
            memory: TierStats { capacity_bytes: 10, used_bytes: 1, pages: 1 },
            disk: TierStats { capacity_bytes: 100, used_bytes: 20, pages: 2 },
            dirs: vec![dir(true), dir(false)],
            page_hits: 3,
            page_misses: 1,
            ..Default::default()
        };
        let t = ClusterTotals::sum([&a, &a]);
        assert_eq!((t.workers_answered, t.capacity_bytes, t.used_bytes), (2, 220, 42));
        assert_eq!((t.page_hits, t.page_misses, t.hit_ratio, t.unhealthy_dirs), (6, 2, Some(0.75), 2));
        assert_eq!(ClusterTotals::sum([]).hit_ratio, None, "no reads, no ratio");
    }
}
