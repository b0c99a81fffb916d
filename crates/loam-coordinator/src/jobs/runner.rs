//! The runner: one background task per running job, from listing to the final state.
//!
//! - **Planning.** The listing streams ([`super::listing`]); each file is matched against the filter and
//!   assigned: a load file to its `replicas` owners on the ring of the workers live when this run started
//!   (a snapshot, so a worker that dies mid-job fails its files instead of silently moving them; a
//!   resubmission plans on the new ring), a free file to *every* live worker (each frees what it holds,
//!   so no copy is missed whatever ring or replica setting cached it). A rebalance's events come already
//!   assigned to one worker each (`super::rebalance` plans them and runs one [`Execution`] per phase).
//! - **Batches.** Files wait in one bucket per worker and go out as a batch of `batchSize` files; each
//!   worker has at most [`BATCHES_PER_WORKER`] batches in flight. The listing pauses while a full bucket
//!   waits for its worker, and while more than [`MAX_LEAD`] events are listed beyond the cursor (then the
//!   partial buckets are flushed): memory stays bounded however many files the job has.
//! - **Retries.** Files a worker failed (or a whole batch whose call failed) are retried on the same worker
//!   up to [`MAX_ATTEMPTS`] times with exponential backoff from [`RETRY_BACKOFF`]; then they count as failed.
//! - **Progress** lives in the job's record; the record and the tracker's checkpoint are persisted every
//!   [`PERSIST_EVERY`] and at each state change. Failed paths go to `errorMessage` (first 100) and are
//!   appended to `<data_dir>/jobs/<id>.failed`, deduplicated when the job finishes.
//! - **Verify** (load option, `super::verify`) re-lists and asks each owner whether every page of each
//!   loaded file is present.
//! - **Quotas** (`super::quota`): a load reserves each file's bytes under its quota while the file is
//!   planned and undecided, checks its quotas every `quota_check_interval`, and ends `FAILED` with
//!   `quotaCheckError` once one is full.
//! - **Stop.** The stop signal interrupts at once (batches in flight are abandoned: the worker finishes
//!   them, and a resume finds their pages cached). A user stop leaves the job `STOPPED`; a shutdown leaves
//!   it `RUNNING`/`VERIFYING` to be resumed by the next coordinator.

use super::ctx::JobsCtx;
use super::failed_list::{self, fail_path};
use super::job::{Job, Stop};
use super::listing::{FileMeta, Listed, Lister, Source};
use super::quota::QuotaGuard;
use super::record::{Counters, JobKind, WorkerTally};
use super::tracker::{Outcome, Tracker};
use super::workers::{WorkerClient, live_workers, ring};
use futures::stream::{FuturesUnordered, StreamExt};
use loam_client::PeerError;
use loam_client::{Ring, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::job_api::{FileResult, JobState, LoadTaskFile};
use loam_core::time::now_millis;
use regex::Regex;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Default files per batch.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Batches in flight per worker.
pub const BATCHES_PER_WORKER: usize = 4;
/// Most listing events ahead of the cursor.
pub const MAX_LEAD: u64 = 20_000;
/// Attempts per file and worker.
pub const MAX_ATTEMPTS: u32 = 3;
/// Backoff before the first retry (doubled for each later one).
pub const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// How often a running job's record is written.
pub const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// Files waiting for each worker, by worker.
/// A file waiting in a batch: tracker index, UFS URI, and (length, listing metadata) shared by its replicas.
type Planned = (u64, String, Arc<(u64, FileMeta)>);

type Buckets = HashMap<WorkerId, (WorkerEndpoint, Vec<Planned>)>;

/// One file's answer: `(skipped, bytes)` or why it failed.
type FileAnswer = Result<(bool, u64), String>;
type BatchFuture = Pin<Box<dyn Future<Output = (Batch, Result<Vec<FileResult>, PeerError>)> + Send>>;

struct Batch {
    worker: WorkerEndpoint,
    files: Vec<Planned>,
    attempt: u32,
}

/// How files are assigned and sent.
pub(super) enum Plan {
    /// Each file to its `replicas` owners on `ring`.
    Load { ring: Ring, replicas: usize, filter: Option<Regex>, skip: bool, metadata_only: bool, bandwidth: u64 },
    /// Each file to every worker.
    Free { workers: Vec<WorkerEndpoint> },
    /// Files come assigned ([`Listed::Assigned`]): loaded (copied from their source when they have one), or
    /// with `prune` dropped; `bandwidth` bytes per second per worker.
    Rebalance { prune: bool, bandwidth: u64 },
}

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
    if let Err(e) = job.persist(ctx.store.as_ref(), &ctx.cluster).await {
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
    let rec = job.snapshot();
    if rec.kind == JobKind::Rebalance {
        return super::rebalance::run(ctx, job, stop).await;
    }
    let table = match ctx.mounts.table().await {
        Ok(t) => t,
        Err(e) => {
            // Without the mount table nothing can be listed; the job fails rather than spinning.
            fail_path(
                ctx,
                job,
                &rec.paths.join(","),
                &format!("cannot read the mount table: {e}"),
                &Counters::default(),
            );
            job.update(|r| r.counters.failed_files += 1);
            return Ok(());
        }
    };
    let workers = live_workers(ctx.store.as_ref(), &ctx.cluster).await.unwrap_or_default();
    let recursive = rec.kind == JobKind::Load || rec.free.recursive;
    let lister = Lister::new(table, ctx.ufs.clone(), recursive);
    let source = if rec.index.is_empty() { Source::Paths(rec.paths.clone()) } else { Source::Index(rec.index.clone()) };
    let plan = match rec.kind {
        JobKind::Load => Plan::Load {
            ring: ring(&workers),
            replicas: rec.load.replicas.max(1) as usize,
            filter: (!rec.load.file_filter_regex.is_empty())
                .then(|| Regex::new(&rec.load.file_filter_regex).ok())
                .flatten(),
            skip: rec.load.skip_if_exists,
            metadata_only: rec.load.load_metadata_only,
            bandwidth: rec.load.bandwidth,
        },
        // (A rebalance never gets here: it returned above.)
        JobKind::Free | JobKind::Rebalance => Plan::Free { workers },
    };
    let batch_size = match rec.kind {
        JobKind::Load => rec.load.batch_size,
        JobKind::Free | JobKind::Rebalance => rec.free.batch_size,
    };
    let batch_size = if batch_size == 0 { DEFAULT_BATCH_SIZE } else { batch_size as usize };
    if rec.state == JobState::Running {
        let quota = match &plan {
            Plan::Load { metadata_only: false, .. } => QuotaGuard::new(ctx, job, lister.table()),
            _ => None,
        };
        Execution { ctx, job, plan: &plan, batch_size, tracker: Tracker::new(rec.checkpoint.clone()), quota }
            .run(lister.list(&source).skip(rec.checkpoint.cursor as usize).boxed(), stop)
            .await?;
    }
    if rec.kind == JobKind::Load && rec.load.verify {
        let Plan::Load { ring, replicas, filter, metadata_only, .. } = &plan else { return Ok(()) };
        let check =
            super::verify::Check { ring, replicas: *replicas, filter: filter.as_ref(), metadata_only: *metadata_only };
        super::verify::verify(ctx, job, &check, &lister, &source, batch_size, stop).await?;
    }
    Ok(())
}

/// One pass over a stream of events: batches, retries, progress and checkpoints (see the module header).
pub(super) struct Execution<'a> {
    /// What runners share.
    pub ctx: &'a JobsCtx,
    /// The job.
    pub job: &'a Job,
    /// How events are assigned and sent.
    pub plan: &'a Plan,
    /// Files per batch.
    pub batch_size: usize,
    /// Where the cursor stands (the job's checkpoint when the pass starts).
    pub tracker: Tracker,
    /// A load's reservations and quota checks (`None`: no quota applies to this pass).
    pub quota: Option<QuotaGuard<'a>>,
}

impl Execution<'_> {
    /// Runs until every event of `listing` is decided (`Ok`) or the job is asked to stop (`Err`).
    pub async fn run(
        mut self,
        mut listing: futures::stream::BoxStream<'static, Listed>,
        stop: &mut watch::Receiver<Stop>,
    ) -> Result<(), Stop> {
        let mut buckets: Buckets = HashMap::new();
        let mut busy: HashMap<WorkerId, usize> = HashMap::new();
        let mut inflight: FuturesUnordered<BatchFuture> = FuturesUnordered::new();
        let mut retries: Vec<(Instant, Batch)> = Vec::new();
        let mut listing_done = false;
        let mut tick = tokio::time::interval(PERSIST_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if let Some(q) = &mut self.quota {
            q.check().await;
        }
        loop {
            // Before anything more is sent: a full quota ends the run (files already planned included).
            if let Some(why) = self.quota.as_ref().and_then(|q| q.violation()).map(str::to_string) {
                tracing::info!(job = %self.job.snapshot().id, "{why}");
                self.job.update(|r| r.quota_check_error = why);
                self.checkpoint();
                return Err(Stop::Quota);
            }
            let flush = listing_done || self.tracker.lead() >= MAX_LEAD;
            for (id, (w, files)) in buckets.iter_mut() {
                let n = busy.entry(*id).or_default();
                while (files.len() >= self.batch_size || (flush && !files.is_empty())) && *n < BATCHES_PER_WORKER {
                    let take: Vec<_> = files.drain(..files.len().min(self.batch_size)).collect();
                    *n += 1;
                    inflight.push(self.send(Batch { worker: w.clone(), files: take, attempt: 1 }));
                }
            }
            let now = Instant::now();
            let mut i = 0;
            while i < retries.len() {
                let n = busy.entry(retries[i].1.worker.id).or_default();
                if retries[i].0 <= now && *n < BATCHES_PER_WORKER {
                    *n += 1;
                    let (_, b) = retries.swap_remove(i);
                    inflight.push(self.send(b));
                } else {
                    i += 1;
                }
            }
            let buckets_empty = buckets.values().all(|(_, f)| f.is_empty());
            if listing_done && buckets_empty && inflight.is_empty() && retries.is_empty() {
                self.checkpoint();
                return Ok(());
            }
            let blocked = buckets.values().any(|(_, f)| f.len() >= self.batch_size);
            let can_pull = !listing_done && !blocked && self.tracker.lead() < MAX_LEAD;
            let phase = match self.plan {
                Plan::Rebalance { .. } if !retries.is_empty() => "RETRYING",
                Plan::Rebalance { prune: true, .. } => "PRUNING",
                Plan::Rebalance { .. } => "LOADING",
                _ if !listing_done => "LISTING",
                _ if !retries.is_empty() => "RETRYING",
                _ => "LOADING",
            };
            if self.job.snapshot().running_state != phase {
                self.job.update(|r| r.running_state = phase.to_string());
            }
            let next_retry = retries.iter().map(|r| r.0).filter(|t| *t > now).min();
            let next_quota_check = self.quota.as_ref().map(|q| q.next_check());
            tokio::select! {
                biased;
                r = stop.changed() => {
                    let why = if r.is_err() { Stop::Shutdown } else { *stop.borrow() };
                    if why != Stop::No {
                        self.checkpoint();
                        return Err(why);
                    }
                }
                Some((batch, res)) = inflight.next(), if !inflight.is_empty() => {
                    if let Some(n) = busy.get_mut(&batch.worker.id) {
                        *n = n.saturating_sub(1);
                    }
                    if let Some(retry) = self.answered(batch, res) {
                        let backoff = RETRY_BACKOFF * 2u32.saturating_pow(retry.attempt.saturating_sub(2));
                        retries.push((Instant::now() + backoff, retry));
                    }
                }
                item = listing.next(), if can_pull => match item {
                    None => listing_done = true,
                    Some(ev) => self.planned(ev, &mut buckets),
                },
                _ = tokio::time::sleep_until(next_retry.unwrap_or(now)), if next_retry.is_some() => {}
                _ = tokio::time::sleep_until(next_quota_check.unwrap_or(now)), if next_quota_check.is_some() => {
                    if let Some(q) = &mut self.quota {
                        q.check().await;
                    }
                }
                _ = tick.tick() => {
                    self.checkpoint();
                    if let Err(e) = self.job.persist(self.ctx.store.as_ref(), &self.ctx.cluster).await {
                        tracing::warn!("cannot persist job progress (will retry): {e}");
                    }
                }
            }
        }
    }

    fn checkpoint(&self) {
        let cp = self.tracker.checkpoint().clone();
        self.job.update(|r| r.checkpoint = cp);
    }

    fn send(&self, b: Batch) -> BatchFuture {
        let client: WorkerClient = self.ctx.workers.clone();
        match self.plan {
            Plan::Load { skip, metadata_only, bandwidth, .. } => {
                let files = b
                    .files
                    .iter()
                    .map(|(_, uri, meta)| LoadTaskFile {
                        ufs_uri: uri.clone(),
                        skip_if_exists: *skip,
                        metadata_only: *metadata_only,
                        length: Some(meta.0),
                        etag: meta.1.etag.clone(),
                        modified_ms: meta.1.modified_ms,
                        source: None,
                    })
                    .collect();
                let bandwidth = *bandwidth;
                Box::pin(async move {
                    let r = client.load(&b.worker, files, bandwidth).await;
                    (b, r)
                })
            }
            Plan::Free { .. } | Plan::Rebalance { prune: true, .. } => {
                let uris = b.files.iter().map(|(_, u, _)| u.clone()).collect();
                let bandwidth = if let Plan::Rebalance { bandwidth, .. } = self.plan { *bandwidth } else { 0 };
                Box::pin(async move {
                    let r = client.free(&b.worker, uris, bandwidth).await;
                    (b, r)
                })
            }
            Plan::Rebalance { prune: false, bandwidth } => {
                // A held file is only completed (a complete one is preserved); a missing one is always loaded,
                // so an item resumed after its batch was abandoned still counts as loaded.
                let files = b
                    .files
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
                let bandwidth = *bandwidth;
                Box::pin(async move {
                    let r = client.load(&b.worker, files, bandwidth).await;
                    (b, r)
                })
            }
        }
    }

    fn planned(&mut self, ev: Listed, buckets: &mut Buckets) {
        match ev {
            Listed::Error { path, error } => {
                let delta = Counters { failed_files: 1, ..Default::default() };
                fail_path(self.ctx, self.job, &path, &error, &delta);
                self.tracker.decided(delta);
            }
            Listed::Assigned { uri, worker, endpoint: None, .. } => {
                let delta = tally(Counters { failed_files: 1, ..Default::default() }, &worker, true);
                fail_path(self.ctx, self.job, &uri, &format!("worker {worker} is not live"), &delta);
                self.tracker.decided(delta);
            }
            Listed::Assigned { uri, endpoint: Some(w), meta, .. } => {
                let i = self.tracker.open(&uri, 0, 1, Counters::default());
                buckets.entry(w.id).or_insert_with(|| (w.clone(), Vec::new())).1.push((i, uri, Arc::new((0, meta))));
            }
            Listed::File { uri, length, meta } => {
                let scanned = Counters { scanned_files: 1, ..Default::default() };
                let mut matched = Counters { total_files: 1, total_bytes: length, ..scanned.clone() };
                let owners: Vec<WorkerEndpoint> = match self.plan {
                    Plan::Load { filter: Some(re), .. } if !re.is_match(&uri) => {
                        self.job.update(|r| r.counters.add(&scanned));
                        self.tracker.decided(scanned);
                        return;
                    }
                    Plan::Load { ring, replicas, .. } => {
                        ring.lookup(&uri, *replicas).into_iter().map(|(_, w)| w.clone()).collect()
                    }
                    Plan::Free { workers } => workers.clone(),
                    // Rebalance events come assigned; a plain file has no worker here.
                    Plan::Rebalance { .. } => Vec::new(),
                };
                self.job.update(|r| r.counters.add(&matched));
                if owners.is_empty() {
                    let d = match self.plan {
                        // No worker holds anything: the file is trivially freed.
                        Plan::Free { .. } => Counters { freed_files: 1, freed_bytes: length, ..Default::default() },
                        Plan::Load { .. } | Plan::Rebalance { .. } => {
                            let d = Counters { failed_files: 1, failed_bytes: length, ..Default::default() };
                            fail_path(self.ctx, self.job, &uri, "no live worker to load it onto", &Counters::default());
                            d
                        }
                    };
                    self.job.update(|r| r.counters.add(&d));
                    matched.add(&d);
                    self.tracker.decided(matched);
                    return;
                }
                let i = self.tracker.open(&uri, length, owners.len(), matched);
                if let Some(q) = &mut self.quota {
                    q.reserve(i, &uri, length, owners.len());
                }
                let meta = Arc::new((length, meta));
                for w in owners {
                    buckets.entry(w.id).or_insert_with(|| (w.clone(), Vec::new())).1.push((
                        i,
                        uri.clone(),
                        meta.clone(),
                    ));
                }
            }
        }
    }

    /// Applies a batch's answers; returns the files to retry, if any. A batch refused as a whole with an
    /// error no retry can help (a `4xx`, an answer of another version) fails its files at once.
    fn answered(&mut self, batch: Batch, res: Result<Vec<FileResult>, PeerError>) -> Option<Batch> {
        let (answers, retryable): (Vec<FileAnswer>, bool) =
            match res {
                Ok(results) => (
                    results
                        .into_iter()
                        .map(|r| {
                            if r.ok {
                                Ok((r.skipped, r.bytes))
                            } else {
                                Err(r.error.unwrap_or_else(|| "failed".into()))
                            }
                        })
                        .collect(),
                    true,
                ),
                Err(e) => (batch.files.iter().map(|_| Err(e.to_string())).collect(), e.is_retryable()),
            };
        let mut retry = Vec::new();
        for ((i, uri, meta), answer) in batch.files.into_iter().zip(answers) {
            let answer = match answer {
                Err(e) if retryable && batch.attempt < MAX_ATTEMPTS => {
                    tracing::debug!(file = %uri, attempt = batch.attempt, "retrying: {e}");
                    retry.push((i, uri, meta));
                    continue;
                }
                a => a,
            };
            if let Some(q) = &mut self.quota {
                q.release(i);
            }
            let (plan, worker) = (self.plan, batch.worker.id);
            let done = self.tracker.answer(i, answer, |_, len, o| outcome_delta(plan, &worker, len, o));
            if let Some((uri, outcome, delta)) = done {
                self.job.update(|r| r.counters.add(&delta));
                if let Outcome::Failed(e) = &outcome {
                    fail_path(self.ctx, self.job, &uri, e, &Counters::default());
                }
            }
        }
        (!retry.is_empty()).then(|| Batch { worker: batch.worker, files: retry, attempt: batch.attempt + 1 })
    }
}

/// What a file's outcome on `worker` adds to the counters.
fn outcome_delta(plan: &Plan, worker: &WorkerId, length: u64, o: &Outcome) -> Counters {
    match (plan, o) {
        (Plan::Rebalance { prune, .. }, o) => {
            let d = match (prune, o) {
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
            tally(d, &worker.to_string(), matches!(o, Outcome::Failed(_)))
        }
        (_, Outcome::Failed(_)) => Counters { failed_files: 1, failed_bytes: length, ..Default::default() },
        (Plan::Load { .. }, Outcome::Done { skipped: true, .. }) => {
            Counters { skipped_bytes: length, ..Default::default() }
        }
        // Metadata-only loads move no data: the file counts as loaded, its bytes do not.
        (Plan::Load { metadata_only, .. }, Outcome::Done { .. }) => Counters {
            loaded_bytes: if *metadata_only { 0 } else { length },
            loaded_non_empty_files: (length > 0) as u64,
            ..Default::default()
        },
        (Plan::Free { .. }, Outcome::Done { .. }) => {
            Counters { freed_files: 1, freed_bytes: length, ..Default::default() }
        }
    }
}

/// `base` plus one decided item of rebalance target `worker`.
fn tally(mut base: Counters, worker: &str, failed: bool) -> Counters {
    base.per_worker.insert(worker.to_string(), WorkerTally { decided: 1, failed: failed as u64 });
    base
}
