//! Short-circuit reads through a real FUSE mount of a real in-process worker on this host: a cached file
//! is read from the worker's page files (the mount's short-circuit counters grow, the worker serves no
//! `/v1/range`), and every read's bytes are the UFS file's, whatever happens to a page file (corrupted,
//! evicted) or to the file (rewritten); with `short_circuit` off, reads go over HTTP. Each read below is
//! through a fresh mount, so the kernel's page cache of an earlier mount serves nothing.

use crate::mount::{Fuse, blocking, cluster_with, require_fuse};
use loam_fuse::MountedFs;
use loam_testsupport::cluster::Options;
use loam_testsupport::wait;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LEN: usize = (3 << 20) + 12_345;

/// The value of the sample `series` in OpenMetrics `text` (the sum when several lines start with it), 0
/// when absent.
fn sum(text: &str, series: &str) -> f64 {
    text.lines().filter_map(|l| l.strip_prefix(series)?.split_whitespace().last()?.parse::<f64>().ok()).sum()
}

fn sc_reads(m: &MountedFs) -> f64 {
    sum(&m.metrics().encode().unwrap(), "loam_fuse_short_circuit_reads_total ")
}

fn fallbacks(m: &MountedFs, reason: &str) -> f64 {
    sum(&m.metrics().encode().unwrap(), &format!("loam_fuse_short_circuit_fallbacks_total{{reason=\"{reason}\"}}"))
}

/// `/v1/range` requests worker 0 has answered.
async fn worker_ranges(c: &Fuse) -> f64 {
    let text = c.cluster.get(0, "/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("loam_worker_http_request_duration_seconds_count{") && l.contains("/v1/range"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// The page files of worker 0.
fn page_files(c: &Fuse) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "page") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&c.cluster.cache_dir(0), &mut out);
    out.sort();
    out
}

/// One worker with the UFS file `f`; a first mount reads it (over HTTP) and the worker has written its
/// four page files.
async fn cached(max_age: Duration) -> (Fuse, Vec<u8>) {
    require_fuse();
    let opts = Options { workers: 1, max_age, ..Options::worker_defaults(16 << 20, 256 << 20) };
    let c = cluster_with(opts).await;
    let bytes = c.write("f", LEN, 7);
    let m = c.mount();
    assert!(read(&m).await == bytes, "first read");
    unmount(m).await;
    wait::until("the worker has written the file's 4 page files", Duration::from_secs(30), || {
        page_files(&c).len() == 4
    })
    .await;
    (c, bytes)
}

/// The UFS file's modification time in ms.
fn modified_ms(c: &Fuse) -> i64 {
    let md = std::fs::metadata(c.cluster.ufs_root().join("f")).unwrap();
    md.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn read(m: &MountedFs) -> Vec<u8> {
    let path = m.mount_point().join("data/f");
    blocking(move || std::fs::read(path).unwrap()).await
}

async fn unmount(m: MountedFs) {
    blocking(move || m.unmount().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cached_file_is_read_from_the_local_workers_page_files_not_over_http() {
    let (c, bytes) = cached(Duration::from_secs(60)).await;
    let before = worker_ranges(&c).await;
    let m = c.mount();
    assert!(read(&m).await == bytes, "short-circuit bytes are the file's");
    let text = m.metrics().encode().unwrap();
    assert!(sc_reads(&m) >= 1.0, "{text}");
    assert_eq!(sum(&text, "loam_fuse_short_circuit_read_bytes_total "), LEN as f64, "every byte: {text}");
    assert_eq!(worker_ranges(&c).await, before, "the worker served no range");
    unmount(m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_page_file_is_never_returned_the_read_goes_over_http() {
    let (c, bytes) = cached(Duration::from_secs(60)).await;
    let page = &page_files(&c)[1];
    let mut raw = std::fs::read(page).unwrap();
    let at = raw.len() / 2;
    raw[at] ^= 0x20;
    std::fs::write(page, &raw).unwrap();
    let before = worker_ranges(&c).await;
    let m = c.mount();
    assert!(read(&m).await == bytes, "the bytes are the file's, not the corrupt page's");
    assert!(fallbacks(&m, "corrupt") >= 1.0, "{}", m.metrics().encode().unwrap());
    assert!(sc_reads(&m) >= 1.0, "the sound pages were read locally");
    assert!(worker_ranges(&c).await > before, "the corrupt page's reads went to the worker");
    unmount(m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_evicted_page_file_is_read_over_http() {
    let (c, bytes) = cached(Duration::from_secs(60)).await;
    std::fs::remove_file(&page_files(&c)[2]).unwrap();
    let before = worker_ranges(&c).await;
    let m = c.mount();
    assert!(read(&m).await == bytes);
    assert!(fallbacks(&m, "missing") >= 1.0, "{}", m.metrics().encode().unwrap());
    assert!(worker_ranges(&c).await > before, "the missing page's reads went to the worker");
    unmount(m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rewritten_file_reads_its_new_version_never_the_cached_pages() {
    // Workers check the UFS on every read, as in the version tests.
    let (c, _) = cached(Duration::ZERO).await;
    // The same length, other bytes: only the version tag (its modification time) tells them apart.
    std::thread::sleep(Duration::from_millis(20));
    let new = c.write("f", LEN, 8);
    let m = c.mount();
    assert!(read(&m).await == new, "the new version, whole");
    // The worker held the old version (`version`), or had dropped it already (`not_cached`, `missing`).
    let text = m.metrics().encode().unwrap();
    assert!(sum(&text, "loam_fuse_short_circuit_fallbacks_total") >= 1.0, "{text}");
    unmount(m).await;
    // The new version, cached under a new generation, is read locally in turn.
    let id = loam_core::file_id(&c.cluster.uri("f"));
    let new_tag = loam_core::version::version_tag(LEN as u64, None, Some(modified_ms(&c)));
    wait::until("the new version's page files", Duration::from_secs(30), || {
        let Some((rec, generation)) = c.cluster.worker(0).state.pages.file_version(&id) else { return false };
        let current = loam_core::version::version_tag(rec.length, rec.etag.as_deref(), rec.modified_ms) == new_tag;
        let files = page_files(&c);
        let of_it = |p: &PathBuf| p.to_string_lossy().contains(&format!(".{generation}."));
        current && files.len() == 4 && files.iter().all(of_it)
    })
    .await;
    let m = c.mount();
    assert!(read(&m).await == new);
    assert!(sc_reads(&m) >= 1.0, "{}", m.metrics().encode().unwrap());
    unmount(m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_short_circuit_off_reads_go_over_http() {
    let (c, bytes) = cached(Duration::from_secs(60)).await;
    let before = worker_ranges(&c).await;
    let m = c.mount_with(|cfg| cfg.short_circuit = false);
    assert!(read(&m).await == bytes);
    let text = m.metrics().encode().unwrap();
    assert_eq!(sc_reads(&m), 0.0, "{text}");
    assert_eq!(sum(&text, "loam_fuse_short_circuit_fallbacks_total"), 0.0, "not even tried: {text}");
    assert!(worker_ranges(&c).await > before, "the worker served the reads");
    unmount(m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_short_circuit_endpoint_answers_a_cached_files_version_and_refuses_bad_paths() {
    let (c, bytes) = cached(Duration::from_secs(60)).await;
    let uri = c.cluster.uri("f");
    let q = |p: &str| format!("/v1/short-circuit?path={}", loam_client::reader::encode_query(p));
    let r = c.cluster.get(0, &q(&uri)).await;
    assert_eq!(r.status(), 200);
    let info: loam_core::worker_api::ShortCircuitInfo = r.json().await.unwrap();
    let file = info.file.expect("cached");
    assert_eq!((file.length, file.page_size, info.layout.as_str()), (bytes.len() as u64, 1 << 20, "v3"));
    assert_eq!(file.file_id, loam_core::file_id(&uri));
    assert_eq!(info.dirs, [c.cluster.cache_dir(0).to_str().unwrap()]);
    let r = c.cluster.get(0, &q(&c.cluster.uri("nope"))).await;
    assert_eq!(r.status(), 200);
    assert!(r.json::<loam_core::worker_api::ShortCircuitInfo>().await.unwrap().file.is_none(), "not cached");
    assert_eq!(c.cluster.get(0, "/v1/short-circuit").await.status(), 400, "no path");
    assert_eq!(c.cluster.get(0, &q("/elsewhere/f")).await.status(), 404, "under no mount");
}

fn session_reads(m: &MountedFs) -> f64 {
    sum(&m.metrics().encode().unwrap(), "loam_fuse_short_circuit_session_reads_total ")
}

/// `n` reads of 4 KiB at spread offsets of the mounted file, each through its own `pread`.
async fn small_reads(m: &MountedFs, n: usize) -> Vec<(usize, Vec<u8>)> {
    let path = m.mount_point().join("data/f");
    blocking(move || {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open(path).unwrap();
        (0..n)
            .map(|i| {
                let at = (i * 777_777) % (LEN - 4096);
                let mut buf = vec![0u8; 4096];
                f.read_exact_at(&mut buf, at as u64).unwrap();
                (at, buf)
            })
            .collect()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn small_reads_of_cached_pages_are_answered_on_the_session_thread_and_the_others_wait_elsewhere() {
    let (c, bytes) = cached(Duration::from_secs(60)).await;
    let m = c.mount();
    // The first read of an open asks the worker for its local copy (on the runtime); the rest are
    // page-cache hits of the page files, answered where the kernel's request arrived.
    for (at, got) in small_reads(&m, 16).await {
        assert!(got == bytes[at..at + 4096], "bytes at {at}");
    }
    let text = m.metrics().encode().unwrap();
    assert!(session_reads(&m) >= 8.0, "{text}");
    assert!(sc_reads(&m) >= 16.0, "{text}");
    unmount(m).await;

    // Page files out of the page cache: a read that would wait on the disk is not answered on the session
    // thread, and still short-circuit (on a thread that may wait). The kernel may keep a page the advice
    // names (seen once in a whole-suite run), so the advice and the reads are tried up to 3 times.
    let mut tries = 0;
    loop {
        tries += 1;
        for p in page_files(&c) {
            let f = std::fs::File::open(&p).unwrap();
            f.sync_all().unwrap();
            rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        }
        let m = c.mount();
        for (at, got) in small_reads(&m, 4).await {
            assert!(got == bytes[at..at + 4096], "bytes at {at}");
        }
        let text = m.metrics().encode().unwrap();
        assert!(sc_reads(&m) >= 4.0, "{text}");
        let on_session = session_reads(&m);
        unmount(m).await;
        // Every block these reads touch was out of the page cache, so none was answered on the session thread.
        if on_session == 0.0 || tries == 3 {
            assert_eq!(on_session, 0.0, "reads that would wait were handed off: {text}");
            break;
        }
    }
}
