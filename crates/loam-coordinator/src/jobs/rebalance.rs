//! Rebalance jobs (spec "Rebalance"): bring the caches of the target worker(s) in line with the current
//! hash ring. Files the ring assigns to a target but that it lacks are loaded onto it — copied from a
//! worker that holds them (the target fetches their pages from that peer's page API, and reads the UFS
//! only when the copy fails) — and files it holds but no longer owns are pruned, unless `skipPrune`.
//!
//! - **Same machinery as load and free.** A rebalance is a [`JobKind::Rebalance`] record in the same
//!   store prefix scheme, with the same submission (twins: one unfinished rebalance per target, `409`),
//!   stop and resume, retention, and coordinator-restart resume. Its runner plans (`plan`), then runs the
//!   load runner's [`Execution`] twice over the plan's items: the loads (worker `/v1/internal/load` with a
//!   `source` per file, bandwidth `loadBandwidth`), then the prunes (`/v1/internal/free`, bandwidth
//!   `pruneBandwidth`). Batches, retries, progress, checkpoints and the failed-file list are the load's.
//! - **Exact resume.** The plan is made once and kept in a file (see `plan`); the job's cursor indexes its
//!   items, so a stopped or restarted job continues with the same items and counts nothing twice. If the
//!   file is gone (the Coordinator moved to another disk), the job plans again from the current caches
//!   and counts from zero.
//! - **Workers.** `totalWorkers` are the targets; a target is running while it has undecided items,
//!   succeeded when all are done, failed when one failed or it could not be planned for (not live, or
//!   could not list its files, noted in `errorMessage` under its id).
//! - **Decision:** a target must be a registered worker (online or not) or `ALL` (any case); a registered
//!   worker that is offline when the job runs fails as a target.

mod plan;

use super::ctx::JobsCtx;
use super::failed_list::fail_path;
use super::job::Job;
use super::job::Stop;
use super::record::{ALL, Checkpoint, Counters, JobKind, JobRecord, RebalanceState};
use super::runner::{DEFAULT_BATCH_SIZE, Execution, Plan};
use super::tracker::Tracker;
use super::workers::live_workers;
use super::{JobError, JobService, Submitted};
use loam_core::job_api::{RebalanceProgress, RebalanceRequest, RebalanceStop};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

pub use plan::plan_path;

impl JobService {
    /// Submits a rebalance of `req.target`.
    pub async fn submit_rebalance(&self, req: RebalanceRequest) -> Result<Submitted, JobError> {
        let target = self.canonical_target(&req.target).await?;
        let twin_key = vec![format!("rebalance:{target}")];
        let mut rec =
            JobRecord::new(uuid::Uuid::new_v4().to_string(), JobKind::Rebalance, Vec::new(), String::new(), twin_key);
        rec.rebalance = RebalanceState { target, options: req.options, plan: None };
        self.create(rec).await
    }

    /// `ALL`, or a registered worker's id; anything else is refused.
    async fn canonical_target(&self, target: &str) -> Result<String, JobError> {
        let target = target.trim();
        if target.is_empty() {
            return Err(JobError::MissingParameters("`target` is empty".into()));
        }
        if target.eq_ignore_ascii_case(ALL) {
            return Ok(ALL.to_string());
        }
        let members = loam_store::membership::list_workers(self.ctx.store.as_ref(), &self.ctx.cluster).await?;
        if members.iter().any(|m| m.record.worker_id().is_some_and(|id| id.to_string() == target)) {
            Ok(target.to_string())
        } else {
            Err(JobError::InvalidInput(format!("unknown worker id: {target} (expected a registered worker or ALL)")))
        }
    }

    /// Stops the rebalance with `id`, or the unfinished one of `target`; `Gone` when there is none.
    pub async fn stop_rebalance(&self, req: RebalanceStop) -> Result<(), JobError> {
        match (req.id, req.target) {
            (Some(id), None) => self.stop(JobKind::Rebalance, &id).await,
            (None, Some(target)) => {
                let target = if target.eq_ignore_ascii_case(ALL) { ALL.to_string() } else { target };
                let open = self
                    .records(JobKind::Rebalance)
                    .await?
                    .into_iter()
                    .find(|r| r.rebalance.target == target && !r.state.is_finished());
                match open {
                    Some(r) => self.stop(JobKind::Rebalance, &r.id).await,
                    None => Err(JobError::Gone),
                }
            }
            (Some(_), Some(_)) => Err(JobError::MissingParameters("give either `id` or `target`, not both".into())),
            (None, None) => Err(JobError::MissingParameters("one of `id` or `target` is required".into())),
        }
    }

    /// The newest rebalance of `target`.
    pub async fn rebalance_of_target(&self, target: &str) -> Result<RebalanceProgress, JobError> {
        let target = if target.eq_ignore_ascii_case(ALL) { ALL } else { target };
        let newest = self.records(JobKind::Rebalance).await?.into_iter().find(|r| r.rebalance.target == target);
        newest.map(|r| r.rebalance_progress()).ok_or_else(|| JobError::NoJobForTarget(target.to_string()))
    }

    /// A rebalance job's progress.
    pub async fn rebalance_progress(&self, id: &str) -> Result<RebalanceProgress, JobError> {
        Ok(self.record(JobKind::Rebalance, id).await?.rebalance_progress())
    }
}

/// Runs a rebalance: plans (unless a usable plan exists), loads, then prunes.
pub(super) async fn run(ctx: &JobsCtx, job: &Job, stop: &mut watch::Receiver<Stop>) -> Result<(), Stop> {
    let rec = job.snapshot();
    let path = plan_path(ctx, &rec.id);
    let live = match live_workers(ctx.store.as_ref(), &ctx.cluster).await {
        Ok(l) => l,
        Err(e) => {
            let delta = Counters { failed_files: 1, ..Default::default() };
            fail_path(ctx, job, &rec.rebalance.target, &format!("cannot list the workers: {e}"), &delta);
            return Ok(());
        }
    };
    let usable = match &rec.rebalance.plan {
        Some(summary) => match plan::check(&path, &rec.id, summary).await {
            Ok(()) => Some(summary.clone()),
            Err(e) => {
                tracing::warn!(job = %rec.id, "planning again: {e}");
                None
            }
        },
        None => None,
    };
    let summary = match usable {
        Some(s) => s,
        None => {
            job.update(|r| r.running_state = "PLANNING".into());
            let made = tokio::select! {
                biased;
                why = stopped(stop) => return Err(why),
                made = plan::make(ctx, &rec.id, &rec.rebalance, &live, &path) => made,
            };
            let summary = match made {
                Ok(s) => s,
                Err(e) => {
                    let delta = Counters { failed_files: 1, ..Default::default() };
                    fail_path(ctx, job, &rec.rebalance.target, &e, &delta);
                    return Ok(());
                }
            };
            // Counting starts over with the plan: the old counters indexed another plan's items.
            job.update(|r| {
                r.checkpoint = Checkpoint::default();
                r.counters = Counters::default();
                for (w, e) in &summary.unreachable {
                    r.note_error(w, e);
                }
                r.rebalance.plan = Some(summary.clone());
            });
            if let Err(e) = job.persist(ctx.store.as_ref(), &ctx.cluster).await {
                tracing::warn!(job = %rec.id, "cannot persist the plan summary (will retry): {e}");
            }
            summary
        }
    };
    let live: Arc<HashMap<String, _>> = Arc::new(live.into_iter().map(|w| (w.id.to_string(), w)).collect());
    let o = &rec.rebalance.options;
    let batch_size = if o.load_batch_size == 0 { DEFAULT_BATCH_SIZE } else { o.load_batch_size as usize };
    let phases = [
        (Plan::Rebalance { prune: false, bandwidth: o.load_bandwidth }, summary.loads),
        (Plan::Rebalance { prune: true, bandwidth: o.prune_bandwidth }, summary.items),
    ];
    for (phase, end) in &phases {
        let checkpoint = job.snapshot().checkpoint;
        if checkpoint.cursor >= *end {
            continue;
        }
        let events = plan::events(&path, checkpoint.cursor, *end, live.clone());
        let tracker = Tracker::new(checkpoint);
        Execution { ctx, job, plan: phase, batch_size, tracker, quota: None }.run(events, stop).await?;
    }
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::debug!(job = %rec.id, "cannot remove the plan file: {e}");
    }
    Ok(())
}

/// Resolves when the job is asked to stop, with why.
async fn stopped(stop: &mut watch::Receiver<Stop>) -> Stop {
    loop {
        if stop.changed().await.is_err() {
            return Stop::Shutdown;
        }
        let why = *stop.borrow();
        if why != Stop::No {
            return why;
        }
    }
}
