//! Store-level unit tests; the reference-model test is `tests/model/page_store_model.rs`.

use super::index::{Index, Lookup, ReadResult};
use super::metrics::DirLabel;
use super::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

const PS: u64 = 64;

fn cfg(memory_capacity: u64, dir: Option<&Path>, disk_capacity: u64) -> PageStoreConfig {
    PageStoreConfig {
        page_size: PS,
        memory_capacity,
        disk_dirs: dir.into_iter().map(Path::to_path_buf).collect(),
        disk_capacity,
    }
}

fn open(cfg: PageStoreConfig) -> (Arc<PageStore>, PageStoreMetrics) {
    let metrics = PageStoreMetrics::default();
    (PageStore::open(cfg, metrics.clone()).unwrap(), metrics)
}

fn record(uri: &str, length: u64, etag: &str) -> FileRecord {
    FileRecord::new(uri, length, Some(etag.into()), Some(1), 1_000)
}

/// The page file of page `index` of the version of `file_id` cached now.
fn page_path(store: &PageStore, file_id: &str, index: u64) -> PathBuf {
    let generation = store.index.lock().generation(file_id).unwrap();
    store.layout.as_ref().unwrap().page_path(file_id, generation, index)
}

/// Whether the record log says `file_id` has a record.
fn logged(store: &PageStore, file_id: &str) -> bool {
    let layout = store.layout.as_ref().unwrap();
    let path = layout.record_log_path(layout.dir_index(file_id));
    record_log::RecordLog::replay(&path).unwrap().records.contains_key(file_id)
}

/// Page `index` of `rec`, filled with `fill`.
fn page(rec: &FileRecord, index: u64, fill: u8) -> Bytes {
    Bytes::from(vec![fill; rec.page_len(PS, index).unwrap() as usize])
}

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
    out.sort();
    out
}

async fn cached(store: &PageStore, rec: &FileRecord, pages: &[(u64, u8)]) {
    store.put_file(rec.clone()).await.unwrap();
    for &(index, fill) in pages {
        assert!(store.put_page(&rec.file_id, index, page(rec, index, fill)).await.unwrap());
    }
}

#[tokio::test]
async fn memory_tier_serves_the_same_buffer() {
    let (store, metrics) = open(cfg(1000, None, 0));
    let rec = record("s3://b/a", 100, "e");
    store.put_file(rec.clone()).await.unwrap();
    let data = page(&rec, 1, 7);
    assert!(store.put_page(&rec.file_id, 1, data.clone()).await.unwrap());
    let got = store.get_page(&rec.file_id, 1).await.unwrap().unwrap();
    assert_eq!(got.as_ptr(), data.as_ptr(), "a memory hit must not copy");
    assert_eq!(store.get_page(&rec.file_id, 0).await.unwrap(), None);
    assert_eq!(metrics.page_hits.get_or_create(&MEMORY).get(), 1);
    assert_eq!(metrics.page_misses.get(), 1);
    assert_eq!(store.usage(), Usage { memory_bytes: 36, memory_pages: 1, files: 1, ..Usage::default() });
    assert!(store.page_cached_ms(&rec.file_id, 1).is_some());
    assert_eq!(metrics.cached_bytes.get_or_create(&MEMORY).get(), 36);
}

#[tokio::test]
async fn put_page_checks_record_length_and_capacity() {
    let (store, _) = open(cfg(40, None, 0));
    let rec = record("s3://b/a", 100, "e");
    let err = store.put_page(&rec.file_id, 0, page(&rec, 0, 1)).await.unwrap_err();
    assert_eq!(err.kind(), loam_core::ErrorKind::NotFound);
    store.put_file(rec.clone()).await.unwrap();
    let err = store.put_page(&rec.file_id, 0, Bytes::from(vec![0; 10])).await.unwrap_err();
    assert_eq!(err.kind(), loam_core::ErrorKind::InvalidInput);
    let err = store.put_page(&rec.file_id, 2, Bytes::from(vec![0; 1])).await.unwrap_err();
    assert_eq!(err.kind(), loam_core::ErrorKind::InvalidInput);
    // A full page is larger than the only tier; the 36-byte last page fits.
    assert!(!store.put_page(&rec.file_id, 0, page(&rec, 0, 1)).await.unwrap());
    assert!(store.put_page(&rec.file_id, 1, page(&rec, 1, 1)).await.unwrap());
    assert_eq!(store.cached_page_count(&rec.file_id), 1);
}

#[tokio::test]
async fn put_file_rejects_bad_records() {
    let (store, _) = open(cfg(1000, None, 0));
    let mut rec = record("s3://b/a", 100, "e");
    rec.version = FILE_RECORD_VERSION + 1;
    assert_eq!(store.put_file(rec.clone()).await.unwrap_err().kind(), loam_core::ErrorKind::InvalidInput);
    rec.version = FILE_RECORD_VERSION;
    rec.file_id = "../escape".into();
    assert_eq!(store.put_file(rec).await.unwrap_err().kind(), loam_core::ErrorKind::InvalidInput);
    assert!(store.file_ids().is_empty());
    assert_eq!(
        PageStore::open(PageStoreConfig { page_size: 0, ..PageStoreConfig::default() }, PageStoreMetrics::default())
            .err()
            .map(|e| e.kind()),
        Some(loam_core::ErrorKind::InvalidInput)
    );
}

#[tokio::test]
async fn memory_evicts_silently_and_disk_hits_are_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = open(cfg(PS, Some(dir.path()), 10 * PS));
    let rec = record("s3://b/a", 3 * PS, "e");
    cached(&store, &rec, &[(0, 1), (1, 2)]).await;
    // Memory holds one page: page 0 went from memory, its disk copy stays.
    assert_eq!(store.usage(), Usage { memory_bytes: PS, memory_pages: 1, disk_bytes: 2 * PS, disk_pages: 2, files: 1 });
    assert_eq!(metrics.pages_evicted.get_or_create(&MEMORY).get(), 1);
    assert_eq!(store.get_page(&rec.file_id, 0).await.unwrap(), Some(page(&rec, 0, 1)));
    assert_eq!(metrics.page_hits.get_or_create(&DISK).get(), 1);
    assert_eq!(store.get_page(&rec.file_id, 0).await.unwrap(), Some(page(&rec, 0, 1)));
    assert_eq!(metrics.page_hits.get_or_create(&MEMORY).get(), 1);
    assert_eq!(page_files(dir.path()).len(), 2);
}

#[tokio::test]
async fn disk_eviction_deletes_the_least_recently_used_page_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = open(cfg(0, Some(dir.path()), 2 * PS));
    let rec = record("s3://b/a", 3 * PS, "e");
    cached(&store, &rec, &[(0, 1), (1, 2)]).await;
    store.get_page(&rec.file_id, 0).await.unwrap().unwrap();
    cached(&store, &rec, &[(2, 3)]).await;
    assert!(store.has_page(&rec.file_id, 0) && !store.has_page(&rec.file_id, 1) && store.has_page(&rec.file_id, 2));
    assert_eq!(metrics.pages_evicted.get_or_create(&DISK).get(), 1);
    let names: Vec<_> = page_files(dir.path()).iter().map(|p| p.file_name().unwrap().to_owned()).collect();
    let want = [0, 2].map(|i| page_path(&store, &rec.file_id, i).file_name().unwrap().to_owned());
    assert_eq!(names, want);
}

#[tokio::test]
async fn a_new_version_drops_old_pages_and_the_same_version_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(cfg(10 * PS, Some(dir.path()), 10 * PS));
    let rec = record("s3://b/a", 2 * PS, "e1");
    cached(&store, &rec, &[(0, 1), (1, 2)]).await;
    let mut same = rec.clone();
    same.validated_ms = 5_000;
    same.cached_ms = 5_000;
    store.put_file(same).await.unwrap();
    assert_eq!(store.cached_page_count(&rec.file_id), 2);
    let kept = store.file(&rec.file_id).unwrap();
    assert_eq!((kept.validated_ms, kept.cached_ms), (5_000, rec.cached_ms));

    let v2 = record("s3://b/a", 2 * PS, "e2");
    store.put_file(v2.clone()).await.unwrap();
    assert_eq!(store.cached_page_count(&rec.file_id), 0);
    assert_eq!(store.get_page(&rec.file_id, 0).await.unwrap(), None);
    assert!(page_files(dir.path()).is_empty());
    assert_eq!(store.usage(), Usage { files: 1, ..Usage::default() });
    assert_eq!(store.file(&rec.file_id).unwrap().etag.as_deref(), Some("e2"));
}

#[tokio::test]
async fn a_reader_pinned_to_a_version_never_gets_pages_of_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(cfg(10 * PS, Some(dir.path()), 10 * PS));
    let v1 = record("s3://b/a", 2 * PS, "e1");
    let g1 = store.put_file_pending(v1.clone()).await.unwrap();
    assert_eq!(store.file_version(&v1.file_id).map(|(r, g)| (r.etag, g)), Some((Some("e1".into()), g1)));
    assert_eq!(store.put_pages_of(&v1.file_id, g1, vec![(0, page(&v1, 0, 1))]).await.unwrap(), vec![true]);
    assert_eq!(store.get_page_of(&v1.file_id, g1, 0).await.unwrap(), Some(page(&v1, 0, 1)));
    assert!(store.has_page_of(&v1.file_id, g1, 0));

    // The file is replaced by a version of the same length, and a reader of it caches page 0.
    let v2 = record("s3://b/a", 2 * PS, "e2");
    let g2 = store.put_file_pending(v2.clone()).await.unwrap();
    assert_ne!(g1, g2);
    assert_eq!(store.put_pages_of(&v2.file_id, g2, vec![(0, page(&v2, 0, 2))]).await.unwrap(), vec![true]);
    // The reader of version 1 misses (from memory and from disk) rather than getting version 2's page...
    assert_eq!(store.get_page_of(&v1.file_id, g1, 0).await.unwrap(), None);
    assert!(!store.has_page_of(&v1.file_id, g1, 0));
    // ...and what it read of version 1 from the UFS is not stored under version 2.
    assert_eq!(store.put_pages_of(&v1.file_id, g1, vec![(1, page(&v1, 1, 1))]).await.unwrap(), vec![false]);
    assert!(!store.has_page(&v2.file_id, 1));
    assert_eq!(store.get_page_of(&v2.file_id, g2, 0).await.unwrap(), Some(page(&v2, 0, 2)));
    // The same version again keeps its generation.
    assert_eq!(store.put_file_pending(v2.clone()).await.unwrap(), g2);
}

#[tokio::test]
async fn remove_file_frees_bytes_pages_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(cfg(10 * PS, Some(dir.path()), 10 * PS));
    let rec = record("s3://b/a", PS + 10, "e");
    cached(&store, &rec, &[(0, 1), (1, 2)]).await;
    assert!(logged(&store, &rec.file_id));
    assert_eq!(page_files(dir.path()).len(), 2);
    assert_eq!(store.remove_file(&rec.file_id).await.unwrap(), PS + 10);
    assert!(page_files(dir.path()).is_empty() && !logged(&store, &rec.file_id));
    assert_eq!(store.usage(), Usage::default());
    assert_eq!(store.remove_file(&rec.file_id).await.unwrap(), 0);
    assert_eq!(store.file(&rec.file_id), None);
}

#[test]
fn a_disk_read_that_finishes_after_a_replacement_is_a_miss() {
    let rec = record("s3://b/a", PS, "e1");
    let id = rec.file_id.clone();
    for replace in [true, false] {
        let mut index = Index::new(PS, 0, &[10 * PS], 1);
        index.put_file(rec.clone(), super::lru::DEFAULT_PRIORITY);
        let plan = index.plan_write(&id, 0, PS).unwrap();
        index.commit_write(&id, 0, plan, page(&rec, 0, 1), true, 0).unwrap();
        let Lookup::Disk(read) = index.lookup(&id, 0) else { panic!("expected a disk page") };
        if replace {
            index.put_file(record("s3://b/a", PS, "e2"), super::lru::DEFAULT_PRIORITY);
        } else {
            index.remove_file(&id);
        }
        let (data, _) = index.finish_read(&id, 0, read, ReadResult::Valid(page(&rec, 0, 1)));
        assert_eq!(data, None, "replace={replace}");
    }
}

#[test]
fn a_page_written_across_a_replacement_is_not_committed() {
    let rec = record("s3://b/a", PS, "e1");
    let mut index = Index::new(PS, 10 * PS, &[10 * PS], 1);
    index.put_file(rec.clone(), super::lru::DEFAULT_PRIORITY);
    let plan = index.plan_write(&rec.file_id, 0, PS).unwrap();
    index.put_file(record("s3://b/a", PS, "e2"), super::lru::DEFAULT_PRIORITY);
    assert!(index.commit_write(&rec.file_id, 0, plan, page(&rec, 0, 1), true, 0).is_none());
    assert!(!index.has_page(&rec.file_id, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_never_see_the_old_version_after_a_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(cfg(PS, Some(dir.path()), 100 * PS));
    let v1 = record("s3://b/a", 8 * PS, "e1");
    cached(&store, &v1, &(0..8).map(|i| (i, 1)).collect::<Vec<_>>()).await;
    let replaced = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (store, replaced, id) = (store.clone(), replaced.clone(), v1.file_id.clone());
            tokio::spawn(async move {
                for i in 0..400u64 {
                    let after = replaced.load(Ordering::SeqCst);
                    if let Some(data) = store.get_page(&id, (i + r) % 8).await.unwrap() {
                        assert!(!(after && data[0] == 1), "old bytes served after the replacement");
                    }
                }
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let v2 = record("s3://b/a", 8 * PS, "e2");
    store.put_file(v2.clone()).await.unwrap();
    replaced.store(true, Ordering::SeqCst);
    for i in 0..8 {
        store.put_page(&v2.file_id, i, page(&v2, i, 2)).await.unwrap();
    }
    for reader in readers {
        reader.await.unwrap();
    }
}

#[tokio::test]
async fn restart_serves_pages_and_records_and_cleans_debris() {
    let dir = tempfile::tempdir().unwrap();
    let rec = record("s3://b/a", PS + 5, "e");
    let (page0, root) = {
        let (store, _) = open(cfg(PS, Some(dir.path()), 10 * PS));
        cached(&store, &rec, &[(0, 1), (1, 2)]).await;
        store.set_validated(&rec.file_id, 9_999);
        store.flush_records().await.unwrap();
        (page_path(&store, &rec.file_id, 0), store.layout.as_ref().unwrap().roots()[0].clone())
    };
    let prefix = page0.parent().unwrap().to_path_buf();
    // Debris: a temp file, unknown files, a page without a record, a page under the wrong prefix, a
    // directory that is no prefix, and a torn append at the end of the log.
    let temp = prefix.join(format!("{}.page.tmp-123", page0.file_stem().unwrap().to_str().unwrap()));
    std::fs::write(&temp, b"half").unwrap();
    std::fs::write(root.join("junk"), b"?").unwrap();
    std::fs::write(prefix.join("junk"), b"?").unwrap();
    let orphan = record("s3://b/orphan", PS, "e");
    let orphan_page = root.join(&orphan.file_id[..2]).join(format!("{}.1.0.page", orphan.file_id));
    std::fs::create_dir_all(orphan_page.parent().unwrap()).unwrap();
    std::fs::copy(&page0, &orphan_page).unwrap();
    let misplaced_prefix = if rec.file_id.starts_with("00") { "01" } else { "00" };
    let misplaced = root.join(misplaced_prefix).join(page0.file_name().unwrap());
    std::fs::create_dir_all(misplaced.parent().unwrap()).unwrap();
    std::fs::copy(&page0, &misplaced).unwrap();
    std::fs::create_dir_all(root.join("zz")).unwrap();
    let log = root.join(disk::RECORD_LOG);
    let mut raw = std::fs::read(&log).unwrap();
    raw.extend_from_slice(b"0123abcd {\"remove\":\"");
    std::fs::write(&log, raw).unwrap();

    let (store, metrics) = open(cfg(PS, Some(dir.path()), 10 * PS));
    let restored = store.file(&rec.file_id).unwrap();
    assert_eq!(restored, FileRecord { validated_ms: 9_999, ..rec.clone() });
    assert_eq!(store.file_ids(), vec![rec.file_id.clone()]);
    assert_eq!(store.usage(), Usage { disk_bytes: PS + 5, disk_pages: 2, files: 1, ..Usage::default() });
    assert_eq!(store.get_page(&rec.file_id, 0).await.unwrap(), Some(page(&rec, 0, 1)));
    assert_eq!(store.get_page(&rec.file_id, 1).await.unwrap(), Some(page(&rec, 1, 2)));
    assert_eq!(metrics.page_hits.get_or_create(&DISK).get(), 2);
    for gone in [&temp, &root.join("junk"), &prefix.join("junk"), &orphan_page, &misplaced, &root.join("zz")] {
        assert!(!gone.exists(), "{} was not cleaned up", gone.display());
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 2, "the log was rewritten without the torn line: {text}");
}

#[tokio::test]
async fn the_cache_of_the_older_layout_is_deleted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("loam-pages/v1/ab/some-file");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("record.json"), b"{}").unwrap();
    let unknown = dir.path().join("loam-pages/v9");
    std::fs::create_dir_all(&unknown).unwrap();
    let (_store, _) = open(cfg(0, Some(dir.path()), 10 * PS));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while dir.path().join("loam-pages/v1").exists() {
        assert!(std::time::Instant::now() < deadline, "v1 was not deleted");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(unknown.exists(), "a layout this build does not know is left alone");
}

#[tokio::test]
async fn restart_drops_pages_of_another_generation_or_page_size() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = record("s3://b/a", 2 * PS, "e1");
    let other = record("s3://b/b", 2 * PS, "e1");
    {
        let (store, _) = open(cfg(0, Some(dir.path()), 10 * PS));
        cached(&store, &v1, &[(0, 1)]).await;
        cached(&store, &other, &[(0, 1)]).await;
        let old_path = page_path(&store, &v1.file_id, 0);
        let old_page = std::fs::read(&old_path).unwrap();
        store.put_file(record("s3://b/a", 2 * PS, "e2")).await.unwrap();
        assert!(!old_path.exists(), "the old version's page was deleted");
        // A late write of the old version lands after the replacement, under the old generation's name,
        // and one under the new version's name (copied by hand?) that its header gives away.
        std::fs::write(&old_path, &old_page).unwrap();
        std::fs::write(page_path(&store, &v1.file_id, 0), &old_page).unwrap();
    }
    let (store, _) = open(cfg(0, Some(dir.path()), 10 * PS));
    assert!(!store.has_page(&v1.file_id, 0));
    assert!(store.has_page(&other.file_id, 0));
    assert_eq!(page_files(dir.path()).len(), 1);
    drop(store);
    let (store, _) = open(PageStoreConfig { page_size: PS / 2, ..cfg(0, Some(dir.path()), 10 * PS) });
    assert_eq!(store.usage().disk_pages, 0);
    assert_eq!(store.usage().files, 2);
    assert!(page_files(dir.path()).is_empty());
}

#[tokio::test]
async fn restart_with_less_capacity_evicts_the_oldest_pages() {
    let dir = tempfile::tempdir().unwrap();
    let rec = record("s3://b/a", 3 * PS, "e");
    {
        let (store, _) = open(cfg(0, Some(dir.path()), 10 * PS));
        store.put_file(rec.clone()).await.unwrap();
        for index in [2, 0, 1] {
            store.put_page(&rec.file_id, index, page(&rec, index, 1)).await.unwrap();
            // Distinct cached times, so that the recovered order is the write order.
            let cached = store.page_cached_ms(&rec.file_id, index).unwrap();
            while loam_core::time::now_millis() == cached {
                std::thread::yield_now();
            }
        }
    }
    let (store, metrics) = open(cfg(0, Some(dir.path()), 2 * PS));
    assert_eq!(store.usage().disk_bytes, 2 * PS);
    assert!(!store.has_page(&rec.file_id, 2) && store.has_page(&rec.file_id, 0) && store.has_page(&rec.file_id, 1));
    assert_eq!(metrics.pages_evicted.get_or_create(&DISK).get(), 1);
    assert_eq!(page_files(dir.path()).len(), 2);
}

#[tokio::test]
async fn a_corrupt_page_is_deleted_counted_and_missed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = open(cfg(0, Some(dir.path()), 10 * PS));
    let rec = record("s3://b/a", PS, "e");
    cached(&store, &rec, &[(0, 1)]).await;
    let path = page_path(&store, &rec.file_id, 0);
    let mut raw = std::fs::read(&path).unwrap();
    // A byte of the data (past the header and the block checksums).
    let at = raw.len() - PS as usize + 3;
    raw[at] ^= 0xff;
    std::fs::write(&path, raw).unwrap();
    assert_eq!(store.get_page(&rec.file_id, 0).await.unwrap(), None);
    assert_eq!(metrics.corrupt_pages.get(), 1);
    assert!(!path.exists() && !store.has_page(&rec.file_id, 0));
    assert_eq!(store.usage().disk_pages, 0);
}

#[tokio::test]
async fn a_batch_of_pages_is_cached_on_disk_as_one_write_or_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(cfg(0, Some(dir.path()), 10_000));
    let rec = record("s3://b/batch", 3 * PS + 5, "e");
    store.put_file(rec.clone()).await.unwrap();
    // A page of the wrong length refuses the whole batch before anything is written.
    let bad = vec![(0, page(&rec, 0, 1)), (3, Bytes::from(vec![9u8; 7]))];
    assert!(matches!(store.put_pages(&rec.file_id, bad).await, Err(PageStoreError::InvalidInput(_))));
    assert_eq!(store.cached_page_count(&rec.file_id), 0);
    assert!(page_files(dir.path()).is_empty());
    let batch: Vec<_> = (0..4).map(|i| (i, page(&rec, i, i as u8 + 1))).collect();
    assert_eq!(store.put_pages(&rec.file_id, batch).await.unwrap(), vec![true; 4]);
    assert_eq!(page_files(dir.path()).len(), 4);
    for i in 0..4 {
        assert_eq!(store.get_page(&rec.file_id, i).await.unwrap().unwrap(), page(&rec, i, i as u8 + 1));
    }
}

#[tokio::test]
async fn a_pending_record_goes_to_disk_with_the_first_pages_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(cfg(0, Some(dir.path()), 10_000));
    let rec = record("s3://b/pending", 2 * PS, "e");
    store.put_file_pending(rec.clone()).await.unwrap();
    assert!(!logged(&store, &rec.file_id), "a pending record waits for the pages");
    let batch: Vec<_> = (0..2).map(|i| (i, page(&rec, i, 5))).collect();
    assert_eq!(store.put_pages(&rec.file_id, batch).await.unwrap(), vec![true; 2]);
    assert!(logged(&store, &rec.file_id), "the record is written with the first pages");
    drop(store);
    let (reopened, _) = open(cfg(0, Some(dir.path()), 10_000));
    assert_eq!(reopened.get_page(&rec.file_id, 1).await.unwrap().unwrap(), page(&rec, 1, 5));

    // A record with no page to carry it is written by persist_record.
    let meta = record("s3://b/meta-only", 3, "e");
    reopened.put_file_pending(meta.clone()).await.unwrap();
    assert!(!logged(&reopened, &meta.file_id));
    reopened.persist_record(&meta.file_id).await.unwrap();
    assert!(logged(&reopened, &meta.file_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_and_removals_leave_the_log_saying_what_the_index_says() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(cfg(0, Some(dir.path()), 1000 * PS));
    let uris: Vec<String> = (0..4).map(|i| format!("s3://b/race-{i}")).collect();
    let tasks: Vec<_> = (0..8u8)
        .map(|t| {
            let (store, uris) = (store.clone(), uris.clone());
            tokio::spawn(async move {
                for round in 0..40u8 {
                    let uri = &uris[usize::from(round + t) % uris.len()];
                    let rec = record(uri, 2 * PS, &format!("e{t}-{round}"));
                    match (round + t) % 3 {
                        0 => {
                            store.remove_file(&rec.file_id).await.unwrap();
                        }
                        1 => {
                            store.put_file_pending(rec.clone()).await.unwrap();
                            let _ = store.put_pages(&rec.file_id, vec![(0, page(&rec, 0, t))]).await;
                        }
                        _ => store.put_file(rec).await.unwrap(),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    store.flush_records().await.unwrap();
    let before: Vec<_> = uris.iter().map(|u| store.file(&loam_core::file_id(u))).collect();
    let pages: Vec<_> = uris.iter().map(|u| store.has_page(&loam_core::file_id(u), 0)).collect();
    drop(store);
    let (reopened, _) = open(cfg(0, Some(dir.path()), 1000 * PS));
    let after: Vec<_> = uris.iter().map(|u| reopened.file(&loam_core::file_id(u))).collect();
    assert_eq!(after, before, "the log converged to the index's final state");
    for (u, had) in uris.iter().zip(pages) {
        assert_eq!(reopened.has_page(&loam_core::file_id(u), 0), had, "{u}");
    }
}

#[tokio::test]
async fn evictions_are_counted_by_cause_and_capacity_by_tier_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = open(cfg(0, Some(dir.path()), 2 * PS));
    store
        .set_priority_source(Arc::new(|uri: &str| if uri.ends_with("low") { Priority::Low } else { Priority::Medium }));
    let (low, medium) = (record("s3://b/low", PS, "e"), record("s3://b/medium", 3 * PS, "e"));
    let evicted = |cause: EvictionCause| metrics.evicted_bytes.get_or_create(&cause.label()).get();
    let label = DirLabel { dir: dir.path().display().to_string() };
    assert_eq!(metrics.capacity.get_or_create(&DISK).get(), 2 * PS as i64);
    assert_eq!(metrics.capacity.get_or_create(&MEMORY).get(), 0);
    assert_eq!(metrics.alluxio_capacity.get(), 2 * PS as i64);
    cached(&store, &low, &[(0, 1)]).await;
    cached(&store, &medium, &[(0, 2)]).await;
    assert_eq!(metrics.dir_used.get_or_create(&label).get(), 2 * PS as i64);
    assert_eq!(metrics.alluxio_storage.get(), 2 * PS as i64);
    // Full: the low page makes way for medium data (priority), then a medium page for another (capacity).
    cached(&store, &medium, &[(1, 3)]).await;
    assert_eq!((evicted(EvictionCause::Priority), evicted(EvictionCause::Capacity)), (PS, 0));
    cached(&store, &medium, &[(2, 4)]).await;
    assert_eq!((evicted(EvictionCause::Priority), evicted(EvictionCause::Capacity)), (PS, PS));
    assert_eq!(metrics.alluxio_evicted.get(), 2 * PS, "Alluxio's evicted data is what the cache evicted");
    // TTL and free drop whole files; they are not Alluxio's evictions.
    assert_eq!(store.evict_file(&medium.file_id, EvictionCause::Ttl).await.unwrap(), 2 * PS);
    cached(&store, &low, &[(0, 5)]).await;
    assert_eq!(store.evict_file(&low.file_id, EvictionCause::Free).await.unwrap(), PS);
    assert_eq!((evicted(EvictionCause::Ttl), evicted(EvictionCause::Free)), (2 * PS, PS));
    assert_eq!(metrics.alluxio_evicted.get(), 2 * PS);
    assert_eq!(metrics.dir_used.get_or_create(&label).get(), 0);
    assert_eq!(metrics.alluxio_storage.get(), 0);
}

#[tokio::test]
async fn a_memory_only_store_counts_a_page_evicted_when_it_leaves_memory() {
    let (store, metrics) = open(cfg(PS, None, 0));
    let rec = record("s3://b/a", 2 * PS, "e");
    cached(&store, &rec, &[(0, 1), (1, 2)]).await;
    assert_eq!(metrics.evicted_bytes.get_or_create(&EvictionCause::Capacity.label()).get(), PS);
    assert_eq!((metrics.alluxio_storage.get(), metrics.alluxio_capacity.get()), (PS as i64, PS as i64));
    // With a disk tier, a page leaving memory keeps its disk copy and is not evicted from the cache.
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = open(cfg(PS, Some(dir.path()), 4 * PS));
    cached(&store, &rec, &[(0, 1), (1, 2)]).await;
    assert_eq!(metrics.pages_evicted.get_or_create(&MEMORY).get(), 1);
    assert_eq!(metrics.evicted_bytes.get_or_create(&EvictionCause::Capacity.label()).get(), 0);
}

mod mapped;
mod parts;
