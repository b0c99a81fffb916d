//! `loam-bench scale`: Loam past one rack. A real etcd (`loam_testsupport::EtcdServer`, as the tests
//! start it), `--workers` stand-in workers (default 1,000; `standins`: each holds a lease, keeps it alive
//! and registers exactly as a worker does, through `loam_store::membership`, and answers the internal API
//! a Coordinator calls), and four parts, each printed with its figures:
//!
//! 1. `membership`: the join storm, ring build time on a client at N, the watch traffic a follower
//!    receives in the steady state and under `--churn`, and the etcd load per 1,000 workers.
//! 2. `index`: the Coordinator's global file index at N workers × `--index-entries` (a child process).
//! 3. `planning`: a real Coordinator (a child process) planning a load over `--files` listed files (a
//!    generated listing through the UFS seam): files/s, its RSS (goal under 200 MB) and CPU; then a
//!    rebalance of every worker after the churn.
//!
//! Parts can be left out (`--skip index,rebalance`, …) and every size scaled down (`--workers`,
//! `--files`, `--index-entries`) so that a debug build on a small machine finishes. Nothing is asserted on
//! timings: the test suite runs the pieces at small N (`tests` below) for behaviour only.

mod index;
mod membership;
mod planning;
mod standins;

pub use index::{IndexArgs, run_child as run_index_child};
pub use planning::{CoordinatorArgs, run_child as run_coordinator_child};

use anyhow::Context;
use clap::Args;
use loam_store::timed::TimedStore;
use loam_store::{EtcdOptions, EtcdStore};
use loam_testsupport::EtcdServer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The cluster name the stand-ins register in.
const CLUSTER: &str = "loam-scale";

/// The parts `--skip` may name.
const PARTS: [&str; 4] = ["index", "load", "rebalance", "steady"];

/// Flags of `loam-bench scale`.
#[derive(Args, Debug, Clone)]
pub struct ScaleBenchArgs {
    /// Stand-in workers registered on etcd.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=50_000))]
    pub workers: u32,
    /// Files the Coordinator's load lists (a generated listing) and the rebalance finds cached.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=u32::MAX as u64))]
    pub files: u64,
    /// Entries of the global file index.
    #[arg(long, default_value_t = 1_000_000)]
    pub index_entries: u64,
    /// Percent of the workers that leave (and as many that join) in the churn step.
    #[arg(long, default_value_t = 1.0)]
    pub churn: f64,
    /// Seconds of lease renewals measured in the steady state (one lease TTL by default).
    #[arg(long, default_value_t = loam_core::membership::DEFAULT_LEASE_TTL.as_secs())]
    pub window: u64,
    /// The load job's `batchSize` (0: the Coordinator's default).
    #[arg(long, default_value_t = 0)]
    pub batch_size: u64,
    /// Parts to leave out, comma-separated: index, load, rebalance, steady.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// The etcd binary.
    #[arg(long, default_value = "/usr/bin/etcd")]
    pub etcd_bin: PathBuf,
    /// Working directory (the Coordinator's data and log); a temp dir by default.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl ScaleBenchArgs {
    fn runs(&self, part: &str) -> bool {
        !self.skip.iter().any(|s| s == part)
    }
}

/// Runs the benchmark.
pub async fn run(args: ScaleBenchArgs) -> anyhow::Result<()> {
    if let Some(bad) = args.skip.iter().find(|s| !PARTS.contains(&s.as_str())) {
        anyhow::bail!("--skip {bad}: the parts are {}", PARTS.join(", "));
    }
    anyhow::ensure!(args.churn > 0.0 && args.churn <= 100.0, "--churn is a percent in (0, 100]");
    let limit = standins::raise_fd_limit().context("raising the open file limit")?;
    let needed = 3 * args.workers as u64 + 256;
    anyhow::ensure!(limit >= needed, "{} stand-ins need about {needed} open files; the limit is {limit}", args.workers);
    let tmp = tempfile::Builder::new().prefix("loam-bench-scale-").tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    println!(
        "loam-bench scale --workers {} --files {} --index-entries {} --churn {} --window {}{}",
        args.workers,
        args.files,
        args.index_entries,
        args.churn,
        args.window,
        if args.skip.is_empty() { String::new() } else { format!(" --skip {}", args.skip.join(",")) }
    );

    if args.runs("index") {
        index::print(&index::measure(args.workers as usize, args.index_entries)?);
    }

    let etcd = EtcdServer::start_binary(&args.etcd_bin);
    let requests = Arc::new(membership::Requests::default());
    let store =
        TimedStore::wrap(EtcdStore::connect(vec![etcd.endpoint()], EtcdOptions::default()).await?, requests.clone());
    let client = EtcdStore::connect(vec![etcd.endpoint()], EtcdOptions::default()).await?;
    let mut standins = standins::StandIns::new(store, CLUSTER);
    let plan = membership::Plan {
        workers: args.workers as usize,
        churn_percent: args.churn,
        window: Duration::from_secs(if args.runs("steady") { args.window } else { 0 }),
        cluster: CLUSTER,
        etcd_url: &etcd.endpoint(),
        etcd_pid: etcd.pid(),
    };
    let m = membership::run(&plan, &mut standins, &requests, client).await?;
    membership::print(&m);

    if args.runs("load") {
        let before = &standins.endpoints[..args.workers as usize];
        let plan = planning::Plan {
            files: args.files,
            batch_size: args.batch_size,
            rebalance: args.runs("rebalance"),
            etcd_url: &etcd.endpoint(),
            cluster: CLUSTER,
            dir: &dir,
            before,
        };
        planning::print(&planning::run(&plan, &standins).await?);
    }
    standins.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests;
