//! `loam status`: one screen for operators, built from the public APIs only, with the CLI's usual
//! Coordinator list and token (`cli/http.rs`):
//!
//! - each Coordinator of `--coordinator`: `GET /api/v1/health` and `/api/v1/ready`, and the leader it
//!   knows (`GET /api/v1/coordinators`);
//! - the workers with their cache usage and the cluster's totals (`GET /api/v1/nodes/stats`: the
//!   Coordinator asks every worker's `/v1/stats` and sums them, the one place that does);
//! - the running jobs (`RUNNING`, `VERIFYING`) of `/api/v1/load`, `/free` and `/rebalance`, with progress.
//!
//! The cluster is **unhealthy** (exit 1, after printing everything) when a Coordinator given does not
//! answer its health probe or is not ready, when no leader is known, when a worker is offline, when no
//! worker is registered, when an online worker's stats cannot be read, or when a cache directory of a
//! worker is failed. Each such condition is one line of `problems`. `--json` prints the same report as one object.

use super::http::Ctx;
use super::job::Progress;
use anyhow::bail;
use loam_core::coordinator_api::{NODE_ONLINE, Results};
use loam_core::job_api::{FreeProgress, LoadProgress, RebalanceProgress};
use loam_core::stats_api::{ClusterStats, ClusterTotals, NodeStats};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long each probe and fetch may take: a status screen must come back even when a node hangs.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The whole report (`--json` prints it as is).
#[derive(Debug, Default, Serialize)]
pub struct Status {
    /// Whether no problem was found.
    pub healthy: bool,
    /// Why not, one line each.
    pub problems: Vec<String>,
    /// Each Coordinator given.
    pub coordinators: Vec<CoordinatorStatus>,
    /// The leader's URL, as the first Coordinator that answered knows it.
    pub leader: Option<String>,
    /// Every registered worker, with its stats or why it has none.
    pub workers: Vec<NodeStats>,
    /// Workers online.
    pub workers_online: usize,
    /// Workers offline.
    pub workers_offline: usize,
    /// Sums over the workers that answered.
    pub cache: ClusterTotals,
    /// Jobs running or verifying.
    pub running_jobs: Vec<RunningJob>,
}

/// One Coordinator's probes.
#[derive(Debug, Serialize)]
pub struct CoordinatorStatus {
    /// Its URL.
    pub url: String,
    /// `GET /api/v1/health` answered 200.
    pub healthy: bool,
    /// `GET /api/v1/ready` answered 200.
    pub ready: bool,
    /// Why not healthy or not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A job running or verifying.
#[derive(Debug, Serialize)]
pub struct RunningJob {
    /// `load`, `free` or `rebalance`.
    pub kind: &'static str,
    /// Its id.
    pub id: String,
    /// `RUNNING` or `VERIFYING`.
    pub state: String,
    /// Files done.
    pub files: u64,
    /// Files known so far.
    pub total_files: u64,
    /// Bytes done.
    pub bytes: u64,
    /// Bytes known so far (0 for a rebalance, which knows no totals ahead).
    pub total_bytes: u64,
    /// Files that failed.
    pub failed_files: u64,
    /// The progress line `loam job` prints.
    #[serde(skip)]
    pub line: String,
}

fn running<P: Progress>(kind: &'static str, jobs: Vec<P>, out: &mut Vec<RunningJob>) {
    for j in jobs.into_iter().filter(|j| matches!(j.state(), "RUNNING" | "VERIFYING")) {
        let (files, total_files, bytes, total_bytes, failed_files) = j.numbers();
        let (id, state, line) = (j.id().to_string(), j.state().to_string(), j.summary());
        out.push(RunningJob { kind, id, state, files, total_files, bytes, total_bytes, failed_files, line });
    }
}

#[derive(Deserialize)]
struct LeaderView {
    leader: Option<String>,
}

/// A Coordinator's probe: `Ok` on 200, else the reason (the body, or why it did not answer).
async fn probe(ctx: &Ctx, url: &str) -> Result<(), String> {
    let req = ctx.http.request(reqwest::Method::GET, url).timeout(PROBE_TIMEOUT);
    let r = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = r.status();
    if status.is_success() {
        return Ok(());
    }
    let body = r.text().await.unwrap_or_default();
    Err(format!("{url}: HTTP {}: {}", status.as_u16(), body.trim()))
}

async fn coordinator(ctx: &Ctx, base: &str) -> CoordinatorStatus {
    let health = probe(ctx, &format!("{base}/api/v1/health")).await;
    let ready = match &health {
        Ok(()) => probe(ctx, &format!("{base}/api/v1/ready")).await,
        Err(_) => Err("not checked".into()),
    };
    let reason = health.as_ref().err().or(ready.as_ref().err()).cloned();
    CoordinatorStatus { url: base.to_string(), healthy: health.is_ok(), ready: ready.is_ok(), reason }
}

/// `GET url` of a node as text (a `/metrics` page), or why not.
pub(super) async fn fetch_text(ctx: &Ctx, url: &str) -> Result<String, String> {
    let req = ctx.http.request(reqwest::Method::GET, url).timeout(PROBE_TIMEOUT);
    let r = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("{url}: HTTP {}", r.status().as_u16()));
    }
    r.text().await.map_err(|e| format!("{url}: {e}"))
}

/// Gathers the report; the only error is one that leaves nothing to show (no Coordinator answered the
/// nodes API).
pub async fn gather(ctx: &Ctx) -> anyhow::Result<Status> {
    let mut s = Status::default();
    for url in ctx.coordinators.urls() {
        let c = coordinator(ctx, url).await;
        if let Some(r) = &c.reason {
            s.problems.push(format!("Coordinator {}", r));
        }
        s.coordinators.push(c);
    }
    let nodes: ClusterStats = ctx.get("nodes/stats", &[]).await?;
    match ctx.get::<LeaderView>("coordinators", &[]).await {
        Ok(v) => s.leader = v.leader,
        Err(e) => s.problems.push(format!("leader: {e:#}")),
    }
    if s.leader.is_none() && !s.problems.iter().any(|p| p.starts_with("leader:")) {
        s.problems.push("no Coordinator leader is known".into());
    }
    for n in &nodes.workers {
        s.problems.extend(worker_problems(n));
        *if n.status == NODE_ONLINE { &mut s.workers_online } else { &mut s.workers_offline } += 1;
    }
    if nodes.workers.is_empty() {
        s.problems.push("no worker is registered".into());
    }
    (s.workers, s.cache) = (nodes.workers, nodes.totals);
    let load: Results<LoadProgress> = ctx.get("load", &[]).await?;
    let free: Results<FreeProgress> = ctx.get("free", &[]).await?;
    let rebalance: Results<RebalanceProgress> = ctx.get("rebalance", &[]).await?;
    running("load", load.results, &mut s.running_jobs);
    running("free", free.results, &mut s.running_jobs);
    running("rebalance", rebalance.results, &mut s.running_jobs);
    s.healthy = s.problems.is_empty();
    Ok(s)
}

/// What is wrong with one worker: offline, no stats, failed cache directories.
fn worker_problems(n: &NodeStats) -> Vec<String> {
    if n.status != NODE_ONLINE {
        return vec![format!("worker {} ({}) is offline", n.identity, n.address)];
    }
    let Some(stats) = &n.stats else {
        let why = n.error.as_deref().unwrap_or("no answer");
        return vec![format!("worker {} stats: {why}", n.identity)];
    };
    let failed = stats.dirs.iter().filter(|d| !d.healthy);
    failed
        .map(|d| {
            let why = d.problem.as_deref().unwrap_or("failed");
            format!("worker {} cache directory {} is unhealthy: {why}", n.identity, d.path)
        })
        .collect()
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
}

fn text(s: &Status) -> String {
    let mut out = vec![format!("Cluster: {}", if s.healthy { "HEALTHY" } else { "UNHEALTHY" })];
    for c in &s.coordinators {
        let state = match (c.healthy, c.ready) {
            (true, true) => "healthy, ready",
            (true, false) => "healthy, NOT READY",
            _ => "DOWN",
        };
        let leads = if s.leader.as_deref() == Some(c.url.as_str()) { " (leader)" } else { "" };
        out.push(format!("Coordinator {}: {state}{leads}", c.url));
    }
    out.push(format!("Leader: {}", s.leader.as_deref().unwrap_or("none known")));
    out.push(format!("Workers: {} online, {} offline", s.workers_online, s.workers_offline));
    for w in &s.workers {
        out.push(format!("  {:<48} {:<22} {}", w.identity, w.address, w.status));
        for d in w.stats.iter().flat_map(|st| &st.dirs) {
            let health = if d.healthy { "healthy" } else { "FAILED" };
            out.push(format!("    {} {health}: {} of {}", d.path, gib(d.used_bytes), gib(d.capacity_bytes)));
        }
    }
    let c = &s.cache;
    out.push(format!(
        "Cache: {} on disk of {} ({} in memory)",
        gib(c.disk.used_bytes),
        gib(c.disk.capacity_bytes),
        gib(c.memory.used_bytes)
    ));
    let ratio = c.hit_ratio.map_or("n/a (no reads yet)".to_string(), |r| format!("{:.1}%", r * 100.0));
    out.push(format!("Hit ratio: {ratio} ({} hits, {} misses)", c.page_hits, c.page_misses));
    out.push(format!("Running jobs: {}", s.running_jobs.len()));
    for j in &s.running_jobs {
        out.push(format!("  {:<9} {}  {:<9} {}", j.kind, j.id, j.state, j.line));
    }
    if !s.problems.is_empty() {
        out.push("Problems:".into());
        out.extend(s.problems.iter().map(|p| format!("  {p}")));
    }
    out.join("\n")
}

/// Runs `loam status`: prints the report, then fails (exit 1) when the cluster is unhealthy.
pub async fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let s = gather(ctx).await?;
    ctx.print(&s, || text(&s))?;
    if !s.healthy {
        bail!("the cluster is unhealthy: {}", s.problems.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use loam_core::stats_api::{DirStats, WorkerStats};

    #[test]
    fn offline_workers_missing_stats_and_failed_directories_are_problems() {
        let dir = |path: &str, healthy| DirStats {
            path: path.into(),
            healthy,
            problem: (!healthy).then(|| "EIO".to_string()),
            capacity_bytes: 0,
            used_bytes: 0,
            pages: 0,
            errors: 0,
        };
        let node = |status: &str, stats: Option<WorkerStats>| NodeStats {
            identity: "worker-a".into(),
            address: "h:1".into(),
            status: status.into(),
            stats,
            error: Some("timed out".into()),
        };
        let stats = WorkerStats { dirs: vec![dir("/ok", true), dir("/bad", false)], ..Default::default() };
        assert_eq!(
            worker_problems(&node(NODE_ONLINE, Some(stats))),
            ["worker worker-a cache directory /bad is unhealthy: EIO"]
        );
        assert_eq!(worker_problems(&node(NODE_ONLINE, None)), ["worker worker-a stats: timed out"]);
        assert_eq!(worker_problems(&node("OFFLINE", None)), ["worker worker-a (h:1) is offline"]);
        let healthy = WorkerStats { dirs: vec![dir("/ok", true)], ..Default::default() };
        assert!(worker_problems(&node(NODE_ONLINE, Some(healthy))).is_empty());
    }
}
