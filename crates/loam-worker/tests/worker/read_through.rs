//! Read-through behaviour of a real worker: one UFS read per missed run however many requests wait,
//! cache hits without UFS reads, freshness, corrupt pages, warm restart.

use crate::{PAGE, one_worker};
use loam_testsupport::data::pattern;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_read_the_ufs_once() {
    let t = one_worker(HOUR).await;
    let data = pattern((3 * PAGE + 100) as usize, 1);
    let uri = t.write("a/file.bin", &data);
    t.faulty().set_read_delay(Some(Duration::from_millis(200)));
    let id = loam_core::file_id(&uri);
    let reqs = (0..32).map(|i| {
        let (t, uri, id) = (&t, uri.clone(), id.clone());
        async move {
            let page = i % 4;
            let r = t.get(0, &format!("/v1/file/{id}/page/{page}?ufsFullPath={uri}")).await;
            assert_eq!(r.status(), 200);
            (page, r.bytes().await.unwrap())
        }
    });
    let results = futures::future::join_all(reqs).await;
    for (page, body) in results {
        let lo = (page as u64 * PAGE) as usize;
        let hi = (lo + PAGE as usize).min(data.len());
        assert_eq!(&body[..], &data[lo..hi], "page {page}");
    }
    // 4 pages = one run of ufs_read_size (4 pages): one UFS read for 32 requests.
    assert_eq!(t.faulty().read_calls(), 1);
    t.faulty().set_read_delay(None);
    // Warm: no more UFS reads.
    assert_eq!(t.range(0, &uri, 0, data.len() as u64).await, data);
    assert_eq!(t.faulty().read_calls(), 1);
}

/// Cold reads of many files at once: the UFS runs that clients' reads lead stay within the worker's budget
/// (here one run's worth: `read_ahead_size` = `ufs_read_size`), so their buffers do not grow with the
/// number of readers; every reader still gets its bytes, and loads (their own budget) are not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cold_reads_of_many_files_read_the_ufs_within_the_run_budget() {
    let opts = loam_testsupport::cluster::Options { max_age: HOUR, read_ahead_size: 4 * PAGE, ..Default::default() };
    let t = loam_testsupport::cluster::Cluster::start(opts).await;
    let files: Vec<(String, Vec<u8>)> = (0..8)
        .map(|i| {
            let data = pattern((6 * PAGE + 17) as usize, i);
            (t.write(&format!("many/f{i}"), &data), data)
        })
        .collect();
    t.faulty().set_read_delay(Some(Duration::from_millis(50)));
    let t = &t;
    let reads = files.iter().map(|(uri, data)| async move {
        assert_eq!(&t.range(0, uri, 0, data.len() as u64).await, data, "{uri}");
    });
    futures::future::join_all(reads).await;
    assert_eq!(t.faulty().most_reads_at_once(), 1, "one run's worth of budget: one UFS read at a time");
    assert_eq!(t.faulty().read_calls(), 8 * 2, "each file in two runs, each read once");
    t.faulty().set_read_delay(None);
}

#[tokio::test]
async fn large_ranges_read_the_ufs_in_runs() {
    let t = one_worker(HOUR).await;
    let data = pattern((10 * PAGE + 7) as usize, 2);
    let uri = t.write("big.bin", &data);
    assert_eq!(t.range(0, &uri, 5, data.len() as u64).await, &data[5..]);
    // 11 pages in runs of 4: 3 reads, no more.
    assert_eq!(t.faulty().read_calls(), 3);
    assert_eq!(t.faulty().read_bytes(), data.len() as u64);
    assert_eq!(t.range(0, &uri, PAGE - 3, 2 * PAGE).await, &data[(PAGE - 3) as usize..(3 * PAGE - 3) as usize]);
    assert_eq!(t.faulty().read_calls(), 3);
}

#[tokio::test]
async fn changed_object_is_never_served_stale_after_max_age() {
    let t = one_worker(Duration::ZERO).await;
    let uri = t.write("f.txt", b"old contents");
    assert_eq!(t.range(0, &uri, 0, 100).await, b"old contents");
    std::thread::sleep(Duration::from_millis(20));
    t.write("f.txt", b"new, longer contents");
    assert_eq!(t.range(0, &uri, 0, 100).await, b"new, longer contents");
    // Same length, different bytes: the modification time tells.
    std::thread::sleep(Duration::from_millis(1100));
    t.write("f.txt", b"NEW, LONGER CONTENTS");
    assert_eq!(t.range(0, &uri, 0, 100).await, b"NEW, LONGER CONTENTS");
}

#[tokio::test]
async fn within_max_age_the_cache_is_trusted() {
    let t = one_worker(HOUR).await;
    let uri = t.write("f.txt", b"cached");
    assert_eq!(t.range(0, &uri, 0, 100).await, b"cached");
    let stats_before = t.faulty().read_calls();
    assert_eq!(t.range(0, &uri, 0, 100).await, b"cached");
    assert_eq!(t.faulty().read_calls(), stats_before);
}

#[tokio::test]
async fn deleted_object_is_not_found() {
    let t = one_worker(Duration::ZERO).await;
    let uri = t.write("gone.txt", b"here");
    assert_eq!(t.range(0, &uri, 0, 4).await, b"here");
    std::fs::remove_file(t.ufs_root().join("gone.txt")).unwrap();
    let id = loam_core::file_id(&uri);
    let r = t.get(0, &format!("/v1/range/{id}?ufsFullPath={uri}&offset=0&length=4")).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn corrupt_page_is_detected_and_reread() {
    let t = one_worker(HOUR).await;
    let data = pattern((2 * PAGE) as usize, 3);
    let uri = t.write("c.bin", &data);
    assert_eq!(t.range(0, &uri, 0, 2 * PAGE).await, data);
    assert_eq!(t.faulty().read_calls(), 1);
    // Restart so the memory tier is empty and the disk copy is what gets read.
    let mut t = t;
    t.restart_worker(0).await;
    let pages: Vec<_> = crate::files_under(&t.cache_dir(0))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "page"))
        .collect();
    assert_eq!(pages.len(), 2, "two page files on disk");
    for p in &pages {
        let mut raw = std::fs::read(p).unwrap();
        let n = raw.len();
        raw[n - 10] ^= 0xff;
        std::fs::write(p, raw).unwrap();
    }
    assert_eq!(t.range(0, &uri, 0, 2 * PAGE).await, data, "corrupt pages are never served");
    assert!(t.faulty().read_calls() >= 2, "re-read from the UFS");
    let metrics = t.get(0, "/metrics").await.text().await.unwrap();
    assert!(metrics.contains("loam_worker_corrupt_pages_total 2"), "{metrics}");
}

#[tokio::test]
async fn warm_restart_keeps_identity_and_cache() {
    let mut t = one_worker(HOUR).await;
    let data = pattern((3 * PAGE) as usize, 4);
    let uri = t.write("w.bin", &data);
    assert_eq!(t.range(0, &uri, 0, 3 * PAGE).await, data);
    let id = t.worker(0).id;
    let calls = t.faulty().read_calls();
    t.restart_worker(0).await;
    assert_eq!(t.worker(0).id, id, "same identity after restart");
    assert_eq!(t.range(0, &uri, 0, 3 * PAGE).await, data);
    assert_eq!(t.faulty().read_calls(), calls, "served from the warm cache");
    // And without ufsFullPath: the worker resolves the id from its own records.
    let fid = loam_core::file_id(&uri);
    let r = t.get(0, &format!("/v1/file/{fid}/page/1")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], &data[PAGE as usize..2 * PAGE as usize]);
}

/// A file replaced in the UFS between a page request's open and its read (what the UFS says by failing the
/// version-checked read with `Changed`): the page comes whole from the new version, not a `412` (the chaos
/// soak's `alluxio` reader failed on it during `ufs-rewrite`).
#[tokio::test]
async fn a_page_replaced_between_open_and_read_is_read_from_the_new_version() {
    let t = one_worker(HOUR).await;
    let uri = t.write("r.bin", b"0123456789");
    let id = loam_core::file_id(&uri);
    let changed = || loam_ufs::UfsError::Changed("replaced under the read".into());
    t.faulty().fail_next_reads(1, changed());
    let r = t.get(0, &format!("/v1/file/{id}/page/0?ufsFullPath={uri}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], b"0123456789");
}

#[tokio::test]
async fn ufs_errors_are_reported_and_not_cached() {
    let t = one_worker(HOUR).await;
    let uri = t.write("e.bin", b"0123456789");
    t.faulty().fail_next_reads(1, loam_ufs::UfsError::Unavailable("injected".into()));
    let id = loam_core::file_id(&uri);
    let r = t.get(0, &format!("/v1/range/{id}?ufsFullPath={uri}&offset=0&length=10")).await;
    assert_eq!(r.status(), 503, "an injected UFS outage is a retryable 503");
    assert_eq!(t.range(0, &uri, 0, 10).await, b"0123456789", "the next read succeeds");
}
