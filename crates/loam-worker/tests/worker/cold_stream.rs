//! Cold reads stream from the UFS to the client as the bytes arrive (`read_through::run`): the first page
//! of a response goes out while the UFS still holds the rest of its run back (`FaultyUfs`'s piece gate:
//! an ordering, not a clock); the pages end up cached; a full cache disk does not fail the response;
//! readers of one run share one UFS read, a late one included; a version change mid-stream ends the
//! response without a byte of the new version.

use crate::PAGE;
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::pattern;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);
/// Runs of 4 pages (the test workers' `ufs_read_size`).
const RUN: u64 = 4 * PAGE;
/// What a test waits, at most, for something that must happen before it goes on (a guard against a hang,
/// not a timing assertion: on a streaming worker it happens at once).
const GUARD: Duration = Duration::from_secs(60);

/// One worker without read-ahead (each response asks for the page it sends next, nothing more), so that a
/// test knows which UFS reads are in flight.
async fn no_read_ahead() -> Cluster {
    Cluster::start(Options { max_age: HOUR, read_ahead_size: 0, ..Options::default() }).await
}

fn range_path(uri: &str, offset: u64, len: u64) -> String {
    let id = loam_core::file_id(uri);
    format!("/v1/range/{id}?ufsFullPath={uri}&offset={offset}&length={len}")
}

/// Reads `r`'s body until it holds at least `n` bytes (or ends), failing if that takes longer than the guard.
async fn at_least(r: &mut reqwest::Response, body: &mut Vec<u8>, n: usize, what: &str) {
    tokio::time::timeout(GUARD, async {
        while body.len() < n {
            match r.chunk().await.expect("a body chunk") {
                Some(c) => body.extend_from_slice(&c),
                None => break,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: {} of {n} bytes arrived", body.len()));
}

/// Reads the rest of `r`'s body; `Err` with what arrived when the body ended in an error.
async fn rest(mut r: reqwest::Response, mut body: Vec<u8>) -> Result<Vec<u8>, Vec<u8>> {
    loop {
        match r.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            Ok(None) => return Ok(body),
            Err(_) => return Err(body),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_page_of_a_cold_read_reaches_the_client_before_the_ufs_sent_its_run() {
    let t = no_read_ahead().await;
    let data = pattern((10 * PAGE + 9) as usize, 21);
    let uri = t.write("cold/first.bin", &data);
    t.faulty().hold_pieces_after(1);
    let mut r = t.get(0, &range_path(&uri, 0, data.len() as u64)).await;
    assert_eq!(r.status(), 200);
    let mut body = Vec::new();
    at_least(&mut r, &mut body, PAGE as usize, "the first page while the UFS holds the rest of its run").await;
    assert_eq!(&body[..PAGE as usize], &data[..PAGE as usize]);
    assert_eq!(t.faulty().read_bytes(), PAGE, "the UFS has sent one page of the first run, no more");
    t.faulty().release_pieces();
    let body = rest(r, body).await.expect("the whole body");
    assert_eq!(body, data);
    assert_eq!(t.faulty().read_calls(), 3, "11 pages in runs of 4: one UFS read each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_streamed_cold_read_leaves_its_pages_cached() {
    let t = Cluster::start(Options { max_age: HOUR, ..Options::default() }).await;
    let data = pattern((9 * PAGE + 1) as usize, 22);
    let uri = t.write("cold/cached.bin", &data);
    assert_eq!(t.range(0, &uri, 0, data.len() as u64).await, data);
    assert_eq!(t.faulty().read_calls(), 3);
    // A read right after: from the store, or from the runs still being stored; never the UFS again.
    assert_eq!(t.range(0, &uri, 0, data.len() as u64).await, data);
    assert_eq!(t.range(0, &uri, PAGE + 5, 3 * PAGE).await, &data[(PAGE + 5) as usize..(4 * PAGE + 5) as usize]);
    assert_eq!(t.faulty().read_calls(), 3, "the second read did not read the UFS");
    let pages = t.worker(0).state.pages.clone();
    let id = loam_core::file_id(&uri);
    loam_testsupport::wait::until("every page is stored", GUARD, || (0..10).all(|i| pages.has_page(&id, i))).await;
}

/// The cache directory is a 1 MiB tmpfs and the memory tier 4 pages: most pages of a 40-page file cannot
/// be kept. Every response is whole anyway. Needs root to mount (skipped otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_cache_disk_does_not_fail_a_cold_response() {
    let root = tempfile::tempdir().unwrap();
    let Some((cache, _unmount)) = crate::tmpfs_cache(root.path(), "1m") else { return };
    let opts = Options { max_age: HOUR, dir: Some(root.path().to_path_buf()), ..Options::default() };
    let t = Cluster::start(opts).await;
    assert_eq!(t.cache_dir(0), cache);
    let data = pattern((40 * PAGE + 3) as usize, 23);
    let uri = t.write("cold/full.bin", &data);
    assert_eq!(t.range(0, &uri, 0, data.len() as u64).await, data, "a full cache disk: the response is whole");
    assert_eq!(t.range(0, &uri, 0, data.len() as u64).await, data, "and again, partly from the UFS");
    let usage = t.worker(0).state.pages.usage();
    assert!(usage.disk_bytes <= 1 << 20, "within the tmpfs: {usage:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_that_joins_a_run_mid_stream_gets_the_same_bytes_from_the_same_read() {
    let t = no_read_ahead().await;
    let data = pattern((6 * PAGE + 40) as usize, 24);
    let uri = t.write("cold/shared.bin", &data);
    t.faulty().hold_pieces_after(1);
    let mut a = t.get(0, &range_path(&uri, 0, data.len() as u64)).await;
    let mut body_a = Vec::new();
    at_least(&mut a, &mut body_a, PAGE as usize, "the first reader's first page").await;
    // The first run has sent one page and waits: a second reader of that run joins it mid-stream.
    let mut b = t.get(0, &range_path(&uri, 10, RUN - 10)).await;
    let mut body_b = Vec::new();
    at_least(&mut b, &mut body_b, (PAGE - 10) as usize, "the joining reader's first page").await;
    assert_eq!(t.faulty().read_calls(), 1, "the second reader joined the run in flight, no read of its own");
    assert!(t.worker(0).state.metrics.coalesced_reads.get() >= 1);
    t.faulty().release_pieces();
    let (body_a, body_b) = (rest(a, body_a).await.unwrap(), rest(b, body_b).await.unwrap());
    assert_eq!(body_a, data);
    assert_eq!(&body_b[..], &data[10..RUN as usize], "the same bytes as the first reader's");
    assert_eq!(t.faulty().read_calls(), 2, "7 pages in runs of 4: two UFS reads for both readers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_version_change_mid_stream_ends_the_response_without_new_bytes() {
    let t = no_read_ahead().await;
    let old = pattern((8 * PAGE) as usize, 25);
    let uri = t.write("cold/changing.bin", &old);
    t.faulty().hold_pieces_after(1);
    let mut r = t.get(0, &range_path(&uri, 0, old.len() as u64)).await;
    assert_eq!(r.status(), 200);
    let mut body = Vec::new();
    at_least(&mut r, &mut body, PAGE as usize, "the first page").await;
    // Rewritten in place (the same inode, so the read's descriptor sees it): another version.
    std::thread::sleep(Duration::from_millis(20));
    let new = pattern(old.len(), 26);
    std::fs::write(t.ufs_root().join("cold/changing.bin"), &new).unwrap();
    t.faulty().release_pieces();
    let body = rest(r, body).await.expect_err("the response ends in an error, not as if it were whole");
    assert!(body.len() < old.len(), "cut short: {} bytes", body.len());
    assert_eq!(&body[..], &old[..body.len()], "only bytes of the version the response began with");
    // The next read opens the new version.
    assert_eq!(t.range(0, &uri, 0, new.len() as u64).await, new);
}
