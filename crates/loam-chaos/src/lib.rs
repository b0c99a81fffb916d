//! The chaos soak of issue 13 (`loam-chaos`, docs/RELIABILITY.md): a real cluster of processes (etcd, a
//! Coordinator, three workers; [`cluster`]), verified readers of four kinds running the whole time
//! ([`readers`]), load and free jobs in a loop ([`jobs`]), and faults in turn ([`faults`]), each held a few
//! seconds, healed, and given time to settle. [`report`] puts every read, job and RSS sample in the fault
//! window it fell in, prints a table per fault and checks the goal: 0 wrong bytes, 0 lost or wrongly
//! `SUCCEEDED` jobs, and read errors only for clients that address a dead worker directly, for at most
//! the lease TTL (plus a margin).
//!
//! **Decision**: a binary of its own (like `loam-bench`), not a `loam` sub-command: it needs the test
//! harness (`loam-testsupport`) and the Python clients, which a shipped binary must not. It runs the
//! `loam` command built into itself (`loam-chaos loam …`, [`LOAM`]), so the processes run the code it was
//! built from.

pub mod cluster;
pub mod data;
pub mod faults;
pub mod http;
pub mod jobs;
pub mod readers;
pub mod report;

use faults::Fault;
use readers::Log;
use report::{Inputs, Report, Window};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The hidden first argument that runs the `loam` command instead of the soak.
pub const LOAM: &str = "loam";
/// Files in the soak's directory (about 12 MiB in all).
const FILES: usize = 12;
/// Workers in the cluster.
const WORKERS: usize = 3;

/// How the soak runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Faults go on until this much time has passed (every fault runs at least once).
    pub duration: Duration,
    pub seed: u64,
    /// How long each fault is held before it is healed.
    pub hold: Duration,
    /// The pause after each heal.
    pub settle: Duration,
    /// The workers' lease TTL.
    pub lease_ttl: Duration,
    /// What an error stretch may exceed the lease TTL by.
    pub margin: Duration,
    /// Where the cluster lives (logs stay there); a temp dir when `None`.
    pub dir: Option<PathBuf>,
}

/// Runs the soak; its report.
pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let tmp = tempfile::Builder::new().prefix("loam-chaos-").tempdir()?;
    let dir = opts.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    eprintln!("loam-chaos: starting etcd, a coordinator and {WORKERS} workers in {}", dir.display());
    let start = Instant::now();
    let log = Log::new(start);
    let mut cluster = cluster::Cluster::start(&dir, WORKERS, opts.lease_ttl)?;
    let ep = cluster.endpoints();
    let files = Arc::new(data::Files::create(&ep.ufs, FILES)?);
    let readers = readers::Readers::start(&ep, files.clone(), &log, &dir, opts.seed)?;
    let jobs = jobs::Jobs::start(ep.clone(), FILES, log.clone());
    let (rss, stop_rss) = sample_rss(cluster.pids.clone(), log.clone());
    // A quiet start: reads and jobs before any fault are the `none` row.
    std::thread::sleep(opts.settle);
    let mut rng = Rng::new(opts.seed);
    let mut windows = Vec::new();
    let mut runs = [0usize; Fault::ALL.len()];
    'soak: loop {
        for (k, fault) in Fault::ALL.iter().enumerate() {
            let first_round = runs.contains(&0);
            if !first_round && start.elapsed() >= opts.duration {
                break 'soak;
            }
            let t0 = log.now();
            eprintln!("loam-chaos: {:>7.1}s {}", t0, fault.name());
            let ctx = faults::Ctx {
                cluster: &mut cluster,
                files: &files,
                rng: &mut rng,
                hold: opts.hold,
                round: runs[k],
                load_running: &jobs.load_running,
            };
            let outcome = faults::run(*fault, ctx);
            runs[k] += 1;
            std::thread::sleep(opts.settle);
            let (detail, skipped) = match outcome {
                Ok(d) => (d, false),
                Err(e) => (format!("{e:#}"), true),
            };
            eprintln!("loam-chaos:          {detail}");
            let end = log.now();
            windows.push(Window {
                fault: fault.name(),
                start: t0,
                end,
                detail,
                skipped,
                drops_cache: fault.drops_cache(),
            });
        }
    }
    eprintln!("loam-chaos: {:>7.1}s stopping the readers and the jobs; checking every job", log.now());
    let (jobs, refused) = jobs.finish(&ep);
    let skipped_readers = readers.stop();
    stop_rss.store(true, Ordering::SeqCst);
    let rss = rss.join().unwrap_or_default();
    let report = Report::build(Inputs {
        windows,
        events: log.events(),
        jobs,
        rss,
        refused_submissions: refused,
        skipped_readers,
        lease_ttl: opts.lease_ttl.as_secs_f64(),
        margin: opts.margin.as_secs_f64(),
        duration: log.now(),
    });
    if !report.passed() {
        eprintln!("{}", cluster.log_tails());
    }
    drop(cluster);
    Ok(report)
}

/// Samples the largest worker RSS every second until stopped.
fn sample_rss(pids: cluster::Pids, log: Log) -> (std::thread::JoinHandle<Vec<(f64, u64)>>, Arc<AtomicBool>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let t = std::thread::spawn(move || {
        let mut out = Vec::new();
        while !s.load(Ordering::SeqCst) {
            let peak = pids.workers().into_iter().filter_map(cluster::rss).max().unwrap_or(0);
            out.push((log.now(), peak));
            std::thread::sleep(Duration::from_secs(1));
        }
        out
    });
    (t, stop)
}

/// A small seeded generator (xorshift64*): the soak's choices repeat with the same `--seed`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        if n == 0 { 0 } else { (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n }
    }
}
