//! Rebalance jobs (spec "Rebalance"): bring the caches of the target worker(s) in line with the current
//! hash ring. Files the ring assigns to a target but that it lacks are loaded onto it — copied from a
//! worker that holds them (the target fetches their pages from that peer's page API, and reads the UFS
//! only when the copy fails) — and files it holds but no longer owns are pruned, unless `skipPrune`.
//!
//! - **Same machinery as load and free.** A rebalance is a `JobKind::Rebalance` record in the same
//!   store prefix scheme (its part of the record is `record::RebalanceState`), with the same submission
//!   (`JobService::submit_rebalance`; twins: one unfinished rebalance per target, `409`), stop and resume,
//!   retention, and coordinator-restart resume. Its runner ([`RebalanceRunner`]) plans (`plan`), then runs
//!   the `Execution` twice over the plan's items: the loads (worker `/v1/internal/load` with a `source`
//!   per file, bandwidth `loadBandwidth`), then the prunes (`/v1/internal/free`, bandwidth
//!   `pruneBandwidth`), each pass with its `RebalanceBatches`. Batches, retries, progress, checkpoints
//!   and the failed-file list are the load's.
//! - **Exact resume.** The plan is made once and kept in the cluster store (`stored`), written through the
//!   leader fence before the first item runs, with a file on the Coordinator's disk as its cache (`plan`);
//!   the job's cursor indexes its items, so a stopped, restarted or failed-over job continues with the same
//!   items on whichever Coordinator leads, and counts nothing twice. A plan missing from the store (never
//!   stored, or damaged) and from this disk is made again from the current caches and counted from zero;
//!   so is a plan over `stored::MAX_STORED_PLAN_BYTES` (kept on its maker's disk only) resumed elsewhere.
//! - **Churn.** A target (or a pruned worker) that cannot be reached is retried for the retry window at its
//!   address of now, so a target restarted on another port gets its items; a source that is down makes
//!   the target read the UFS instead.
//! - **Workers.** `totalWorkers` are the targets; a target is running while it has undecided items,
//!   succeeded when all are done, failed when one failed or it could not be planned for (not live, or
//!   could not list its files, noted in `errorMessage` under its id).
//! - **Decision:** a target must be a registered worker (online or not) or `ALL` (any case); a registered
//!   worker that is offline when the job runs fails as a target.

mod holders;
mod plan;
mod stored;

use super::ctx::JobsCtx;
use super::execution::{Execution, batch_size, tally};
use super::failed_list::fail_path;
use super::job::{Job, Stop};
use super::kind::{BatchPlan, JobKindRunner, Planned};
use super::record::{Checkpoint, Counters};
use super::tracker::{Outcome, Tracker};
use super::workers::{LiveView, WorkerClient, live_workers};
use futures::future::BoxFuture;
use loam_client::{PeerError, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::job_api::{FileResult, LoadTaskFile};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// Runs rebalance jobs.
pub struct RebalanceRunner;

impl JobKindRunner for RebalanceRunner {
    fn run<'a>(
        &'a self,
        ctx: &'a JobsCtx,
        job: &'a Job,
        stop: &'a mut watch::Receiver<Stop>,
    ) -> BoxFuture<'a, Result<(), Stop>> {
        Box::pin(run(ctx, job, stop))
    }

    /// The plan file (a cache of the stored plan).
    fn job_files(&self, ctx: &JobsCtx, id: &str) -> Vec<PathBuf> {
        vec![plan::plan_path(ctx, id)]
    }

    /// The stored plan.
    fn job_prefixes(&self, ctx: &JobsCtx, id: &str) -> Vec<String> {
        vec![stored::prefix(ctx, id)]
    }
}

/// Runs a rebalance: plans (unless a usable plan exists), loads, then prunes.
async fn run(ctx: &JobsCtx, job: &Job, stop: &mut watch::Receiver<Stop>) -> Result<(), Stop> {
    let rec = job.snapshot();
    let path = plan::plan_path(ctx, &rec.id);
    let live = match live_workers(ctx.store.as_ref(), &ctx.cluster).await {
        Ok(l) => l,
        Err(e) => {
            let delta = Counters { failed_files: 1, ..Default::default() };
            fail_path(ctx, job, &rec.rebalance.target, &format!("cannot list the workers: {e}"), &delta);
            return Ok(());
        }
    };
    let usable = match &rec.rebalance.plan {
        Some(summary) => loop {
            match plan::restore(ctx, &path, &rec.id, summary).await {
                Ok(()) => break Some(summary.clone()),
                // Planning again would count from zero: wait for the store instead.
                Err(e @ plan::Unusable::Store(_)) => {
                    tracing::warn!(job = %rec.id, "{e} (retrying)");
                    tokio::select! {
                        biased;
                        why = stopped(stop) => return Err(why),
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(job = %rec.id, "planning again: {e}");
                    break None;
                }
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
            if let Err(e) = job.persist(&ctx.fence, &ctx.cluster).await {
                tracing::warn!(job = %rec.id, "cannot persist the plan summary (will retry): {e}");
            }
            summary
        }
    };
    let o = &rec.rebalance.options;
    let batch_size = batch_size(o.load_batch_size);
    let phases = [
        (
            RebalanceBatches { prune: false, bandwidth: o.load_bandwidth, live: LiveView::new(live.clone()) },
            summary.loads,
        ),
        (
            RebalanceBatches { prune: true, bandwidth: o.prune_bandwidth, live: LiveView::new(live.clone()) },
            summary.items,
        ),
    ];
    let live: Arc<HashMap<String, _>> = Arc::new(live.into_iter().map(|w| (w.id.to_string(), w)).collect());
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

/// How one phase of a rebalance sends its items and counts them: the loads (`prune` false: each item
/// completed or copied onto its target, from its `source` when it has one), then the prunes (each item
/// dropped from its target). `bandwidth` is bytes per second per worker.
struct RebalanceBatches {
    prune: bool,
    bandwidth: u64,
    /// The live workers, re-read when a target cannot be reached.
    live: LiveView,
}

impl BatchPlan for RebalanceBatches {
    fn phase(&self, _listing_done: bool, retrying: bool) -> &'static str {
        match () {
            _ if retrying => "RETRYING",
            _ if self.prune => "PRUNING",
            _ => "LOADING",
        }
    }

    /// Rebalance events come assigned; a plain file has no worker here.
    fn assign(&self, _uri: &str) -> Option<Vec<WorkerEndpoint>> {
        Some(Vec::new())
    }

    fn refresh<'a>(&'a self, ctx: &'a JobsCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.live.refresh(ctx.store.as_ref(), &ctx.cluster).await;
        })
    }

    /// An item belongs to its target: the same worker, wherever it serves now (a restarted target may
    /// serve on another port). A target that stays away fails its items after the retry window.
    fn reassign(&self, _uri: &str, from: &WorkerId, _others: &[WorkerId]) -> Option<WorkerEndpoint> {
        self.live.find(from)
    }

    fn run_batch(
        &self,
        client: &WorkerClient,
        worker: &WorkerEndpoint,
        files: &[Planned],
    ) -> BoxFuture<'static, Result<Vec<FileResult>, PeerError>> {
        let (client, worker, bandwidth) = (client.clone(), worker.clone(), self.bandwidth);
        if self.prune {
            let uris = files.iter().map(|(_, u, _)| u.clone()).collect();
            return Box::pin(async move { client.free(&worker, uris, bandwidth).await });
        }
        // A held file is only completed (a complete one is preserved); a missing one is always loaded,
        // so an item resumed after its batch was abandoned still counts as loaded.
        let files = files
            .iter()
            .map(|(_, uri, meta)| LoadTaskFile {
                ufs_uri: uri.clone(),
                skip_if_exists: meta.1.held,
                metadata_only: false,
                length: None,
                etag: None,
                modified_ms: None,
                source: meta.1.source.clone(),
            })
            .collect();
        Box::pin(async move { client.load(&worker, files, bandwidth).await })
    }

    fn progress(&self, worker: &WorkerId, _length: u64, outcome: &Outcome) -> Counters {
        let d = match (self.prune, outcome) {
            (_, Outcome::Failed(_)) => Counters { failed_files: 1, ..Default::default() },
            (false, Outcome::Done { skipped: true, bytes }) => {
                Counters { preserved_files: 1, preserved_bytes: *bytes, ..Default::default() }
            }
            (false, Outcome::Done { skipped: false, bytes }) => {
                Counters { loaded_files: 1, loaded_bytes: *bytes, ..Default::default() }
            }
            // The worker no longer held it: nothing was pruned.
            (true, Outcome::Done { skipped: true, .. }) => Counters::default(),
            (true, Outcome::Done { skipped: false, bytes }) => {
                Counters { pruned_files: 1, pruned_bytes: *bytes, ..Default::default() }
            }
        };
        tally(d, &worker.to_string(), matches!(outcome, Outcome::Failed(_)))
    }
}
