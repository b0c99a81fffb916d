//! Distributed load, free and rebalance jobs (spec "Job states", "Distributed load", "Free cache",
//! "Rebalance"): submission with validation and twin detection, progress, stop and resume, persistence
//! and retention. This module is the service ([`JobService`]): the submission of every kind, stop, wait,
//! lookups and retention; how a job runs is below it.
//!
//! - **Where things live.** Each job is a [`record::JobRecord`] in the cluster store (embedded or etcd), so
//!   a restarted coordinator finds every job; a job that was `RUNNING` or `VERIFYING` is resumed by
//!   [`JobService::start`] from its persisted listing cursor (see `record` and `tracker`). While a job runs
//!   its record lives in memory ([`job::Job`]) and the store copy trails it by at most a second.
//! - **Only the leader runs jobs** (`crate::leader`): it calls [`JobService::start`] when it becomes leader
//!   and [`JobService::step_down`] when it loses the lease; job records are written through the leader
//!   fence, so a former leader cannot overwrite what the new one resumed.
//! - **Runners** (`runner`) are background tasks, one per running job. [`JobService::begin_shutdown`]
//!   signals them all and [`JobService::shutdown`] waits for them; they persist their checkpoint and leave
//!   the state as it was, so the next coordinator continues.
//! - **Twins.** A submission whose paths (as a set of resolved UFS URIs) or index equals that of a job that
//!   is not finished answers `409` with that job's id, and resumes it if it was `STOPPED`. Submissions are
//!   serialised so two identical `POST`s cannot both create a job.
//! - **Retention.** Finished jobs older than `retention` are deleted (store key, failed-file list, and the
//!   files and store keys the kind keeps, such as a rebalance's plan) when the jobs are listed or looked
//!   up; no extra background loop is needed for that.
//! - **Workers** are reached over their internal task API (`workers`); the live set comes from the same
//!   membership keys the workers register in.
//! - **Quotas** (`quota`): a load under an exceeded quota is refused at submission (after the twin check,
//!   so a resubmission still answers `409`); a running load reserves the bytes it plans and is stopped
//!   (`FAILED`, `quotaCheckError`) once a quota it loads under is full.
//!
//! ## Structure
//!
//! Each module uses only modules listed after it (no module under `jobs/` uses this one), so there are no
//! import cycles:
//!
//! - `jobs` (this module): [`JobService`], [`JobError`], [`Submitted`], [`JobsConfig`].
//! - `runner`: a run's life (start, final state, last persist) and `runner_for`, **the one place that
//!   picks a kind's runner**.
//! - `load`, `free`, `rebalance` (+ `rebalance/plan`): one `kind::JobKindRunner` per kind, and the
//!   `kind::BatchPlan` of each of its passes.
//! - `verify`: a load's verify pass.
//! - `execution`: one pass over a stream of events (batches, retries, progress, checkpoints) for any kind.
//! - `kind`: the traits `JobKindRunner` and `BatchPlan`, what differs between kinds.
//! - `quota`: the guard that stops a load whose quota is full.
//! - `failed_list`: the failed-file list, `<data_dir>/jobs/<id>.failed`.
//! - `ctx`: `JobsCtx`, what the runners share.
//! - `job`, `tracker`: a running job in memory; the listing cursor.
//! - `record`: the stored record of every kind (a rebalance's state too) and the progress objects.
//! - `reservations`, `listing`, `workers`: reserved bytes; the files of a job; the workers' task API.
//!
//! **Adding a job kind** means a `JobKind` variant (`record`), the kind's record fields and progress
//! object (`record`), a `submit_<kind>` here, a module with its `JobKindRunner` and `BatchPlan`s, and one
//! arm in `runner::runner_for`; nothing else in the runner or the execution changes.

mod ctx;
mod execution;
mod failed_list;
mod free;
mod job;
mod kind;
pub mod listing;
mod load;
pub mod quota;
pub mod rebalance;
pub mod record;
mod repair;
mod reservations;
mod runner;
mod tracker;
mod verify;
pub mod workers;

use crate::file_index::FileIndex;
use crate::leader::Fence;
use crate::mounts::{MountService, MountServiceError};
use crate::quota::QuotaSnapshot;
use crate::rules::{RuleError, RuleService};
use ctx::JobsCtx;
use job::{Job, Stop, job_key};
use loam_core::ErrorKind;
use loam_core::job_api::{
    FreeProgress, FreeRequest, JobState, LoadProgress, LoadRequest, RebalanceProgress, RebalanceRequest, RebalanceStop,
};
use loam_core::store_keys::jobs_prefix;
use loam_store::{ClusterStore, StoreError, list_all};
use loam_ufs::{Mount, UfsRegistry};
use parking_lot::Mutex;
use record::{ALL, JobKind, JobRecord, RebalanceState};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use workers::WorkerClient;

pub use execution::{DEFAULT_BATCH_SIZE, MAX_ATTEMPTS};

/// Default time finished jobs are kept.
pub const DEFAULT_JOB_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a job keeps retrying the files of a worker it cannot reach, by default: the workers' default
/// lease TTL plus a margin, so that a dead worker has left the ring (and its files are re-planned onto
/// their new owners) or a restarted one is back before its files are given up.
pub const DEFAULT_JOB_RETRY_WINDOW: Duration =
    Duration::from_secs(loam_core::membership::DEFAULT_LEASE_TTL.as_secs() + 15);
/// Default interval between a running load's quota checks (the workers report usage as often).
pub use loam_config::DEFAULT_QUOTA_CHECK_INTERVAL;

/// Why a job operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A required field is missing or both of two exclusive fields are given.
    #[error("Required parameters not provided: {0}")]
    MissingParameters(String),
    /// The request is well-formed but refused (bad regex, too many replicas, a path under no mount).
    #[error("{0}")]
    InvalidInput(String),
    /// A load under an exceeded quota (the message names the quota; it is the job's `quotaCheckError`).
    #[error("{0}")]
    QuotaExceeded(String),
    /// No job with this id.
    #[error("No job found with id: {0}")]
    NotFound(String),
    /// No rebalance job for this target.
    #[error("No job found for target: {0}")]
    NoJobForTarget(String),
    /// `DELETE` of a job that does not exist or is not running (finished or stopped).
    #[error("The job doesn't exist or has already finished")]
    Gone,
    /// The cluster store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mount table could not be read.
    #[error(transparent)]
    Mounts(#[from] MountServiceError),
    /// The quota rules could not be read.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// A stored job record is unreadable.
    #[error("job record {key} is unreadable: {reason}")]
    Corrupt {
        /// The store key.
        key: String,
        /// Why.
        reason: String,
    },
}

impl JobError {
    /// The layer-independent kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            JobError::MissingParameters(_) | JobError::InvalidInput(_) | JobError::QuotaExceeded(_) => {
                ErrorKind::InvalidInput
            }
            JobError::NotFound(_) | JobError::NoJobForTarget(_) => ErrorKind::NotFound,
            JobError::Gone => ErrorKind::Gone,
            JobError::Store(e) => e.kind(),
            JobError::Mounts(e) => e.kind(),
            JobError::Rules(e) => e.kind(),
            JobError::Corrupt { .. } => ErrorKind::Corrupt,
        }
    }
}

/// What a submission did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// A new job with this id.
    New(String),
    /// A twin exists (and was resumed if stopped): its id.
    Existing(String),
}

/// Settings of the job service.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// Where failed-file lists are written (`<data_dir>/jobs/`).
    pub data_dir: PathBuf,
    /// How long finished jobs are kept.
    pub retention: Duration,
    /// Whether quotas are enabled (loads are then checked against them).
    pub quota_enabled: bool,
    /// How often a running load checks its quotas.
    pub quota_check_interval: Duration,
    /// How long the files of an unreachable worker are retried (see `execution`).
    pub retry_window: Duration,
    /// Job records are written through it: only while this Coordinator leads (`crate::leader`).
    pub fence: Arc<Fence>,
    /// What running jobs count (`crate::metrics`).
    pub counters: crate::metrics::JobCounters,
}

/// The load, free and rebalance jobs of one coordinator.
pub struct JobService {
    ctx: Arc<JobsCtx>,
    retention: Duration,
    running: Mutex<HashMap<String, Arc<Job>>>,
    submit_lock: tokio::sync::Mutex<()>,
    shutting_down: std::sync::atomic::AtomicBool,
}

impl JobService {
    /// A service over `store`; `static_mounts` as the coordinator's mount table; `file_index` (when kept)
    /// tells a rebalance what workers that cannot list their files hold.
    pub fn new(
        store: Arc<dyn ClusterStore>,
        cluster: String,
        ufs: UfsRegistry,
        static_mounts: Option<Vec<Mount>>,
        cfg: JobsConfig,
        file_index: Option<Arc<FileIndex>>,
        peers: loam_client::PeerClient,
    ) -> Result<Self, JobError> {
        let mounts = MountService::new(store.clone(), cluster.clone(), ufs.clone(), static_mounts, Default::default());
        let workers = WorkerClient::new(peers);
        let quota = RuleService::new(store.clone(), cluster.clone(), cfg.quota_enabled);
        let ctx = Arc::new(JobsCtx {
            store,
            fence: cfg.fence,
            cluster,
            mounts,
            ufs,
            workers,
            data_dir: cfg.data_dir,
            file_index,
            quota,
            quota_check_interval: cfg.quota_check_interval,
            retry_window: cfg.retry_window,
            reservations: reservations::Reservations::default(),
            counters: cfg.counters,
        });
        Ok(Self {
            ctx,
            retention: cfg.retention,
            running: Mutex::new(HashMap::new()),
            submit_lock: tokio::sync::Mutex::new(()),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Resumes every stored job that was running or verifying (a coordinator restart).
    pub async fn start(&self) -> Result<(), JobError> {
        for kind in JobKind::ALL {
            for rec in self.stored(kind).await? {
                if rec.state.is_active() && !self.running.lock().contains_key(&rec.id) {
                    tracing::info!(job = %rec.id, kind = kind.as_str(), "resuming job after restart");
                    self.spawn(rec);
                }
            }
        }
        Ok(())
    }

    /// Signals every runner to stop for a shutdown (their jobs stay `RUNNING`); `sync` waiters return.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
        for job in self.running.lock().values() {
            job.request_stop(Stop::Shutdown);
        }
    }

    /// Stops every runner (their jobs stay `RUNNING`) and forgets them, without ending the service: this
    /// Coordinator lost its leadership; [`start`](Self::start) resumes the jobs if it leads again.
    pub async fn step_down(&self) {
        let jobs: Vec<Arc<Job>> = self.running.lock().drain().map(|(_, j)| j).collect();
        for job in &jobs {
            job.request_stop(Stop::Shutdown);
        }
        for job in jobs {
            job.join().await;
        }
    }

    /// Stops every runner and waits for them to persist their progress.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        let jobs: Vec<Arc<Job>> = self.running.lock().drain().map(|(_, j)| j).collect();
        for job in jobs {
            job.join().await;
        }
    }

    fn spawn(&self, rec: JobRecord) -> Arc<Job> {
        // The runner is a task of its own, outside the submitting request's scope: it runs in the
        // request's id again (`in_request_scope`), so its batches to the workers carry it.
        let (id, request_id) = (rec.id.clone(), rec.request_id.clone());
        let job = Job::new(rec);
        if self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            job.request_stop(Stop::Shutdown);
        }
        self.running.lock().insert(id.clone(), job.clone());
        let task = tokio::spawn(in_request_scope(id, request_id, runner::run(self.ctx.clone(), job.clone())));
        job.set_task(task);
        job
    }

    /// Submits a load job.
    pub async fn submit_load(&self, req: LoadRequest) -> Result<Submitted, JobError> {
        let (paths, index) = exactly_one(req.paths, req.index)?;
        let o = &req.options;
        if !o.file_filter_regex.is_empty() {
            regex::Regex::new(&o.file_filter_regex).map_err(|e| {
                // The regex crate's message spans lines (the pattern, a caret); its last line says why.
                let text = e.to_string();
                let why = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim();
                let why = why.strip_prefix("error: ").unwrap_or(why);
                JobError::InvalidInput(format!("invalid fileFilterRegex {:?}: {why}", o.file_filter_regex))
            })?;
        }
        let live = workers::live_workers(self.ctx.store.as_ref(), &self.ctx.cluster).await?.len() as u64;
        let replicas = o.replicas.max(1);
        if replicas > live {
            return Err(JobError::InvalidInput(format!("replicas ({replicas}) exceeds the live workers ({live})")));
        }
        let twin_key = self.twin_key(&paths, &index).await?;
        let mut rec = JobRecord::new(uuid::Uuid::new_v4().to_string(), JobKind::Load, paths, index, twin_key);
        rec.load = req.options;
        rec.load.sync = false;
        self.create(rec).await
    }

    /// Bytes that running loads planned but have not loaded yet, by quota path (`reservedBytes`).
    pub fn reserved(&self) -> BTreeMap<String, u64> {
        self.ctx.reservations.total()
    }

    /// Refuses a new load under an exceeded quota. An index-file load's paths are unknown until its runner
    /// reads them: the runner checks those (`quota`).
    async fn check_quota(&self, rec: &JobRecord) -> Result<(), JobError> {
        if rec.kind != JobKind::Load || rec.load.load_metadata_only || rec.paths.is_empty() {
            return Ok(());
        }
        let (quota, store, cluster) = (&self.ctx.quota, self.ctx.store.as_ref(), &self.ctx.cluster);
        let Some(snapshot) = QuotaSnapshot::load(quota, store, cluster, self.reserved()).await? else {
            return Ok(());
        };
        if snapshot.is_empty() {
            return Ok(());
        }
        let table = self.ctx.mounts.table().await?;
        match snapshot.refusal(&table, &rec.paths) {
            Some(why) => Err(JobError::QuotaExceeded(why)),
            None => Ok(()),
        }
    }

    /// Submits a free job.
    pub async fn submit_free(&self, req: FreeRequest) -> Result<Submitted, JobError> {
        let (paths, index) = exactly_one(req.paths, req.index)?;
        let twin_key = self.twin_key(&paths, &index).await?;
        let mut rec = JobRecord::new(uuid::Uuid::new_v4().to_string(), JobKind::Free, paths, index, twin_key);
        rec.free = req.options;
        rec.free.sync = false;
        self.create(rec).await
    }

    async fn twin_key(&self, paths: &[String], index: &str) -> Result<Vec<String>, JobError> {
        let table = self.ctx.mounts.table().await?;
        let resolve =
            |p: &str| table.resolve(p).map(|r| r.ufs_uri).map_err(|e| JobError::InvalidInput(format!("{p}: {e}")));
        if !index.is_empty() {
            return Ok(vec![format!("index:{}", resolve(index)?)]);
        }
        let set: BTreeSet<String> = paths.iter().map(|p| resolve(p)).collect::<Result<_, _>>()?;
        Ok(set.into_iter().collect())
    }

    async fn create(&self, rec: JobRecord) -> Result<Submitted, JobError> {
        let _guard = self.submit_lock.lock().await;
        for old in self.records(rec.kind).await? {
            if !old.state.is_finished() && old.twin_key == rec.twin_key {
                if old.state == JobState::Stopped {
                    let resumed = self.running.lock().get(&old.id).cloned();
                    // A runner that is still winding down from the stop must end before a new one starts.
                    if let Some(j) = resumed {
                        j.join().await;
                    }
                    let mut old = self.record(old.kind, &old.id).await?;
                    old.state = JobState::Running;
                    let job = self.spawn(old.clone());
                    job.persist(&self.ctx.fence, &self.ctx.cluster).await?;
                    tracing::info!(job = %old.id, "resuming stopped job");
                }
                return Ok(Submitted::Existing(old.id));
            }
        }
        self.check_quota(&rec).await?;
        let id = rec.id.clone();
        Job::new(rec.clone()).persist(&self.ctx.fence, &self.ctx.cluster).await?;
        self.spawn(rec);
        tracing::info!(job = %id, "job submitted");
        Ok(Submitted::New(id))
    }

    /// Stops a running job; `Gone` when it does not exist or is not running (finished, or stopped
    /// already: Alluxio answers `410` for both, and a second stop changes nothing).
    pub async fn stop(&self, kind: JobKind, id: &str) -> Result<(), JobError> {
        let _guard = self.submit_lock.lock().await;
        let job = self.running.lock().get(id).cloned();
        match job {
            Some(j) if j.snapshot().kind == kind => {
                if !j.snapshot().state.is_active() {
                    return Err(JobError::Gone);
                }
                j.request_stop(Stop::User);
                j.join().await;
                self.running.lock().remove(id);
                Ok(())
            }
            _ => match self.record(kind, id).await {
                Ok(r) if r.state.is_active() => {
                    // Stored as running but not run here (a shutdown is under way): record the stop.
                    let mut r = r;
                    r.state = JobState::Stopped;
                    Job::new(r).persist(&self.ctx.fence, &self.ctx.cluster).await?;
                    Ok(())
                }
                Ok(_) | Err(JobError::NotFound(_)) => Err(JobError::Gone),
                Err(e) => Err(e),
            },
        }
    }

    /// Waits until job `id` is no longer running (finished, stopped, or the coordinator shuts down).
    pub async fn wait(&self, id: &str) {
        let job = self.running.lock().get(id).cloned();
        let Some(job) = job else { return };
        let mut changes = job.subscribe();
        while job.snapshot().state.is_active() && !self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// One job's record (the live one while it runs).
    pub async fn record(&self, kind: JobKind, id: &str) -> Result<JobRecord, JobError> {
        let live = self.running.lock().get(id).map(|j| j.snapshot());
        // A finished job stays in `running` until it expires; past that, the store lookup below drops it.
        if let Some(r) = live.filter(|r| r.kind == kind && !r.expired(self.retention)) {
            return Ok(r);
        }
        let key = job_key(&self.ctx.cluster, kind, id);
        let kv = self.ctx.store.get(&key).await?.ok_or_else(|| JobError::NotFound(id.to_string()))?;
        let rec = decode(&key, &kv.value)?;
        if rec.expired(self.retention) {
            self.drop_expired(&rec).await;
            return Err(JobError::NotFound(id.to_string()));
        }
        Ok(rec)
    }

    /// Every job of `kind`, newest first (live records for running jobs; expired ones dropped).
    pub async fn records(&self, kind: JobKind) -> Result<Vec<JobRecord>, JobError> {
        let mut out = Vec::new();
        for rec in self.stored(kind).await? {
            if rec.expired(self.retention) {
                self.drop_expired(&rec).await;
                continue;
            }
            let live = self.running.lock().get(&rec.id).map(|j| j.snapshot());
            out.push(live.unwrap_or(rec));
        }
        out.sort_by(|a, b| b.start_ms.cmp(&a.start_ms).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn stored(&self, kind: JobKind) -> Result<Vec<JobRecord>, JobError> {
        let prefix = jobs_prefix(&self.ctx.cluster, kind.as_str());
        let mut out = Vec::new();
        for kv in list_all(self.ctx.store.as_ref(), &prefix).await? {
            match decode(&kv.key, &kv.value) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!("skipping a job record: {e}"),
            }
        }
        Ok(out)
    }

    async fn drop_expired(&self, rec: &JobRecord) {
        self.running.lock().remove(&rec.id);
        let key = job_key(&self.ctx.cluster, rec.kind, &rec.id);
        // Fenced: a follower leaves expired jobs to the leader.
        if let Err(e) = self.ctx.fence.delete(&key).await {
            tracing::warn!(job = %rec.id, "cannot delete an expired job: {e}");
        }
        let _ = std::fs::remove_file(failed_list::path(&self.ctx, &rec.id));
        let kind = runner::runner_for(rec.kind);
        for file in kind.job_files(&self.ctx, &rec.id) {
            let _ = std::fs::remove_file(file);
        }
        for prefix in kind.job_prefixes(&self.ctx, &rec.id) {
            if let Err(e) = self.ctx.fence.delete_prefix(&prefix).await {
                tracing::warn!(job = %rec.id, "cannot delete {prefix}: {e}");
            }
        }
    }

    /// The kind and state of every job this Coordinator holds in memory (running, or finished and not
    /// expired): what the `/metrics` job gauge counts, without a store read.
    pub fn held(&self) -> Vec<(JobKind, JobState)> {
        self.running.lock().values().map(|j| j.snapshot()).map(|r| (r.kind, r.state)).collect()
    }

    /// A load job's progress.
    pub async fn load_progress(&self, id: &str) -> Result<LoadProgress, JobError> {
        Ok(self.record(JobKind::Load, id).await?.load_progress())
    }

    /// A free job's progress.
    pub async fn free_progress(&self, id: &str) -> Result<FreeProgress, JobError> {
        Ok(self.record(JobKind::Free, id).await?.free_progress())
    }

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
                    .find(|r| r.rebalance.target == target && r.state.is_active());
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

fn decode(key: &str, value: &[u8]) -> Result<JobRecord, JobError> {
    let rec: JobRecord =
        serde_json::from_slice(value).map_err(|e| JobError::Corrupt { key: key.to_string(), reason: e.to_string() })?;
    if rec.version != record::JOB_RECORD_VERSION {
        return Err(JobError::Corrupt { key: key.to_string(), reason: format!("unknown version {}", rec.version) });
    }
    Ok(rec)
}

/// Exactly one of `paths` (non-empty) and `index` (non-empty).
fn exactly_one(paths: Option<Vec<String>>, index: Option<String>) -> Result<(Vec<String>, String), JobError> {
    let paths = paths.filter(|p| !p.is_empty());
    let index = index.filter(|i| !i.is_empty());
    match (paths, index) {
        (Some(p), None) => {
            if p.iter().any(|x| x.is_empty()) {
                return Err(JobError::InvalidInput("an entry of `paths` is empty".into()));
            }
            Ok((p, String::new()))
        }
        (None, Some(i)) => Ok((Vec::new(), i)),
        (Some(_), Some(_)) => Err(JobError::MissingParameters("give either `paths` or `index`, not both".into())),
        (None, None) => Err(JobError::MissingParameters("one of `paths` or `index` is required".into())),
    }
}

/// Runs a job's `runner` in the scope of the id of the request that submitted it (when it has one) and in
/// a `job` span naming the job and that id: its calls to workers carry the id (the peer client sends
/// `loam_core::request_id::current`), and its log lines, and the workers' for its batches, show it.
async fn in_request_scope<F: std::future::Future>(job_id: String, request_id: String, runner: F) -> F::Output {
    use tracing::Instrument;
    let span = tracing::info_span!("job", job_id = %job_id, request_id = tracing::field::Empty);
    if request_id.is_empty() {
        return runner.instrument(span).await;
    }
    span.record("request_id", request_id.as_str());
    loam_core::request_id::scope(request_id, runner).instrument(span).await
}
