//! Cache directories that fill or fail, on real file systems: a small tmpfs for a real ENOSPC (mounting
//! needs root; without it the test says so and passes vacuously), a directory removed with `rm -rf`, one
//! whose layout root is replaced by a file (every write fails), a path that cannot be a directory, and a
//! directory locked by another store.

use bytes::Bytes;
use loam_page_store::metrics::{DISK, DirLabel, PageStoreMetrics};
use loam_page_store::{FileRecord, PageStore, PageStoreConfig};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PS: u64 = 16 << 10;
/// Bytes of a page file of `PS` bytes: header (56), block checksums (one CRC32 per 16 KiB), data.
const PAGE_FILE: u64 = 56 + 4 * PS.div_ceil(16 << 10) + PS;

/// A tmpfs of `size` bytes mounted on a temp dir, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let opts = format!("size={size}");
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &opts, "tmpfs"]).arg(dir.path()).status();
        if !ok.is_ok_and(|s| s.success()) {
            eprintln!("cannot mount a tmpfs (not root?): skipped");
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn cfg(dirs: &[&Path], disk_capacity: u64) -> PageStoreConfig {
    PageStoreConfig {
        page_size: PS,
        memory_capacity: 0,
        disk_dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
        disk_capacity,
    }
}

fn label(dir: &Path) -> DirLabel {
    DirLabel { dir: dir.display().to_string() }
}

/// Caches every page of a file of `pages` pages; returns its id and whether each page was admitted.
async fn cache_file(store: &PageStore, name: &str, pages: u64) -> (String, Vec<bool>) {
    let rec = FileRecord::new(&format!("s3://b/{name}"), pages * PS, Some("e".into()), Some(1), 1_000);
    let id = rec.file_id.clone();
    store.put_file(rec).await.unwrap();
    let data: Vec<(u64, Bytes)> = (0..pages).map(|i| (i, Bytes::from(vec![i as u8; PS as usize]))).collect();
    (id.clone(), store.put_pages(&id, data).await.unwrap())
}

/// Bytes of `.page` files under `dir`, headers included.
fn page_bytes_on_disk(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| match p.is_dir() {
            true => page_bytes_on_disk(&p),
            false if p.extension().is_some_and(|e| e == "page") => p.metadata().unwrap().len(),
            false => 0,
        })
        .sum()
}

#[tokio::test]
async fn a_file_system_smaller_than_the_cache_size_evicts_instead_of_failing_writes() {
    let Some(fs) = Tmpfs::mount("1m") else { return };
    let metrics = PageStoreMetrics::default();
    // 64 MiB configured on a 1 MiB file system: the capacity is clamped to the room there is.
    let store = PageStore::open(cfg(&[fs.path()], 64 << 20), metrics.clone()).unwrap();
    let capacity = metrics.dir_capacity.get_or_create(&label(fs.path())).get() as u64;
    assert!(capacity > 0 && capacity < 1 << 20, "clamped to the tmpfs: {capacity}");
    let mut last = String::new();
    for f in 0..40 {
        let (id, admitted) = cache_file(&store, &format!("f{f}"), 4).await;
        assert_eq!(admitted, vec![true; 4], "file {f}: every page written, room made by eviction");
        last = id;
    }
    let usage = store.usage();
    assert!(usage.disk_bytes <= capacity, "{usage:?} within {capacity}");
    assert!(metrics.pages_evicted.get_or_create(&DISK).get() > 0);
    assert_eq!(usage.disk_pages * PS, usage.disk_bytes);
    assert_eq!(page_bytes_on_disk(fs.path()), usage.disk_pages * PAGE_FILE, "the metrics agree with the disk");
    for i in 0..4 {
        assert_eq!(store.get_page(&last, i).await.unwrap(), Some(Bytes::from(vec![i as u8; PS as usize])));
    }
    assert_eq!(metrics.dir_healthy.get_or_create(&label(fs.path())).get(), 1);
}

#[tokio::test]
async fn a_failing_directory_is_dropped_then_taken_back() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cache");
    let metrics = PageStoreMetrics::default();
    let store = PageStore::open(cfg(&[&dir], 64 << 20), metrics.clone()).unwrap();
    let (cached, _) = cache_file(&store, "before", 2).await;
    let before = store.dir_stats();
    assert_eq!(before.len(), 1);
    let d = &before[0];
    assert_eq!((d.path.as_str(), d.healthy, d.problem.as_deref()), (dir.to_str().unwrap(), true, None));
    assert_eq!((d.used_bytes, d.pages, d.errors), (2 * PS, 2, 0));
    assert!(d.capacity_bytes > 0 && d.capacity_bytes == store.tier_stats().1.capacity_bytes, "{d:?}");
    // The layout root becomes a plain file: every write there fails (not with a full disk).
    let layout_root = dir.join("loam-pages/v3");
    std::fs::remove_dir_all(&layout_root).unwrap();
    std::fs::write(&layout_root, b"in the way").unwrap();
    let (id, admitted) = cache_file(&store, "while-failing", 2).await;
    assert_eq!(admitted, vec![false, false], "no memory tier and a failed directory: not cached, no error");
    let l = label(&dir);
    assert_eq!(metrics.dir_healthy.get_or_create(&l).get(), 0);
    assert!(metrics.dir_errors.get_or_create(&l).get() >= 1);
    assert_eq!(store.get_page(&cached, 0).await.unwrap(), None, "pages of a failed directory are misses");
    assert_eq!(store.usage().disk_bytes, 0);
    let problem = store.disk_problem(&id).expect("the file's directory is unhealthy");
    assert!(problem.contains(&dir.display().to_string()), "{problem}");
    // `/v1/stats` sees it failed, with why, its errors, and nothing held.
    let d = store.dir_stats().remove(0);
    assert!(!d.healthy && d.problem.is_some() && d.errors >= 1, "{d:?}");
    assert_eq!((d.used_bytes, d.pages, d.capacity_bytes), (0, 0, 0));
    store.check_dirs().await;
    assert_eq!(metrics.dir_healthy.get_or_create(&l).get(), 0, "still in the way: still unhealthy");
    std::fs::remove_file(&layout_root).unwrap();
    store.check_dirs().await;
    assert_eq!(metrics.dir_healthy.get_or_create(&l).get(), 1, "usable again: re-initialised");
    let (id, admitted) = cache_file(&store, "after", 2).await;
    assert_eq!(admitted, vec![true, true]);
    assert!(store.disk_problem(&id).is_none());
    assert_eq!(page_bytes_on_disk(&dir), 2 * PAGE_FILE, "only the new pages");
}

#[tokio::test]
async fn a_directory_removed_under_the_store_is_noticed_and_reinitialised() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cache");
    let metrics = PageStoreMetrics::default();
    let store = PageStore::open(cfg(&[&dir], 64 << 20), metrics.clone()).unwrap();
    let (shutdown, rx) = tokio::sync::watch::channel(false);
    let checks = store.spawn_dir_checks(Duration::from_millis(50), rx).expect("a disk tier is checked");
    for f in 0..4 {
        cache_file(&store, &format!("f{f}"), 3).await;
    }
    assert_eq!(store.usage().disk_pages, 12);
    std::fs::remove_dir_all(&dir).unwrap();
    // Noticed by the background check: the index then holds what the (new, empty) directory holds.
    let log = dir.join("loam-pages/v3/records.log");
    let healthy = || metrics.dir_healthy.get_or_create(&label(&dir)).get() == 1;
    while !(healthy() && log.exists() && store.usage().disk_pages == 0) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metrics.cached_bytes.get_or_create(&DISK).get(), 0, "the metric agrees with the disk");
    let (id, admitted) = cache_file(&store, "after", 2).await;
    assert_eq!(admitted, vec![true, true]);
    assert_eq!(page_bytes_on_disk(&dir), 2 * PAGE_FILE);
    shutdown.send(true).unwrap();
    checks.await.unwrap();
    // A restart finds exactly what is there: the records re-written to the new log, and the new pages.
    drop(store);
    let store = PageStore::open(cfg(&[&dir], 64 << 20), PageStoreMetrics::default()).unwrap();
    assert_eq!(store.usage().disk_pages, 2);
    assert_eq!(store.cached_page_count(&id), 2);
}

#[tokio::test]
async fn a_directory_in_use_or_not_writable_is_refused_with_its_name() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let first = PageStore::open(cfg(&[&a], 1 << 20), PageStoreMetrics::default()).unwrap();
    let err = PageStore::open(cfg(&[&a], 1 << 20), PageStoreMetrics::default()).err().expect("a is locked");
    let text = err.to_string();
    assert!(text.contains("in use by another live worker") && text.contains(&a.display().to_string()), "{text}");
    assert_eq!(err.kind(), loam_core::ErrorKind::InvalidInput);
    std::fs::write(root.path().join("file"), b"x").unwrap();
    let under_a_file = root.path().join("file/cache");
    let err = PageStore::open(cfg(&[&under_a_file], 1 << 20), PageStoreMetrics::default()).err().unwrap();
    assert!(err.to_string().contains(&under_a_file.display().to_string()), "{err}");
    // With several directories, the usable ones are used and the others are unhealthy.
    let metrics = PageStoreMetrics::default();
    let second = PageStore::open(cfg(&[&a, &b], 2 << 20), metrics.clone()).unwrap();
    assert_eq!(metrics.dir_healthy.get_or_create(&label(&a)).get(), 0);
    assert_eq!(metrics.dir_healthy.get_or_create(&label(&b)).get(), 1);
    let mut admitted = Vec::new();
    for f in 0..8 {
        let (id, pages) = cache_file(&second, &format!("f{f}"), 1).await;
        admitted.push((second.disk_problem(&id).is_none(), pages[0]));
    }
    assert!(admitted.iter().all(|(healthy_dir, cached)| healthy_dir == cached), "{admitted:?}");
    assert!(admitted.iter().any(|(h, _)| *h) && admitted.iter().any(|(h, _)| !*h), "files in both: {admitted:?}");
    // Once the first store is gone, the health check takes the directory.
    drop(first);
    second.check_dirs().await;
    assert_eq!(metrics.dir_healthy.get_or_create(&label(&a)).get(), 1);
}
