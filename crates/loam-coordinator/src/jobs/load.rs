//! Load jobs (`/api/v1/load`): list the paths (or the index file's paths), send each file that passes
//! the filter to its `replicas` owners on the ring of the workers live when this run started, and, with
//! `verify`, ask the owners afterwards whether every page is there (`verify`).
//!
//! - **The ring follows the cluster when a worker fails**: files go to their owners on the ring of the
//!   workers live when the run started; the files of a worker that cannot be reached are retried (see
//!   `execution`) and, once the ring no longer has it (its lease expired), re-planned onto their owners on
//!   the ring of now, replicas on distinct workers. A worker that comes back in time gets its own files.
//! - **Batches** go to `/v1/internal/load` with the listed length, ETag and modification time, so a worker
//!   need not stat the file again, and the job's `bandwidth` (bytes per second per worker).
//! - **Quotas**: a load that caches pages carries a quota guard (`quota`) through its pass; a
//!   metadata-only load caches no pages, so quotas neither refuse nor stop it.
//! - **Counting**: a file loaded counts its bytes (none for metadata only) and, when not empty, one
//!   `loadedNonEmptyFiles`; a file every owner skipped as cached counts `skippedBytes`.

use super::ctx::JobsCtx;
use super::execution::{Execution, batch_size, open_listing};
use super::job::{Job, Stop};
use super::kind::{BatchPlan, JobKindRunner, Planned};
use super::quota::QuotaGuard;
use super::record::Counters;
use super::tracker::{Outcome, Tracker};
use super::workers::{LiveView, WorkerClient, live_workers, ring};
use super::{repair, verify};
use futures::future::BoxFuture;
use futures::stream::StreamExt;
use loam_client::{PeerError, Ring, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::job_api::{FileResult, JobState, LoadTaskFile};
use parking_lot::RwLock;
use regex::Regex;
use tokio::sync::watch;

/// Runs load jobs.
pub struct LoadRunner;

impl JobKindRunner for LoadRunner {
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
    let Some((lister, source)) = open_listing(ctx, job, true).await else { return Ok(()) };
    let workers = live_workers(ctx.store.as_ref(), &ctx.cluster).await.unwrap_or_default();
    let o = &rec.load;
    let batches = LoadBatches {
        ring: RwLock::new(ring(&workers)),
        live: LiveView::new(workers.clone()),
        replicas: o.replicas.max(1) as usize,
        filter: (!o.file_filter_regex.is_empty()).then(|| Regex::new(&o.file_filter_regex).ok()).flatten(),
        skip: o.skip_if_exists,
        metadata_only: o.load_metadata_only,
        bandwidth: o.bandwidth,
    };
    let batch_size = batch_size(o.batch_size);
    if rec.state == JobState::Running {
        let quota = if batches.metadata_only { None } else { QuotaGuard::new(ctx, job, lister.table()) };
        Execution { ctx, job, plan: &batches, batch_size, tracker: Tracker::new(rec.checkpoint.clone()), quota }
            .run(lister.list(&source).skip(rec.checkpoint.cursor as usize).boxed(), stop)
            .await?;
    }
    // The ring of now: workers that left during the pass may have taken loaded files with them.
    let then = ring(&workers);
    let now = match live_workers(ctx.store.as_ref(), &ctx.cluster).await {
        Ok(live) => ring(&live),
        Err(_) => batches.ring.read().clone(),
    };
    let fix = repair::Repair {
        then: &then,
        now: &now,
        replicas: batches.replicas,
        filter: batches.filter.as_ref(),
        metadata_only: batches.metadata_only,
        bandwidth: batches.bandwidth,
    };
    if rec.state == JobState::Running && fix.needed() {
        repair::repair(ctx, job, &fix, &lister, &source, batch_size, stop).await?;
    }
    if o.verify {
        let ring = now.clone();
        let check = verify::Check {
            ring: &ring,
            replicas: batches.replicas,
            filter: batches.filter.as_ref(),
            metadata_only: batches.metadata_only,
        };
        verify::verify(ctx, job, &check, &lister, &source, batch_size, stop).await?;
    }
    Ok(())
}

/// How a load's files are assigned, sent and counted.
struct LoadBatches {
    /// The ring of `live`.
    ring: RwLock<Ring>,
    /// The live workers: when the run started, re-read when a worker cannot be reached.
    live: LiveView,
    /// Owners per file.
    replicas: usize,
    /// `fileFilterRegex`.
    filter: Option<Regex>,
    /// `skipIfExists`.
    skip: bool,
    /// `loadMetadataOnly`.
    metadata_only: bool,
    /// Bytes per second per worker (0: unlimited).
    bandwidth: u64,
}

impl BatchPlan for LoadBatches {
    fn assign(&self, uri: &str) -> Option<Vec<WorkerEndpoint>> {
        if self.filter.as_ref().is_some_and(|re| !re.is_match(uri)) {
            return None;
        }
        Some(self.ring.read().lookup(uri, self.replicas).into_iter().map(|(_, w)| w.clone()).collect())
    }

    fn refresh<'a>(&'a self, ctx: &'a JobsCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.live.refresh(ctx.store.as_ref(), &ctx.cluster).await {
                *self.ring.write() = ring(&self.live.workers());
            }
        })
    }

    fn reassign(&self, uri: &str, from: &WorkerId, others: &[WorkerId]) -> Option<WorkerEndpoint> {
        let ring = self.ring.read();
        if let Some((_, w)) = ring.lookup(uri, self.replicas).into_iter().find(|(_, w)| w.id == *from) {
            return Some(w.clone());
        }
        let all = ring.lookup(uri, ring.len());
        all.into_iter().map(|(_, w)| w).find(|w| w.id != *from && !others.contains(&w.id)).cloned()
    }

    fn run_batch(
        &self,
        client: &WorkerClient,
        worker: &WorkerEndpoint,
        files: &[Planned],
    ) -> BoxFuture<'static, Result<Vec<FileResult>, PeerError>> {
        let files = files
            .iter()
            .map(|(_, uri, meta)| LoadTaskFile {
                ufs_uri: uri.clone(),
                skip_if_exists: self.skip,
                metadata_only: self.metadata_only,
                length: Some(meta.0),
                etag: meta.1.etag.clone(),
                modified_ms: meta.1.modified_ms,
                source: None,
            })
            .collect();
        let (client, worker, bandwidth) = (client.clone(), worker.clone(), self.bandwidth);
        Box::pin(async move { client.load(&worker, files, bandwidth).await })
    }

    fn progress(&self, _worker: &WorkerId, length: u64, outcome: &Outcome) -> Counters {
        match outcome {
            Outcome::Failed(_) => Counters { failed_files: 1, failed_bytes: length, ..Default::default() },
            Outcome::Done { skipped: true, .. } => Counters { skipped_bytes: length, ..Default::default() },
            // Metadata-only loads move no data: the file counts as loaded, its bytes do not.
            Outcome::Done { .. } => Counters {
                loaded_bytes: if self.metadata_only { 0 } else { length },
                loaded_non_empty_files: (length > 0) as u64,
                ..Default::default()
            },
        }
    }
}
