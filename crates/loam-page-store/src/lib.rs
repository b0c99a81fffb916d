//! Loam's page store: fixed-size pages of UFS files, cached in a memory tier and a disk tier. The worker
//! (`loam-worker`) is its user; this crate knows nothing of the worker (no HTTP, no UFS, no cluster): it
//! stores pages and file records by file id, and what it counts goes to the handles of
//! [`metrics::PageStoreMetrics`], which the worker registers under its metric names.
//!
//! - **Tiers.** Writes go to both tiers (write-through); memory evicts silently since the disk copy stays,
//!   and a disk hit is promoted into memory. Either tier may be absent. Each tier has a byte capacity and
//!   an LRU order (`lru.rs`); a page larger than every tier is not admitted.
//! - **Pages move as `Bytes`.** Memory holds the `Bytes` it was given (the read-through gives each page a
//!   buffer of its own, so the tier holds what it counts). A disk hit the memory tier will not take is
//!   served from a read-only mapping of its page file (`mapped.rs`: no copy into a buffer of ours, the
//!   response copies page cache → socket); one the memory tier takes (promotion, decided when the index is
//!   looked up) is read into a buffer once, which is what the memory tier keeps and what is served
//!   (`disk.rs`). Either way the data is a slice past the header. [`PageStore::set_mapped_reads`] turns
//!   mapping off (every disk hit buffered, as before mapping existed).
//! - **Never the wrong bytes.** Every disk read checks the header and CRC32 on the bytes it returns (the
//!   buffer, or the mapping itself); a corrupt page is deleted, counted and reported as a miss. Each cached version of a file has a *generation*, stamped into its
//!   record and page headers; a read finishing after its file was replaced or removed sees the generation
//!   changed and reports a miss, so old bytes are never served once a replacement completed.
//! - **Locking.** One mutex guards the in-memory index (`index.rs`), held only for short bookkeeping; disk
//!   I/O runs on `spawn_blocking` with no lock held, and the index is re-checked after it.
//! - **Records.** Each cache directory's record log (`record_log.rs`) follows the index optimistically:
//!   after each append the store checks the record did not change meanwhile and appends again if it did,
//!   so the last entry of concurrent updates and removals of a file is the current state, without holding
//!   a lock across I/O.
//! - **Priority.** Each file has an eviction priority (`low`/`medium`/`high`) from a [`PrioritySource`]
//!   set by the worker (the priority rules); its pages sit at that level in both tiers' orders, and
//!   [`PageStore::reprioritize`] moves cached files when the rules change. Files restored at start-up are
//!   `medium` until the first `reprioritize`.
//! - **Disks that fill or fail.** Each cache directory is locked while the store is open, has its share of
//!   the disk capacity clamped to the room its file system has, and makes room before a page is written;
//!   a write that still finds the disk full lowers the capacity, evicts and retries once. A directory that
//!   fails otherwise is marked unhealthy and the store goes on with the others; a health check
//!   re-initialises it, and one removed or replaced under the store (`dirs.rs`, `health.rs`).
//! - **Short-circuit reads.** Another process on the host (the FUSE mount) may read a live store's page
//!   files through [`LocalPages`] (`local_read.rs`), which checks them as the store does.
//! - **Warm restart.** [`PageStore::open`] rebuilds the disk tier from the cache directories
//!   (`recovery.rs`) and serves the same pages with no UFS read.

mod blocks;
mod dir_stats;
mod dirs;
mod disk;
mod error;
mod health;
mod index;
mod local_read;
mod lru;
mod mapped;
pub mod metrics;
mod record;
mod record_log;
mod recovery;

pub use disk::Wait;
pub use error::PageStoreError;
pub use health::DIR_CHECK_INTERVAL;
pub use local_read::{LAYOUT_VERSION, LocalDirs, LocalPages, LocalReadError};
pub use record::{FILE_RECORD_VERSION, FileRecord};

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dirs::CacheDir;
use disk::{Layout, PageFileError, PageHeader};
use index::{DiskPage, Effects, Index, Lookup, ReadResult};
use loam_core::rules::Priority;
use metrics::{DISK, EvictionCause, MEMORY, PageStoreMetrics};
use record::StoredRecord;
use record_log::{LogEntry, RecordLog};

/// The default page size: 1 MiB.
pub const DEFAULT_PAGE_SIZE: u64 = 1 << 20;

/// How many times a record write is redone while the record keeps changing under it.
const RECORD_SYNC_ATTEMPTS: usize = 8;

/// Configuration of a page store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageStoreConfig {
    /// Bytes per page (the last page of a file is shorter).
    pub page_size: u64,
    /// Bytes of the memory tier; 0 = no memory tier.
    pub memory_capacity: u64,
    /// Cache directories; empty = no disk tier (memory only).
    pub disk_dirs: Vec<PathBuf>,
    /// Bytes across all disk dirs (split evenly among them, each share clamped to its file system's room).
    pub disk_capacity: u64,
}

impl Default for PageStoreConfig {
    /// 1 MiB pages and no tiers: set the capacities you want.
    fn default() -> Self {
        Self { page_size: DEFAULT_PAGE_SIZE, memory_capacity: 0, disk_dirs: Vec::new(), disk_capacity: 0 }
    }
}

/// What a page store holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of page data in memory.
    pub memory_bytes: u64,
    /// Pages in memory.
    pub memory_pages: u64,
    /// Bytes of page data on disk (headers not counted).
    pub disk_bytes: u64,
    /// Pages on disk.
    pub disk_pages: u64,
    /// Files with a record.
    pub files: u64,
}

/// Gives the eviction priority of the data at a UFS URI.
pub type PrioritySource = Arc<dyn Fn(&str) -> Priority + Send + Sync>;

/// Says whether new pages of the data at a UFS URI may be cached (quota admission).
pub type AdmissionSource = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A page store: see the module documentation.
pub struct PageStore {
    page_size: u64,
    layout: Option<Arc<Layout>>,
    /// Each cache directory's lock, health and share (empty without a disk tier).
    dirs: Arc<Vec<CacheDir>>,
    /// The record log of each cache directory (empty without a disk tier).
    logs: Arc<Vec<RecordLog>>,
    /// Shared with record log appends, which snapshot it when they compact the log.
    index: Arc<Mutex<Index>>,
    metrics: PageStoreMetrics,
    priorities: parking_lot::RwLock<Option<PrioritySource>>,
    admission: parking_lot::RwLock<Option<AdmissionSource>>,
    /// Whether disk hits not promoted into memory are served from a mapping (`mapped.rs`).
    mapped_reads: AtomicBool,
    /// This opening's id, in each cache directory's lock file (`local_read.rs`).
    instance: String,
}

impl PageStore {
    /// Opens a store, locking the cache directories, recovering what they hold (warm restart) and evicting
    /// down to each one's capacity. A directory that cannot be locked or written is left out with a
    /// warning (unhealthy, retried by the health check); none usable is an error naming them. Blocking: it
    /// scans the directories.
    pub fn open(cfg: PageStoreConfig, metrics: PageStoreMetrics) -> Result<Arc<Self>, PageStoreError> {
        if cfg.page_size == 0 {
            return Err(PageStoreError::InvalidInput("page size must be positive".into()));
        }
        let layout = (!cfg.disk_dirs.is_empty()).then(|| Arc::new(Layout::new(&cfg.disk_dirs)));
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let share = cfg.disk_capacity / (cfg.disk_dirs.len().max(1) as u64);
        let dirs: Vec<CacheDir> = match &layout {
            Some(l) => {
                let new =
                    |(p, r): (&PathBuf, &PathBuf)| CacheDir::new(p.clone(), r.clone(), share).with_instance(&instance);
                cfg.disk_dirs.iter().zip(l.roots()).map(new).collect()
            }
            None => Vec::new(),
        };
        let mut index = Index::new(cfg.page_size, cfg.memory_capacity, &vec![share; dirs.len()], 1);
        let mut effects = Effects::default();
        let mut logs = Vec::new();
        if let Some(layout) = &layout {
            remove_old_layouts(layout);
            let (recovered, opened) = open_dirs(layout, &dirs, cfg.page_size)?;
            logs = opened;
            let files = recovered.files.len();
            effects = index.restore(recovered.files);
            for (at, dir) in dirs.iter().enumerate() {
                let capacity = match dir.healthy() {
                    true => dirs::room(&dir.root, index.dir_usage(at).0, cfg.page_size).map(|room| room.min(share)),
                    false => Ok(0),
                };
                let capacity = capacity.unwrap_or_else(|e| {
                    dir.mark_unhealthy(format!("cannot measure the room in {}: {e}", dir.root.display()));
                    0
                });
                effects.absorb(index.set_dir_capacity(at, capacity));
            }
            delete_pages(layout, std::mem::take(&mut effects.delete));
            let usage = index.usage();
            tracing::info!(
                files,
                pages = usage.disk_pages,
                bytes = usage.disk_bytes,
                evicted = effects.evicted_disk,
                discarded = recovered.discarded,
                "page store recovered"
            );
        }
        for (at, dir) in dirs.iter().enumerate() {
            let label = health::label(dir);
            metrics.dir_healthy.get_or_create(&label).set(i64::from(dir.healthy()));
            metrics.dir_capacity.get_or_create(&label).set(index.dir_usage(at).2 as i64);
            drop(metrics.dir_errors.get_or_create(&label));
        }
        let store = Self {
            page_size: cfg.page_size,
            layout,
            dirs: Arc::new(dirs),
            logs: Arc::new(logs),
            index: Arc::new(Mutex::new(index)),
            metrics,
            priorities: parking_lot::RwLock::new(None),
            admission: parking_lot::RwLock::new(None),
            mapped_reads: AtomicBool::new(true),
            instance,
        };
        store.publish(&store.index.lock(), &effects);
        Ok(Arc::new(store))
    }

    /// Bytes per page.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// The disk tier's directories, layout version and this opening's instance, for a short-circuit reader
    /// on this host ([`LocalPages`]); `None` without a disk tier.
    pub fn local_dirs(&self) -> Option<LocalDirs> {
        self.layout.as_ref()?;
        let dirs = self.dirs.iter().map(|d| d.path.clone()).collect();
        Some(LocalDirs { layout: LAYOUT_VERSION.to_string(), dirs, instance: self.instance.clone() })
    }

    /// The record of `file_id`, if the store has one.
    pub fn file(&self, file_id: &str) -> Option<FileRecord> {
        self.index.lock().record(file_id).cloned()
    }

    /// Ids of all files with a record.
    pub fn file_ids(&self) -> Vec<String> {
        self.index.lock().file_ids()
    }

    /// Bytes and pages per tier, and files.
    pub fn usage(&self) -> Usage {
        self.index.lock().usage()
    }

    /// Whether page `index` of `file_id` is cached in some tier.
    pub fn has_page(&self, file_id: &str, index: u64) -> bool {
        self.index.lock().has_page(file_id, index)
    }

    /// Whether page `index` of `file_id` is cached where it stays: on disk when the store has a disk tier
    /// (the memory tier evicts silently, counting on the disk copy), else in memory. A load counts a page
    /// as loaded only then.
    pub fn has_page_kept(&self, file_id: &str, index: u64) -> bool {
        let idx = self.index.lock();
        if self.layout.is_some() { idx.has_page_on_disk(file_id, index) } else { idx.has_page(file_id, index) }
    }

    /// How many pages of `file_id` are cached.
    pub fn cached_page_count(&self, file_id: &str) -> u64 {
        self.index.lock().cached_page_count(file_id)
    }

    /// When page `index` of `file_id` was cached (ms since the epoch).
    pub fn page_cached_ms(&self, file_id: &str, index: u64) -> Option<i64> {
        self.index.lock().page_cached_ms(file_id, index)
    }

    /// Creates or replaces a record. If a record exists whose (length, etag, modified_ms) differ, every
    /// cached page of the old version is dropped first (the UFS object changed: old bytes must never be
    /// served). For the same version the first-cached time of the existing record is kept.
    pub async fn put_file(&self, rec: FileRecord) -> Result<(), PageStoreError> {
        let (file_id, _) = self.install_file(rec).await?;
        self.sync_record(&file_id).await
    }

    /// Like [`PageStore::put_file`], but the record is written to disk with the file's first pages
    /// ([`PageStore::put_pages`]), or by [`PageStore::persist_record`] / [`PageStore::flush_records`]: a
    /// file read for the first time then costs one disk hand-off instead of two. Until then a crash forgets
    /// the record, which is harmless: it has no page on disk that needs it.
    ///
    /// Returns the generation the record's pages are stored under (see [`PageStore::get_page_of`]).
    pub async fn put_file_pending(&self, rec: FileRecord) -> Result<u64, PageStoreError> {
        self.install_file(rec).await.map(|(_, generation)| generation)
    }

    /// The record of `file_id` with the generation its pages are stored under: a reader that serves one
    /// version of a file reads its pages with [`PageStore::get_page_of`], so that a replacement of the file
    /// meanwhile turns the reads into misses instead of pages of another version.
    pub fn file_version(&self, file_id: &str) -> Option<(FileRecord, u64)> {
        let index = self.index.lock();
        Some((index.record(file_id)?.clone(), index.generation(file_id)?))
    }

    /// Writes the record of `file_id` to disk now if it changed since it was last written.
    pub async fn persist_record(&self, file_id: &str) -> Result<(), PageStoreError> {
        if self.index.lock().pending_record(file_id).is_none() {
            return Ok(());
        }
        self.sync_record(file_id).await
    }

    /// Puts a record in the index (dropping pages of an older version); returns its file id and generation.
    async fn install_file(&self, rec: FileRecord) -> Result<(String, u64), PageStoreError> {
        if rec.version != FILE_RECORD_VERSION {
            return Err(PageStoreError::InvalidInput(format!("unknown record version {}", rec.version)));
        }
        if !loam_core::id::is_file_id(&rec.file_id) {
            return Err(PageStoreError::InvalidInput(format!("not a file id: {:?}", rec.file_id)));
        }
        let file_id = rec.file_id.clone();
        let priority = self.priority_of(&rec.ufs_uri);
        let (effects, generation) = {
            let mut index = self.index.lock();
            let effects = index.put_file(rec, priority);
            self.publish(&index, &effects);
            (effects, index.generation(&file_id).expect("the record was just put"))
        };
        self.delete_pages(effects.delete).await?;
        Ok((file_id, generation))
    }

    /// Sets where file priorities come from; files cached from now on get theirs from `source`.
    pub fn set_priority_source(&self, source: PrioritySource) {
        *self.priorities.write() = Some(source);
    }

    /// Serve disk hits that the memory tier does not take from a read-only mapping of the page file (`true`,
    /// the default) or from a buffer they are read into (`false`); see the module documentation.
    pub fn set_mapped_reads(&self, on: bool) {
        self.mapped_reads.store(on, Ordering::Relaxed);
    }

    /// Sets which data may have new pages cached; pages refused by `source` are not admitted.
    pub fn set_admission(&self, source: AdmissionSource) {
        *self.admission.write() = Some(source);
    }

    /// Bytes of a file's cached pages (0 when not cached).
    pub fn cached_bytes(&self, file_id: &str) -> u64 {
        self.index.lock().cached_bytes(file_id)
    }

    /// The eviction priority of a cached file (`None` when not cached).
    pub fn priority(&self, file_id: &str) -> Option<Priority> {
        self.index.lock().priority(file_id).map(level_of)
    }

    /// Re-reads every cached file's priority from the source and moves the files whose level changed;
    /// returns how many moved.
    pub fn reprioritize(&self) -> usize {
        let files = self.index.lock().file_priorities();
        let changed: Vec<(String, u8)> = files
            .into_iter()
            .filter_map(|(id, uri, old)| {
                let new = self.priority_of(&uri);
                (new != old).then_some((id, new))
            })
            .collect();
        let mut index = self.index.lock();
        for (id, priority) in &changed {
            index.set_priority(id, *priority);
        }
        changed.len()
    }

    fn priority_of(&self, uri: &str) -> u8 {
        let level = self.priorities.read().as_ref().map_or(Priority::Medium, |source| source(uri));
        level.index() as u8
    }

    /// Sets when the file was last checked against the UFS. Kept in memory; written with the record's next
    /// write or by [`PageStore::flush_records`].
    pub fn set_validated(&self, file_id: &str, validated_ms: i64) {
        self.index.lock().set_validated(file_id, validated_ms);
    }

    /// Writes every record changed only in memory (by [`PageStore::set_validated`]); call on shutdown.
    pub async fn flush_records(&self) -> Result<(), PageStoreError> {
        if self.layout.is_none() {
            return Ok(());
        }
        let file_ids = self.index.lock().unpersisted_files();
        for file_id in file_ids {
            self.sync_record(&file_id).await?;
        }
        Ok(())
    }

    /// Page `index` of `file_id`, or `None` on a miss (no record, not cached, or a cached copy found
    /// corrupt, which is deleted).
    pub async fn get_page(&self, file_id: &str, index: u64) -> Result<Option<Bytes>, PageStoreError> {
        self.get_page_at(file_id, None, index).await
    }

    /// Like [`PageStore::get_page`], but only a page of `generation` (from [`PageStore::file_version`]): a
    /// miss once the file was replaced, even by pages of its new version.
    pub async fn get_page_of(
        &self,
        file_id: &str,
        generation: u64,
        index: u64,
    ) -> Result<Option<Bytes>, PageStoreError> {
        self.get_page_at(file_id, Some(generation), index).await
    }

    /// Whether page `index` of `generation` of `file_id` is cached.
    pub fn has_page_of(&self, file_id: &str, generation: u64, index: u64) -> bool {
        let idx = self.index.lock();
        idx.generation(file_id) == Some(generation) && idx.has_page(file_id, index)
    }

    /// Bytes `part` (clipped to the page) of page `index` of `generation` of `file_id`, or `None` when that
    /// page is not cached. From the disk tier only the blocks under `part` are read and checked (`blocks.rs`),
    /// and the page is not promoted into memory: a part says nothing of whether the rest will be read.
    pub async fn get_page_part_of(
        &self,
        file_id: &str,
        generation: u64,
        index: u64,
        part: Range<usize>,
    ) -> Result<Option<Bytes>, PageStoreError> {
        self.get_page_at_part(file_id, Some(generation), index, Some(part)).await
    }

    async fn get_page_at(
        &self,
        file_id: &str,
        generation: Option<u64>,
        index: u64,
    ) -> Result<Option<Bytes>, PageStoreError> {
        self.get_page_at_part(file_id, generation, index, None).await
    }

    async fn get_page_at_part(
        &self,
        file_id: &str,
        generation: Option<u64>,
        index: u64,
        part: Option<Range<usize>>,
    ) -> Result<Option<Bytes>, PageStoreError> {
        let started = std::time::Instant::now();
        let lookup = {
            let mut idx = self.index.lock();
            match generation {
                Some(g) if idx.generation(file_id) != Some(g) => Lookup::Miss,
                _ => idx.lookup(file_id, index),
            }
        };
        let mut read = match lookup {
            Lookup::Memory(data) => {
                self.metrics.page_hits.get_or_create(&MEMORY).inc();
                self.metrics.page_read_seconds.get_or_create(&MEMORY).observe(started.elapsed().as_secs_f64());
                return Ok(Some(match part {
                    Some(p) => data.slice(p.start.min(data.len())..p.end.min(data.len())),
                    None => data,
                }));
            }
            Lookup::Disk(read) => read,
            Lookup::Miss => {
                self.metrics.page_misses.inc();
                return Ok(None);
            }
        };
        // The index holds disk pages only when there is a disk tier.
        let Some(layout) = &self.layout else { return Ok(None) };
        let path = layout.page_path(file_id, read.generation, index);
        let read_path = path.clone();
        // A part of a page (less than all of it) reads its blocks only, and is not promoted.
        let part = part.filter(|p| p.start > 0 || p.end < read.len as usize);
        if part.is_some() {
            read.promote = false;
        }
        // A page the memory tier takes is read into the buffer the tier keeps; any other is mapped.
        let mapped = !read.promote && self.mapped_reads.load(Ordering::Relaxed);
        // A part whose blocks are in the page cache is read here, on the runtime thread: handing a 4 KiB
        // read to a blocking thread and back cost more than the read (a profile of `loam-bench requests`).
        // One that would wait on the disk goes to a blocking thread as everything else does.
        let cached = match &part {
            Some(p) => match disk::read_part(&read_path, p.clone(), disk::Wait::Cached) {
                Err(e) if e.would_block() => None,
                done => Some(done),
            },
            None => None,
        };
        let outcome = match cached {
            Some(done) => done,
            None => {
                tokio::task::spawn_blocking(move || match (part, mapped) {
                    (Some(p), _) => disk::read_part(&read_path, p, disk::Wait::Block),
                    (None, true) => mapped::map_page(&read_path),
                    (None, false) => disk::read_page(&read_path),
                })
                .await?
            }
        };
        let result = match outcome {
            Ok((header, data))
                if header == expected_header(&header, read.generation, index, self.page_size, read.len) =>
            {
                ReadResult::Valid(data)
            }
            // Intact, but another page than the index expects: a write of a replaced version landed late.
            Ok((header, _)) => ReadResult::Invalid { delete: Some(header.generation) },
            Err(PageFileError::Corrupt(why)) => {
                self.metrics.corrupt_pages.inc();
                tracing::warn!(path = %path.display(), why, "corrupt page dropped");
                ReadResult::Invalid { delete: Some(read.generation) }
            }
            Err(PageFileError::Missing) => ReadResult::Invalid { delete: None },
            Err(PageFileError::Io(e)) => {
                // The directory is failing: it goes (its pages with it) and this page is a miss.
                self.dir_failed(layout.dir_index(file_id), format!("cannot read {}: {e}", path.display()));
                ReadResult::Invalid { delete: None }
            }
        };
        let (data, effects) = {
            let mut idx = self.index.lock();
            let (data, effects) = idx.finish_read(file_id, index, read, result);
            self.publish(&idx, &effects);
            (data, effects)
        };
        match &data {
            Some(_) => {
                self.metrics.page_hits.get_or_create(&DISK).inc();
                self.metrics.page_read_seconds.get_or_create(&DISK).observe(started.elapsed().as_secs_f64());
            }
            None => drop(self.metrics.page_misses.inc()),
        };
        self.delete_pages(effects.delete).await?;
        Ok(data)
    }

    /// Caches a page; the file record must exist and `data.len()` must equal the page's expected length
    /// (from the record's length) — otherwise an InvalidInput error. Returns false if not admitted (page
    /// larger than every tier's capacity, its priority below everything a full tier holds, its quota
    /// exceeded, or the file was removed or replaced meanwhile). Evicts LRU pages to make room.
    pub async fn put_page(&self, file_id: &str, index: u64, data: Bytes) -> Result<bool, PageStoreError> {
        let admitted = self.put_pages(file_id, vec![(index, data)]).await?;
        Ok(admitted.first().copied().unwrap_or(false))
    }

    /// Caches several pages of one file, as [`PageStore::put_page`] does each, returning whether each was
    /// admitted. Their page files are written by one blocking task: a run read from the UFS costs one
    /// hand-off to the blocking pool rather than one per page (the wake-ups showed in load profiles).
    pub async fn put_pages(&self, file_id: &str, pages: Vec<(u64, Bytes)>) -> Result<Vec<bool>, PageStoreError> {
        self.put_pages_at(file_id, None, pages).await
    }

    /// Like [`PageStore::put_pages`], but only into `generation` of the file (from
    /// [`PageStore::file_version`] or [`PageStore::put_file_pending`]): pages read for a version that was
    /// replaced meanwhile are not admitted (`false`), never stored under the new one.
    pub async fn put_pages_of(
        &self,
        file_id: &str,
        generation: u64,
        pages: Vec<(u64, Bytes)>,
    ) -> Result<Vec<bool>, PageStoreError> {
        self.put_pages_at(file_id, Some(generation), pages).await
    }

    async fn put_pages_at(
        &self,
        file_id: &str,
        generation: Option<u64>,
        pages: Vec<(u64, Bytes)>,
    ) -> Result<Vec<bool>, PageStoreError> {
        let admission = self.admission.read().clone();
        if let Some(admit) = admission {
            let uri = self.index.lock().record(file_id).map(|r| r.ufs_uri.clone());
            if uri.is_some_and(|uri| !admit(&uri)) {
                return Ok(vec![false; pages.len()]);
            }
        }
        let mut plans = Vec::with_capacity(pages.len());
        {
            let idx = self.index.lock();
            if generation.is_some_and(|g| idx.generation(file_id) != Some(g)) {
                return Ok(vec![false; pages.len()]);
            }
            for (index, data) in &pages {
                plans.push(idx.plan_write(file_id, *index, data.len() as u64)?);
            }
        }
        let cached_ms = loam_core::time::now_millis();
        // The disk writes of this call: (position in `pages`, path, header, bytes).
        let writes: Vec<_> = match &self.layout {
            Some(layout) => pages
                .iter()
                .zip(&plans)
                .enumerate()
                .filter(|(_, (_, plan))| plan.disk)
                .map(|(at, ((index, data), plan))| {
                    let header = PageHeader::for_data(plan.generation, *index, self.page_size, cached_ms, data);
                    (at, layout.page_path(file_id, plan.generation, *index), header, data.clone())
                })
                .collect(),
            None => Vec::new(),
        };
        // Room for the disk writes is made before they start; a tier full of better data refuses them.
        let mut writes = writes;
        let dir = self.index.lock().dir(file_id);
        let (room, reserved) = match writes.first() {
            Some(first) => {
                let sizes: Vec<(u64, u64)> = writes.iter().map(|w| (w.2.index, w.3.len() as u64)).collect();
                let mut idx = self.index.lock();
                let reservation = idx.reserve(file_id, first.2.generation, &sizes);
                self.publish(&idx, &reservation.0);
                reservation
            }
            None => (Effects::default(), Some(0)),
        };
        let reserved = reserved.unwrap_or_else(|| {
            writes.clear();
            0
        });
        // A record not yet on disk goes with the pages, ahead of them, in the same blocking task.
        let record = if writes.is_empty() { None } else { self.index.lock().pending_record(file_id) };
        let mut on_disk = vec![false; pages.len()];
        // A page that cannot be written is not cached on disk, and does not fail the call: a full disk
        // lowers the directory's capacity and the write is retried once, a failing directory is dropped.
        if let Some(sink) = self.record_sink().filter(|_| !writes.is_empty()) {
            let record_write = record.as_ref().map(|(stored, _)| stored.clone());
            let id = file_id.to_owned();
            let layout = self.layout.clone();
            let written = tokio::task::spawn_blocking(move || {
                // Room is made before the writes: evicted pages go first.
                if let Some(layout) = layout {
                    delete_pages(&layout, room.delete);
                }
                let record_result = record_write.map(|stored| sink.append(&id, Some(stored)));
                let pages = writes
                    .into_iter()
                    .map(|(at, path, header, data)| {
                        let r = disk::write_page(&path, &header, &data);
                        (at, path, header, data, r)
                    })
                    .collect::<Vec<_>>();
                (record_result, pages)
            })
            .await;
            let written = match written {
                Ok(written) => written,
                Err(e) => {
                    self.index.lock().release(dir, reserved);
                    return Err(e.into());
                }
            };
            let (record_result, results) = written;
            let appended = match (record_result, &record) {
                (Some(Ok(())), Some((_, seq))) => Some(*seq),
                (Some(Err(e)), _) => {
                    self.append_failed(file_id, e);
                    None
                }
                _ => None,
            };
            // The record changed while it was appended: append the current state after it, so the log does
            // not end with an older one (a removal appended first, say).
            let stale = appended.is_some_and(|seq| !self.index.lock().mark_persisted(file_id, Some(seq)));
            let mut retry = Vec::new();
            for (at, path, header, data, r) in results {
                match r {
                    Ok(_) => on_disk[at] = true,
                    // A concurrent removal may have taken the directory: then there is nothing to cache into.
                    Err(_) if self.index.lock().generation(file_id) != Some(plans[at].generation) => {}
                    Err(e) if dirs::is_full(&e) => {
                        self.dir_full(dir, &e);
                        retry.push((at, path, header, data));
                    }
                    Err(e) => self.dir_failed(dir, format!("cannot write {}: {e}", path.display())),
                }
            }
            let retried = self.retry_full(dir, retry).await;
            self.index.lock().release(dir, reserved);
            for at in retried? {
                on_disk[at] = true;
            }
            if stale {
                self.sync_record(file_id).await?;
            }
        }
        let mut admitted = Vec::with_capacity(pages.len());
        for (((index, data), plan), written) in pages.into_iter().zip(plans).zip(on_disk) {
            if !plan.memory && !written {
                admitted.push(false);
                continue;
            }
            let generation = plan.generation;
            let committed = {
                let mut idx = self.index.lock();
                let committed = idx.commit_write(file_id, index, plan, data, written, cached_ms);
                if let Some(effects) = &committed {
                    self.publish(&idx, effects);
                }
                committed
            };
            match committed {
                Some(effects) => {
                    admitted.push(!effects.refused);
                    self.delete_pages(effects.delete).await?;
                }
                None => {
                    // The file was removed or replaced while the page was written: the page is of no version
                    // the store knows, so it must not stay under the page's name.
                    let stale = DiskPage { file_id: file_id.to_owned(), index, generation };
                    self.delete_pages(if written { vec![stale] } else { Vec::new() }).await?;
                    admitted.push(false);
                }
            }
        }
        Ok(admitted)
    }

    /// [`PageStore::remove_file`], counting the bytes dropped as evicted for `cause` (TTL expiry, free).
    pub async fn evict_file(&self, file_id: &str, cause: EvictionCause) -> Result<u64, PageStoreError> {
        let freed = self.remove_file(file_id).await?;
        self.metrics.evicted(cause, freed);
        Ok(freed)
    }

    /// Drops a file's record and pages. Returns the bytes of page data dropped (each page counted once,
    /// whichever tiers held it); 0 if there was no record.
    pub async fn remove_file(&self, file_id: &str) -> Result<u64, PageStoreError> {
        let removed = {
            let mut idx = self.index.lock();
            let removed = idx.remove_file(file_id);
            if let Some((effects, _)) = &removed {
                self.publish(&idx, effects);
            }
            removed
        };
        let Some((effects, freed)) = removed else { return Ok(0) };
        // Pages first: a crash in between leaves a record without pages (harmless), never pages of a
        // removed version under a record that a torn `remove` line would bring back.
        self.delete_pages(effects.delete).await?;
        self.sync_record(file_id).await?;
        Ok(freed)
    }

    /// Appends the file's current state (its record, or its removal) to its record log. Appends again while
    /// the record changed during the append (see module docs).
    async fn sync_record(&self, file_id: &str) -> Result<(), PageStoreError> {
        let Some(sink) = self.record_sink() else { return Ok(()) };
        for _ in 0..RECORD_SYNC_ATTEMPTS {
            let state = self.index.lock().record_state(file_id);
            let seq = state.as_ref().map(|(_, seq)| *seq);
            let (sink, id) = (sink.clone(), file_id.to_owned());
            match tokio::task::spawn_blocking(move || sink.append(&id, state.map(|(s, _)| s))).await? {
                Ok(()) => {}
                // A full disk leaves the record pending (written with the file's next page or by
                // `flush_records`); a failing directory goes, with its records' log.
                Err(e) => {
                    self.append_failed(file_id, e);
                    return Ok(());
                }
            }
            if self.index.lock().mark_persisted(file_id, seq) {
                return Ok(());
            }
        }
        tracing::warn!(file_id, "record kept changing while written; flush_records writes it later");
        Ok(())
    }

    /// Where records are appended; `None` without a disk tier.
    fn record_sink(&self) -> Option<RecordSink> {
        let layout = self.layout.clone()?;
        Some(RecordSink { layout, dirs: self.dirs.clone(), logs: self.logs.clone(), index: self.index.clone() })
    }

    /// Deletes page files (on a blocking thread). Failures are logged, not returned: the index no longer
    /// counts these pages, and a leftover file is cleaned up by the next recovery.
    async fn delete_pages(&self, pages: Vec<DiskPage>) -> Result<(), PageStoreError> {
        let Some(layout) = self.layout.clone().filter(|_| !pages.is_empty()) else { return Ok(()) };
        tokio::task::spawn_blocking(move || delete_pages(&layout, pages)).await?;
        Ok(())
    }

    fn publish(&self, index: &Index, effects: &Effects) {
        let m = &self.metrics;
        if effects.evicted_memory > 0 {
            m.pages_evicted.get_or_create(&MEMORY).inc_by(effects.evicted_memory);
        }
        if effects.evicted_disk > 0 {
            m.pages_evicted.get_or_create(&DISK).inc_by(effects.evicted_disk);
        }
        m.evicted(EvictionCause::Capacity, effects.evicted_capacity_bytes);
        m.evicted(EvictionCause::Priority, effects.evicted_priority_bytes);
        let usage = index.usage();
        let (memory_capacity, disk_capacity) = index.capacities();
        m.capacity.get_or_create(&MEMORY).set(memory_capacity as i64);
        m.capacity.get_or_create(&DISK).set(disk_capacity as i64);
        for (at, dir) in self.dirs.iter().enumerate() {
            m.dir_used.get_or_create(&health::label(dir)).set(index.dir_usage(at).0 as i64);
        }
        // Alluxio counts the tier that keeps pages: its disk page store, or memory when there is no disk.
        let (kept, kept_capacity) = match self.layout.is_some() {
            true => (usage.disk_bytes, disk_capacity),
            false => (usage.memory_bytes, memory_capacity),
        };
        m.alluxio_storage.set(kept as i64);
        m.alluxio_capacity.set(kept_capacity as i64);
        m.cached_bytes.get_or_create(&MEMORY).set(usage.memory_bytes as i64);
        m.cached_pages.get_or_create(&MEMORY).set(usage.memory_pages as i64);
        m.cached_bytes.get_or_create(&DISK).set(usage.disk_bytes as i64);
        m.cached_pages.get_or_create(&DISK).set(usage.disk_pages as i64);
        m.cached_files.set(usage.files as i64);
    }
}

/// The header a page file must have to be page `index` of generation `generation` (the cached time and
/// checksum are taken from `read`, which `read_page` already checked).
fn expected_header(read: &PageHeader, generation: u64, index: u64, page_size: u64, len: u64) -> PageHeader {
    PageHeader { generation, index, page_size, len, ..*read }
}

/// Where records go: each cache directory's log, and the index a log's compaction snapshots. Moved into the
/// blocking tasks that append.
#[derive(Clone)]
struct RecordSink {
    layout: Arc<Layout>,
    dirs: Arc<Vec<CacheDir>>,
    logs: Arc<Vec<RecordLog>>,
    index: Arc<Mutex<Index>>,
}

impl RecordSink {
    /// Appends `state` of `file_id` (`None`: removed) to its cache directory's record log, which compacts
    /// itself from the index's records of that directory when it has grown. Nothing is appended to the log
    /// of an unhealthy directory: its re-initialisation writes the current records.
    fn append(&self, file_id: &str, state: Option<StoredRecord>) -> Result<(), PageStoreError> {
        let at = self.layout.dir_index(file_id);
        if !self.dirs[at].healthy() {
            return Ok(());
        }
        let log = &self.logs[at];
        let entry = match state {
            Some(stored) => LogEntry::Put(stored),
            None => LogEntry::Remove(file_id.to_owned()),
        };
        let live = || self.index.lock().stored_records(|id| self.layout.dir_index(id) == at);
        log.append(&[entry], live).map_err(PageStoreError::io("append to", log.path()))
    }
}

/// Locks and scans each cache directory. One that fails is marked unhealthy (with a warning when there are
/// others) and gets a closed record log; none opened is an error naming each and why.
fn open_dirs(
    layout: &Layout,
    dirs: &[CacheDir],
    page_size: u64,
) -> Result<(recovery::Recovered, Vec<RecordLog>), PageStoreError> {
    let mut recovered = recovery::Recovered::default();
    let mut generations = HashSet::new();
    let (mut logs, mut problems) = (Vec::new(), Vec::new());
    for (at, dir) in dirs.iter().enumerate() {
        let (mut found, mut claimed) = (recovery::Recovered::default(), generations.clone());
        let opened = dir.lock().and_then(|()| {
            let scanned = recovery::scan_dir(layout, at, page_size, &mut claimed, &mut found);
            let log = scanned.map_err(|e| format!("cache directory {} is not usable: {e}", dir.path.display()))?;
            dir.mark_healthy().map_err(|e| format!("cannot stat {}: {e}", dir.root.display()))?;
            Ok(log)
        });
        match opened {
            Ok(log) => {
                generations = claimed;
                recovered.files.extend(found.files);
                recovered.discarded += found.discarded;
                logs.push(log);
            }
            Err(why) => {
                if dirs.len() > 1 {
                    tracing::warn!("{why}; going on with the other cache directories");
                }
                dir.unlock();
                dir.mark_unhealthy(why.clone());
                problems.push(why);
                logs.push(RecordLog::closed(&layout.record_log_path(at)));
            }
        }
    }
    if problems.len() == dirs.len() {
        return Err(PageStoreError::CacheDirs(problems.join("; ")));
    }
    Ok((recovered, logs))
}

/// Deletes, in the background, the trees of layouts this build replaced.
fn remove_old_layouts(layout: &Layout) {
    for old in layout.old_layouts() {
        tracing::info!(path = %old.display(), "deleting the cache of an older layout version");
        std::thread::spawn(move || {
            if let Err(e) = disk::remove_dir_if_present(&old) {
                tracing::warn!(path = %old.display(), error = %e, "cannot delete an older cache layout");
            }
        });
    }
}

fn delete_pages(layout: &Layout, pages: Vec<DiskPage>) {
    for page in pages {
        let path = layout.page_path(&page.file_id, page.generation, page.index);
        if let Err(e) = disk::remove_if_present(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot delete page file");
        }
    }
}

#[cfg(test)]
mod tests;

fn level_of(p: u8) -> Priority {
    Priority::ALL.get(usize::from(p)).copied().unwrap_or_default()
}
