//! The planning part of `loam-bench scale`: a real Coordinator (`loam_coordinator`, on the bench's etcd,
//! in a process of its own so that its RSS is its own: the hidden `loam-bench scale-coordinator`) plans
//! a load over `--files` listed files (default 10 M) onto the live stand-ins, then a rebalance of every
//! worker after the churn.
//!
//! - **The listing** comes through the UFS seam: a [`GeneratedUfs`] put in front of the mount's
//!   `file://` root (`UfsRegistry::insert_override`) lists `--files` names, generated as the listing is
//!   read (a 10 M-file tree on disk would take longer to make than the run). The Coordinator lists,
//!   filters, places each file on the ring, batches and sends, exactly as for a real UFS.
//! - **The load** is `POST /api/v1/load` with `sync: true`; files/s is files over the request's time; the
//!   Coordinator's peak RSS (`VmHWM`, reset before) and CPU are read from `/proc`. Every file must come
//!   back loaded, and the stand-ins must have been sent each file once.
//! - **The rebalance** (`POST /api/v1/rebalance`, target `ALL`): each stand-in that was there before the
//!   churn holds the files it owns on the ring of the stand-ins before the churn ([`Holdings`]); those
//!   that left hold nothing any more and those that joined hold nothing yet, so the plan moves the files
//!   the joiners now own. Planning is timed until the job leaves `PLANNING`, the job until it ends.
//!   The Coordinator's file index is off in this process: at 10 M cached files it would pass its cap, and
//!   its memory is measured on its own (`index`).

use super::standins::{Holdings, StandIns};
use crate::cpu;
use crate::load::procs;
use anyhow::{Context, bail};
use async_trait::async_trait;
use bytes::Bytes;
use clap::Args;
use futures::stream::{self, BoxStream, StreamExt};
use loam_client::WorkerEndpoint;
use loam_core::HashRing;
use loam_core::hash_ring::DEFAULT_VIRTUAL_NODES;
use loam_core::job_api::{LoadProgress, RebalanceProgress};
use loam_testsupport::process::{Server, log_path};
use loam_ufs::{ListOptions, Ufs, UfsError, UfsResult, UfsStatus, WriteOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The cluster path the generated listing is mounted at.
pub const MOUNT: &str = "/scale";
/// The length every generated file claims.
pub const FILE_LENGTH: u64 = 1 << 20;
/// Files per generated directory.
const PER_DIR: u64 = 10_000;
/// How often the bench reads a rebalance's progress.
const POLL: Duration = Duration::from_millis(50);

/// The URI of generated file `i` under `root`.
pub fn file_uri(root: &str, i: u64) -> String {
    format!("{root}/d{:04}/part-{i:09}.bin", i / PER_DIR)
}

/// A UFS whose root lists `files` generated files (see the module header); nothing can be read or
/// written.
pub struct GeneratedUfs {
    root: String,
    files: u64,
}

impl GeneratedUfs {
    /// `files` files under `root` (a UFS URI).
    pub fn new(root: &str, files: u64) -> Self {
        Self { root: root.trim_end_matches('/').to_string(), files }
    }

    fn status(root: &str, i: u64) -> UfsStatus {
        UfsStatus {
            uri: file_uri(root, i),
            is_dir: false,
            length: FILE_LENGTH,
            etag: Some(format!("g{i}")),
            modified: None,
            meta: None,
        }
    }

    fn unsupported<T>(&self) -> UfsResult<T> {
        Err(UfsError::Unsupported("the generated listing of loam-bench scale is read-only and has no bytes".into()))
    }
}

#[async_trait]
impl Ufs for GeneratedUfs {
    async fn stat(&self, uri: &str) -> UfsResult<UfsStatus> {
        let uri = uri.trim_end_matches('/');
        if uri == self.root {
            return Ok(UfsStatus {
                uri: uri.to_string(),
                is_dir: true,
                length: 0,
                etag: None,
                modified: None,
                meta: None,
            });
        }
        let index = uri
            .strip_prefix(self.root.as_str())
            .and_then(|rest| rest.rsplit_once("/part-"))
            .and_then(|(_, name)| name.strip_suffix(".bin"))
            .and_then(|n| n.parse::<u64>().ok());
        match index {
            Some(i) if i < self.files && file_uri(&self.root, i) == uri => Ok(Self::status(&self.root, i)),
            _ => Err(UfsError::NotFound(uri.to_string())),
        }
    }

    /// Every file, generated as the stream is read (the root only; anything else lists nothing).
    fn list(&self, uri: &str, _opts: ListOptions) -> BoxStream<'static, UfsResult<UfsStatus>> {
        if uri.trim_end_matches('/') != self.root {
            return stream::empty().boxed();
        }
        let root = self.root.clone();
        stream::iter(0..self.files).map(move |i| Ok(Self::status(&root, i))).boxed()
    }

    async fn read_range(&self, _: &str, _: u64, _: u64) -> UfsResult<Bytes> {
        self.unsupported()
    }
    async fn read_range_of(&self, _: &str, _: u64, _: u64, _: &str) -> UfsResult<Bytes> {
        self.unsupported()
    }
    async fn write(&self, _: &str, _: Bytes) -> UfsResult<()> {
        self.unsupported()
    }
    async fn write_stream(
        &self,
        _: &str,
        _: BoxStream<'static, Result<Bytes, std::io::Error>>,
        _: WriteOptions,
    ) -> UfsResult<u64> {
        self.unsupported()
    }
    async fn delete(&self, _: &str, _: bool) -> UfsResult<()> {
        self.unsupported()
    }
    async fn delete_if_match(&self, _: &str, _: &str) -> UfsResult<()> {
        self.unsupported()
    }
    async fn create_dir(&self, _: &str) -> UfsResult<()> {
        self.unsupported()
    }
    async fn copy(&self, _: &str, _: &str) -> UfsResult<()> {
        self.unsupported()
    }
    async fn rename(&self, _: &str, _: &str) -> UfsResult<()> {
        self.unsupported()
    }
}

/// Flags of the hidden `loam-bench scale-coordinator`.
#[derive(Args, Debug, Clone)]
pub struct CoordinatorArgs {
    /// The etcd client URL.
    #[arg(long)]
    pub etcd: String,
    /// The cluster name.
    #[arg(long)]
    pub cluster: String,
    /// Where its temp dir goes.
    #[arg(long)]
    pub dir: PathBuf,
    /// Files the generated listing holds.
    #[arg(long)]
    pub files: u64,
}

/// A Coordinator with the generated listing mounted at [`MOUNT`]: what [`start_coordinator`] answers
/// and the child prints.
pub struct Mounted {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The mount's UFS root (file URIs are [`file_uri`] of it).
    pub root: String,
}

/// Starts a Coordinator on `store` (file index off) in a temp dir under `dir`, on this runtime, with
/// `files` generated files mounted at [`MOUNT`]; it serves until the process ends. The test calls it
/// in-process; the bench in its child.
pub async fn start_coordinator(
    store: Arc<dyn loam_store::ClusterStore>,
    cluster: &str,
    dir: &Path,
    files: u64,
) -> anyhow::Result<(Mounted, loam_testsupport::coordinator::TestCoordinator)> {
    let tmp = tempfile::Builder::new().prefix("scale-coordinator-").tempdir_in(dir)?;
    let cfg = loam_coordinator::CoordinatorConfig {
        cluster_name: cluster.to_string(),
        file_index: false,
        data_dir: tmp.path().join("data"),
        ..Default::default()
    };
    let tc = loam_testsupport::coordinator::start_with(tmp, store, cfg).await;
    let root = tc.ufs_dir("ufs", true);
    tc.ufs.insert_override(&root, Arc::new(GeneratedUfs::new(&root, files)));
    let body = serde_json::json!({ "path": MOUNT, "ufs": root }).to_string();
    let (status, answer) = tc.call("POST", "/api/v1/mount", Some(&body)).await;
    if status != 200 {
        bail!("mounting the generated listing: HTTP {status}: {answer}");
    }
    Ok((Mounted { base: tc.base.clone(), root }, tc))
}

/// The child: a Coordinator over the bench's etcd, until it is killed.
pub async fn run_child(args: CoordinatorArgs) -> anyhow::Result<()> {
    let store = loam_store::EtcdStore::connect(vec![args.etcd.clone()], loam_store::EtcdOptions::default()).await?;
    let (m, _tc) = start_coordinator(store, &args.cluster, &args.dir, args.files).await?;
    println!("coordinator {} {}", m.base, m.root);
    println!("{}", loam_testsupport::process::READY_LINE);
    std::future::pending::<()>().await;
    Ok(())
}

/// What the planning part measured.
#[derive(Debug, Default)]
pub struct PlanningReport {
    pub files: u64,
    pub workers: usize,
    /// The Coordinator's RSS before the load.
    pub idle_rss: u64,
    pub load_secs: f64,
    pub load_peak_rss: u64,
    pub load_cpu: f64,
    /// Files the stand-ins were sent.
    pub sent: u64,
    /// The rebalance, when run.
    pub rebalance: Option<RebalanceReport>,
}

/// The rebalance's figures.
#[derive(Debug, Default)]
pub struct RebalanceReport {
    /// Files cached on the stand-ins (what the plan considers).
    pub cached: u64,
    pub plan_secs: f64,
    pub total_secs: f64,
    /// The Coordinator's RSS when the rebalance started (after the load).
    pub start_rss: u64,
    pub peak_rss: u64,
    pub cpu: f64,
    pub progress: RebalanceProgress,
}

/// Sends `POST /api/v1/<api>` with `body` and decodes the answer.
async fn post<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    base: &str,
    api: &str,
    body: serde_json::Value,
) -> anyhow::Result<T> {
    let r = http.post(format!("{base}/api/v1/{api}")).json(&body).send().await?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("POST /api/v1/{api}: HTTP {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST /api/v1/{api} answered {text}"))
}

/// Which stand-in (index into `before`) owns each of `files` files under `root` on the ring of `before`.
pub fn holdings(root: &str, files: u64, before: &[WorkerEndpoint]) -> Holdings {
    let ring = HashRing::new(before.iter().enumerate().map(|(i, w)| (w.id.identity(), i)), DEFAULT_VIRTUAL_NODES);
    let mut per: Vec<Vec<u32>> = vec![Vec::new(); before.len()];
    for i in 0..files {
        if let Some((_, k)) = ring.primary(&file_uri(root, i)) {
            per[*k].push(i as u32);
        }
    }
    let root = root.to_string();
    Holdings { files: per, uri: Box::new(move |i| file_uri(&root, i)) }
}

/// Loads the mount through the Coordinator at `base`; answers the load's progress.
pub async fn load(http: &reqwest::Client, base: &str, batch_size: u64) -> anyhow::Result<LoadProgress> {
    let options = serde_json::json!({ "sync": true, "batchSize": batch_size });
    post(http, base, "load", serde_json::json!({ "paths": [MOUNT], "options": options })).await
}

/// Rebalances every worker; answers the seconds until the plan was made and the final progress.
pub async fn rebalance(http: &reqwest::Client, base: &str) -> anyhow::Result<(f64, f64, RebalanceProgress)> {
    let t0 = Instant::now();
    let p: RebalanceProgress = post(http, base, "rebalance", serde_json::json!({ "target": "ALL" })).await?;
    let mut planned = None;
    loop {
        let p: RebalanceProgress =
            http.get(format!("{base}/api/v1/rebalance?id={}", p.id)).send().await?.error_for_status()?.json().await?;
        if planned.is_none() && p.running_state != "PLANNING" && !p.running_state.is_empty() {
            planned = Some(t0.elapsed().as_secs_f64());
        }
        if p.state != "RUNNING" {
            let total = t0.elapsed().as_secs_f64();
            return Ok((planned.unwrap_or(total), total, p));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Settings of the planning part.
pub struct Plan<'a> {
    pub files: u64,
    pub batch_size: u64,
    pub rebalance: bool,
    pub etcd_url: &'a str,
    pub cluster: &'a str,
    pub dir: &'a Path,
    /// The stand-ins before the churn (their holdings for the rebalance).
    pub before: &'a [WorkerEndpoint],
}

/// Runs the planning part against `standins`.
pub async fn run(plan: &Plan<'_>, standins: &StandIns) -> anyhow::Result<PlanningReport> {
    let exe = std::env::current_exe()?;
    let args: Vec<String> = [
        "scale-coordinator",
        "--etcd",
        plan.etcd_url,
        "--cluster",
        plan.cluster,
        "--dir",
        &plan.dir.display().to_string(),
        "--files",
        &plan.files.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let child = Server::start(&exe, &args, &log_path(plan.dir, "scale-coordinator")).map_err(anyhow::Error::msg)?;
    let line = child.banner.iter().find_map(|l| l.strip_prefix("coordinator ")).context("no coordinator line")?;
    let (base, root) = line.split_once(' ').context("a malformed coordinator line")?;
    let pid = child.pid();
    let http = loam_testsupport::auth::client_with(loam_testsupport::auth::ALL_ROLES);
    let live = standins.live();
    let mut report = PlanningReport { files: plan.files, workers: live.len(), ..Default::default() };
    report.idle_rss = procs::rss(pid)?;

    eprintln!("loading {} listed files onto {} stand-ins…", plan.files, live.len());
    let _ = procs::reset_peak_rss(pid);
    let (cpu0, sent0, t0) =
        (cpu::process(pid)?, standins.shared.loaded.load(std::sync::atomic::Ordering::Relaxed), Instant::now());
    let p = load(&http, base, plan.batch_size).await?;
    report.load_secs = t0.elapsed().as_secs_f64();
    report.load_cpu = cpu::process(pid)? - cpu0;
    report.load_peak_rss = procs::peak_rss(pid)?;
    report.sent = standins.shared.loaded.load(std::sync::atomic::Ordering::Relaxed) - sent0;
    if p.state != "SUCCEEDED" || p.loaded_non_empty_files != plan.files || report.sent != plan.files {
        bail!("the load did not place every file once: sent {} files, progress {p:?}", report.sent);
    }

    if plan.rebalance {
        eprintln!("computing what each stand-in holds…");
        let h = holdings(root, plan.files, plan.before);
        standins.set_holdings(h);
        eprintln!("rebalancing {} cached files over {} stand-ins…", plan.files, live.len());
        let _ = procs::reset_peak_rss(pid);
        let (cpu0, start_rss) = (cpu::process(pid)?, procs::rss(pid)?);
        let (plan_secs, total_secs, progress) = rebalance(&http, base).await?;
        report.rebalance = Some(RebalanceReport {
            cached: plan.files,
            plan_secs,
            total_secs,
            start_rss,
            peak_rss: procs::peak_rss(pid)?,
            cpu: cpu::process(pid)? - cpu0,
            progress,
        });
    }
    drop(child);
    Ok(report)
}

/// Prints the part's report.
pub fn print(r: &PlanningReport) {
    println!(
        "load planning   {} listed files onto {} workers: {:.1}s, {:.0} files/s; Coordinator RSS {} MB idle, \
         peak {} MB (goal < 200 MB); Coordinator CPU {:.1}s ({:.1} µs/file)",
        r.files,
        r.workers,
        r.load_secs,
        r.files as f64 / r.load_secs.max(1e-9),
        r.idle_rss >> 20,
        r.load_peak_rss >> 20,
        r.load_cpu,
        r.load_cpu / r.files.max(1) as f64 * 1e6
    );
    if let Some(b) = &r.rebalance {
        let p = &b.progress;
        println!(
            "rebalance       {} cached files, target ALL: planned in {:.1}s, done in {:.1}s ({}); loaded {}, preserved {}, \
             pruned {}, failed {}; Coordinator RSS {} MB at the start, peak {} MB; CPU {:.1}s",
            b.cached,
            b.plan_secs,
            b.total_secs,
            p.state,
            p.files_loaded,
            p.files_preserved,
            p.files_pruned,
            p.files_failed,
            b.start_rss >> 20,
            b.peak_rss >> 20,
            b.cpu
        );
    }
}
