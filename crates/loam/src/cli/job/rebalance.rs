//! `loam job rebalance --target ID|ALL`: `/api/v1/rebalance`. A rebalance is named by its target, so
//! `--progress` and `--stop` take the same `--target` as the submission (the newest job of that target,
//! and its unfinished job). `--sync` follows the job with the same live bar on stderr as load and free;
//! its line counts workers and the files loaded, preserved and pruned.

use super::{Mode, Progress, follow, human, submit};
use crate::cli::http::Ctx;
use clap::Args;
use loam_core::coordinator_api::StatusBody;
use loam_core::job_api::{JobId, RebalanceOptions, RebalanceProgress, RebalanceRequest, RebalanceStop};
use reqwest::Method;

/// `loam job rebalance`.
#[derive(Args, Debug)]
pub struct RebalanceArgs {
    /// The worker whose cache to rebalance (`worker-<uuid>`, see `loam nodes`), or ALL.
    #[arg(long)]
    pub target: String,
    /// Files per batch sent to one worker.
    #[arg(long, default_value_t = 0)]
    pub load_batch_size: u64,
    /// Bytes per second per worker loaded, copied or read, e.g. `100MiB` (0: unlimited).
    #[arg(long, default_value = "0", value_parser = loam_core::size::parse_size)]
    pub load_bandwidth: u64,
    /// Cached bytes per second per worker pruned (0: unlimited).
    #[arg(long, default_value = "0", value_parser = loam_core::size::parse_size)]
    pub prune_bandwidth: u64,
    /// Load only: prune nothing.
    #[arg(long)]
    pub skip_prune: bool,
    /// A worker owns the files of which it is among the first N ring owners (default 1).
    #[arg(long, default_value_t = 0)]
    pub replicas: u64,
    /// What to do.
    #[command(flatten)]
    pub mode: Mode,
}

impl Progress for RebalanceProgress {
    fn id(&self) -> &str {
        &self.id
    }
    fn state(&self) -> &str {
        &self.state
    }
    fn numbers(&self) -> (u64, u64, u64, u64, u64) {
        // A rebalance knows no totals ahead: the bar shows what moved and its rate, without an ETA.
        let files = self.files_loaded + self.files_preserved + self.files_pruned;
        (files, files, self.bytes_loaded + self.bytes_pruned, 0, self.files_failed)
    }
    fn summary(&self) -> String {
        let done = self.succeeded_workers + self.failed_workers;
        format!(
            "workers {done}/{} (failed {})  loaded {} ({})  preserved {} ({})  pruned {} ({})  failed {}",
            self.total_workers,
            self.failed_workers,
            self.files_loaded,
            human(self.bytes_loaded),
            self.files_preserved,
            human(self.bytes_preserved),
            self.files_pruned,
            human(self.bytes_pruned),
            self.files_failed
        )
    }
}

/// Runs `loam job rebalance`.
pub async fn run(ctx: &Ctx, a: RebalanceArgs) -> anyhow::Result<()> {
    let by_target = [("target", a.target.as_str())];
    if a.mode.progress {
        let j: RebalanceProgress = ctx.get("rebalance", &by_target).await?;
        return ctx.print(&j, || format!("{} {}  {}", j.id, j.state, j.summary()));
    }
    if a.mode.stop {
        // Only one job per target can be unfinished, and it is that target's newest.
        let j: RebalanceProgress = ctx.get("rebalance", &by_target).await?;
        let stop = RebalanceStop { id: None, target: Some(a.target.clone()) };
        let r: StatusBody = ctx
            .send(Method::DELETE, "rebalance", &stop)
            .await
            .map_err(|e| super::not_running(e, "rebalance", &j.id, &j.state))?;
        return ctx.print(&r, || format!("stopped rebalance job {}", j.id));
    }
    let body = RebalanceRequest {
        target: a.target.clone(),
        options: RebalanceOptions {
            load_batch_size: a.load_batch_size,
            load_bandwidth: a.load_bandwidth,
            prune_bandwidth: a.prune_bandwidth,
            skip_prune: a.skip_prune,
            replicas: a.replicas,
        },
    };
    let (id, existing) = submit(ctx, "rebalance", &body).await?;
    if !a.mode.sync {
        let what = if existing { "a rebalance of this target exists (resumed if stopped)" } else { "submitted" };
        return ctx.print(&JobId { id: id.clone() }, || format!("rebalance job {id}: {what}"));
    }
    follow::<RebalanceProgress>(ctx, "rebalance", &id).await
}
