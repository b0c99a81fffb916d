//! The persisted job record and how it is shown.
//!
//! One JSON [`JobRecord`] per job at `/loam/<cluster>/jobs/<kind>/<id>` (it carries `version`). It holds
//! the request (paths or index, options; a rebalance's target and plan summary), the state, timestamps,
//! the live counters and a [`Checkpoint`]: the *listing cursor* (how many listing events, in listing
//! order, are fully decided) with the counters of exactly those events. Per-file done-markers would be
//! millions of keys; the cursor is one number. A job that resumes (after a stop or a coordinator restart)
//! re-lists, skips the first `cursor` events and restarts its counters from the checkpoint, so nothing is
//! counted twice; the files after the cursor that were already loaded cost no UFS read, because a worker
//! reads only pages it lacks. (A rebalance's "listing" is its plan file, see `rebalance`.)
//!
//! The record of every kind is here: a rebalance's part is [`RebalanceState`] (its target, options and
//! [`PlanSummary`]), and each kind's progress object is made here from the record (`load_progress`,
//! `free_progress`, `rebalance_progress`), so the API and the runners depend on this module and it on
//! none of theirs.
//!
//! Fields added since version 1 all have defaults, so records written by an older release still read.

use loam_core::job_api::{
    FreeOptions, FreeProgress, JobState, LoadOptions, LoadProgress, QuotaInfo, RebalanceOptions, RebalanceProgress,
};
use loam_core::time::{now_millis, rfc3339_millis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

/// Version of the stored job record.
pub const JOB_RECORD_VERSION: u32 = 1;
/// Most failed paths kept in `errorMessage`.
pub const MAX_ERROR_MESSAGES: usize = 100;

/// Which job endpoint a job belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// `/api/v1/load`.
    Load,
    /// `/api/v1/free`.
    Free,
    /// `/api/v1/rebalance`.
    Rebalance,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [JobKind; 3] = [JobKind::Load, JobKind::Free, JobKind::Rebalance];

    /// `load`, `free` or `rebalance` (the store sub-prefix).
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Load => "load",
            JobKind::Free => "free",
            JobKind::Rebalance => "rebalance",
        }
    }
}

/// What one rebalance target worker has decided: its files done (either way) and those that failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerTally {
    /// Plan items of this worker decided.
    pub decided: u64,
    /// Of those, the failed ones.
    pub failed: u64,
}

/// The counters of every job kind (each kind shows its own).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Files listed (before the filter).
    pub scanned_files: u64,
    /// Files matched.
    pub total_files: u64,
    /// Bytes of the files matched.
    pub total_bytes: u64,
    /// Load: bytes of files loaded.
    pub loaded_bytes: u64,
    /// Load: bytes of files skipped as cached.
    pub skipped_bytes: u64,
    /// Load: non-empty files loaded.
    pub loaded_non_empty_files: u64,
    /// Files that failed.
    pub failed_files: u64,
    /// Bytes of the files that failed.
    pub failed_bytes: u64,
    /// Free: bytes of the files freed.
    pub freed_bytes: u64,
    /// Free: files freed.
    pub freed_files: u64,
    /// Rebalance: files loaded (empty ones included).
    pub loaded_files: u64,
    /// Rebalance: files a target already held and still owns.
    pub preserved_files: u64,
    /// Rebalance: bytes of those.
    pub preserved_bytes: u64,
    /// Rebalance: files pruned.
    pub pruned_files: u64,
    /// Rebalance: cached bytes pruned.
    pub pruned_bytes: u64,
    /// Rebalance: each target worker's tally, by worker id.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub per_worker: BTreeMap<String, WorkerTally>,
}

impl Counters {
    /// Adds `d` to these counters.
    pub fn add(&mut self, d: &Counters) {
        self.scanned_files += d.scanned_files;
        self.total_files += d.total_files;
        self.total_bytes += d.total_bytes;
        self.loaded_bytes += d.loaded_bytes;
        self.skipped_bytes += d.skipped_bytes;
        self.loaded_non_empty_files += d.loaded_non_empty_files;
        self.failed_files += d.failed_files;
        self.failed_bytes += d.failed_bytes;
        self.freed_bytes += d.freed_bytes;
        self.freed_files += d.freed_files;
        self.loaded_files += d.loaded_files;
        self.preserved_files += d.preserved_files;
        self.preserved_bytes += d.preserved_bytes;
        self.pruned_files += d.pruned_files;
        self.pruned_bytes += d.pruned_bytes;
        for (w, t) in &d.per_worker {
            let mine = self.per_worker.entry(w.clone()).or_default();
            mine.decided += t.decided;
            mine.failed += t.failed;
        }
    }
}

/// What is durably done: the first `cursor` listing events and their counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Checkpoint {
    /// Listing events (files, listing errors) fully decided, counted from the start of the listing.
    pub cursor: u64,
    /// The counters of those events.
    pub counters: Counters,
}

/// The rebalance target meaning every live worker.
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

/// What a rebalance's record keeps of its plan (the items themselves are in the cluster store and the plan
/// file, `rebalance/plan.rs` and `rebalance/stored.rs`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanSummary {
    /// Items in the plan file.
    pub items: u64,
    /// The first `loads` items load or keep; the rest prune.
    pub loads: u64,
    /// Items of each reachable target worker, by worker id.
    pub workers: BTreeMap<String, u64>,
    /// Targets that could not be planned for (not live, or could not list their files), and why.
    pub unreachable: BTreeMap<String, String>,
    /// The plan's id, named by the plan file and the stored plan, so a resumed job uses only its own plan
    /// (empty in records written before plans had one).
    pub plan: String,
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// [`JOB_RECORD_VERSION`].
    pub version: u32,
    /// UUIDv4.
    pub id: String,
    /// Load or free.
    pub kind: JobKind,
    /// The paths as given.
    #[serde(default)]
    pub paths: Vec<String>,
    /// The index file as given (empty when paths were given).
    #[serde(default)]
    pub index: String,
    /// What identifies twins: the resolved UFS URIs of the paths (sorted, unique) or `index:<uri>`.
    pub twin_key: Vec<String>,
    /// Load options (for load jobs).
    #[serde(default)]
    pub load: LoadOptions,
    /// Free options (for free jobs).
    #[serde(default)]
    pub free: FreeOptions,
    /// Target, options and plan summary (for rebalance jobs).
    #[serde(default)]
    pub rebalance: RebalanceState,
    /// The state.
    pub state: JobState,
    /// The phase of a running job (`LISTING`, `LOADING`, `RETRYING`, `VERIFYING`).
    #[serde(default)]
    pub running_state: String,
    /// Submission time, ms since the epoch.
    pub start_ms: i64,
    /// When it finished, ms since the epoch.
    #[serde(default)]
    pub end_ms: Option<i64>,
    /// Running time of the earlier runs. In the store it includes the current run up to the write
    /// ([`JobRecord::stored`]), so a restart, even a `kill -9`, loses at most one persist interval.
    #[serde(default)]
    pub elapsed_ms: u64,
    /// Start of the current run (not stored: a restarted job starts a new run).
    #[serde(skip)]
    pub run_started_ms: Option<i64>,
    /// Live counters.
    #[serde(default)]
    pub counters: Counters,
    /// Up to [`MAX_ERROR_MESSAGES`] failed paths and why.
    #[serde(default)]
    pub error_message: BTreeMap<String, String>,
    /// The failed-file list on the Coordinator's disk (set when the job finishes with failures).
    #[serde(default)]
    pub failed_file_list_path: String,
    /// What is durably done.
    #[serde(default)]
    pub checkpoint: Checkpoint,
    /// Load: the quota the job falls under, as of the last check (`{0, 0}` under none).
    #[serde(default)]
    pub quota: QuotaInfo,
    /// Load: why the job was stopped for quota (empty otherwise).
    #[serde(default)]
    pub quota_check_error: String,
    /// The id of the request that submitted the job (`loam_core::request_id`; empty when submitted
    /// outside a request, or by a Coordinator older than this field). Stored, so a job resumed after a
    /// restart still carries it on its batches to the workers and in its log lines.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
}

impl JobRecord {
    /// A new running job.
    pub fn new(id: String, kind: JobKind, paths: Vec<String>, index: String, twin_key: Vec<String>) -> Self {
        Self {
            version: JOB_RECORD_VERSION,
            id,
            kind,
            paths,
            index,
            twin_key,
            load: LoadOptions::default(),
            free: FreeOptions::default(),
            rebalance: RebalanceState::default(),
            state: JobState::Running,
            running_state: String::new(),
            start_ms: now_millis(),
            end_ms: None,
            elapsed_ms: 0,
            run_started_ms: None,
            counters: Counters::default(),
            error_message: BTreeMap::new(),
            failed_file_list_path: String::new(),
            checkpoint: Checkpoint::default(),
            quota: QuotaInfo::default(),
            quota_check_error: String::new(),
            request_id: loam_core::request_id::current().unwrap_or_default(),
        }
    }

    /// Running time so far, the current run included.
    pub fn elapsed(&self) -> u64 {
        let current = self.run_started_ms.map(|s| now_millis().saturating_sub(s).max(0) as u64).unwrap_or(0);
        self.elapsed_ms + current
    }

    /// Ends the current run: its time joins `elapsed_ms`.
    pub fn end_run(&mut self) {
        self.elapsed_ms = self.elapsed();
        self.run_started_ms = None;
    }

    /// The record as it is written to the store: the current run's time so far joins `elapsed_ms`
    /// (the live record keeps counting from `run_started_ms`; a resumed run starts a new one).
    pub fn stored(mut self) -> Self {
        self.end_run();
        self
    }

    /// Records a failed path's error (the first [`MAX_ERROR_MESSAGES`] distinct paths).
    pub fn note_error(&mut self, path: &str, error: &str) {
        if self.error_message.len() < MAX_ERROR_MESSAGES || self.error_message.contains_key(path) {
            self.error_message.insert(path.to_string(), error.to_string());
        }
    }

    /// Whether a finished job is older than `retention`.
    pub fn expired(&self, retention: Duration) -> bool {
        self.state.is_finished()
            && self.end_ms.is_some_and(|end| now_millis().saturating_sub(end) > retention.as_millis() as i64)
    }

    /// Whether a job that ran to its end failed: a file failed, or a rebalance target was unreachable.
    pub fn failed(&self) -> bool {
        self.counters.failed_files > 0 || self.rebalance.plan.as_ref().is_some_and(|p| !p.unreachable.is_empty())
    }

    /// `startTime`: the submission time, RFC 3339 with milliseconds.
    pub fn start_time(&self) -> String {
        rfc3339_millis(UNIX_EPOCH + Duration::from_millis(self.start_ms.max(0) as u64))
    }

    /// The load progress object.
    pub fn load_progress(&self) -> LoadProgress {
        let c = &self.counters;
        LoadProgress {
            id: self.id.clone(),
            start_time: self.start_time(),
            state: self.state.as_str().to_string(),
            running_state: if self.state.is_active() { self.running_state.clone() } else { String::new() },
            error_message: self.error_message.clone(),
            failed_file_list_path: self.failed_file_list_path.clone(),
            paths: self.paths.clone(),
            index: self.index.clone(),
            skip_if_exists: self.load.skip_if_exists,
            load_metadata_only: self.load.load_metadata_only,
            verify: self.load.verify,
            bandwidth: self.load.bandwidth,
            time_elapsed_milliseconds: self.elapsed(),
            loaded_bytes: c.loaded_bytes,
            skipped_bytes: c.skipped_bytes,
            total_bytes: c.total_bytes,
            loaded_non_empty_files: c.loaded_non_empty_files,
            failed_files: c.failed_files,
            scanned_files: c.scanned_files,
            quota: self.quota.clone(),
            quota_check_error: self.quota_check_error.clone(),
        }
    }

    /// The free progress object.
    pub fn free_progress(&self) -> FreeProgress {
        let c = &self.counters;
        FreeProgress {
            id: self.id.clone(),
            start_time: self.start_time(),
            state: self.state.as_str().to_string(),
            error_message: self.error_message.clone(),
            failed_file_list_path: self.failed_file_list_path.clone(),
            paths: self.paths.clone(),
            index: self.index.clone(),
            time_elapsed_milliseconds: self.elapsed(),
            freed_bytes: c.freed_bytes,
            failed_bytes: c.failed_bytes,
            total_bytes: c.total_bytes,
            freed_files: c.freed_files,
            failed_files: c.failed_files,
            total_files: c.total_files,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_without_the_run_start() {
        let mut r = JobRecord::new("id".into(), JobKind::Load, vec!["file:///a".into()], String::new(), vec![]);
        r.run_started_ms = Some(now_millis());
        r.counters.loaded_bytes = 5;
        let back: JobRecord = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back.run_started_ms, None);
        assert_eq!(back.counters.loaded_bytes, 5);
        assert_eq!(back.version, JOB_RECORD_VERSION);
    }

    #[test]
    fn the_quota_fields_default_in_older_records_and_show_in_the_progress() {
        let mut r = JobRecord::new("id".into(), JobKind::Load, vec!["/d".into()], String::new(), vec![]);
        let mut old = serde_json::to_value(&r).unwrap();
        let fields = old.as_object_mut().unwrap();
        assert!(fields.remove("quota").is_some() && fields.remove("quota_check_error").is_some());
        let back: JobRecord = serde_json::from_value(old).unwrap();
        assert_eq!((back.quota, back.quota_check_error), (QuotaInfo::default(), String::new()));
        r.quota = QuotaInfo { total_bytes: 10, remaining: 4 };
        r.quota_check_error = "full".into();
        let p = r.load_progress();
        assert_eq!((p.quota, p.quota_check_error.as_str()), (QuotaInfo { total_bytes: 10, remaining: 4 }, "full"));
    }

    #[test]
    fn the_stored_record_counts_the_current_run_and_a_resumed_run_adds_to_it() {
        let mut r = JobRecord::new("id".into(), JobKind::Load, vec!["/d".into()], String::new(), vec![]);
        r.elapsed_ms = 1_000;
        r.run_started_ms = Some(now_millis() - 5_000);
        let stored: JobRecord = serde_json::from_slice(&serde_json::to_vec(&r.clone().stored()).unwrap()).unwrap();
        assert!(stored.elapsed_ms >= 6_000, "the earlier runs and this one so far: {}", stored.elapsed_ms);
        assert_eq!(r.elapsed_ms, 1_000, "the live record is unchanged");
        // A coordinator that reads it back (after a kill) resumes the count from there.
        let mut resumed = stored.clone();
        resumed.run_started_ms = Some(now_millis() - 2_000);
        assert!(resumed.elapsed() >= stored.elapsed_ms + 2_000);
        assert!(resumed.load_progress().time_elapsed_milliseconds >= 8_000);
    }

    #[test]
    fn error_messages_are_capped() {
        let mut r = JobRecord::new("id".into(), JobKind::Free, vec![], "i".into(), vec![]);
        for i in 0..150 {
            r.note_error(&format!("p{i}"), "e");
        }
        assert_eq!(r.error_message.len(), MAX_ERROR_MESSAGES);
    }

    #[test]
    fn workers_are_running_then_succeeded_or_failed() {
        let mut r = JobRecord::new("id".into(), JobKind::Rebalance, vec![], String::new(), vec![]);
        let p = r.rebalance_progress();
        assert_eq!((p.total_workers, p.running_workers), (0, 0), "nothing planned yet");
        let workers = [("w1".to_string(), 2), ("w2".to_string(), 1), ("w3".to_string(), 0)].into_iter().collect();
        let unreachable = [("w4".to_string(), "down".to_string())].into_iter().collect();
        r.rebalance.plan = Some(PlanSummary { items: 3, loads: 3, workers, unreachable, plan: String::new() });
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
