//! Read-through: serves pages from the page store and, on a miss, reads the UFS once however many
//! requests wait for the same data, caches what it read, and answers.
//!
//! - **Streaming runs, coalesced** (`run`). Misses are read per *run*: the pages of an aligned block of
//!   `ufs_read_size` bytes (default 4 MiB), with one ranged UFS request whose pages are handed to the
//!   readers as they arrive and stored on the side. Every concurrent request for a page of a run waits on
//!   the same read; a page kept in memory or held by a slow response keeps only itself alive, not its run
//!   (`Ufs::stream_pieces_of` fills a buffer per page).
//! - **Read-ahead sized to the UFS** (`read_ahead`, `pace`): a range stream asks for the pages ahead of the
//!   one it sends — so the next runs are requested while the current one streams — as far ahead as the
//!   mount's measured first-byte latency × bandwidth calls for, within the worker's read-ahead budget.
//! - **Lengths are the UFS's.** A record's length may come from a caller (a load job's listing) instead of a
//!   stat; the read of a file's last run asks one byte more than the record says, so a file longer than its
//!   record is found as surely as a shorter one (a short read): either way the record is marked for
//!   re-validation and the read fails. No file over [`MAX_FILE_SIZE`] (5 TiB, S3's largest object) is
//!   cached: that caps the pages of one file (5 Mi pages of 1 MiB), whatever length a caller claims.
//! - **Freshness.** A file's record remembers the UFS length, ETag and modification time. It is trusted
//!   for `max_age` after its last validation; then the UFS is asked again, and a changed object drops
//!   every cached page of the old version before anything is served. If the UFS is unreachable during
//!   a re-validation, cached data is served (stale-if-error) and the check is retried on the next read.
//! - **One version per response.** An [`OpenFile`] is pinned to the version it opened: its record, the
//!   page store *generation* of that record, and its version tag (`loam_core::version`). Its pages are read
//!   with `get_page_of` (a miss once the file was replaced, never a page of the new version), its misses
//!   are read from the UFS with `stream_pieces_of` (only from that version: `UfsError::Changed` otherwise)
//!   and cached with `put_pages_of` (not at all if the version was replaced meanwhile), and runs are
//!   coalesced per version. So a stream that outlives its version ends with a `Changed` error; it never
//!   goes on with another version's bytes.

use crate::cluster::mount_view::MountView;
use crate::error::{WorkerError, WorkerResult};
use crate::metrics::WorkerMetrics;
use crate::metrics::data_path::UFS_TIER;
use crate::metrics::timed_ufs::TimedUfs;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use loam_core::ErrorKind;
use loam_core::time::{epoch_millis, now_millis};
use loam_page_store::{FileRecord, PageStore};
use loam_ufs::mount_table::Resolved;
use loam_ufs::{Ufs, UfsError, UfsRegistry, UfsStatus};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

pub mod pace;
pub mod read_ahead;
pub mod run;
pub use read_ahead::ReadAheadBudget;
use run::{Runs, StreamedRun};

/// The largest file the cache takes (S3's largest object): the cap on one file's pages.
pub const MAX_FILE_SIZE: u64 = 5 << 40;

/// A file opened for reading: where it lives and the version of it that is being served.
#[derive(Clone)]
pub struct OpenFile {
    /// The mount and paths it resolved to.
    pub resolved: Resolved,
    /// The record (length, ETag, ...) of the version being served.
    pub record: FileRecord,
    /// The UFS it is read from.
    pub ufs: Arc<dyn Ufs>,
    /// The page store generation of `record`: the only pages this version is served from.
    pub generation: u64,
}

impl OpenFile {
    /// The file id.
    pub fn file_id(&self) -> &str {
        &self.record.file_id
    }

    /// The version tag of the version being served (`loam_core::version`): the `ETag` of a response.
    pub fn tag(&self) -> String {
        let r = &self.record;
        loam_core::version::version_tag(r.length, r.etag.as_deref(), r.modified_ms)
    }
}

/// How a worker reads: freshness, UFS read size and read-ahead (from `WorkerConfig`).
#[derive(Clone, Copy, Debug)]
pub struct ReadTuning {
    /// How long a record is trusted before it is re-validated against the UFS.
    pub max_age: Duration,
    /// Bytes per UFS read on a miss (a run of pages).
    pub ufs_read_size: u64,
    /// Bytes that all range streams together may read ahead of what they send ([`ReadAheadBudget`]).
    pub read_ahead: u64,
}

/// The read-through layer shared by every request of a worker.
pub struct ReadThrough {
    pages: Arc<PageStore>,
    ufs: UfsRegistry,
    mounts: MountView,
    max_age: Duration,
    ufs_read_size: u64,
    /// The runs being read from the UFS, and each mount's pace.
    runs: Arc<Runs>,
    read_ahead: ReadAheadBudget,
    /// Pages of UFS runs that reads for clients may have in flight together (the read-ahead budget's
    /// size, at least one run); loads bound their own (`tasks`).
    client_runs: Arc<Semaphore>,
    metrics: WorkerMetrics,
}

impl ReadThrough {
    /// A read-through layer over `pages`, reading misses from the UFS of each file's mount; range streams
    /// read ahead within `read_ahead` bytes for all of them together.
    pub fn new(
        pages: Arc<PageStore>,
        ufs: UfsRegistry,
        mounts: MountView,
        tuning: ReadTuning,
        metrics: WorkerMetrics,
    ) -> Arc<Self> {
        let ufs_read_size = tuning.ufs_read_size.max(pages.page_size());
        let read_ahead = ReadAheadBudget::new(tuning.read_ahead, pages.page_size(), metrics.read_ahead_bytes.clone());
        let run_pages = (ufs_read_size / pages.page_size()).max(1);
        let budget_pages = tuning.read_ahead / pages.page_size();
        let client_runs = budget_pages.max(run_pages).min(Semaphore::MAX_PERMITS as u64);
        let runs = Runs::new(pages.clone(), metrics.clone(), run_pages, budget_pages);
        Arc::new(Self {
            pages,
            ufs,
            mounts,
            max_age: tuning.max_age,
            ufs_read_size,
            runs,
            read_ahead,
            client_runs: Arc::new(Semaphore::new(client_runs as usize)),
            metrics,
        })
    }

    /// How long a record is trusted before it is re-validated against the UFS.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The page store.
    pub fn pages(&self) -> &Arc<PageStore> {
        &self.pages
    }

    /// This worker's metric handles.
    pub fn metrics(&self) -> &WorkerMetrics {
        &self.metrics
    }

    /// The mount view.
    pub fn mounts(&self) -> &MountView {
        &self.mounts
    }

    /// Resolves `path` (cluster path or UFS URI) to its mount and UFS.
    pub fn resolve(&self, path: &str) -> WorkerResult<(Resolved, Arc<dyn Ufs>)> {
        let resolved = self.mounts.resolve(path)?;
        let ufs = self.ufs.for_mount(&resolved.mount)?;
        // The one place the worker gets a UFS: every call on it is timed and counted by mount.
        let ufs = TimedUfs::wrap(ufs, &resolved.mount.path, &self.metrics.data);
        Ok((resolved, ufs))
    }

    /// Opens a file for reading, re-validating its record against the UFS when it is older than `max_age`.
    pub async fn open(&self, path: &str) -> WorkerResult<OpenFile> {
        self.open_with(path, None).await
    }

    /// Opens version `tag` of a file (a caller pinned to it: `If-Match`). When the record is another
    /// version, the UFS is asked again at once (the caller may have seen a newer version than the record);
    /// still another version: `Changed`.
    pub async fn open_version(&self, path: &str, tag: &str) -> WorkerResult<OpenFile> {
        let f = self.open(path).await?;
        if f.tag() == tag {
            return Ok(f);
        }
        self.pages.set_validated(f.file_id(), 0);
        let f = self.open(path).await?;
        if f.tag() == tag {
            return Ok(f);
        }
        Err(WorkerError::Changed(format!("{} is version {} now, not {tag}", f.record.ufs_uri, f.tag())))
    }

    /// Like [`open`](Self::open), but when a re-validation is due, takes `known` — a status the caller has
    /// just listed (a load job's listing) — instead of asking the UFS again.
    pub async fn open_with(&self, path: &str, known: Option<UfsStatus>) -> WorkerResult<OpenFile> {
        let (resolved, ufs) = self.resolve(path)?;
        let id = loam_core::file_id(&resolved.ufs_uri);
        let now = now_millis();
        let cached = self.pages.file_version(&id);
        if let Some((rec, generation)) = &cached
            && now.saturating_sub(rec.validated_ms) < self.max_age.as_millis() as i64
        {
            return Ok(OpenFile { resolved, record: rec.clone(), ufs, generation: *generation });
        }
        // A caller's status without a validator (no ETag, no modification time) names no version that reads
        // could be pinned to: the UFS is asked instead.
        let stat = match known.filter(|s| s.etag.is_some() || s.modified.is_some()) {
            Some(s) => Ok(s),
            None => ufs.stat(&resolved.ufs_uri).await,
        };
        let status = match stat {
            Ok(s) => s,
            Err(UfsError::NotFound(_)) => {
                if cached.is_some() {
                    self.pages.remove_file(&id).await?;
                }
                return Err(WorkerError::NotFound(format!("no such file: {}", resolved.ufs_uri)));
            }
            Err(e) if e.kind() == ErrorKind::Unavailable && cached.is_some() => {
                loam_core::warn_limited!(
                    "serving {} from cache: UFS unreachable for re-validation: {e}",
                    resolved.ufs_uri
                );
                let (record, generation) = cached.expect("checked above");
                self.metrics.data.unrevalidated.inc();
                return Ok(OpenFile { resolved, record, ufs, generation });
            }
            Err(e) => return Err(e.into()),
        };
        if status.is_dir {
            return Err(WorkerError::InvalidInput(format!("{} is a directory", resolved.ufs_uri)));
        }
        if status.length > MAX_FILE_SIZE {
            return Err(WorkerError::InvalidInput(format!(
                "{} is {} bytes, more than the {MAX_FILE_SIZE} bytes of the largest file the cache takes",
                resolved.ufs_uri, status.length
            )));
        }
        let (record, generation) = self.record_for(&id, &resolved.ufs_uri, &status, cached, now).await?;
        Ok(OpenFile { resolved, record, ufs, generation })
    }

    /// Stores the record of the UFS's current version, dropping old pages if it changed; returns it with
    /// its generation.
    async fn record_for(
        &self,
        id: &str,
        uri: &str,
        status: &UfsStatus,
        cached: Option<(FileRecord, u64)>,
        now: i64,
    ) -> WorkerResult<(FileRecord, u64)> {
        let modified_ms = status.modified.map(epoch_millis);
        if let Some((rec, generation)) = cached {
            // The ETag is the strong validator; modification times are compared only without one, since a
            // listing and a HEAD may report them at different precisions.
            let same = rec.length == status.length
                && match (&rec.etag, &status.etag) {
                    (Some(a), Some(b)) => a == b,
                    _ => rec.modified_ms == modified_ms,
                };
            if same {
                self.pages.set_validated(id, now);
                return Ok((FileRecord { validated_ms: now, ..rec }, generation));
            }
            self.metrics.stale_files.inc();
            tracing::info!("{uri} changed in the UFS; dropping its cached pages");
        }
        let rec = FileRecord {
            version: loam_page_store::FILE_RECORD_VERSION,
            file_id: id.to_string(),
            ufs_uri: uri.to_string(),
            length: status.length,
            etag: status.etag.clone(),
            modified_ms,
            validated_ms: now,
            cached_ms: now,
        };
        // Written to disk with the first pages read: one disk hand-off for a file's first run, not two.
        let generation = self.pages.put_file_pending(rec.clone()).await?;
        Ok((rec, generation))
    }

    /// Runs of pages being read from the UFS or stored now: 0 once every read so far is cached (reads
    /// cache on the side, after their responses may have ended).
    pub fn runs_in_flight(&self) -> usize {
        self.runs.in_flight()
    }

    /// Pages fetched together by one UFS read on a miss.
    pub fn pages_per_run(&self) -> u64 {
        (self.ufs_read_size / self.pages.page_size()).max(1)
    }

    /// Number of pages of a file of `length` bytes.
    pub fn page_count(&self, length: u64) -> u64 {
        length.div_ceil(self.pages.page_size())
    }

    /// The bytes of page `index` (shorter for the last page, empty past the end), for a client: a UFS run
    /// it has to read waits its turn within the worker's budget of client runs; the page is returned as
    /// soon as it has arrived, while the rest of its run is still read and stored.
    pub async fn read_page(&self, f: &OpenFile, index: u64) -> WorkerResult<Bytes> {
        self.read_part(f, index, 0, usize::MAX).await
    }

    /// Bytes `[lo, hi)` of page `index` (clipped to the page; empty past the end), for a client. A part of a
    /// page held by the disk tier is read alone, its blocks checked (`loam_page_store`'s block checksums):
    /// a 4 KiB read does not read and check the whole page.
    pub async fn read_part(&self, f: &OpenFile, index: u64, lo: usize, hi: usize) -> WorkerResult<Bytes> {
        if index.saturating_mul(self.pages.page_size()) >= f.record.length {
            return Ok(Bytes::new());
        }
        let (part, hit) = self.read_page_within(f, index, Some(&self.client_runs), lo..hi).await?;
        // Client reads only: a load fills the cache, it serves nobody.
        self.metrics.data.page_served(&f.resolved.mount.path, hit, part.len());
        Ok(part)
    }

    /// [`read_page`](Self::read_page) for a load, whose caller bounds its UFS reads itself (`tasks`), so
    /// that loads never take the budget that clients' reads wait on. Returns once the page's whole run is
    /// read and stored: a load reports what it cached, and bounds its reads by what it awaits.
    pub async fn load_page(&self, f: &OpenFile, index: u64) -> WorkerResult<Bytes> {
        Ok(self.read_page_within(f, index, None, 0..usize::MAX).await?.0)
    }

    /// Page `index` and whether the cache held it (`false`: read through from the UFS, or joined to
    /// another request's read, timed as the `ufs` tier of the page read histogram). Without `budget` (a
    /// load), only once the run that read it is stored.
    async fn read_page_within(
        &self,
        f: &OpenFile,
        index: u64,
        budget: Option<&Arc<Semaphore>>,
        part: Range<usize>,
    ) -> WorkerResult<(Bytes, bool)> {
        let ps = self.pages.page_size();
        if index.saturating_mul(ps) >= f.record.length {
            return Ok((Bytes::new(), true));
        }
        // The cache is asked for the part only (a part of a disk page is read alone); a page read from the
        // UFS is read whole, and cut.
        if let Some(b) = self.pages.get_page_part_of(f.file_id(), f.generation, index, part.clone()).await? {
            return Ok((b, true));
        }
        let cut = |page: Bytes| -> WorkerResult<Bytes> {
            if part.start > page.len() {
                return Err(WorkerError::Unavailable(format!("page {index} of {} is short", f.record.ufs_uri)));
            }
            Ok(page.slice(part.start..part.end.min(page.len())))
        };
        let started = Instant::now();
        let per_run = self.pages_per_run();
        let run = self.runs.fetch(f, index / per_run * per_run, per_run, budget);
        // A guard of the family's lock is never held across an await: the series is looked up to observe.
        let filled = || {
            let h = self.metrics.page_store.page_read_seconds.get_or_create(&UFS_TIER);
            h.observe(started.elapsed().as_secs_f64());
        };
        if let Some(b) = self.page_of(&run, index, budget.is_none()).await? {
            filled();
            return Ok((cut(b)?, false));
        }
        // The run's reader saw this page cached, and it was evicted since: read it alone.
        if let Some(b) = self.pages.get_page_part_of(f.file_id(), f.generation, index, part.clone()).await? {
            return Ok((b, true));
        }
        let run = self.runs.start(f, index, 1, budget, None);
        let page = self
            .page_of(&run, index, budget.is_none())
            .await?
            .ok_or_else(|| WorkerError::Unavailable(format!("page {index} of {} was not read", f.record.ufs_uri)))?;
        filled();
        Ok((cut(page)?, false))
    }

    /// Page `index` from `run`; with `whole`, once the run is stored.
    async fn page_of(&self, run: &StreamedRun, index: u64, whole: bool) -> WorkerResult<Option<Bytes>> {
        let page = run.page(index).await?;
        if whole {
            run.stored().await;
        }
        Ok(page)
    }

    /// Streams bytes `[offset, offset + len)` of a file (clipped to its length), reading ahead.
    pub fn read_range(self: &Arc<Self>, f: OpenFile, offset: u64, len: u64) -> BoxStream<'static, WorkerResult<Bytes>> {
        let end = offset.saturating_add(len).min(f.record.length);
        if offset >= end {
            return futures::stream::empty().boxed();
        }
        let ps = self.pages.page_size();
        let (first, last) = (offset / ps, (end - 1) / ps);
        let this = self.clone();
        let depth = self.runs.pace.depth(&f.resolved.mount.path);
        let f = Arc::new(f);
        read_ahead::pages(first, last, self.read_ahead.clone(), depth, move |i| {
            let (this, f) = (this.clone(), f.clone());
            async move {
                let page_start = i * ps;
                let lo = offset.saturating_sub(page_start) as usize;
                let hi = (end - page_start).min(ps) as usize;
                let part = this.read_part(&f, i, lo, hi).await?;
                this.metrics.served_bytes.inc_by(part.len() as u64);
                this.metrics.data.sent(part.len());
                Ok(part)
            }
        })
        .boxed()
    }

    /// Reads a whole range into one buffer (for small reads: head, tail, page parts).
    pub async fn read_range_to_bytes(self: &Arc<Self>, f: OpenFile, offset: u64, len: u64) -> WorkerResult<Bytes> {
        let mut parts = self.read_range(f, offset, len);
        let mut first: Option<Bytes> = None;
        let mut buf: Option<Vec<u8>> = None;
        while let Some(p) = parts.next().await {
            let p = p?;
            match (&mut first, &mut buf) {
                (None, _) => first = Some(p),
                (Some(f0), None) => {
                    let mut v = f0.to_vec();
                    v.extend_from_slice(&p);
                    buf = Some(v);
                }
                (Some(_), Some(v)) => v.extend_from_slice(&p),
            }
        }
        Ok(match (first, buf) {
            (_, Some(v)) => Bytes::from(v),
            (Some(b), None) => b,
            (None, None) => Bytes::new(),
        })
    }
}
