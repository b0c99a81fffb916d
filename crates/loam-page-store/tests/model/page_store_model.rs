//! The page store against a reference model (in the style of mountpoint-s3's reference tests): random
//! sequences of record puts (new files, new versions, same-version refreshes), page puts and gets, file
//! removals and warm restarts, on tiny pages and capacities so that eviction happens all the time.
//!
//! The model keeps each tier as a list in recency order. Until the first restart it predicts the store
//! exactly: every get's answer, which pages each tier holds, usage, and the bytes a removal frees (so the
//! most recently used page survives an eviction, and a page is never evicted by its own insertion). A
//! restart reorders pages by cached time, which the model cannot know to the millisecond, so after one the
//! checks are the invariants: a get returns nothing or exactly the bytes of the current version, usage
//! stays within capacity, records survive, and what was on disk is on disk again.
//! Plus two scenario tests: a corrupt page on disk, and a warm restart over two cache directories.

use bytes::Bytes;
use loam_core::ErrorKind;
use loam_page_store::metrics::{DISK, PageStoreMetrics};
use loam_page_store::{FileRecord, PageStore, PageStoreConfig, Usage};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PS: u64 = 64;
const FILES: usize = 3;
const MAX_PAGES: u64 = 4;
/// File lengths, picked by file and version: several pages, a page and a byte, less than a page.
const LENGTHS: [u64; 4] = [2 * PS + 10, 3 * PS, PS + 1, 40];

fn uri(file: usize) -> String {
    format!("s3://bucket/file-{file}")
}

fn length(file: usize, version: u8) -> u64 {
    LENGTHS[(file + version as usize) % LENGTHS.len()]
}

/// The bytes of a page: different for every file, version, page and offset, so that a stale version, a
/// wrong page or a misplaced slice cannot pass for the right one.
fn page_bytes(file: usize, version: u8, index: u64, len: u64) -> Bytes {
    (0..len).map(|i| (file as u64 * 71 + version as u64 * 37 + index * 13 + i) as u8).collect::<Vec<_>>().into()
}

#[derive(Debug, Clone)]
enum Op {
    PutFile { file: usize, version: u8 },
    PutPage { file: usize, index: u64 },
    GetPage { file: usize, index: u64 },
    RemoveFile { file: usize },
    Reopen,
}

fn ops(with_reopen: bool) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        2 => (0..FILES, 0..3u8).prop_map(|(file, version)| Op::PutFile { file, version }),
        6 => (0..FILES, 0..MAX_PAGES).prop_map(|(file, index)| Op::PutPage { file, index }),
        6 => (0..FILES, 0..MAX_PAGES).prop_map(|(file, index)| Op::GetPage { file, index }),
        1 => (0..FILES).prop_map(|file| Op::RemoveFile { file }),
        if with_reopen { 1 } else { 0 } => Just(Op::Reopen),
    ];
    prop::collection::vec(op, 1..60)
}

/// Tier capacities in bytes (0 = no tier), at least one tier; some not multiples of the page size.
fn capacities() -> impl Strategy<Value = (u64, Option<u64>)> {
    let memory = prop_oneof![Just(0), (1..4u64, 0..PS).prop_map(|(p, extra)| p * PS + extra)];
    let disk = prop_oneof![Just(None), (0..6u64, 0..PS).prop_map(|(p, extra)| Some(p * PS + extra))];
    (memory, disk).prop_filter("at least one tier", |(m, d)| *m > 0 || d.is_some())
}

/// One tier of the model: pages in recency order (least recently used first) and a byte capacity.
#[derive(Debug, Clone)]
struct ModelTier {
    capacity: u64,
    order: Vec<(usize, u64, u64)>,
}

impl ModelTier {
    fn bytes(&self) -> u64 {
        self.order.iter().map(|p| p.2).sum()
    }

    fn position(&self, file: usize, index: u64) -> Option<usize> {
        self.order.iter().position(|p| (p.0, p.1) == (file, index))
    }

    fn contains(&self, file: usize, index: u64) -> bool {
        self.position(file, index).is_some()
    }

    fn touch(&mut self, file: usize, index: u64) {
        if let Some(at) = self.position(file, index) {
            let page = self.order.remove(at);
            self.order.push(page);
        }
    }

    /// Inserts as most recently used, evicting from the front; false if the page can never fit.
    fn insert(&mut self, file: usize, index: u64, len: u64) -> bool {
        if len > self.capacity {
            return false;
        }
        self.order.retain(|p| (p.0, p.1) != (file, index));
        while self.bytes() + len > self.capacity {
            self.order.remove(0);
        }
        self.order.push((file, index, len));
        true
    }

    fn drop_file(&mut self, file: usize) {
        self.order.retain(|p| p.0 != file);
    }
}

struct Model {
    memory: Option<ModelTier>,
    disk: Option<ModelTier>,
    files: Vec<Option<(u8, FileRecord)>>,
    /// False after the first restart: from then on only invariants are checked.
    exact: bool,
}

impl Model {
    fn usage(&self) -> Usage {
        let tier = |t: &Option<ModelTier>| t.as_ref().map_or((0, 0), |t| (t.bytes(), t.order.len() as u64));
        let ((memory_bytes, memory_pages), (disk_bytes, disk_pages)) = (tier(&self.memory), tier(&self.disk));
        let files = self.files.iter().flatten().count() as u64;
        Usage { memory_bytes, memory_pages, disk_bytes, disk_pages, files }
    }

    fn has_page(&self, file: usize, index: u64) -> bool {
        [&self.memory, &self.disk].into_iter().flatten().any(|t| t.contains(file, index))
    }

    fn tiers(&mut self) -> impl Iterator<Item = &mut ModelTier> {
        [&mut self.memory, &mut self.disk].into_iter().flatten()
    }

    /// Drops a file's pages; returns their bytes, each page counted once.
    fn drop_file(&mut self, file: usize) -> u64 {
        let mut pages: Vec<_> = self.tiers().flat_map(|t| t.order.iter().filter(|p| p.0 == file).copied()).collect();
        pages.sort_unstable();
        pages.dedup();
        self.tiers().for_each(|t| t.drop_file(file));
        pages.iter().map(|p| p.2).sum()
    }
}

struct Harness {
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    cfg: PageStoreConfig,
    /// `None` only while restarting.
    store: Option<Arc<PageStore>>,
    model: Model,
    step: i64,
}

impl Harness {
    fn new(memory_capacity: u64, disk_capacity: Option<u64>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = PageStoreConfig {
            page_size: PS,
            memory_capacity,
            disk_dirs: disk_capacity.map(|_| dir.path().to_path_buf()).into_iter().collect(),
            disk_capacity: disk_capacity.unwrap_or(0),
        };
        let store = PageStore::open(cfg.clone(), PageStoreMetrics::default()).unwrap();
        let tier = |capacity| ModelTier { capacity, order: Vec::new() };
        let model = Model {
            memory: (memory_capacity > 0).then(|| tier(memory_capacity)),
            disk: disk_capacity.map(tier),
            files: vec![None; FILES],
            exact: true,
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Harness { rt, _dir: dir, cfg, store: Some(store), model, step: 0 }
    }

    fn run(&mut self, op: &Op) {
        self.step += 1;
        match *op {
            Op::PutFile { file, version } => self.put_file(file, version),
            Op::PutPage { file, index } => self.put_page(file, index),
            Op::GetPage { file, index } => {
                self.get_page(file, index);
            }
            Op::RemoveFile { file } => {
                let freed = self.rt.block_on(self.store().remove_file(&loam_core::file_id(&uri(file)))).unwrap();
                self.model.files[file] = None;
                let expected = self.model.drop_file(file);
                if self.model.exact {
                    assert_eq!(freed, expected, "bytes freed by removing file {file}");
                }
            }
            Op::Reopen => self.reopen(),
        }
        self.check();
    }

    fn store(&self) -> &PageStore {
        self.store.as_deref().expect("the store is open between operations")
    }

    fn put_file(&mut self, file: usize, version: u8) {
        let rec = FileRecord::new(&uri(file), length(file, version), Some(format!("v{version}")), None, self.step);
        self.rt.block_on(self.store().put_file(rec.clone())).unwrap();
        let expected = match &self.model.files[file] {
            Some((v, old)) if *v == version => FileRecord { cached_ms: old.cached_ms, ..rec },
            _ => {
                self.model.drop_file(file);
                rec
            }
        };
        self.model.files[file] = Some((version, expected));
    }

    fn put_page(&mut self, file: usize, index: u64) {
        let id = loam_core::file_id(&uri(file));
        let Some((version, rec)) = self.model.files[file].clone() else {
            let err = self.rt.block_on(self.store().put_page(&id, index, Bytes::from_static(b"x"))).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            return;
        };
        let Some(len) = rec.page_len(PS, index) else {
            let err = self.rt.block_on(self.store().put_page(&id, index, Bytes::from_static(b"x"))).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "page {index} past the end of {} bytes", rec.length);
            return;
        };
        let admitted =
            self.rt.block_on(self.store().put_page(&id, index, page_bytes(file, version, index, len))).unwrap();
        let fits = |t: &Option<ModelTier>| t.as_ref().is_some_and(|t| len <= t.capacity);
        assert_eq!(admitted, fits(&self.model.memory) || fits(&self.model.disk), "admission of a {len}-byte page");
        if self.model.exact {
            // Disk first, then memory, as the store does.
            if let Some(disk) = &mut self.model.disk {
                disk.insert(file, index, len);
            }
            if let Some(memory) = &mut self.model.memory {
                memory.insert(file, index, len);
            }
        } else if admitted {
            assert!(self.get_page(file, index).is_some(), "a page just admitted is readable");
        }
    }

    fn get_page(&mut self, file: usize, index: u64) -> Option<Bytes> {
        let got = self.rt.block_on(self.store().get_page(&loam_core::file_id(&uri(file)), index)).unwrap();
        let current = self.model.files[file]
            .as_ref()
            .and_then(|(version, rec)| rec.page_len(PS, index).map(|len| page_bytes(file, *version, index, len)));
        if let Some(data) = &got {
            assert_eq!(Some(data), current.as_ref(), "page {index} of file {file}: only the current version's bytes");
        }
        if self.model.exact {
            assert_eq!(got.is_some(), self.model.has_page(file, index), "hit or miss of page {index} of file {file}");
            self.model_hit(file, index, got.as_ref().map_or(0, |d| d.len() as u64));
        }
        got
    }

    /// A hit in the model: memory hits refresh both tiers; a disk hit is promoted into memory.
    fn model_hit(&mut self, file: usize, index: u64, len: u64) {
        let in_memory = self.model.memory.as_ref().is_some_and(|m| m.contains(file, index));
        if let Some(disk) = &mut self.model.disk {
            disk.touch(file, index);
        }
        match &mut self.model.memory {
            Some(memory) if in_memory => memory.touch(file, index),
            Some(memory) if len > 0 => {
                memory.insert(file, index, len);
            }
            _ => {}
        }
    }

    fn reopen(&mut self) {
        let before = self.store().usage();
        // Close the old store before the new one scans the directories, as a restart does.
        self.store = None;
        self.store = Some(PageStore::open(self.cfg.clone(), PageStoreMetrics::default()).unwrap());
        let after = self.store().usage();
        self.model.exact = false;
        if self.model.disk.is_none() {
            self.model.files = vec![None; FILES];
        }
        assert_eq!((after.memory_bytes, after.memory_pages), (0, 0));
        assert_eq!((after.disk_bytes, after.disk_pages), (before.disk_bytes, before.disk_pages), "disk pages survive");
    }

    fn check(&self) {
        let usage = self.store().usage();
        let expected = self.model.usage();
        if self.model.exact {
            assert_eq!(usage, expected);
            for file in 0..FILES {
                let id = loam_core::file_id(&uri(file));
                for index in 0..MAX_PAGES {
                    assert_eq!(
                        self.store().has_page(&id, index),
                        self.model.has_page(file, index),
                        "page {index} of {file}"
                    );
                }
                let count = (0..MAX_PAGES).filter(|&i| self.model.has_page(file, i)).count() as u64;
                assert_eq!(self.store().cached_page_count(&id), count);
            }
        }
        assert!(usage.memory_bytes <= self.cfg.memory_capacity, "{usage:?}");
        assert!(usage.disk_bytes <= self.cfg.disk_capacity, "{usage:?}");
        assert_eq!(usage.files, expected.files);
        for (file, model) in self.model.files.iter().enumerate() {
            let rec = self.store().file(&loam_core::file_id(&uri(file)));
            assert_eq!(rec.as_ref(), model.as_ref().map(|(_, r)| r), "record of file {file}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_model_exactly((memory, disk) in capacities(), ops in ops(false)) {
        let mut h = Harness::new(memory, disk);
        for op in &ops {
            h.run(op);
        }
    }

    #[test]
    fn invariants_hold_across_restarts((memory, disk) in capacities(), ops in ops(true)) {
        let mut h = Harness::new(memory, disk);
        for op in &ops {
            h.run(op);
        }
    }
}

/// Page files under `dir`, found by walking it.
fn page_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(page_files(&path));
        } else if path.extension().is_some_and(|e| e == "page") {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn a_corrupt_page_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = PageStoreConfig {
        page_size: PS,
        memory_capacity: 0,
        disk_dirs: vec![dir.path().into()],
        disk_capacity: 8 * PS,
    };
    let metrics = PageStoreMetrics::default();
    let store = PageStore::open(cfg, metrics.clone()).unwrap();
    let rec = FileRecord::new(&uri(0), PS, Some("e".into()), None, 1);
    store.put_file(rec.clone()).await.unwrap();
    let good = page_bytes(0, 0, 0, PS);
    assert!(store.put_page(&rec.file_id, 0, good.clone()).await.unwrap());

    let [path] = page_files(dir.path()).try_into().unwrap();
    let mut raw = std::fs::read(&path).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 0x01;
    std::fs::write(&path, raw).unwrap();

    assert_eq!(store.get_page(&rec.file_id, 0).await.unwrap(), None);
    assert_eq!(metrics.corrupt_pages.get(), 1);
    assert!(!path.exists(), "the corrupt page file is deleted");
    assert!(!store.has_page(&rec.file_id, 0));
    // The caller reads it again from the UFS and caches it.
    assert!(store.put_page(&rec.file_id, 0, good.clone()).await.unwrap());
    assert_eq!(store.get_page(&rec.file_id, 0).await.unwrap(), Some(good));
}

#[tokio::test]
async fn a_restarted_store_serves_the_same_pages_and_records() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let cfg = PageStoreConfig {
        page_size: PS,
        memory_capacity: 2 * PS,
        disk_dirs: dirs.iter().map(|d| d.path().to_path_buf()).collect(),
        disk_capacity: 64 * PS,
    };
    let files: Vec<FileRecord> =
        (0..8).map(|f| FileRecord::new(&uri(f), length(f, 1), Some("v1".into()), Some(7), 100)).collect();
    {
        let store = PageStore::open(cfg.clone(), PageStoreMetrics::default()).unwrap();
        for (f, rec) in files.iter().enumerate() {
            store.put_file(rec.clone()).await.unwrap();
            for index in 0..rec.page_count(PS) {
                let data = page_bytes(f, 1, index, rec.page_len(PS, index).unwrap());
                assert!(store.put_page(&rec.file_id, index, data).await.unwrap());
            }
            store.set_validated(&rec.file_id, 500);
        }
        store.flush_records().await.unwrap();
    }
    // Files are spread over both directories.
    assert!(dirs.iter().all(|d| !page_files(d.path()).is_empty()));

    let metrics = PageStoreMetrics::default();
    let store = PageStore::open(cfg, metrics.clone()).unwrap();
    let mut ids = store.file_ids();
    ids.sort();
    let mut expected: Vec<_> = files.iter().map(|r| r.file_id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    let mut pages = 0;
    for (f, rec) in files.iter().enumerate() {
        assert_eq!(store.file(&rec.file_id), Some(FileRecord { validated_ms: 500, ..rec.clone() }));
        assert_eq!(store.cached_page_count(&rec.file_id), rec.page_count(PS));
        for index in 0..rec.page_count(PS) {
            let data = page_bytes(f, 1, index, rec.page_len(PS, index).unwrap());
            assert_eq!(store.get_page(&rec.file_id, index).await.unwrap(), Some(data));
            assert!(store.page_cached_ms(&rec.file_id, index).is_some());
            pages += 1;
        }
    }
    assert_eq!(metrics.page_hits.get_or_create(&DISK).get(), pages);
    assert_eq!(metrics.page_misses.get(), 0);
    assert_eq!(store.usage().disk_pages, pages);
}
