//! The runner: one background task per running job, from the start of a run to its final state.
//!
//! - **The kind's work.** [`run`] hands the job to its kind's [`JobKindRunner`], chosen in
//!   [`runner_for`] (the one match on the kind): a load (`load`) lists its paths, sends each file to its
//!   owners on the ring of the workers live when the run started, and verifies if asked; a free (`free`)
//!   sends each file to every live worker; a rebalance (`rebalance`) plans once, then loads and prunes.
//!   Each runs its passes on the shared [`Execution`](super::execution::Execution) (batches, retries,
//!   progress, checkpoints).
//! - **The end of a run.** `Ok` from the kind: the job `SUCCEEDED`, or `FAILED` when a file failed (or a
//!   rebalance target was unreachable). A user stop leaves it `STOPPED`; a shutdown leaves it
//!   `RUNNING`/`VERIFYING` to be resumed by the next coordinator; a full quota ends it `FAILED` with
//!   `quotaCheckError`. A finished job's failed-file list is deduplicated (`failed_list`), and the record
//!   is persisted a last time.

use super::ctx::JobsCtx;
use super::failed_list;
use super::free::FreeRunner;
use super::job::{Job, Stop};
use super::kind::JobKindRunner;
use super::load::LoadRunner;
use super::rebalance::RebalanceRunner;
use super::record::JobKind;
use loam_core::job_api::JobState;
use loam_core::time::now_millis;
use std::sync::Arc;
use tokio::sync::watch;

/// Runs `job` until it finishes or is stopped.
pub async fn run(ctx: Arc<JobsCtx>, job: Arc<Job>) {
    let mut stop = job.stop_signal();
    job.update(|r| {
        r.run_started_ms = Some(now_millis());
        r.counters = r.checkpoint.counters.clone();
    });
    let result = run_phases(&ctx, &job, &mut stop).await;
    let rec = job.update(|r| {
        r.end_run();
        match result {
            Ok(()) => {
                r.state = if r.failed() { JobState::Failed } else { JobState::Succeeded };
                r.end_ms = Some(now_millis());
                r.running_state.clear();
            }
            Err(Stop::User) => r.state = JobState::Stopped,
            Err(Stop::Quota) => {
                r.state = JobState::Failed;
                r.end_ms = Some(now_millis());
                r.running_state.clear();
            }
            Err(Stop::No | Stop::Shutdown) => {}
        }
        r.clone()
    });
    if rec.state.is_finished() && rec.counters.failed_files > 0 {
        match failed_list::dedupe(&failed_list::path(&ctx, &rec.id)) {
            Ok(p) => job.update(|r| r.failed_file_list_path = p.display().to_string()),
            Err(e) => tracing::warn!(job = %rec.id, "cannot write the failed-file list: {e}"),
        }
    }
    if let Err(e) = job.persist(&ctx.fence, &ctx.cluster).await {
        tracing::error!(job = %rec.id, "cannot persist the job's final state: {e}");
    }
    tracing::info!(job = %rec.id, state = rec.state.as_str(), "job run ended");
}

async fn run_phases(ctx: &JobsCtx, job: &Job, stop: &mut watch::Receiver<Stop>) -> Result<(), Stop> {
    // A stop requested before this runner subscribed would not show as a change.
    let early = *stop.borrow();
    if early != Stop::No {
        return Err(early);
    }
    runner_for(job.snapshot().kind).run(ctx, job, stop).await
}

/// The runner of each job kind: the one place that chooses by kind how a job runs.
pub fn runner_for(kind: JobKind) -> &'static dyn JobKindRunner {
    match kind {
        JobKind::Load => &LoadRunner,
        JobKind::Free => &FreeRunner,
        JobKind::Rebalance => &RebalanceRunner,
    }
}
