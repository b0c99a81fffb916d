//! Free jobs (`/api/v1/free`): list the paths (recursively unless `recursive` is off) and send each file
//! to *every* live worker (`/v1/internal/free`): each drops what it holds, so no copy is missed whatever
//! ring or replica setting cached it. A file is freed once every worker answered; one that no worker
//! could be asked (none live) is trivially freed. A worker that cannot be reached is retried for the retry
//! window at its address of now (a restarted worker may serve on another port); one that stays away fails
//! its files: it would bring its pages back when it returns.

use super::ctx::JobsCtx;
use super::execution::{Execution, batch_size, open_listing};
use super::job::{Job, Stop};
use super::kind::{BatchPlan, JobKindRunner, Planned};
use super::record::Counters;
use super::tracker::{Outcome, Tracker};
use super::workers::{LiveView, WorkerClient, live_workers};
use futures::future::BoxFuture;
use futures::stream::StreamExt;
use loam_client::{PeerError, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::job_api::{FileResult, JobState};
use tokio::sync::watch;

/// Runs free jobs.
pub struct FreeRunner;

impl JobKindRunner for FreeRunner {
    fn run<'a>(
        &'a self,
        ctx: &'a JobsCtx,
        job: &'a Job,
        stop: &'a mut watch::Receiver<Stop>,
    ) -> BoxFuture<'a, Result<(), Stop>> {
        Box::pin(run(ctx, job, stop))
    }
}

async fn run(ctx: &JobsCtx, job: &Job, stop: &mut watch::Receiver<Stop>) -> Result<(), Stop> {
    let rec = job.snapshot();
    let Some((lister, source)) = open_listing(ctx, job, rec.free.recursive).await else { return Ok(()) };
    let workers = live_workers(ctx.store.as_ref(), &ctx.cluster).await.unwrap_or_default();
    let batches = FreeBatches { live: LiveView::new(workers.clone()), workers };
    if rec.state == JobState::Running {
        let tracker = Tracker::new(rec.checkpoint.clone());
        Execution { ctx, job, plan: &batches, batch_size: batch_size(rec.free.batch_size), tracker, quota: None }
            .run(lister.list(&source).skip(rec.checkpoint.cursor as usize).boxed(), stop)
            .await?;
    }
    Ok(())
}

/// How a free's files are assigned, sent and counted.
struct FreeBatches {
    /// The workers live when the run started.
    workers: Vec<WorkerEndpoint>,
    /// The live workers, re-read when one cannot be reached.
    live: LiveView,
}

impl BatchPlan for FreeBatches {
    fn assign(&self, _uri: &str) -> Option<Vec<WorkerEndpoint>> {
        Some(self.workers.clone())
    }

    fn refresh<'a>(&'a self, ctx: &'a JobsCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.live.refresh(ctx.store.as_ref(), &ctx.cluster).await;
        })
    }

    /// Every worker must drop its copy itself: the same worker, wherever it serves now.
    fn reassign(&self, _uri: &str, from: &WorkerId, _others: &[WorkerId]) -> Option<WorkerEndpoint> {
        self.live.find(from)
    }

    fn unowned(&self, length: u64) -> Option<Counters> {
        // No worker holds anything: the file is trivially freed.
        Some(Counters { freed_files: 1, freed_bytes: length, ..Default::default() })
    }

    fn run_batch(
        &self,
        client: &WorkerClient,
        worker: &WorkerEndpoint,
        files: &[Planned],
    ) -> BoxFuture<'static, Result<Vec<FileResult>, PeerError>> {
        let uris = files.iter().map(|(_, u, _)| u.clone()).collect();
        let (client, worker) = (client.clone(), worker.clone());
        Box::pin(async move { client.free(&worker, uris, 0).await })
    }

    fn progress(&self, _worker: &WorkerId, length: u64, outcome: &Outcome) -> Counters {
        match outcome {
            Outcome::Failed(_) => Counters { failed_files: 1, failed_bytes: length, ..Default::default() },
            Outcome::Done { .. } => Counters { freed_files: 1, freed_bytes: length, ..Default::default() },
        }
    }
}
