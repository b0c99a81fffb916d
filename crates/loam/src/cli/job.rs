//! `loam job load|free|list`: distributed load and free jobs through the Coordinator's `/api/v1/load` and
//! `/api/v1/free`. `--submit` (the default) starts a job, `--progress` shows the newest job for the same
//! paths (or index), `--stop` stops it, and `--sync` submits and then redraws a progress line (files,
//! bytes, throughput, ETA) each second until the job is no longer running. `--json` prints the API's
//! objects as they are.

use super::http::Ctx;
use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use loam_core::coordinator_api::{Results, StatusBody};
use loam_core::job_api::{FreeOptions, FreeProgress, FreeRequest, JobId, LoadOptions, LoadProgress, LoadRequest};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::time::Duration;

/// Job commands.
#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Load files into the cache.
    Load(LoadArgs),
    /// Drop files from every worker's cache.
    Free(FreeArgs),
    /// List load and free jobs.
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
    #[arg(long = "path", required_unless_present = "index")]
    pub paths: Vec<String>,
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
    /// UFS bytes per second per worker (0: unlimited).
    #[arg(long, default_value_t = 0)]
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
    #[arg(long = "path", required_unless_present = "index")]
    pub paths: Vec<String>,
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

/// What the two progress objects share, for the progress bar and the lookups.
trait Progress: DeserializeOwned + Serialize {
    fn id(&self) -> &str;
    fn state(&self) -> &str;
    fn paths(&self) -> (&[String], &str);
    /// (files done, files total, bytes done, bytes total, failed files).
    fn numbers(&self) -> (u64, u64, u64, u64, u64);
}

impl Progress for LoadProgress {
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> &str {
        &self.state
    }
    fn paths(&self) -> (&[String], &str) {
        (&self.paths, &self.index)
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
    fn paths(&self) -> (&[String], &str) {
        (&self.paths, &self.index)
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
            act::<LoadProgress, _>(ctx, "load", &a.mode, &body, &a.paths, a.index.as_deref()).await
        }
        JobCommand::Free(a) => {
            let body = FreeRequest {
                paths: (!a.paths.is_empty()).then(|| a.paths.clone()),
                index: a.index.clone(),
                options: FreeOptions { batch_size: a.batch_size, sync: false, recursive: !a.no_recursive },
            };
            act::<FreeProgress, _>(ctx, "free", &a.mode, &body, &a.paths, a.index.as_deref()).await
        }
        JobCommand::List => {
            let load: Results<LoadProgress> = ctx.get("load", &[]).await?;
            let free: Results<FreeProgress> = ctx.get("free", &[]).await?;
            if ctx.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "load": load.results, "free": free.results }))?
                );
                return Ok(());
            }
            for j in &load.results {
                println!("load  {}  {:<10} {}", j.id, j.state, line(j));
            }
            for j in &free.results {
                println!("free  {}  {:<10} {}", j.id, j.state, line(j));
            }
            Ok(())
        }
    }
}

async fn act<P: Progress, B: Serialize>(
    ctx: &Ctx,
    endpoint: &str,
    mode: &Mode,
    body: &B,
    paths: &[String],
    index: Option<&str>,
) -> anyhow::Result<()> {
    if mode.progress {
        let j: P = find(ctx, endpoint, paths, index).await?;
        return ctx.print(&j, || format!("{} {}  {}", j.id(), j.state(), line(&j)));
    }
    if mode.stop {
        let j: P = find(ctx, endpoint, paths, index).await?;
        let r: StatusBody = ctx.send(Method::DELETE, endpoint, &JobId { id: j.id().to_string() }).await?;
        return ctx.print(&r, || format!("stopped {endpoint} job {}", j.id()));
    }
    let url = format!("{}/api/v1/{endpoint}", ctx.coordinator);
    let resp = ctx.http.post(&url).json(body).send().await.map_err(|e| anyhow!("cannot reach the coordinator: {e}"))?;
    let status = resp.status().as_u16();
    let id = match status {
        200 | 409 => resp.json::<JobId>().await?.id,
        _ => super::http::decode::<JobId>(resp).await?.id,
    };
    if !mode.sync {
        let what = if status == 409 { "a job for these paths exists (resumed if stopped)" } else { "submitted" };
        return ctx.print(&JobId { id: id.clone() }, || format!("{endpoint} job {id}: {what}"));
    }
    follow::<P>(ctx, endpoint, &id).await
}

/// The newest job for exactly these paths (as a set) or this index.
async fn find<P: Progress>(ctx: &Ctx, endpoint: &str, paths: &[String], index: Option<&str>) -> anyhow::Result<P> {
    let all: Results<P> = ctx.get(endpoint, &[]).await?;
    let mut want: Vec<&String> = paths.iter().collect();
    want.sort();
    want.dedup();
    all.results
        .into_iter()
        .find(|j| {
            let (p, i) = j.paths();
            let mut have: Vec<&String> = p.iter().collect();
            have.sort();
            have.dedup();
            match index {
                Some(ix) => i == ix,
                None => have == want,
            }
        })
        .ok_or_else(|| anyhow!("no {endpoint} job found for these paths"))
}

/// Redraws a progress line until the job is no longer running; fails when the job failed.
async fn follow<P: Progress>(ctx: &Ctx, endpoint: &str, id: &str) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    loop {
        let j: P = ctx.get(endpoint, &[("id", id)]).await?;
        let running = matches!(j.state(), "RUNNING" | "VERIFYING");
        if ctx.json {
            if !running {
                println!("{}", serde_json::to_string_pretty(&j)?);
            }
        } else {
            let (_, _, done, total, _) = j.numbers();
            let secs = start.elapsed().as_secs_f64().max(0.001);
            let rate = done as f64 / secs;
            let eta =
                if rate > 0.0 && total > done { format!("{:.0}s", (total - done) as f64 / rate) } else { "-".into() };
            print!("\r{:<10} {}  {}/s  ETA {eta}   ", j.state(), line(&j), human(rate as u64));
            std::io::stdout().flush()?;
        }
        if !running {
            if !ctx.json {
                println!();
            }
            if j.state() == "FAILED" {
                bail!("{endpoint} job {id} FAILED");
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn line<P: Progress>(j: &P) -> String {
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
