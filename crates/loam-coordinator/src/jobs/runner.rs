//! The runner: one background task per running job, from listing to the final state.
//!
//! - **Planning.** The listing streams ([`super::listing`]); each file is matched against the filter and
//!   assigned: a load file to its `replicas` owners on the ring of the workers live when this run started
//!   (a snapshot, so a worker that dies mid-job fails its files instead of silently moving them; a
//!   resubmission plans on the new ring), a free file to *every* live worker (each frees what it holds,
//!   so no copy is missed whatever ring or replica setting cached it).
//! - **Batches.** Files wait in one bucket per worker and go out as a batch of `batchSize` files; each
//!   worker has at most [`BATCHES_PER_WORKER`] batches in flight. The listing pauses while a full bucket
//!   waits for its worker, and while more than [`MAX_LEAD`] events are listed beyond the cursor (then the
//!   partial buckets are flushed): memory stays bounded however many files the job has.
//! - **Retries.** Files a worker failed (or a whole batch whose call failed) are retried on the same worker
//!   up to [`MAX_ATTEMPTS`] times with exponential backoff from [`RETRY_BACKOFF`]; then they count as failed.
//! - **Progress** lives in the job's record; the record and the tracker's checkpoint are persisted every
//!   [`PERSIST_EVERY`] and at each state change. Failed paths go to `errorMessage` (first 100) and are
//!   appended to `<data_dir>/jobs/<id>.failed`, deduplicated when the job finishes.
//! - **Verify** (load option) re-lists and asks each owner whether every page of each loaded file is present.
//! - **Stop.** The stop signal interrupts at once (batches in flight are abandoned: the worker finishes
//!   them, and a resume finds their pages cached). A user stop leaves the job `STOPPED`; a shutdown leaves
//!   it `RUNNING`/`VERIFYING` to be resumed by the next coordinator.

use super::JobsCtx;
use super::job::{Job, Stop};
use super::listing::{FileMeta, Listed, Lister, Source};
use super::record::{Counters, JobKind};
use super::tracker::{Outcome, Tracker};
use super::workers::{WorkerClient, live_workers, ring};
use futures::stream::{FuturesUnordered, StreamExt};
use loam_client::{Ring, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::job_api::{FileResult, JobState, LoadTaskFile};
use loam_core::time::now_millis;
use regex::Regex;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Default files per batch.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Batches in flight per worker.
pub const BATCHES_PER_WORKER: usize = 2;
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

type BatchFuture = Pin<Box<dyn Future<Output = (Batch, Result<Vec<FileResult>, String>)> + Send>>;

struct Batch {
    worker: WorkerEndpoint,
    files: Vec<Planned>,
    attempt: u32,
}

/// How files are assigned and sent.
enum Plan {
    Load { ring: Ring, replicas: usize, filter: Option<Regex>, skip: bool, metadata_only: bool, bandwidth: u64 },
    Free { workers: Vec<WorkerEndpoint> },
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
                r.state = if r.counters.failed_files > 0 { JobState::Failed } else { JobState::Succeeded };
                r.end_ms = Some(now_millis());
                r.running_state.clear();
            }
            Err(Stop::User) => r.state = JobState::Stopped,
            Err(_) => {}
        }
        r.clone()
    });
    if rec.state.is_finished() && rec.counters.failed_files > 0 {
        match dedupe_failed_list(&failed_list_path(&ctx, &rec.id)) {
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
        JobKind::Free => Plan::Free { workers },
    };
    let batch_size = match rec.kind {
        JobKind::Load => rec.load.batch_size,
        JobKind::Free => rec.free.batch_size,
    };
    let batch_size = if batch_size == 0 { DEFAULT_BATCH_SIZE } else { batch_size as usize };
    if rec.state == JobState::Running {
        Execution { ctx, job, plan: &plan, batch_size, tracker: Tracker::new(rec.checkpoint.clone()) }
            .run(lister.list(&source).skip(rec.checkpoint.cursor as usize).boxed(), stop)
            .await?;
    }
    if rec.kind == JobKind::Load && rec.load.verify {
        verify(ctx, job, &plan, &lister, &source, batch_size, stop).await?;
    }
    Ok(())
}

struct Execution<'a> {
    ctx: &'a JobsCtx,
    job: &'a Job,
    plan: &'a Plan,
    batch_size: usize,
    tracker: Tracker,
}

impl Execution<'_> {
    async fn run(
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
        loop {
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
            let phase = if !listing_done {
                "LISTING"
            } else if !retries.is_empty() {
                "RETRYING"
            } else {
                "LOADING"
            };
            if self.job.snapshot().running_state != phase {
                self.job.update(|r| r.running_state = phase.to_string());
            }
            let next_retry = retries.iter().map(|r| r.0).filter(|t| *t > now).min();
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
                    })
                    .collect();
                let bandwidth = *bandwidth;
                Box::pin(async move {
                    let r = client.load(&b.worker, files, bandwidth).await;
                    (b, r)
                })
            }
            Plan::Free { .. } => {
                let uris = b.files.iter().map(|(_, u, _)| u.clone()).collect();
                Box::pin(async move {
                    let r = client.free(&b.worker, uris).await;
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
                };
                self.job.update(|r| r.counters.add(&matched));
                if owners.is_empty() {
                    let d = match self.plan {
                        // No worker holds anything: the file is trivially freed.
                        Plan::Free { .. } => Counters { freed_files: 1, freed_bytes: length, ..Default::default() },
                        Plan::Load { .. } => {
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

    /// Applies a batch's answers; returns the files to retry, if any.
    fn answered(&mut self, batch: Batch, res: Result<Vec<FileResult>, String>) -> Option<Batch> {
        let answers: Vec<Result<bool, String>> = match res {
            Ok(results) => results
                .into_iter()
                .map(|r| if r.ok { Ok(r.skipped) } else { Err(r.error.unwrap_or_else(|| "failed".into())) })
                .collect(),
            Err(e) => batch.files.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut retry = Vec::new();
        for ((i, uri, meta), answer) in batch.files.into_iter().zip(answers) {
            let answer = match answer {
                Err(e) if batch.attempt < MAX_ATTEMPTS => {
                    tracing::debug!(file = %uri, attempt = batch.attempt, "retrying: {e}");
                    retry.push((i, uri, meta));
                    continue;
                }
                a => a,
            };
            let is_load = matches!(self.plan, Plan::Load { .. });
            let metadata_only = matches!(self.plan, Plan::Load { metadata_only: true, .. });
            let done = self.tracker.answer(i, answer, |_, len, o| outcome_delta(is_load, metadata_only, len, o));
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

/// What a file's outcome adds to the counters.
fn outcome_delta(is_load: bool, metadata_only: bool, length: u64, o: &Outcome) -> Counters {
    match (o, is_load) {
        (Outcome::Failed(_), _) => Counters { failed_files: 1, failed_bytes: length, ..Default::default() },
        (Outcome::Done { skipped: true }, true) => Counters { skipped_bytes: length, ..Default::default() },
        // Metadata-only loads move no data: the file counts as loaded, its bytes do not.
        (Outcome::Done { .. }, true) => Counters {
            loaded_bytes: if metadata_only { 0 } else { length },
            loaded_non_empty_files: (length > 0) as u64,
            ..Default::default()
        },
        (Outcome::Done { .. }, false) => Counters { freed_files: 1, freed_bytes: length, ..Default::default() },
    }
}

/// Records a failed path: `errorMessage`, the failed-file list, and `delta` in the live counters.
fn fail_path(ctx: &JobsCtx, job: &Job, path: &str, error: &str, delta: &Counters) {
    let id = job.update(|r| {
        r.note_error(path, error);
        r.counters.add(delta);
        r.id.clone()
    });
    let file = failed_list_path(ctx, &id);
    let written = file
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| std::fs::OpenOptions::new().create(true).append(true).open(&file))
        .and_then(|mut f| writeln!(f, "{path}"));
    if let Err(e) = written {
        tracing::warn!(job = %id, "cannot append to {}: {e}", file.display());
    }
}

/// `<data_dir>/jobs/<id>.failed`.
pub fn failed_list_path(ctx: &JobsCtx, id: &str) -> PathBuf {
    ctx.data_dir.join("jobs").join(format!("{id}.failed"))
}

/// Rewrites the failed-file list sorted and without duplicates (a resumed run may fail a file again).
fn dedupe_failed_list(path: &std::path::Path) -> std::io::Result<PathBuf> {
    let text = std::fs::read_to_string(path)?;
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    lines.dedup();
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(path, out)?;
    Ok(path.to_path_buf())
}

fn read_failed_list(path: &std::path::Path) -> HashSet<String> {
    std::fs::read_to_string(path).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
}

/// Checks that every loaded file is fully present on its owners; files that are not count as failed.
async fn verify(
    ctx: &JobsCtx,
    job: &Job,
    plan: &Plan,
    lister: &Lister,
    source: &Source,
    batch_size: usize,
    stop: &mut watch::Receiver<Stop>,
) -> Result<(), Stop> {
    let Plan::Load { ring, replicas, filter, metadata_only, .. } = plan else { return Ok(()) };
    let id = job.update(|r| {
        r.state = JobState::Verifying;
        r.running_state = "VERIFYING".into();
        r.id.clone()
    });
    if let Err(e) = job.persist(ctx.store.as_ref(), &ctx.cluster).await {
        tracing::warn!(job = %id, "cannot persist the job: {e}");
    }
    let mut failed = read_failed_list(&failed_list_path(ctx, &id));
    let mut files = lister
        .list(source)
        .filter_map(|ev| async move {
            match ev {
                Listed::File { uri, length, .. } => Some((uri, length)),
                Listed::Error { .. } => None,
            }
        })
        .chunks(batch_size)
        .boxed();
    loop {
        let chunk = tokio::select! {
            biased;
            r = stop.changed() => {
                let why = if r.is_err() { Stop::Shutdown } else { *stop.borrow() };
                if why != Stop::No {
                    return Err(why);
                }
                continue;
            }
            c = files.next() => match c {
                Some(c) => c,
                None => return Ok(()),
            },
        };
        let mut per_worker: HashMap<WorkerId, (WorkerEndpoint, Vec<String>)> = HashMap::new();
        let mut lengths = HashMap::new();
        for (uri, length) in chunk {
            if failed.contains(&uri) || filter.as_ref().is_some_and(|re| !re.is_match(&uri)) {
                continue;
            }
            for (_, w) in ring.lookup(&uri, *replicas) {
                per_worker.entry(w.id).or_insert_with(|| (w.clone(), Vec::new())).1.push(uri.clone());
            }
            lengths.insert(uri, length);
        }
        let calls = per_worker.into_values().map(|(w, uris)| {
            let client = ctx.workers.clone();
            async move {
                let r = client.verify(&w, uris.clone(), *metadata_only).await;
                (uris, r)
            }
        });
        for (uris, r) in futures::future::join_all(calls).await {
            let errors: Vec<(String, String)> = match r {
                Ok(results) => {
                    results.into_iter().filter(|r| !r.ok).map(|r| (r.uri, r.error.unwrap_or_default())).collect()
                }
                Err(e) => uris.into_iter().map(|u| (u, e.clone())).collect(),
            };
            for (uri, e) in errors {
                if failed.insert(uri.clone()) {
                    let length = lengths.get(&uri).copied().unwrap_or(0);
                    let delta = Counters { failed_files: 1, failed_bytes: length, ..Default::default() };
                    fail_path(ctx, job, &uri, &format!("verify: {e}"), &delta);
                }
            }
        }
    }
}
