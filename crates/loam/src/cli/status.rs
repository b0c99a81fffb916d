//! `loam status`: one screen for operators, built from the public APIs only, with the CLI's usual
//! Coordinator list and token (`cli/http.rs`):
//!
//! - each Coordinator of `--coordinator`: `GET /api/v1/health` and `/api/v1/ready`, and the leader it
//!   knows (`GET /api/v1/coordinators`);
//! - the workers (`GET /api/v1/nodes`), online and offline, with their addresses;
//! - per online worker, its `GET /metrics`: cached bytes by tier, cache directory capacity, page hits and
//!   misses, summed over the workers into the usage and the hit ratio;
//! - the running jobs (`RUNNING`, `VERIFYING`) of `/api/v1/load`, `/free` and `/rebalance`, with progress.
//!
//! The cluster is **unhealthy** (exit 1, after printing everything) when a Coordinator given does not
//! answer its health probe or is not ready, when no leader is known, when a worker is offline, when no
//! worker is registered, or when an online worker's metrics cannot be read. Each such condition is one
//! line of `problems`. `--json` prints the same report as one object.

use super::http::Ctx;
use super::job::Progress;
use anyhow::bail;
use loam_core::coordinator_api::{NODE_ONLINE, NodeInfo, NodeList, Results};
use loam_core::job_api::{FreeProgress, LoadProgress, RebalanceProgress};
use loam_worker::metrics as wm;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long each probe and scrape may take: a status screen must come back even when a node hangs.
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
    /// Every registered worker.
    pub workers: Vec<WorkerStatus>,
    /// Workers online.
    pub workers_online: usize,
    /// Workers offline.
    pub workers_offline: usize,
    /// Sums over the online workers' metrics.
    pub cache: CacheTotals,
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

/// One worker.
#[derive(Debug, Serialize)]
pub struct WorkerStatus {
    /// `worker-<uuid>`.
    pub identity: String,
    /// `host:port` of its HTTP API.
    pub address: String,
    /// `ONLINE` or `OFFLINE`.
    pub status: String,
    /// From its metrics (online workers that answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheTotals>,
}

/// Cache numbers of one worker, or summed.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CacheTotals {
    /// Bytes cached in memory.
    pub memory_bytes: u64,
    /// Bytes cached on disk.
    pub disk_bytes: u64,
    /// Capacity of the cache directories.
    pub disk_capacity_bytes: u64,
    /// Pages served from the cache.
    pub page_hits: u64,
    /// Pages not in the cache when asked for.
    pub page_misses: u64,
    /// `page_hits / (page_hits + page_misses)`, absent before any page was asked for.
    pub hit_ratio: Option<f64>,
}

impl CacheTotals {
    fn from_metrics(text: &str) -> Self {
        let memory_bytes = sample_sum(text, wm::CACHED_BYTES, Some("tier=\"memory\"")) as u64;
        let disk_bytes = sample_sum(text, wm::CACHED_BYTES, Some("tier=\"disk\"")) as u64;
        let disk_capacity_bytes = sample_sum(text, wm::CACHE_DIR_CAPACITY, None) as u64;
        let page_hits = sample_sum(text, &format!("{}_total", wm::PAGE_HITS), None) as u64;
        let page_misses = sample_sum(text, &format!("{}_total", wm::PAGE_MISSES), None) as u64;
        Self { memory_bytes, disk_bytes, disk_capacity_bytes, page_hits, page_misses, hit_ratio: None }.with_ratio()
    }

    fn add(self, o: Self) -> Self {
        Self {
            memory_bytes: self.memory_bytes + o.memory_bytes,
            disk_bytes: self.disk_bytes + o.disk_bytes,
            disk_capacity_bytes: self.disk_capacity_bytes + o.disk_capacity_bytes,
            page_hits: self.page_hits + o.page_hits,
            page_misses: self.page_misses + o.page_misses,
            hit_ratio: None,
        }
        .with_ratio()
    }

    fn with_ratio(mut self) -> Self {
        let asked = self.page_hits + self.page_misses;
        self.hit_ratio = (asked > 0).then(|| self.page_hits as f64 / asked as f64);
        self
    }
}

/// The sum of the samples of `name` (exactly that series name), over its label sets, or those whose
/// labels contain `label` (`tier="disk"`).
pub fn sample_sum(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let labels = match series.strip_prefix(name) {
                Some("") => "",
                Some(rest) if rest.starts_with('{') => rest,
                _ => return false,
            };
            label.is_none_or(|want| labels.contains(want))
        })
        .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
        .sum()
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

async fn worker_cache(ctx: &Ctx, n: &NodeInfo) -> Result<CacheTotals, String> {
    let scheme = if n.tls { "https" } else { "http" };
    let text = fetch_text(ctx, &format!("{scheme}://{}/metrics", n.address)).await?;
    Ok(CacheTotals::from_metrics(&text))
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
    let nodes: NodeList = ctx.get("nodes", &[]).await?;
    match ctx.get::<LeaderView>("coordinators", &[]).await {
        Ok(v) => s.leader = v.leader,
        Err(e) => s.problems.push(format!("leader: {e:#}")),
    }
    if s.leader.is_none() && !s.problems.iter().any(|p| p.starts_with("leader:")) {
        s.problems.push("no Coordinator leader is known".into());
    }
    let mut total = CacheTotals::default();
    for n in nodes.result {
        let online = n.status == NODE_ONLINE;
        let cache = if online {
            match worker_cache(ctx, &n).await {
                Ok(c) => Some(c),
                Err(e) => {
                    s.problems.push(format!("worker {} metrics: {e}", n.identity));
                    None
                }
            }
        } else {
            s.problems.push(format!("worker {} ({}) is offline", n.identity, n.address));
            None
        };
        total = cache.map_or(total, |c| total.add(c));
        *if online { &mut s.workers_online } else { &mut s.workers_offline } += 1;
        s.workers.push(WorkerStatus { identity: n.identity, address: n.address, status: n.status, cache });
    }
    if s.workers.is_empty() {
        s.problems.push("no worker is registered".into());
    }
    s.cache = total;
    let load: Results<LoadProgress> = ctx.get("load", &[]).await?;
    let free: Results<FreeProgress> = ctx.get("free", &[]).await?;
    let rebalance: Results<RebalanceProgress> = ctx.get("rebalance", &[]).await?;
    running("load", load.results, &mut s.running_jobs);
    running("free", free.results, &mut s.running_jobs);
    running("rebalance", rebalance.results, &mut s.running_jobs);
    s.healthy = s.problems.is_empty();
    Ok(s)
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
    }
    let c = &s.cache;
    out.push(format!(
        "Cache: {} on disk of {} ({} in memory)",
        gib(c.disk_bytes),
        gib(c.disk_capacity_bytes),
        gib(c.memory_bytes)
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

    #[test]
    fn samples_are_summed_by_exact_name_and_label() {
        let text = "# HELP loam_worker_cached_bytes x\nloam_worker_cached_bytes{tier=\"memory\"} 5\n\
                    loam_worker_cached_bytes{tier=\"disk\"} 7\nloam_worker_cached_bytes_other 100\n\
                    loam_worker_page_hits_total{tier=\"disk\"} 3\nloam_worker_page_hits_total{tier=\"memory\"} 1\n\
                    loam_worker_page_misses_total 4\n";
        assert_eq!(sample_sum(text, "loam_worker_cached_bytes", None), 12.0);
        assert_eq!(sample_sum(text, "loam_worker_cached_bytes", Some("tier=\"disk\"")), 7.0);
        let c = CacheTotals::from_metrics(text);
        assert_eq!((c.page_hits, c.page_misses, c.hit_ratio), (4, 4, Some(0.5)));
        assert_eq!(CacheTotals::default().with_ratio().hit_ratio, None, "no reads, no ratio");
    }
}
