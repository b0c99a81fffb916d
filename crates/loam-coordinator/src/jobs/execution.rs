//! One pass of a job over a stream of events (a listing, or a rebalance's plan items): batches, retries,
//! progress and checkpoints, the same for every kind. What the kind decides — where a file goes, how a
//! batch is sent, what an answer counts — it asks the pass's [`BatchPlan`](super::kind::BatchPlan).
//!
//! - **Batches.** Files wait in one bucket per worker and go out as a batch of `batchSize` files; each
//!   worker has at most [`BATCHES_PER_WORKER`] batches in flight. The listing pauses while a full bucket
//!   waits for its worker, and while more than [`MAX_LEAD`] events are listed beyond the cursor (then the
//!   partial buckets are flushed): memory stays bounded however many files the job has.
//! - **Retries.** Files a worker answered as failed are retried on it up to [`MAX_ATTEMPTS`] times. A batch
//!   whose call failed (the worker unreachable, timing out, answering `5xx`) is retried for the job's
//!   retry window (`--job-retry-window`, longer than a lease TTL), so that a worker that restarts, or
//!   dies and leaves the ring, does not fail its files: before each such retry the pass asks its plan
//!   where the files go now (`BatchPlan::refresh`, `reassign`: a load moves them to their owners on the
//!   ring of now, keeping replicas on distinct workers; a free or a rebalance sends them to the same
//!   worker at its address of now, `workers::LiveView`). Backoff is exponential from [`RETRY_BACKOFF`] up
//!   to [`RETRY_BACKOFF_MAX`]. A batch refused as a whole with an error no retry can help (a `4xx`, a
//!   malformed answer) fails its files at once.
//! - **Progress** lives in the job's record; the record and the tracker's checkpoint are persisted every
//!   [`PERSIST_EVERY`] and at each state change. Failed paths go to the failed-file list (`failed_list`).
//! - **Quotas** (`super::quota`): a load's pass carries a [`QuotaGuard`]: it reserves each file's bytes
//!   under its quota while the file is planned and undecided, checks its quotas every
//!   `quota_check_interval`, and ends the pass (`Stop::Quota`) once one is full.
//! - **Stop.** The stop signal interrupts at once (batches in flight are abandoned: the worker finishes
//!   them, and a resume finds their pages cached).

use super::ctx::JobsCtx;
use super::failed_list::fail_path;
use super::job::{Job, Stop};
use super::kind::{BatchPlan, Planned};
use super::listing::{Listed, Lister, Source};
use super::quota::QuotaGuard;
use super::record::{Counters, WorkerTally};
use super::tracker::{Outcome, Tracker};
use futures::stream::{FuturesUnordered, StreamExt};
use loam_client::{PeerError, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::job_api::FileResult;
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
/// The longest backoff between retries.
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(4);
/// How often a running job's record is written.
pub const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// Files waiting for each worker, by worker.
type Buckets = HashMap<WorkerId, (WorkerEndpoint, Vec<Planned>)>;
/// The workers each undecided file (by tracker index) is planned on, for re-planning.
type Owners = HashMap<u64, Vec<WorkerId>>;

/// One file's answer: `(skipped, bytes)` or why it failed.
type FileAnswer = Result<(bool, u64), String>;
type BatchFuture = Pin<Box<dyn Future<Output = (Batch, Result<Vec<FileResult>, PeerError>)> + Send>>;

/// How a batch's call ended.
enum BatchOutcome {
    /// The worker answered, file by file.
    Answered,
    /// The worker could not be reached, timed out or answered `5xx`: the files are retried for the window.
    Unreachable,
    /// The worker refused the batch as a whole (`4xx`, another version): no retry helps.
    Refused,
}

struct Batch {
    worker: WorkerEndpoint,
    files: Vec<Planned>,
    attempt: u32,
    /// Since when the worker has failed to answer this batch's files (`None`: it answered).
    unreachable_since: Option<Instant>,
}

/// Files per batch: the job's `batchSize`, or [`DEFAULT_BATCH_SIZE`] when it is 0.
pub fn batch_size(asked: u64) -> usize {
    if asked == 0 { DEFAULT_BATCH_SIZE } else { asked as usize }
}

/// One pass over a stream of events: batches, retries, progress and checkpoints (see the module header).
pub struct Execution<'a> {
    /// What runners share.
    pub ctx: &'a JobsCtx,
    /// The job.
    pub job: &'a Job,
    /// How events are assigned, sent and counted: the pass's job kind.
    pub plan: &'a dyn BatchPlan,
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
        let mut owners: Owners = HashMap::new();
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
                    let b = Batch { worker: w.clone(), files: take, attempt: 1, unreachable_since: None };
                    inflight.push(self.send(b));
                }
            }
            let now = Instant::now();
            let mut i = 0;
            while i < retries.len() {
                let n = busy.entry(retries[i].1.worker.id).or_default();
                if retries[i].0 <= now && *n < BATCHES_PER_WORKER {
                    let (_, b) = retries.swap_remove(i);
                    for b in self.replanned(b, &mut owners).await {
                        *busy.entry(b.worker.id).or_default() += 1;
                        inflight.push(self.send(b));
                    }
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
            let phase = self.plan.phase(listing_done, !retries.is_empty());
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
                    if let Some(retry) = self.answered(batch, res, &mut owners) {
                        let backoff = RETRY_BACKOFF.saturating_mul(2u32.saturating_pow(retry.attempt.saturating_sub(2)));
                        retries.push((Instant::now() + backoff.min(RETRY_BACKOFF_MAX), retry));
                    }
                }
                item = listing.next(), if can_pull => match item {
                    None => listing_done = true,
                    Some(ev) => self.planned(ev, &mut buckets, &mut owners),
                },
                _ = tokio::time::sleep_until(next_retry.unwrap_or(now)), if next_retry.is_some() => {}
                _ = tokio::time::sleep_until(next_quota_check.unwrap_or(now)), if next_quota_check.is_some() => {
                    if let Some(q) = &mut self.quota {
                        q.check().await;
                    }
                }
                _ = tick.tick() => {
                    self.checkpoint();
                    if let Err(e) = self.job.persist(&self.ctx.fence, &self.ctx.cluster).await {
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
        let call = self.plan.run_batch(&self.ctx.workers, &b.worker, &b.files);
        Box::pin(async move {
            let r = call.await;
            (b, r)
        })
    }

    /// A retry of `b`: where the worker did not answer, the files the plan moves (`BatchPlan::reassign`) go
    /// to their new owners, the rest stay on the worker.
    async fn replanned(&self, b: Batch, owners: &mut Owners) -> Vec<Batch> {
        if b.unreachable_since.is_none() {
            return vec![b];
        }
        self.plan.refresh(self.ctx).await;
        let mut out: HashMap<WorkerId, Batch> = HashMap::new();
        for f in b.files {
            let others: Vec<WorkerId> = owners
                .get(&f.0)
                .map(|o| o.iter().filter(|w| **w != b.worker.id).copied().collect())
                .unwrap_or_default();
            let target = match self.plan.reassign(&f.1, &b.worker.id, &others) {
                Some(w) if w.id == b.worker.id => w,
                Some(w) => {
                    tracing::info!(file = %f.1, from = %b.worker.id, to = %w.id, "re-planned onto its owner now");
                    if let Some(o) = owners.get_mut(&f.0) {
                        o.retain(|x| *x != b.worker.id);
                        o.push(w.id);
                    }
                    w
                }
                None => b.worker.clone(),
            };
            // A file moved to a new owner starts afresh there.
            let moved = target.id != b.worker.id;
            let (attempt, since) = if moved { (1, None) } else { (b.attempt, b.unreachable_since) };
            out.entry(target.id)
                .or_insert_with(|| Batch { worker: target, files: Vec::new(), attempt, unreachable_since: since })
                .files
                .push(f);
        }
        out.into_values().collect()
    }

    fn planned(&mut self, ev: Listed, buckets: &mut Buckets, owners_of: &mut Owners) {
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
                let Some(owners) = self.plan.assign(&uri) else {
                    self.ctx.count(self.job, &scanned);
                    self.tracker.decided(scanned);
                    return;
                };
                self.ctx.count(self.job, &matched);
                if owners.is_empty() {
                    let d = match self.plan.unowned(length) {
                        Some(d) => d,
                        None => {
                            let d = Counters { failed_files: 1, failed_bytes: length, ..Default::default() };
                            fail_path(self.ctx, self.job, &uri, "no live worker to load it onto", &Counters::default());
                            d
                        }
                    };
                    self.ctx.count(self.job, &d);
                    matched.add(&d);
                    self.tracker.decided(matched);
                    return;
                }
                let i = self.tracker.open(&uri, length, owners.len(), matched);
                if let Some(q) = &mut self.quota {
                    q.reserve(i, &uri, length, owners.len());
                }
                let meta = Arc::new((length, meta));
                owners_of.insert(i, owners.iter().map(|w| w.id).collect());
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
    fn answered(
        &mut self,
        batch: Batch,
        res: Result<Vec<FileResult>, PeerError>,
        owners: &mut Owners,
    ) -> Option<Batch> {
        let res_kind = match &res {
            Ok(_) => BatchOutcome::Answered,
            Err(e) if e.is_retryable() => BatchOutcome::Unreachable,
            Err(_) => BatchOutcome::Refused,
        };
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
        // The worker did not answer (unreachable, timed out, 5xx): retried for the retry window, not a count.
        let unreachable_since = match &res_kind {
            BatchOutcome::Unreachable => Some(batch.unreachable_since.unwrap_or_else(Instant::now)),
            BatchOutcome::Answered | BatchOutcome::Refused => None,
        };
        let may_retry = match unreachable_since {
            Some(since) => since.elapsed() < self.ctx.retry_window,
            None => retryable && batch.attempt < MAX_ATTEMPTS,
        };
        let mut retry = Vec::new();
        for ((i, uri, meta), answer) in batch.files.into_iter().zip(answers) {
            let answer = match answer {
                Err(e) if may_retry => {
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
            let done = self.tracker.answer(i, answer, |_, len, o| plan.progress(&worker, len, o));
            if let Some((uri, outcome, delta)) = done {
                owners.remove(&i);
                self.ctx.count(self.job, &delta);
                if let Outcome::Failed(e) = &outcome {
                    fail_path(self.ctx, self.job, &uri, e, &Counters::default());
                }
            }
        }
        (!retry.is_empty()).then(|| Batch {
            worker: batch.worker,
            files: retry,
            attempt: batch.attempt + 1,
            unreachable_since,
        })
    }
}

/// `base` plus one decided item of rebalance target `worker`.
pub fn tally(mut base: Counters, worker: &str, failed: bool) -> Counters {
    base.per_worker.insert(worker.to_string(), WorkerTally { decided: 1, failed: failed as u64 });
    base
}

/// The start of a pass over a listing (load, free): a lister over the mount table as it is now (`recursive`
/// walks directory trees) and what to list, the job's paths or its index file. `None` when the mount table
/// cannot be read: nothing can be listed, and the job ends with one failed path rather than spinning.
pub async fn open_listing(ctx: &JobsCtx, job: &Job, recursive: bool) -> Option<(Lister, Source)> {
    let rec = job.snapshot();
    let table = match ctx.mounts.table().await {
        Ok(t) => t,
        Err(e) => {
            fail_path(
                ctx,
                job,
                &rec.paths.join(","),
                &format!("cannot read the mount table: {e}"),
                &Counters::default(),
            );
            ctx.count(job, &Counters { failed_files: 1, ..Default::default() });
            return None;
        }
    };
    let lister = Lister::new(table, ctx.ufs.clone(), recursive);
    let source = if rec.index.is_empty() { Source::Paths(rec.paths.clone()) } else { Source::Index(rec.index) };
    Some((lister, source))
}
