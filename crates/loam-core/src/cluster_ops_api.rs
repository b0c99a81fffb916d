//! Wire types of the cluster-wide cache operations: the global file index (`/api/v1/file_index` and the
//! workers' reports to it), clear-stale (`/api/v1/cache` and its broadcast to workers) and drain
//! (`/api/v1/nodes/drain` and the worker's `/v1/drain`).
//!
//! Coordinator and workers share these so both sides of the internal calls read the same shapes; every
//! internal body carries [`CLUSTER_OPS_API_VERSION`], so mismatched releases fail loudly.

use serde::{Deserialize, Serialize};

/// Version of the internal bodies below.
pub const CLUSTER_OPS_API_VERSION: u32 = 1;

/// A worker's report to the Coordinator (`POST`, body [`IndexReport`]).
pub const FILE_INDEX_REPORT_PATH: &str = "/api/v1/internal/file_index";
/// The files a worker holds, in URI order, a page at a time (`GET`, query `limit` and `after`, answer
/// [`CachedFiles`]; without `limit`, every file in one answer).
pub const CACHED_FILES_PATH: &str = "/v1/internal/cached_files";
/// The most URIs one page of [`CACHED_FILES_PATH`] holds (a larger `limit` is an error).
pub const MAX_CACHED_FILES_PAGE: u64 = 100_000;
/// How much of each of a batch of files a worker holds (`POST`, body [`CachedPercentQuery`], answer
/// [`CachedPercents`]): a worker listing a directory asks each entry's owner, so every worker's listing
/// shows what the owners hold.
pub const CACHED_PERCENT_PATH: &str = "/v1/internal/cached_percent";
/// Starts (`POST`, body [`ClearStaleTask`]) or stops (`DELETE`) a worker's clear-stale scan.
pub const CLEAR_STALE_PATH: &str = "/v1/internal/clear_stale";

/// A worker leaves the ring and moves its cached files to their next owners (`POST`, no body, answer
/// [`DrainReport`]). Not under `/v1/internal/`: an admin may call it as well as a member.
pub const DRAIN_PATH: &str = "/v1/drain";
/// The Coordinator asks worker `id` to drain (`POST`, body [`DrainRequest`], answer [`DrainReport`]).
pub const NODES_DRAIN_PATH: &str = "/api/v1/nodes/drain";
/// How long a caller waits for a drain: it copies a whole worker's cache (Kubernetes bounds the preStop
/// hook with the pod's grace period anyway).
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
/// The most failed files a [`DrainReport`] names (the count is always whole).
pub const DRAIN_FAILURES_SHOWN: usize = 100;

/// `POST /api/v1/nodes/drain` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    /// The worker identity, `worker-<uuid>`.
    pub id: String,
}

/// What a drain did: every cached file of the worker, moved to its next owner, already there, or failed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrainReport {
    /// [`CLUSTER_OPS_API_VERSION`].
    pub version: u32,
    /// The drained worker, `worker-<uuid>`.
    pub worker: String,
    /// Cached files the drain looked at.
    pub files: u64,
    /// Files whose missing pages were copied to their next owner.
    pub moved_files: u64,
    /// Bytes of those files.
    pub moved_bytes: u64,
    /// Files the next owner already held whole (nothing copied).
    pub present_files: u64,
    /// Files that did not reach their next owner.
    pub failed_files: u64,
    /// The first [`DRAIN_FAILURES_SHOWN`] failed files, with why.
    pub failures: Vec<DrainFailure>,
}

/// One file a drain could not move.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrainFailure {
    /// The file's UFS URI.
    pub uri: String,
    /// Its next owner, `worker-<uuid>` (empty when there is none).
    pub owner: String,
    /// Why it failed.
    pub error: String,
}

/// `POST /api/v1/file_index` and `DELETE /api/v1/file_index` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IndexFiles {
    /// UFS URIs (or Alluxio paths).
    pub files: Vec<String>,
}

/// `{"entries": n}`: how many entries a POST added or a DELETE removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IndexEntries {
    /// Entries added or removed.
    pub entries: u64,
}

/// `GET /api/v1/file_index?file=`: where one file is cached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileLocation {
    /// The file's UFS URI.
    pub file: String,
    /// The workers that reported holding it.
    pub workers: Vec<IndexedWorker>,
}

/// One worker holding a file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IndexedWorker {
    /// `worker-<uuid>`.
    pub identity: String,
    /// `host:port` of its HTTP API, when the worker is registered.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
}

/// A worker's report of the change in its cached files (`POST /api/v1/internal/file_index`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IndexReport {
    /// [`CLUSTER_OPS_API_VERSION`].
    pub version: u32,
    /// The reporting worker, `worker-<uuid>`.
    pub worker: String,
    /// Forget everything held for this worker before applying the change (the reporter's first report).
    #[serde(default)]
    pub reset: bool,
    /// UFS URIs cached since the last report.
    #[serde(default)]
    pub added: Vec<String>,
    /// UFS URIs dropped since the last report.
    #[serde(default)]
    pub removed: Vec<String>,
}

/// A page of a worker's cached files (`GET /v1/internal/cached_files`), for rebuilding the index and
/// planning a rebalance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CachedFiles {
    /// [`CLUSTER_OPS_API_VERSION`].
    pub version: u32,
    /// The worker, `worker-<uuid>`.
    pub worker: String,
    /// UFS URIs of the files it holds, ascending (in byte order), each once.
    pub files: Vec<String>,
    /// Present when more follow: ask again with `after` set to it (the last URI of `files`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The query of [`CACHED_FILES_PATH`] (what a server answering it reads; the worker parses raw queries
/// into it, since `after` is a UFS URI).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct CachedFilesQuery {
    /// The most URIs in the answer (1 to [`MAX_CACHED_FILES_PAGE`]); none: all.
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

impl CachedFilesQuery {
    /// The page of `sorted` it asks for, and the next page's cursor (see [`page_after`]).
    pub fn page_of(&self, sorted: &[String]) -> (Vec<String>, Option<String>) {
        page_after(sorted, self.after.as_deref(), self.limit)
    }
}

/// The page of `sorted` (ascending, each once) that follows `after`, at most `limit` long (no limit: the
/// rest), and the cursor of the next page when more follow. A cursor need not be in `sorted`: a page
/// starts at the first URI greater than it, so a listing taken again between pages neither repeats nor
/// skips what both listings hold.
pub fn page_after(sorted: &[String], after: Option<&str>, limit: Option<usize>) -> (Vec<String>, Option<String>) {
    let from = after.map_or(0, |a| sorted.partition_point(|u| u.as_str() <= a));
    let rest = &sorted[from..];
    // A page holds at least one URI, so a listing always ends.
    let n = limit.map_or(rest.len(), |l| l.clamp(1, rest.len().max(1)).min(rest.len()));
    let page = rest[..n].to_vec();
    let next = (n < rest.len()).then(|| page.last().cloned()).flatten();
    (page, next)
}

/// `POST|DELETE /api/v1/cache` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CacheOp {
    /// The operation; only `clear-stale` is implemented.
    pub op: String,
    /// Owners kept per file (the first `replicas` workers of the ring); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

/// The broadcast to each worker (`POST /v1/internal/clear_stale`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClearStaleTask {
    /// [`CLUSTER_OPS_API_VERSION`].
    pub version: u32,
    /// A file is kept if this worker is among its first `replicas` owners on the ring.
    pub replicas: u32,
}

/// `{"errors": {"<worker host>": "<message>"}}` of `/api/v1/cache`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CacheOpErrors {
    /// Per-worker failures; empty when every worker accepted.
    pub errors: std::collections::BTreeMap<String, String>,
}

/// One version of one file: what a cached copy must match to count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileVersion {
    /// The file's UFS URI.
    pub uri: String,
    /// Its length in bytes, as the UFS lists it.
    pub length: u64,
    /// Its ETag, when the UFS has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// `POST /v1/internal/cached_percent` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CachedPercentQuery {
    /// [`CLUSTER_OPS_API_VERSION`].
    pub version: u32,
    /// The files, each as the asking worker listed it.
    pub files: Vec<FileVersion>,
}

/// The answer: the percentage of each file (of that version) the worker holds, in the query's order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CachedPercents {
    /// [`CLUSTER_OPS_API_VERSION`].
    pub version: u32,
    /// One percentage (0 to 100) per file.
    pub percents: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_sorted_list_once_and_a_cursor_need_not_be_listed() {
        let all: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
        let (mut got, mut after) = (Vec::new(), None::<String>);
        loop {
            let (page, next) = page_after(&all, after.as_deref(), Some(2));
            assert!(page.len() <= 2);
            got.extend(page);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(got, all);
        // A cursor between listed URIs (a file dropped since the last page) starts after it.
        assert_eq!(page_after(&all, Some("bb"), Some(2)), (vec!["c".into(), "d".into()], Some("d".into())));
        assert_eq!(page_after(&all, Some("e"), Some(2)), (vec![], None));
        assert_eq!(page_after(&all, Some("d"), None), (vec!["e".into()], None));
        assert_eq!(page_after(&all, None, Some(0)).0, vec!["a".to_string()], "at least one a page");
        assert_eq!(page_after(&[], None, Some(0)), (vec![], None));
    }
}
