//! `loam job load|free|rebalance|list`: distributed load, free and rebalance jobs through the Coordinator's
//! `/api/v1/load`, `/api/v1/free` and `/api/v1/rebalance`. `--submit` (the default) starts a job,
//! `--progress` shows the newest job for the same paths (or index, or the job given by `--id`; for
//! rebalance, the same `--target`), `--stop` stops it, and `--sync` submits and waits until the job is no
//! longer running. `--json` prints the API's objects as they are. Rebalance lives in `job/rebalance.rs`.
//!
//! Stdout stays parseable whatever the terminal: `--sync` prints only the final progress there (one line,
//! or the JSON object), while the live progress bar (files, bytes, throughput, ETA), redrawn each second,
//! goes to stderr and only when stderr is a terminal.

mod rebalance;

use super::http::Ctx;
use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use loam_core::coordinator_api::{Results, StatusBody};
use loam_core::job_api::{
    FreeOptions, FreeProgress, FreeRequest, JobId, LoadOptions, LoadProgress, LoadRequest, RebalanceProgress,
};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Job commands.
#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Load files into the cache.
    Load(LoadArgs),
    /// Drop files from every worker's cache.
    Free(FreeArgs),
    /// Bring a worker's cache (or every worker's) in line with the current hash ring.
    Rebalance(rebalance::RebalanceArgs),
    /// List load, free and rebalance jobs.
    List,
}

/// What a job command does with its paths.
#[derive(Args, Debug, Default)]
#[group(multiple = false)]
pub struct Mode {
    /// Submit the job (the default).
    #[arg(long)]
    pub submit: bool,
    /// Show the progress of the newest job for these paths.
    #[arg(long)]
    pub progress: bool,
    /// Stop the running job for these paths.
    #[arg(long)]
    pub stop: bool,
    /// Submit and show a live progress bar until the job ends.
    #[arg(long)]
    pub sync: bool,
}

/// `loam job load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// UFS or cluster paths (repeatable).
    #[arg(long = "path", required_unless_present_any = ["index", "id"])]
    pub paths: Vec<String>,
    /// The job to show or stop (with `--progress` or `--stop`) instead of looking it up by its paths.
    #[arg(long, conflicts_with_all = ["paths", "index"])]
    pub id: Option<String>,
    /// An index file: one path per line.
    #[arg(long, conflicts_with = "paths")]
    pub index: Option<String>,
    /// Workers each file is loaded onto.
    #[arg(long, default_value_t = 0)]
    pub replicas: u64,
    /// Skip files already fully cached.
    #[arg(long)]
    pub skip_if_exists: bool,
    /// Only load files whose UFS path matches this regex.
    #[arg(long)]
    pub filter: Option<String>,
    /// Files per batch sent to one worker.
    #[arg(long, default_value_t = 0)]
    pub batch_size: u64,
    /// UFS bytes per second per worker, e.g. `100MiB` (0: unlimited).
    #[arg(long, default_value = "0", value_parser = loam_core::size::parse_size)]
    pub bandwidth: u64,
    /// Check afterwards that every file is fully cached.
    #[arg(long)]
    pub verify: bool,
    /// Cache metadata only.
    #[arg(long)]
    pub metadata_only: bool,
    /// What to do.
    #[command(flatten)]
    pub mode: Mode,
}

/// `loam job free`.
#[derive(Args, Debug)]
pub struct FreeArgs {
    /// UFS or cluster paths (repeatable).
    #[arg(long = "path", required_unless_present_any = ["index", "id"])]
    pub paths: Vec<String>,
    /// The job to show or stop (with `--progress` or `--stop`) instead of looking it up by its paths.
    #[arg(long, conflicts_with_all = ["paths", "index"])]
    pub id: Option<String>,
    /// An index file: one path per line.
    #[arg(long, conflicts_with = "paths")]
    pub index: Option<String>,
    /// Free only the files directly in a directory.
    #[arg(long)]
    pub no_recursive: bool,
    /// Files per batch.
    #[arg(long, default_value_t = 0)]
    pub batch_size: u64,
    /// What to do.
    #[command(flatten)]
    pub mode: Mode,
}

/// What the progress objects share, for the progress bar and the final line.
pub(super) trait Progress: DeserializeOwned + Serialize {
    fn id(&self) -> &str;
    fn state(&self) -> &str;
    /// (files done, files total, bytes done, bytes total, failed files).
    fn numbers(&self) -> (u64, u64, u64, u64, u64);
    /// One line of numbers for humans.
    fn summary(&self) -> String {
        line(self)
    }
}

/// A job named by its paths or index (load and free), for the lookups.
trait PathJob: Progress {
    fn paths(&self) -> (&[String], &str);
}

impl PathJob for LoadProgress {
    fn paths(&self) -> (&[String], &str) {
        (&self.paths, &self.index)
    }
}

impl PathJob for FreeProgress {
    fn paths(&self) -> (&[String], &str) {
        (&self.paths, &self.index)
    }
}

impl Progress for LoadProgress {
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> &str {
        &self.state
    }
    fn numbers(&self) -> (u64, u64, u64, u64, u64) {
        let done = self.loaded_bytes + self.skipped_bytes;
        (self.loaded_non_empty_files, self.scanned_files, done, self.total_bytes, self.failed_files)
    }
}

impl Progress for FreeProgress {
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> &str {
        &self.state
    }
    fn numbers(&self) -> (u64, u64, u64, u64, u64) {
        (self.freed_files, self.total_files, self.freed_bytes, self.total_bytes, self.failed_files)
    }
}

/// Runs a job command.
pub async fn run(ctx: &Ctx, c: JobCommand) -> anyhow::Result<()> {
    match c {
        JobCommand::Load(a) => {
            let body = LoadRequest {
                paths: (!a.paths.is_empty()).then(|| a.paths.clone()),
                index: a.index.clone(),
                options: LoadOptions {
                    batch_size: a.batch_size,
                    file_filter_regex: a.filter.clone().unwrap_or_default(),
                    replicas: a.replicas,
                    sync: false,
                    skip_if_exists: a.skip_if_exists,
                    verify: a.verify,
                    bandwidth: a.bandwidth,
                    load_metadata_only: a.metadata_only,
                },
            };
            let target = Target { paths: &a.paths, index: a.index.as_deref(), id: a.id.as_deref() };
            act::<LoadProgress, _>(ctx, "load", &a.mode, &body, target).await
        }
        JobCommand::Free(a) => {
            let body = FreeRequest {
                paths: (!a.paths.is_empty()).then(|| a.paths.clone()),
                index: a.index.clone(),
                options: FreeOptions { batch_size: a.batch_size, sync: false, recursive: !a.no_recursive },
            };
            let target = Target { paths: &a.paths, index: a.index.as_deref(), id: a.id.as_deref() };
            act::<FreeProgress, _>(ctx, "free", &a.mode, &body, target).await
        }
        JobCommand::Rebalance(a) => rebalance::run(ctx, a).await,
        JobCommand::List => {
            let load: Results<LoadProgress> = ctx.get("load", &[]).await?;
            let free: Results<FreeProgress> = ctx.get("free", &[]).await?;
            let rebalance: Results<RebalanceProgress> = ctx.get("rebalance", &[]).await?;
            if ctx.json {
                let all =
                    serde_json::json!({ "load": load.results, "free": free.results, "rebalance": rebalance.results });
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(());
            }
            for j in &load.results {
                println!("load  {}  {:<10} {}", j.id, j.state, j.summary());
            }
            for j in &free.results {
                println!("free  {}  {:<10} {}", j.id, j.state, j.summary());
            }
            for j in &rebalance.results {
                println!("rebalance  {}  {:<10} {}", j.id, j.state, j.summary());
            }
            Ok(())
        }
    }
}

/// A stop's `410` (the job is stopped or finished already) as one line naming the job and its state.
pub(super) fn not_running(e: anyhow::Error, endpoint: &str, id: &str, state: &str) -> anyhow::Error {
    if super::http::is_status(&e, 410) {
        anyhow::anyhow!("{endpoint} job {id} is not running ({state}): nothing to stop")
    } else {
        e
    }
}

/// Which job a command is about: its paths, its index, or its id.
struct Target<'a> {
    paths: &'a [String],
    index: Option<&'a str>,
    id: Option<&'a str>,
}

async fn act<P: PathJob, B: Serialize>(
    ctx: &Ctx,
    endpoint: &str,
    mode: &Mode,
    body: &B,
    target: Target<'_>,
) -> anyhow::Result<()> {
    if mode.progress {
        let j: P = find(ctx, endpoint, &target).await?;
        return ctx.print(&j, || format!("{} {}  {}", j.id(), j.state(), j.summary()));
    }
    if mode.stop {
        let j: P = find(ctx, endpoint, &target).await?;
        let r: StatusBody = ctx
            .send(Method::DELETE, endpoint, &JobId { id: j.id().to_string() })
            .await
            .map_err(|e| not_running(e, endpoint, j.id(), j.state()))?;
        return ctx.print(&r, || format!("stopped {endpoint} job {}", j.id()));
    }
    if target.id.is_some() {
        bail!("--id names an existing job: use it with --progress or --stop");
    }
    let (id, existing) = submit(ctx, endpoint, body).await?;
    if !mode.sync {
        let what = if existing { "a job for these paths exists (resumed if stopped)" } else { "submitted" };
        return ctx.print(&JobId { id: id.clone() }, || format!("{endpoint} job {id}: {what}"));
    }
    follow::<P>(ctx, endpoint, &id).await
}

/// Posts a job: its id, and whether it is an existing twin (`409`) rather than a new job.
async fn submit<B: Serialize>(ctx: &Ctx, endpoint: &str, body: &B) -> anyhow::Result<(String, bool)> {
    let resp = ctx
        .coordinators
        .send(reqwest::Method::POST, &format!("/api/v1/{endpoint}"), |r| r.json(body))
        .await
        .with_context(|| ctx.unreachable())?;
    let status = resp.status().as_u16();
    let id = match status {
        200 | 409 => resp.json::<JobId>().await?.id,
        _ => super::http::decode::<JobId>(resp).await?.id,
    };
    Ok((id, status == 409))
}

/// The job with `target.id`, or the newest job for exactly these paths (as a set) or this index.
async fn find<P: PathJob>(ctx: &Ctx, endpoint: &str, target: &Target<'_>) -> anyhow::Result<P> {
    if let Some(id) = target.id {
        return ctx.get(endpoint, &[("id", id)]).await;
    }
    let all: Results<P> = ctx.get(endpoint, &[]).await?;
    let mut want: Vec<&String> = target.paths.iter().collect();
    want.sort();
    want.dedup();
    all.results
        .into_iter()
        .find(|j| {
            let (p, i) = j.paths();
            let mut have: Vec<&String> = p.iter().collect();
            have.sort();
            have.dedup();
            match target.index {
                Some(ix) => i == ix,
                None => have == want,
            }
        })
        .ok_or_else(|| anyhow!("no {endpoint} job found for these paths"))
}

/// Waits until the job is no longer running, redrawing a live bar on stderr when it is a terminal, then
/// prints the final progress on stdout; fails when the job failed.
async fn follow<P: Progress>(ctx: &Ctx, endpoint: &str, id: &str) -> anyhow::Result<()> {
    let live = std::io::stderr().is_terminal();
    let start = std::time::Instant::now();
    let mut drawn = false;
    loop {
        let j: P = ctx.get(endpoint, &[("id", id)]).await?;
        let running = matches!(j.state(), "RUNNING" | "VERIFYING");
        if live && running {
            let mut err = std::io::stderr().lock();
            write!(err, "\r{}", bar(&j, start.elapsed()))?;
            err.flush()?;
            drawn = true;
        }
        if !running {
            if drawn {
                // Clears the bar so that the terminal shows only the final line below.
                eprint!("\r{:width$}\r", "", width = bar(&j, start.elapsed()).len());
            }
            ctx.print(&j, || format!("{} {}  {}", j.id(), j.state(), j.summary()))?;
            if j.state() == "FAILED" {
                bail!("{endpoint} job {id} FAILED");
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The live bar: state, progress, throughput since `elapsed` began, and the time left at that rate.
fn bar<P: Progress>(j: &P, elapsed: Duration) -> String {
    let (_, _, done, total, _) = j.numbers();
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let eta = if rate > 0.0 && total > done { format!("{:.0}s", (total - done) as f64 / rate) } else { "-".into() };
    format!("{:<10} {}  {}/s  ETA {eta}   ", j.state(), j.summary(), human(rate as u64))
}

pub(super) fn line<P: Progress>(j: &P) -> String {
    let (files, total_files, bytes, total_bytes, failed) = j.numbers();
    let pct = (bytes * 100).checked_div(total_bytes).unwrap_or(100);
    let width = 20usize;
    let filled = (pct as usize * width / 100).min(width);
    format!(
        "[{}{}] {pct:>3}%  files {files}/{total_files}  bytes {}/{}  failed {failed}",
        "#".repeat(filled),
        "-".repeat(width - filled),
        human(bytes),
        human(total_bytes)
    )
}

fn human(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1}{}", UNITS[u])
}
