//! The membership part of `loam-bench scale`: N stand-ins join a real etcd, and a client follows them
//! with the code every client runs (`loam_client::MembershipView::follow_store`, the liveness prefix
//! → the hash ring). Measured:
//!
//! - **the join storm**: N stand-ins registering at once; how long a follower started before them takes
//!   to list all N, how many rings it built meanwhile, the watch events and bytes it received;
//! - **ring build at N**: a fresh client's first ring (list the prefix, decode, build; median of 5), and
//!   `HashRing::new` alone over N endpoints (median of 20);
//! - **steady state** for `--window` (default one lease TTL): the watch events and bytes a follower
//!   receives while every stand-in renews its lease (none are expected: a renewal writes no key), the
//!   requests the stand-ins send (counted by operation through `loam_store::timed`), etcd's own count of
//!   gRPC requests by method (its `/metrics` on the client port) and etcd's CPU;
//! - **churn**: `--churn` percent of the stand-ins leave (lease revoked) and as many new ones join; the
//!   events, bytes and ring builds that costs a follower, and how long until its ring is the new one.
//!
//! Watch bytes are each event's key and value (what the follower decodes), not gRPC framing.

use super::standins::StandIns;
use crate::cpu;
use futures::StreamExt;
use loam_client::{MembershipView, WorkerEndpoint};
use loam_core::HashRing;
use loam_core::hash_ring::DEFAULT_VIRTUAL_NODES;
use loam_core::membership::liveness_prefix;
use loam_store::timed::{StoreObserver, StoreOp};
use loam_store::{ClusterStore, WatchEvent};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the bench looks whether a follower's ring is complete.
const POLL: Duration = Duration::from_millis(5);

/// Counts the store requests the stand-ins make, by operation.
#[derive(Default)]
pub struct Requests([AtomicU64; StoreOp::ALL.len()]);

impl StoreObserver for Requests {
    fn observe(&self, op: StoreOp, _elapsed: Duration, _ok: bool) {
        if let Some(i) = StoreOp::ALL.iter().position(|o| *o == op) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Requests {
    fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        StoreOp::ALL.iter().zip(&self.0).map(|(op, n)| (op.as_str(), n.load(Ordering::Relaxed))).collect()
    }
}

/// What a watch on the liveness prefix has received: events and their key and value bytes.
#[derive(Default)]
pub struct WatchTraffic {
    events: AtomicU64,
    bytes: AtomicU64,
}

impl WatchTraffic {
    /// `(events, bytes)` so far.
    pub fn get(&self) -> (u64, u64) {
        (self.events.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }

    /// Counts every event under `prefix` after revision `after`, until the watch ends.
    pub async fn count(self: Arc<Self>, store: Arc<dyn ClusterStore>, prefix: String, after: i64) {
        let Ok(mut events) = store.watch(&prefix, after).await else { return };
        while let Some(Ok(ev)) = events.next().await {
            let n = match &ev {
                WatchEvent::Put(kv) => kv.key.len() + kv.value.len(),
                WatchEvent::Delete { key, .. } => key.len(),
            };
            self.events.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// Steady-state load over one window.
#[derive(Debug, Default)]
pub struct Steady {
    pub secs: f64,
    pub watch_events: u64,
    pub watch_bytes: u64,
    /// Requests the stand-ins sent, by operation.
    pub requests: BTreeMap<&'static str, u64>,
    /// etcd's `grpc_server_handled_total` by method (empty when `/metrics` could not be read).
    pub etcd_grpc: BTreeMap<String, u64>,
    /// etcd's CPU seconds over the window.
    pub etcd_cpu: f64,
}

/// One membership change as a follower sees it.
#[derive(Debug, Default)]
pub struct Change {
    pub left: usize,
    pub joined: usize,
    pub watch_events: u64,
    pub watch_bytes: u64,
    pub ring_builds: u64,
    /// Until the follower's ring is the new membership.
    pub follow_secs: f64,
}

/// Everything the membership part measured.
#[derive(Debug, Default)]
pub struct MembershipReport {
    pub workers: usize,
    /// The join storm (`left` is 0).
    pub storm: Change,
    /// Registering the N stand-ins.
    pub join_secs: f64,
    /// A fresh client's first ring at N (median).
    pub ring_cold_secs: f64,
    /// `HashRing::new` over N endpoints (median).
    pub ring_build_secs: f64,
    /// `None` when the window is 0 (`--skip steady`).
    pub steady: Option<Steady>,
    pub churn: Change,
}

/// The sets of a follower: its ring's worker ids equal `want`.
fn ring_is(view: &MembershipView, want: &[WorkerEndpoint]) -> bool {
    let ring = view.ring();
    ring.len() == want.len() && want.iter().all(|w| ring.members().any(|(_, m)| m.id == w.id))
}

async fn until_ring_is(view: &MembershipView, want: &[WorkerEndpoint]) -> f64 {
    let t0 = Instant::now();
    // Compare ids only once the count is right: a thousand-member scan per poll is itself work.
    while view.ring().len() != want.len() || !ring_is(view, want) {
        tokio::time::sleep(POLL).await;
    }
    t0.elapsed().as_secs_f64()
}

/// etcd's `grpc_server_handled_total` summed by `grpc_method`, from its `/metrics`.
pub async fn etcd_grpc(http: &reqwest::Client, etcd: &str) -> BTreeMap<String, u64> {
    let Ok(r) = http.get(format!("{etcd}/metrics")).send().await else { return BTreeMap::new() };
    let Ok(text) = r.text().await else { return BTreeMap::new() };
    parse_grpc_handled(&text)
}

/// The sum of `grpc_server_handled_total` per `grpc_method` in a Prometheus text page.
pub fn parse_grpc_handled(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("grpc_server_handled_total{")) {
        let Some(method) = line.split("grpc_method=\"").nth(1).and_then(|r| r.split('"').next()) else { continue };
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        *out.entry(method.to_string()).or_default() += value as u64;
    }
    out
}

/// Settings of the membership part.
pub struct Plan<'a> {
    pub workers: usize,
    pub churn_percent: f64,
    pub window: Duration,
    pub cluster: &'a str,
    /// etcd's client URL (for `/metrics`) and pid (for its CPU).
    pub etcd_url: &'a str,
    pub etcd_pid: Option<u32>,
}

/// Runs the membership part: `standins` (empty) join over their store; `client` is another connection
/// to the same etcd, the followers'.
pub async fn run(
    plan: &Plan<'_>,
    standins: &mut StandIns,
    requests: &Requests,
    client: Arc<dyn ClusterStore>,
) -> anyhow::Result<MembershipReport> {
    let mut report = MembershipReport { workers: plan.workers, ..Default::default() };
    let (_stop_tx, stop) = watch::channel(false);
    let traffic = Arc::new(WatchTraffic::default());
    let rev = client.revision().await?;
    let prefix = liveness_prefix(plan.cluster);
    tokio::spawn(traffic.clone().count(client.clone(), prefix.clone(), rev));
    let (view, _task) =
        MembershipView::follow_store(client.clone(), plan.cluster, DEFAULT_VIRTUAL_NODES, stop.clone()).await?;

    // The join storm.
    eprintln!("registering {} stand-ins…", plan.workers);
    let (builds0, t0) = (view.ring_builds(), Instant::now());
    standins.join(plan.workers).await?;
    report.join_secs = t0.elapsed().as_secs_f64();
    until_ring_is(&view, &standins.live()).await;
    let (events, bytes) = traffic.get();
    report.storm = Change {
        joined: plan.workers,
        watch_events: events,
        watch_bytes: bytes,
        ring_builds: view.ring_builds() - builds0,
        follow_secs: t0.elapsed().as_secs_f64(),
        ..Default::default()
    };

    // Ring build at N.
    let mut cold = Vec::new();
    for _ in 0..5 {
        let (tx, rx) = watch::channel(false);
        let t0 = Instant::now();
        let (v, task) = MembershipView::follow_store(client.clone(), plan.cluster, DEFAULT_VIRTUAL_NODES, rx).await?;
        let secs = t0.elapsed().as_secs_f64();
        anyhow::ensure!(v.ring().len() == plan.workers, "a fresh client's ring has {} workers", v.ring().len());
        cold.push(secs);
        tx.send_replace(true);
        let _ = task.await;
    }
    report.ring_cold_secs = crate::median(&mut cold);
    let live = standins.live();
    let mut builds = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        let ring = HashRing::new(live.iter().map(|w| (w.id.identity(), w.clone())), DEFAULT_VIRTUAL_NODES);
        builds.push(t0.elapsed().as_secs_f64());
        std::hint::black_box(ring);
    }
    report.ring_build_secs = crate::median(&mut builds);

    // Steady state: lease renewals only.
    report.steady = if plan.window.is_zero() { None } else { Some(steady(plan, requests, &traffic).await?) };

    // Churn: some leave, as many join.
    let n = ((plan.workers as f64 * plan.churn_percent / 100.0).round() as usize).clamp(1, plan.workers);
    eprintln!("churn: {n} stand-ins leave, {n} join…");
    let (builds0, (e0, b0), t0) = (view.ring_builds(), traffic.get(), Instant::now());
    for i in 0..n {
        standins.leave(i).await?;
    }
    standins.join(n).await?;
    until_ring_is(&view, &standins.live()).await;
    let (e1, b1) = traffic.get();
    report.churn = Change {
        left: n,
        joined: n,
        watch_events: e1 - e0,
        watch_bytes: b1 - b0,
        ring_builds: view.ring_builds() - builds0,
        follow_secs: t0.elapsed().as_secs_f64(),
    };
    Ok(report)
}

/// The steady state over `plan.window`: what lease renewals cost.
async fn steady(plan: &Plan<'_>, requests: &Requests, traffic: &WatchTraffic) -> anyhow::Result<Steady> {
    eprintln!("measuring {}s of lease renewals…", plan.window.as_secs());
    let http = reqwest::Client::new();
    let (grpc0, req0, (e0, b0)) = (etcd_grpc(&http, plan.etcd_url).await, requests.snapshot(), traffic.get());
    let cpu0 = plan.etcd_pid.map(cpu::process).transpose()?.unwrap_or(0.0);
    let t0 = Instant::now();
    tokio::time::sleep(plan.window).await;
    let secs = t0.elapsed().as_secs_f64();
    let (grpc1, req1, (e1, b1)) = (etcd_grpc(&http, plan.etcd_url).await, requests.snapshot(), traffic.get());
    let cpu1 = plan.etcd_pid.map(cpu::process).transpose()?.unwrap_or(0.0);
    Ok(Steady {
        secs,
        watch_events: e1 - e0,
        watch_bytes: b1 - b0,
        requests: req1
            .iter()
            .map(|(op, n)| (*op, n - req0.get(op).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        etcd_grpc: grpc1
            .iter()
            .map(|(m, n)| (m.clone(), n - grpc0.get(m).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        etcd_cpu: cpu1 - cpu0,
    })
}

/// Prints the part's report.
pub fn print(r: &MembershipReport) {
    let n = r.workers;
    println!("membership at {n} workers (real etcd, stand-ins registering through loam_store::membership::register)");
    println!(
        "  join storm      {n} registered in {:.2}s; a follower listed all {n} after {:.2}s, {} ring builds, \
         {} watch events, {} bytes",
        r.join_secs, r.storm.follow_secs, r.storm.ring_builds, r.storm.watch_events, r.storm.watch_bytes
    );
    println!(
        "  ring build      a fresh client's first ring at {n}: {:.1} ms (list + decode + build); HashRing::new alone: {:.2} ms",
        r.ring_cold_secs * 1e3,
        r.ring_build_secs * 1e3
    );
    match &r.steady {
        Some(s) => print_steady(s, n),
        None => println!("  steady          not measured (--skip steady)"),
    }
    let c = &r.churn;
    println!(
        "  churn           {} left + {} joined: {} watch events, {} bytes ({:.0} bytes/event), {} ring builds, \
         follower current after {:.2}s",
        c.left,
        c.joined,
        c.watch_events,
        c.watch_bytes,
        c.watch_bytes as f64 / c.watch_events.max(1) as f64,
        c.ring_builds,
        c.follow_secs
    );
}

/// Prints the steady state, scaled to 1,000 workers of the `n` measured.
fn print_steady(s: &Steady, n: usize) {
    let total: u64 = s.requests.values().sum();
    let per_1000 = |x: f64| x / s.secs.max(1e-9) * 1000.0 / n.max(1) as f64;
    println!(
        "  steady {:.0}s     watch: {} events, {} bytes (lease renewals write no key); stand-ins' store requests: \
         {total} ({:.1}/s per 1,000 workers: {})",
        s.secs,
        s.watch_events,
        s.watch_bytes,
        per_1000(total as f64),
        s.requests.iter().map(|(op, k)| format!("{op} {:.1}/s", per_1000(*k as f64))).collect::<Vec<_>>().join(", ")
    );
    let grpc: u64 = s.etcd_grpc.values().sum();
    println!(
        "                  etcd handled {grpc} gRPC calls ({:.1}/s per 1,000 workers: {}); etcd CPU {:.2}s ({:.1}% of a core)",
        per_1000(grpc as f64),
        s.etcd_grpc.iter().map(|(m, k)| format!("{m} {:.1}/s", per_1000(*k as f64))).collect::<Vec<_>>().join(", "),
        s.etcd_cpu,
        s.etcd_cpu / s.secs.max(1e-9) * 100.0
    );
}
