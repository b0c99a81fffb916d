//! Executing the Coordinator's load, free and verify batches on this worker (`/v1/internal/*`).
//!
//! - **Load** goes through the read-through layer, so a loaded page is exactly what a read would have
//!   cached, and pages already cached cost no UFS read (a resumed or repeated job re-reads nothing). Files
//!   of a batch run concurrently ([`FILES_IN_PARALLEL`]); UFS reads of all batches together are bounded in
//!   number ([`MAX_UFS_READS`]) and in bytes ([`MAX_UFS_READ_BYTES`]): many small files keep many requests
//!   in flight (a small-file load is bound by request latency), large runs are limited by the memory they
//!   hold. Each UFS read first takes its bytes from a token bucket of the
//!   batch's `bandwidth` (one bucket per distinct rate: batches of one job share theirs, see `bandwidth`).
//! - **skipIfExists**: the file is opened first, which re-validates a record older than `max_age` and
//!   drops the pages of a changed object; a file whose pages are then all cached is skipped.
//! - **Lengths from the batch are checked against the UFS.** A batch's `length` (the Coordinator's listing)
//!   saves a stat, but it is checked by the reads themselves: the read of the file's last run asks one byte
//!   more (see `read_through`), so a forged length, shorter or longer, fails the file and its record and
//!   pages are dropped; reads stop at the first failing run, and no file over
//!   `read_through::MAX_FILE_SIZE` is taken. No buffer is sized by a claimed length: a run is at most
//!   `ufs_read_size`, and a read past the real end returns nothing.
//! - **Metadata only**: opening the file caches its record (length, ETag, mtime); no page is read, so the
//!   record comes from a stat of the UFS, never from the batch.
//! - **Peer copies** (rebalance): a file with a `source` peer has its missing pages copied from that
//!   worker's page API instead of read from the UFS (see `peer`); when the copy fails for any reason the
//!   file is loaded from the UFS as usual. The copy takes its bytes from the same token bucket.
//! - **Free** drops the file's record and pages; a file the worker does not hold is a success, `skipped`.
//!   A free batch may carry a `bandwidth` (a rebalance's `pruneBandwidth`): cached bytes dropped per second.
//! - **Verify** answers whether the file's record and every page are present.
//!
//! - **A loaded file is a cached file.** After its pages are read, a file whose pages are not all cached
//!   (a disk that could not make room, a quota, a file larger than the cache) or whose cache directory is
//!   unhealthy fails, with the reason: the job counts it failed rather than loaded.
//!
//! A batch answers one result per file, in order; a failing file never fails the batch.

mod bandwidth;
mod peer;

use crate::read_through::{OpenFile, ReadThrough};
use bandwidth::TokenBucket;
use futures::{StreamExt, TryStreamExt};
use loam_client::PeerClient;
use loam_core::job_api::{FileResult, LoadTaskFile};
use loam_page_store::metrics::EvictionCause;
use loam_ufs::UfsStatus;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// Files of one batch loaded at the same time.
pub const FILES_IN_PARALLEL: usize = 32;
/// UFS reads in flight for all batches of this worker together.
pub const MAX_UFS_READS: usize = 64;
/// Bytes of UFS reads in flight for all batches of this worker together (16 runs of 4 MiB).
pub const MAX_UFS_READ_BYTES: u64 = 64 << 20;
/// The unit in which [`MAX_UFS_READ_BYTES`] is counted out (semaphore permits are `u32`).
const READ_BYTES_UNIT: u64 = 64 << 10;
/// Runs of one file read at once by a load, so a large file keeps several UFS reads in flight.
pub const RUNS_IN_PARALLEL_PER_FILE: usize = 4;

/// What a token bucket limits: loads and prunes of the same rate do not share one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Limited {
    Load,
    Free,
}

/// Runs load, free and verify batches against this worker's cache.
pub struct TaskRunner {
    rt: Arc<ReadThrough>,
    ufs_reads: Semaphore,
    /// Permits of [`READ_BYTES_UNIT`] bytes.
    ufs_read_bytes: Semaphore,
    buckets: Mutex<HashMap<(Limited, u64), Arc<TokenBucket>>>,
    /// For copies from peers; `None` when no HTTP client could be built (then files are read from the UFS).
    peers: Option<PeerClient>,
}

impl TaskRunner {
    /// A runner over the worker's read-through layer.
    pub fn new(rt: Arc<ReadThrough>, token: loam_auth::Credential) -> Arc<Self> {
        let peers = match loam_client::peer::http_client(Some(peer::PEER_TIMEOUT)) {
            Ok(c) => Some(PeerClient::new(c, token)),
            Err(e) => {
                tracing::warn!("no HTTP client for peer copies (files will be read from the UFS): {e}");
                None
            }
        };
        Arc::new(Self {
            rt,
            ufs_reads: Semaphore::new(MAX_UFS_READS),
            ufs_read_bytes: Semaphore::new((MAX_UFS_READ_BYTES / READ_BYTES_UNIT) as usize),
            buckets: Mutex::new(HashMap::new()),
            peers,
        })
    }

    /// Loads `files`, reading (or copying from peers) at most `bandwidth` bytes per second (0: unlimited).
    pub async fn load(&self, files: Vec<LoadTaskFile>, bandwidth: u64) -> Vec<FileResult> {
        let bucket = (bandwidth > 0).then(|| self.bucket(Limited::Load, bandwidth));
        // Unordered, so that one slow file does not hold back the start of the files after it; the
        // answer is put back in the batch's order.
        let mut results: Vec<(usize, FileResult)> = futures::stream::iter(files.into_iter().enumerate())
            .map(|(at, f)| {
                let bucket = bucket.clone();
                async move {
                    let result = match self.load_one(&f, bucket.as_deref()).await {
                        Ok((bytes, skipped)) => FileResult { uri: f.ufs_uri, ok: true, bytes, skipped, error: None },
                        Err(e) => FileResult { uri: f.ufs_uri, ok: false, bytes: 0, skipped: false, error: Some(e) },
                    };
                    (at, result)
                }
            })
            .buffer_unordered(FILES_IN_PARALLEL)
            .collect()
            .await;
        results.sort_unstable_by_key(|(at, _)| *at);
        results.into_iter().map(|(_, r)| r).collect()
    }

    fn bucket(&self, what: Limited, rate: u64) -> Arc<TokenBucket> {
        let mut buckets = self.buckets.lock();
        // Buckets of finished jobs are dropped once nobody holds them, so the map stays small.
        buckets.retain(|_, b| Arc::strong_count(b) > 1);
        buckets.entry((what, rate)).or_insert_with(|| Arc::new(TokenBucket::new(rate))).clone()
    }

    async fn load_one(&self, f: &LoadTaskFile, bucket: Option<&TokenBucket>) -> Result<(u64, bool), String> {
        if let Some(peer) = f.source.as_deref().filter(|_| !f.metadata_only) {
            match self.copy_from_peer(f, peer, bucket).await {
                Ok(done) => return Ok(done),
                Err(e) => tracing::info!("copying {} from {peer} failed, reading the UFS instead: {e}", f.ufs_uri),
            }
        }
        // The coordinator's listing already said what the file is; asking the UFS again would double the
        // requests of a small-file load.
        // A metadata-only load reads no page that would check a given length: it stats.
        let known = f.length.filter(|_| !f.metadata_only).map(|length| UfsStatus {
            uri: f.ufs_uri.clone(),
            is_dir: false,
            length,
            etag: f.etag.clone(),
            modified: f
                .modified_ms
                .and_then(|ms| u64::try_from(ms).ok())
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
            meta: None,
        });
        let held = self
            .rt
            .resolve(&f.ufs_uri)
            .is_ok_and(|(r, _)| self.rt.pages().file(&loam_core::file_id(&r.ufs_uri)).is_some());
        let file = self.rt.open_with(&f.ufs_uri, known).await.map_err(|e| e.to_string())?;
        let length = file.record.length;
        if f.metadata_only {
            // No page follows to carry the record to disk: write it now, so a restart keeps the metadata.
            self.rt.pages().persist_record(file.file_id()).await.map_err(|e| e.to_string())?;
            return Ok((0, false));
        }
        // Only a file held before counts as already there (an empty one is "fully cached" once opened).
        if f.skip_if_exists && held && self.fully_cached(&file) {
            return Ok((length, true));
        }
        if let Err(e) = self.read_missing(&file, bucket).await {
            // A read found the record's length wrong (it marked the record for re-validation): when the
            // length came from the batch, drop what this load cached under it.
            let stale = self.rt.pages().file(file.file_id()).is_some_and(|r| r.validated_ms == 0);
            if stale && f.length.is_some() {
                self.rt.pages().remove_file(file.file_id()).await.map_err(|e| e.to_string())?;
            }
            return Err(e);
        }
        self.check_cached(&file)?;
        Ok((length, false))
    }

    /// A load succeeds only if the file ends up cached where it stays: every page on disk (in memory when
    /// the worker has no disk tier), and its cache directory healthy. A page kept only in memory because
    /// the disk was full or failed would be evicted silently, so it does not count. Otherwise the file fails
    /// with why, so that a job never ends `SUCCEEDED` with files left uncached.
    fn check_cached(&self, file: &OpenFile) -> Result<(), String> {
        let pages = self.rt.pages();
        let count = self.rt.page_count(file.record.length);
        let missing = (0..count).filter(|i| !pages.has_page_kept(file.file_id(), *i)).count();
        let problem = pages.disk_problem(file.file_id());
        match (missing, problem) {
            (0, None) => Ok(()),
            (_, Some(problem)) => Err(format!("{missing} of {count} pages not cached on disk: {problem}")),
            (_, None) => Err(format!(
                "{missing} of {count} pages could not be cached (the cache or its disk is smaller than the \
                 file, or they were evicted by higher-priority data or refused by a quota)"
            )),
        }
    }

    /// Every page cached where it stays (see `check_cached`): `skipIfExists` skips only such a file.
    fn fully_cached(&self, file: &OpenFile) -> bool {
        let pages = self.rt.pages();
        let count = self.rt.page_count(file.record.length);
        (0..count).all(|i| pages.has_page_kept(file.file_id(), i))
    }

    /// Reads every page not yet cached. `read_page` fetches the whole run around a missing page with one UFS
    /// request, so one missing page per run is asked for, and several runs of a large file are read at once
    /// (within the worker-wide limit of UFS reads) rather than one after another.
    async fn read_missing(&self, file: &OpenFile, bucket: Option<&TokenBucket>) -> Result<(), String> {
        let pages = self.rt.pages();
        let ps = pages.page_size();
        let per_run = self.rt.pages_per_run();
        let count = self.rt.page_count(file.record.length);
        // The first missing page of each run, found lazily as the runs are read: nothing is sized by the
        // page count, and a load that fails early looks no further.
        let firsts = (0..count.div_ceil(per_run)).filter_map(move |run| {
            (run * per_run..((run + 1) * per_run).min(count)).find(|i| !pages.has_page(file.file_id(), *i))
        });
        futures::stream::iter(firsts)
            .map(|i| async move {
                let run_end = ((i / per_run + 1) * per_run * ps).min(file.record.length);
                let bytes = run_end - i * ps;
                if let Some(b) = bucket {
                    b.take(bytes).await;
                }
                let _permit = self.ufs_reads.acquire().await.map_err(|e| e.to_string())?;
                let units = bytes.div_ceil(READ_BYTES_UNIT).clamp(1, MAX_UFS_READ_BYTES / READ_BYTES_UNIT) as u32;
                let _bytes = self.ufs_read_bytes.acquire_many(units).await.map_err(|e| e.to_string())?;
                self.rt.load_page(file, i).await.map(|_| ()).map_err(|e| e.to_string())
            })
            .buffer_unordered(RUNS_IN_PARALLEL_PER_FILE)
            // The first failing run ends the file's load: the runs after it are not read.
            .try_for_each(|()| async { Ok(()) })
            .await
    }

    /// Drops every cached page of `uris`, at most `bandwidth` cached bytes per second (0: unlimited).
    pub async fn free(&self, uris: Vec<String>, bandwidth: u64) -> Vec<FileResult> {
        let bucket = (bandwidth > 0).then(|| self.bucket(Limited::Free, bandwidth));
        let mut out = Vec::with_capacity(uris.len());
        for uri in uris {
            let id = loam_core::file_id(&uri);
            let held = self.rt.pages().file(&id).is_some();
            if let Some(b) = bucket.as_deref()
                && held
            {
                b.take(self.rt.pages().cached_bytes(&id)).await;
            }
            let r = match self.rt.pages().evict_file(&id, EvictionCause::Free).await {
                Ok(bytes) => FileResult { uri, ok: true, bytes, skipped: !held, error: None },
                Err(e) => FileResult { uri, ok: false, bytes: 0, skipped: false, error: Some(e.to_string()) },
            };
            out.push(r);
        }
        out
    }

    /// The page store the tasks work on.
    pub fn pages(&self) -> &Arc<loam_page_store::PageStore> {
        self.rt.pages()
    }

    /// Whether each of `uris` has its record and every page cached (metadata-only loads: the record).
    pub fn verify(&self, uris: Vec<String>, metadata_only: bool) -> Vec<FileResult> {
        let pages = self.rt.pages();
        uris.into_iter()
            .map(|uri| {
                let id = loam_core::file_id(&uri);
                let error = match pages.file(&id) {
                    None => Some("not cached on this worker".to_string()),
                    Some(_) if metadata_only => None,
                    Some(rec) => {
                        let count = rec.page_count(pages.page_size());
                        let missing = (0..count).filter(|i| !pages.has_page(&id, *i)).count();
                        (missing > 0).then(|| format!("{missing} of {count} pages are not cached on this worker"))
                    }
                };
                FileResult { uri, ok: error.is_none(), bytes: 0, skipped: false, error }
            })
            .collect()
    }
}
