//! The internal task API the Coordinator drives: load (once from the UFS, skip when cached, metadata
//! only, per-file failures), free and verify, and refusal of another task version.

use crate::{PAGE, one_worker};
use loam_testsupport::cluster::Cluster;
use loam_testsupport::data::pattern;
use loam_ufs::UfsError;
use serde_json::{Value, json};
use std::time::Duration;

async fn task(t: &Cluster, op: &str, body: Value) -> (u16, Value) {
    let r = t.http.post(format!("{}/v1/internal/{op}", t.worker(0).http_base())).json(&body).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn load_free_and_verify() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let a = t.write("a", &pattern(5 * PAGE as usize + 7, 1));
    let b = t.write("b", &pattern(100, 2));
    let missing = format!("{}/nope", a.rsplit_once('/').unwrap().0);
    t.faulty().fail_matching("/b", UfsError::Unavailable("injected".into()));
    let files = json!([{"ufsUri": a}, {"ufsUri": b}, {"ufsUri": missing}]);
    let (s, v) = task(&t, "load", json!({"version": 1, "files": files, "bandwidth": 0})).await;
    assert_eq!(s, 200, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!((r[0]["ok"].as_bool(), r[0]["bytes"].as_u64()), (Some(true), Some(5 * PAGE + 7)));
    assert!(r[1]["error"].as_str().unwrap().contains("injected"));
    assert_eq!(r[2]["ok"], false);
    let reads = t.faulty().read_calls();
    let (_, v) = task(&t, "load", json!({"version": 1, "files": [{"ufsUri": a, "skipIfExists": true}]})).await;
    assert_eq!(v["results"][0]["skipped"], true);
    let (_, v) = task(&t, "load", json!({"version": 1, "files": [{"ufsUri": a}]})).await;
    assert_eq!(v["results"][0]["skipped"], false);
    assert_eq!(t.faulty().read_calls(), reads, "cached pages are not read again");
    let (_, v) = task(&t, "verify", json!({"version": 1, "uris": [a, b]})).await;
    assert_eq!((v["results"][0]["ok"].as_bool(), v["results"][1]["ok"].as_bool()), (Some(true), Some(false)));
    let (_, v) = task(&t, "free", json!({"version": 1, "uris": [a, b]})).await;
    assert_eq!(v["results"][0]["bytes"], 5 * PAGE + 7);
    assert_eq!(v["results"][1]["skipped"], true);
    let (_, v) = task(&t, "verify", json!({"version": 1, "uris": [a]})).await;
    assert_eq!(v["results"][0]["ok"], false);
    t.faulty().clear_faults();
    let (_, v) = task(&t, "load", json!({"version": 1, "files": [{"ufsUri": b, "metadataOnly": true}]})).await;
    assert_eq!(v["results"][0]["ok"], true);
    assert_eq!(t.faulty().reads_of(&b).calls, 0, "metadata only reads no data");
    let (s, _) = task(&t, "load", json!({"version": 2, "files": []})).await;
    assert_eq!(s, 400);
    let (s, _) = task(&t, "free", json!({"uris": []})).await;
    assert_eq!(s, 400);
}

/// A load on a cache directory whose file system is smaller than `--cache-size` (a 2 MiB tmpfs under a
/// 4 MiB cache): a file larger than the room there is fails with why, so the job is not `SUCCEEDED`; the
/// worker evicts instead of failing writes, and its metrics agree with the disk. Needs root to mount.
#[tokio::test]
async fn a_load_larger_than_the_cache_disk_counts_uncached_files_as_failed() {
    load_onto_a_small_disk(4 * PAGE).await;
}

/// The same with a memory tier that holds the large file: pages kept only in memory (which evicts them
/// silently, counting on a disk copy) are not cached, so the file still fails. The chaos soak found loads
/// `SUCCEEDED` on a full disk this way, their files gone from the worker a second later.
#[tokio::test]
async fn pages_kept_only_in_memory_because_the_disk_is_full_are_not_loaded() {
    load_onto_a_small_disk(64 * PAGE).await;
}

async fn load_onto_a_small_disk(memory_size: u64) {
    let root = tempfile::tempdir().unwrap();
    // Worker 0's cache directory (`<data dir>/cache`) is the tmpfs; the UFS stays on the larger disk.
    let Some((cache, _unmount)) = crate::tmpfs_cache(root.path(), "2m") else { return };
    let opts = loam_testsupport::cluster::Options {
        coordinator: true,
        dir: Some(root.path().to_path_buf()),
        memory_size,
        ..Default::default()
    };
    let c = Cluster::start(opts).await;
    for i in 0..12 {
        c.write(&format!("big-load/small-{i}"), &pattern(2 * PAGE as usize, i));
    }
    let huge = c.write("big-load/huge", &pattern(40 * PAGE as usize, 99));
    let body = r#"{"paths": ["/data/big-load"], "options": {"sync": true}}"#;
    let (s, v) = c.call("POST", "/api/v1/load", Some(body)).await;
    assert_eq!(s, 200, "{v}");
    assert_ne!(v["state"], "SUCCEEDED", "a file could not be cached: {v}");
    assert!(v["failedFiles"].as_u64().unwrap() >= 1, "{v}");
    let why = v["errorMessage"].as_object().unwrap().iter().find(|(path, _)| path.ends_with("/huge"));
    let (_, why) = why.unwrap_or_else(|| panic!("the huge file failed: {v} ({huge})"));
    assert!(why.as_str().unwrap().contains("could not be cached"), "{why}");
    let w = c.worker(0);
    let usage = w.state.pages.usage();
    assert!(usage.disk_bytes < 2 << 20, "within the tmpfs: {usage:?}");
    assert_eq!(c.cache_dir(0), cache);
    let on_disk: u64 = crate::files_under(&cache)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "page"))
        // The data length stands in the page file's header (bytes 32..40, little-endian).
        .map(|p| u64::from_le_bytes(std::fs::read(p).unwrap()[32..40].try_into().unwrap()))
        .sum();
    assert_eq!(on_disk, usage.disk_bytes, "the cached-bytes metric agrees with the disk");
    let metrics = w.state.metrics.page_store.clone();
    let dir = loam_page_store::metrics::DirLabel { dir: c.cache_dir(0).display().to_string() };
    assert_eq!(metrics.dir_healthy.get_or_create(&dir).get(), 1, "a full disk is not a failed one");
}

/// `GET /v1/internal/cached_files` a page at a time: every cached file once, in URI order, over pages of
/// `limit`, each page going on from the last one's `next`; without `limit`, all at once; a bad `limit` is
/// a 400.
#[tokio::test]
async fn the_cached_files_listing_walks_pages_in_uri_order() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let mut uris: Vec<String> = ["e", "a", "c", "b", "d"].iter().map(|n| t.write(n, &pattern(100, 1))).collect();
    let files: Vec<Value> = uris.iter().map(|u| json!({"ufsUri": u})).collect();
    let (s, v) = task(&t, "load", json!({"version": 1, "files": files})).await;
    assert_eq!(s, 200, "{v}");
    uris.sort();
    let list = |query: String| {
        let url = format!("{}/v1/internal/cached_files{query}", t.worker(0).http_base());
        let http = t.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let strings = |v: &Value| -> Vec<String> {
        v["files"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_string()).collect()
    };
    let (s, all) = list(String::new()).await;
    assert_eq!((s, strings(&all), all.get("next")), (200, uris.clone(), None));
    let (mut walked, mut query, mut pages) = (Vec::new(), "?limit=2".to_string(), 0);
    loop {
        let (s, page) = list(query.clone()).await;
        assert_eq!(s, 200, "{page}");
        assert!(strings(&page).len() <= 2, "{page}");
        walked.extend(strings(&page));
        pages += 1;
        match page["next"].as_str() {
            Some(next) => {
                query = format!("?limit=2&after={}", loam_client::reader::encode_query(next));
            }
            None => break,
        }
    }
    assert_eq!((walked, pages), (uris.clone(), 3));
    // The listing reached its end, so its snapshot is gone: a page asked now sees a file cached since.
    let later = t.write("f", &pattern(100, 2));
    let (s, v) = task(&t, "load", json!({"version": 1, "files": [{"ufsUri": later}]})).await;
    assert_eq!(s, 200, "{v}");
    let after_e = format!("?limit=2&after={}", loam_client::reader::encode_query(&uris[4]));
    let (s, page) = list(after_e).await;
    assert_eq!((s, strings(&page)), (200, vec![later]));
    for bad in ["0", "abc", "100001", "-1"] {
        let (s, v) = list(format!("?limit={bad}")).await;
        assert_eq!(s, 400, "limit={bad}: {v}");
        assert!(v["status"].as_str().unwrap().contains("limit"), "{v}");
    }
}
