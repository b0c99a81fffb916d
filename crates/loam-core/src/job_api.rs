//! Wire types of the job APIs: the Coordinator's `/api/v1/load`, `/api/v1/free` and `/api/v1/rebalance`
//! (spec "Distributed load", "Free cache", "Rebalance"), the worker's internal task API the Coordinator
//! drives (`/v1/internal/load`, `/v1/internal/free`, `/v1/internal/verify`, and `/v1/internal/file/<id>`,
//! which a worker copying a file from a peer reads), and the worker's Alluxio-compatible `/v1/load` answers.
//!
//! Progress objects omit empty strings, lists and maps (the spec's "skip if empty") but always carry
//! their numeric counters. The internal task API carries a `version` so a Coordinator and a worker of
//! different releases refuse each other's batches instead of misreading them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the internal task API's JSON (`/v1/internal/*`).
pub const TASK_API_VERSION: u32 = 1;

/// A batch of files to load on a worker (`POST`, body [`LoadTask`], answer [`TaskResults`]).
pub const LOAD_TASK_PATH: &str = "/v1/internal/load";
/// A batch of files to drop from a worker (`POST`, body [`FileListTask`], answer [`TaskResults`]).
pub const FREE_TASK_PATH: &str = "/v1/internal/free";
/// A batch of files to check on a worker (`POST`, body [`FileListTask`], answer [`TaskResults`]).
pub const VERIFY_TASK_PATH: &str = "/v1/internal/verify";
/// A worker's record of one file, `<this>/<file id>` (`GET`, answer [`PeerFile`]).
pub const PEER_FILE_PATH: &str = "/v1/internal/file";
/// The route of [`PEER_FILE_PATH`]: `<PEER_FILE_PATH>/{id}`.
pub const PEER_FILE_ROUTE: &str = "/v1/internal/file/{id}";

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Listing and loading/freeing.
    Running,
    /// Checking that loaded files are present on their workers.
    Verifying,
    /// Stopped by the user; a resubmission resumes it.
    Stopped,
    /// Finished, every file done.
    Succeeded,
    /// Finished, some file failed.
    Failed,
}

impl JobState {
    /// Whether the job is finished (`SUCCEEDED` or `FAILED`).
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }

    /// Whether the job is executing (`RUNNING` or `VERIFYING`).
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Running | JobState::Verifying)
    }

    /// The wire spelling (`RUNNING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "RUNNING",
            JobState::Verifying => "VERIFYING",
            JobState::Stopped => "STOPPED",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
        }
    }
}

/// Options of `POST /api/v1/load` (all optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadOptions {
    /// Files per task sent to one worker; 0 means the default.
    pub batch_size: u64,
    /// Only files whose full UFS path matches this regex are loaded.
    #[serde(alias = "fileFilterRegx", skip_serializing_if = "String::is_empty")]
    pub file_filter_regex: String,
    /// Distinct workers each file is loaded onto; 0 means 1.
    pub replicas: u64,
    /// Answer only when the job is finished.
    pub sync: bool,
    /// Skip files whose pages are all cached and current.
    pub skip_if_exists: bool,
    /// Check afterwards that every loaded file is fully present on its workers.
    pub verify: bool,
    /// Bytes per second per worker read from the UFS; 0 is unlimited.
    pub bandwidth: u64,
    /// Cache file metadata only, no data.
    pub load_metadata_only: bool,
}

/// `POST /api/v1/load` body: exactly one of `paths` and `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct LoadRequest {
    /// UFS or cluster paths (files or directories, directories recursively).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// The path of an index file: one path per line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Options.
    pub options: LoadOptions,
}

/// Options of `POST /api/v1/free` (all optional).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct FreeOptions {
    /// Files per task; 0 means the default.
    pub batch_size: u64,
    /// Answer only when the job is finished.
    pub sync: bool,
    /// Whether a directory frees its whole tree (true) or only the files directly in it.
    pub recursive: bool,
}

impl Default for FreeOptions {
    fn default() -> Self {
        Self { batch_size: 0, sync: false, recursive: true }
    }
}

/// `POST /api/v1/free` body: exactly one of `paths` and `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct FreeRequest {
    /// UFS or cluster paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// The path of an index file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Options.
    pub options: FreeOptions,
}

/// `{"id": "<job id>"}`: the answer of a submission, the body of a stop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobId {
    /// The job id.
    pub id: String,
}

/// What a job submission answers with `200`: the new job's [`JobId`], or with `sync` its progress `P` once
/// it ended. (The handlers build the two answers separately; this type is their documented union.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SubmitAnswer<P> {
    /// Without `sync`.
    Id(JobId),
    /// With `sync`.
    Progress(P),
}

// `anyOf`, not the derive's `oneOf`: a `{"id"}` validates as a progress too (its fields are optional).
impl<P: utoipa::ToSchema> utoipa::__dev::ComposeSchema for SubmitAnswer<P> {
    fn compose(
        generics: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::PartialSchema;
        let progress = generics.into_iter().next().unwrap_or_else(P::schema);
        utoipa::openapi::schema::AnyOfBuilder::new().item(JobId::schema()).item(progress).into()
    }
}

impl<P: utoipa::ToSchema> utoipa::ToSchema for SubmitAnswer<P> {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        P::schemas(schemas);
    }
}

/// The quota a load job falls under (zeros when quotas are off).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct QuotaInfo {
    /// The quota's bytes.
    pub total_bytes: u64,
    /// What remained of it at the last check.
    pub remaining: u64,
}

/// A load job's progress (`GET /api/v1/load?id=`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadProgress {
    /// The job id.
    pub id: String,
    /// When the job was submitted (RFC 3339, millis).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub start_time: String,
    /// `RUNNING`, `VERIFYING`, `STOPPED`, `SUCCEEDED` or `FAILED`.
    pub state: String,
    /// Phase of a running job: `LISTING`, `LOADING`, `RETRYING`, `VERIFYING`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub running_state: String,
    /// Up to 100 failed UFS paths and their errors.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub error_message: BTreeMap<String, String>,
    /// A file on the Coordinator listing every failed path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failed_file_list_path: String,
    /// The paths loaded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The index file loaded.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub index: String,
    /// The option.
    pub skip_if_exists: bool,
    /// The option.
    pub load_metadata_only: bool,
    /// The option.
    pub verify: bool,
    /// The option (bytes/s per worker, 0 unlimited).
    pub bandwidth: u64,
    /// Running time so far (stopped periods excluded).
    pub time_elapsed_milliseconds: u64,
    /// Bytes of files loaded.
    pub loaded_bytes: u64,
    /// Bytes of files skipped because they were cached (`skipIfExists`).
    pub skipped_bytes: u64,
    /// Bytes of all files matched so far.
    pub total_bytes: u64,
    /// Files of non-zero length loaded.
    pub loaded_non_empty_files: u64,
    /// Files that failed.
    pub failed_files: u64,
    /// Files listed so far.
    pub scanned_files: u64,
    /// The quota the paths fall under.
    pub quota: QuotaInfo,
    /// Why the job was refused or stopped for quota.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub quota_check_error: String,
}

/// A free job's progress (`GET /api/v1/free?id=`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct FreeProgress {
    /// The job id.
    pub id: String,
    /// When the job was submitted.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub start_time: String,
    /// The state.
    pub state: String,
    /// Up to 100 failed UFS paths and their errors.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub error_message: BTreeMap<String, String>,
    /// A file on the Coordinator listing every failed path (**Decision**: as for load).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failed_file_list_path: String,
    /// The paths freed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The index file freed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub index: String,
    /// Running time so far.
    pub time_elapsed_milliseconds: u64,
    /// Bytes of the files freed.
    pub freed_bytes: u64,
    /// Bytes of the files that failed.
    pub failed_bytes: u64,
    /// Bytes of all files matched so far.
    pub total_bytes: u64,
    /// Files freed.
    pub freed_files: u64,
    /// Files that failed.
    pub failed_files: u64,
    /// Files matched so far.
    pub total_files: u64,
}

/// Options of `POST /api/v1/rebalance` (all optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RebalanceOptions {
    /// Files per task sent to one worker (as load's `batchSize`); 0 means the default.
    pub load_batch_size: u64,
    /// Bytes per second per worker loaded (copied from a peer or read from the UFS); 0 is unlimited.
    pub load_bandwidth: u64,
    /// Cached bytes per second per worker pruned; 0 is unlimited.
    pub prune_bandwidth: u64,
    /// Load only: prune nothing.
    pub skip_prune: bool,
    /// **Decision:** a worker owns a file when it is among the file's first `replicas` owners on the ring
    /// (clear-stale's rule); 0 means 1.
    pub replicas: u64,
}

/// `POST /api/v1/rebalance` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RebalanceRequest {
    /// A worker id (`worker-<uuid>`) or `ALL`.
    pub target: String,
    /// Options.
    #[serde(default)]
    pub options: RebalanceOptions,
}

/// `DELETE /api/v1/rebalance` body: exactly one of `id` and `target`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RebalanceStop {
    /// The job to stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The target whose unfinished rebalance to stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A rebalance job's progress (`GET /api/v1/rebalance?id=`): the spec's fields, plus the error fields of
/// load progress, omitted when empty (so a job without failures shows exactly the spec's fields).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RebalanceProgress {
    /// The job id.
    pub id: String,
    /// When the job was submitted.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub start_time: String,
    /// The state.
    pub state: String,
    /// Phase of a running job: `PLANNING`, `LOADING`, `PRUNING`, `RETRYING`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub running_state: String,
    /// Up to 100 failed UFS paths (or unreachable workers) and their errors.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub error_message: BTreeMap<String, String>,
    /// A file on the Coordinator listing every failed path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failed_file_list_path: String,
    /// Running time so far (stopped periods excluded).
    pub time_elapsed_milliseconds: u64,
    /// Target workers.
    pub total_workers: u64,
    /// Target workers with work left.
    pub running_workers: u64,
    /// Target workers whose every file succeeded.
    pub succeeded_workers: u64,
    /// Target workers with a failed file, or that could not be reached.
    pub failed_workers: u64,
    /// Files loaded onto their new owners.
    pub files_loaded: u64,
    /// Bytes of the files loaded.
    pub bytes_loaded: u64,
    /// Files a target already held (every page) and still owns.
    pub files_preserved: u64,
    /// Bytes of the files preserved.
    pub bytes_preserved: u64,
    /// Files dropped from a target that no longer owns them.
    pub files_pruned: u64,
    /// Cached bytes dropped.
    pub bytes_pruned: u64,
    /// Files that failed.
    pub files_failed: u64,
}

/// One file of an internal load batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadTaskFile {
    /// The file's full UFS URI.
    pub ufs_uri: String,
    /// Skip the file when all its pages are cached and current.
    #[serde(default)]
    pub skip_if_exists: bool,
    /// Cache the metadata only.
    #[serde(default)]
    pub metadata_only: bool,
    /// Length from the coordinator's listing: with it the worker need not stat the file again (one UFS
    /// request per file instead of two, which is what small-file loads are bound by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// ETag from the listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Modification time from the listing, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ms: Option<i64>,
    /// A peer worker (`http://host:port`) holding the file: its missing pages are copied from there, and
    /// read from the UFS only if the copy fails (rebalance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `POST /v1/internal/load`: files for one worker to load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadTask {
    /// [`TASK_API_VERSION`].
    pub version: u32,
    /// The files.
    pub files: Vec<LoadTaskFile>,
    /// UFS bytes per second this worker may read for the job (0 unlimited).
    #[serde(default)]
    pub bandwidth: u64,
}

/// `POST /v1/internal/free` and `/v1/internal/verify`: files named by UFS URI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileListTask {
    /// [`TASK_API_VERSION`].
    pub version: u32,
    /// Full UFS URIs.
    pub uris: Vec<String>,
    /// Free: cached bytes per second this worker may drop (0 unlimited; a rebalance's `pruneBandwidth`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bandwidth: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `GET /v1/internal/file/<id>`: what a worker holds of one file, read by a peer that copies it. The
/// copier adopts this record, so the pages it copies and the version it records are the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerFile {
    /// [`TASK_API_VERSION`].
    pub version: u32,
    /// The file's UFS URI.
    pub uri: String,
    /// Length in bytes.
    pub length: u64,
    /// The ETag of the cached version, when the UFS has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Modification time of the cached version, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ms: Option<i64>,
    /// When the holder last checked the version against the UFS, ms since the epoch.
    pub validated_ms: i64,
    /// The holder's page size: pages are only copied between workers of one page size.
    pub page_size: u64,
}

/// What a worker did with one file of a task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileResult {
    /// The file's UFS URI.
    pub uri: String,
    /// Whether the operation succeeded (verify: the file is fully present).
    pub ok: bool,
    /// Load: bytes of the file; free: cached bytes dropped.
    #[serde(default)]
    pub bytes: u64,
    /// Load: skipped as already cached; free: the worker held nothing of it.
    #[serde(default)]
    pub skipped: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to any internal task: one result per file, in the request's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskResults {
    /// [`TASK_API_VERSION`].
    pub version: u32,
    /// The results.
    pub results: Vec<FileResult>,
}

/// The worker's `/v1/load?opType=submit|stop` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerLoadAnswer {
    /// Whether the operation took effect.
    pub success: bool,
    /// The job concerned (empty when there is none).
    pub job_id: String,
    /// What happened.
    pub message: String,
}

/// The worker's `/v1/load?opType=progress` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerLoadProgress {
    /// The job's state.
    pub job_state: String,
    /// The path asked about.
    pub path: String,
    /// A one-line summary of the progress.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_file_route_is_under_its_path() {
        assert_eq!(PEER_FILE_ROUTE, format!("{PEER_FILE_PATH}/{{id}}"));
    }

    #[test]
    fn options_accept_the_misspelled_alias_and_default() {
        let r: LoadRequest =
            serde_json::from_str(r#"{"paths": ["s3://b/d"], "options": {"fileFilterRegx": "a.*", "replicas": 2}}"#)
                .unwrap();
        assert_eq!(r.options.file_filter_regex, "a.*");
        assert_eq!(r.options.replicas, 2);
        let f: FreeRequest = serde_json::from_str(r#"{"paths": []}"#).unwrap();
        assert!(f.options.recursive);
    }

    #[test]
    fn progress_skips_empty_values_but_keeps_counters() {
        let v = serde_json::to_value(LoadProgress { id: "x".into(), state: "RUNNING".into(), ..Default::default() })
            .unwrap();
        assert!(v.get("runningState").is_none() && v.get("errorMessage").is_none() && v.get("index").is_none());
        assert_eq!(v["loadedBytes"], 0);
        assert_eq!(v["quota"]["remaining"], 0);
        assert_eq!(serde_json::to_value(JobState::Verifying).unwrap(), "VERIFYING");
    }

    #[test]
    fn rebalance_progress_shows_exactly_the_spec_fields_when_nothing_failed() {
        let v = serde_json::to_value(RebalanceProgress { id: "x".into(), ..Default::default() }).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = vec![
            "id",
            "state",
            "timeElapsedMilliseconds",
            "totalWorkers",
            "runningWorkers",
            "succeededWorkers",
            "failedWorkers",
            "filesLoaded",
            "bytesLoaded",
            "filesPreserved",
            "bytesPreserved",
            "filesPruned",
            "bytesPruned",
            "filesFailed",
        ];
        want.sort_unstable();
        assert_eq!(keys, want, "startTime is omitted only because it is empty here");
        let r: RebalanceRequest = serde_json::from_str(r#"{"target": "ALL", "options": {"skipPrune": true}}"#).unwrap();
        assert!(r.options.skip_prune && r.options.load_batch_size == 0);
        let t: FileListTask = serde_json::from_str(r#"{"version": 1, "uris": []}"#).unwrap();
        assert_eq!(t.bandwidth, 0);
        assert!(serde_json::to_value(&t).unwrap().get("bandwidth").is_none());
    }
}
