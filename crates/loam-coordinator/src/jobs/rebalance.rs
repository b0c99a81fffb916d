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

pub use plan::PlanSummary;

use super::job::Stop;
use super::record::{Checkpoint, Counters, JobKind, JobRecord};
use super::runner::{DEFAULT_BATCH_SIZE, Execution, Plan, fail_path};
use super::tracker::Tracker;
use super::workers::live_workers;
use super::{Job, JobError, JobService, JobsCtx, Submitted};
use loam_core::job_api::{RebalanceOptions, RebalanceProgress, RebalanceRequest, RebalanceStop};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// The target meaning every live worker.
pub const ALL: &str = "ALL";

/// What a rebalance record holds besides the common fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RebalanceState {
    /// A worker id, or [`ALL`].
    pub target: String,
    /// The options as submitted.
    pub options: RebalanceOptions,
    /// The plan, once made.
    pub plan: Option<PlanSummary>,
}

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

impl JobRecord {
    /// The rebalance progress object.
    pub fn rebalance_progress(&self) -> RebalanceProgress {
        let c = &self.counters;
        let (mut total, mut running, mut succeeded, mut failed) = (0, 0, 0, 0);
        if let Some(p) = &self.rebalance.plan {
            total = (p.workers.len() + p.unreachable.len()) as u64;
            failed = p.unreachable.len() as u64;
            for (w, items) in &p.workers {
                let t = c.per_worker.get(w).copied().unwrap_or_default();
                match () {
                    _ if t.decided < *items && self.state.is_active() => running += 1,
                    // A stopped job's unfinished targets are neither done nor running.
                    _ if t.decided < *items && !self.state.is_finished() => {}
                    _ if t.failed > 0 || t.decided < *items => failed += 1,
                    _ => succeeded += 1,
                }
            }
        }
        RebalanceProgress {
            id: self.id.clone(),
            start_time: self.start_time(),
            state: self.state.as_str().to_string(),
            running_state: if self.state.is_active() { self.running_state.clone() } else { String::new() },
            error_message: self.error_message.clone(),
            failed_file_list_path: self.failed_file_list_path.clone(),
            time_elapsed_milliseconds: self.elapsed(),
            total_workers: total,
            running_workers: running,
            succeeded_workers: succeeded,
            failed_workers: failed,
            files_loaded: c.loaded_files,
            bytes_loaded: c.loaded_bytes,
            files_preserved: c.preserved_files,
            bytes_preserved: c.preserved_bytes,
            files_pruned: c.pruned_files,
            bytes_pruned: c.pruned_bytes,
            files_failed: c.failed_files,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::record::WorkerTally;
    use loam_core::job_api::JobState;

    #[test]
    fn workers_are_running_then_succeeded_or_failed() {
        let mut r = JobRecord::new("id".into(), JobKind::Rebalance, vec![], String::new(), vec![]);
        let p = r.rebalance_progress();
        assert_eq!((p.total_workers, p.running_workers), (0, 0), "nothing planned yet");
        let workers = [("w1".to_string(), 2), ("w2".to_string(), 1), ("w3".to_string(), 0)].into_iter().collect();
        let unreachable = [("w4".to_string(), "down".to_string())].into_iter().collect();
        r.rebalance.plan = Some(PlanSummary { items: 3, loads: 3, workers, unreachable });
        r.counters.per_worker.insert("w1".into(), WorkerTally { decided: 1, failed: 0 });
        r.counters.per_worker.insert("w2".into(), WorkerTally { decided: 1, failed: 1 });
        let p = r.rebalance_progress();
        assert_eq!((p.total_workers, p.running_workers, p.succeeded_workers, p.failed_workers), (4, 1, 1, 2));
        r.state = JobState::Stopped;
        assert_eq!(r.rebalance_progress().running_workers, 0);
        r.state = JobState::Failed;
        let p = r.rebalance_progress();
        assert_eq!((p.succeeded_workers, p.failed_workers), (1, 3), "w1 never finished");
        assert!(r.failed(), "an unreachable target fails the job");
    }
}
