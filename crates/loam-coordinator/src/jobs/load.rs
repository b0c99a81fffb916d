//! Load jobs (`/api/v1/load`): list the paths (or the index file's paths), send each file that passes
//! the filter to its `replicas` owners on the ring of the workers live when this run started, and, with
//! `verify`, ask the owners afterwards whether every page is there (`verify`).
//!
//! - **The ring is a snapshot**: a worker that dies mid-job fails its files instead of silently moving
//!   them; a resubmission plans on the new ring.
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
use super::verify;
use super::workers::{WorkerClient, live_workers, ring};
use futures::future::BoxFuture;
use futures::stream::StreamExt;
use loam_client::{PeerError, Ring, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::job_api::{FileResult, JobState, LoadTaskFile};
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
        ring: ring(&workers),
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
    if o.verify {
        let check = verify::Check {
            ring: &batches.ring,
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
    /// The live workers' ring when the run started.
    ring: Ring,
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
        Some(self.ring.lookup(uri, self.replicas).into_iter().map(|(_, w)| w.clone()).collect())
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
