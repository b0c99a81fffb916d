//! Wire types of the job APIs: the Coordinator's `/api/v1/load` and `/api/v1/free` (spec "Distributed
//! load", "Free cache"), the worker's internal task API the Coordinator drives (`/v1/internal/load`,
//! `/v1/internal/free`, `/v1/internal/verify`), and the worker's Alluxio-compatible `/v1/load` answers.
//!
//! Progress objects omit empty strings, lists and maps (the spec's "skip if empty") but always carry
//! their numeric counters. The internal task API carries a `version` so a Coordinator and a worker of
//! different releases refuse each other's batches instead of misreading them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the internal task API's JSON (`/v1/internal/*`).
pub const TASK_API_VERSION: u32 = 1;

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobId {
    /// The job id.
    pub id: String,
}

/// The quota a load job falls under (zeros when quotas are off).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QuotaInfo {
    /// The quota's bytes.
    pub total_bytes: u64,
    /// What remained of it at the last check.
    pub remaining: u64,
}

/// A load job's progress (`GET /api/v1/load?id=`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// One file of an internal load batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// `POST /v1/internal/load`: files for one worker to load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileListTask {
    /// [`TASK_API_VERSION`].
    pub version: u32,
    /// Full UFS URIs.
    pub uris: Vec<String>,
}

/// What a worker did with one file of a task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResults {
    /// [`TASK_API_VERSION`].
    pub version: u32,
    /// The results.
    pub results: Vec<FileResult>,
}

/// The worker's `/v1/load?opType=submit|stop` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}
