//! The write endpoints over real HTTP, against a cluster of real workers on one embedded store and one
//! `file://` UFS: each endpoint's success and errors, and cache coherence — after a write through worker
//! A, reads through A and through B return the new bytes (or 404) although both cached the old ones and
//! trust them for an hour.

use crate::PAGE;
use bytes::Bytes;
use loam_core::WorkerId;
use loam_core::membership::{DEFAULT_CLUSTER_NAME, WorkerRecord};
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::pattern;
use loam_ufs::UfsError;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

/// `n` workers sharing one store and one UFS (mounted at `/data`), 16 pages of memory each.
async fn cluster(n: usize) -> Cluster {
    Cluster::start(Options { workers: n, memory_size: 16 * PAGE, ..Options::default() }).await
}

fn on_disk(c: &Cluster, rel: &str) -> Option<Vec<u8>> {
    std::fs::read(c.ufs_root().join(rel)).ok()
}

/// `GET /v1/range` of a whole file through worker `w`: its status and bytes.
async fn read(c: &Cluster, w: usize, uri: &str) -> (u16, Vec<u8>) {
    let id = loam_core::file_id(uri);
    let r = c.get(w, &format!("/v1/range/{id}?ufsFullPath={uri}&offset=0&length=100000000")).await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// Reads `uri` through every worker, so each caches it.
async fn cache_everywhere(c: &Cluster, uri: &str, expect: &[u8]) {
    for w in 0..c.workers.len() {
        assert_eq!(read(c, w, uri).await, (200, expect.to_vec()), "worker {w} caches {uri}");
        let id = loam_core::file_id(uri);
        assert!(c.worker(w).state.rt.pages().file(&id).is_some(), "worker {w} holds {uri}");
    }
}

/// `POST <path>?<query>` through worker `w`: status and JSON body.
async fn post(c: &Cluster, w: usize, path_and_query: &str, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
    let url = format!("{}{path_and_query}", c.worker(w).http_base());
    let r = c.http.post(url).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// `POST` of a JSON body, declared `application/json` (as peers send it).
async fn post_json(c: &Cluster, w: usize, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let r = c.http.post(format!("{}{path}", c.worker(w).http_base())).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

async fn op(c: &Cluster, w: usize, op: &str, uri: &str, extra: &str) -> (u16, serde_json::Value) {
    let id = loam_core::file_id(uri);
    post(c, w, &format!("/v1/{op}/{id}?ufsFullPath={uri}{extra}"), Vec::new()).await
}

async fn two_paths(c: &Cluster, w: usize, op: &str, src: &str, dst: &str) -> (u16, serde_json::Value) {
    let id = loam_core::file_id(src);
    post(c, w, &format!("/v1/{op}/{id}?srcPath={src}&dstPath={dst}"), Vec::new()).await
}

fn success() -> (u16, serde_json::Value) {
    (200, serde_json::json!({"success": true}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_streams_a_large_body_to_the_ufs() {
    let c = cluster(1).await;
    let uri = c.uri("up/big.bin");
    // Larger than axum's default 2 MB body limit, sent chunked in uneven pieces.
    let data = pattern(5 * 1024 * 1024 + 17, 3);
    let parts: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(300_001).map(|p| Ok(Bytes::copy_from_slice(p))).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(parts));
    let id = loam_core::file_id(&uri);
    assert_eq!(post(&c, 0, &format!("/v1/chunk/{id}?ufsFullPath={uri}&chunkSize=1048576"), body).await, success());
    assert!(on_disk(&c, "up/big.bin").as_deref() == Some(&data[..]), "the UFS holds the body byte-exact");
    assert_eq!(read(&c, 0, &uri).await, (200, data));
    // A plain (not chunked) body, and an empty one.
    assert_eq!(post(&c, 0, &format!("/v1/chunk/{id}?ufsFullPath={uri}"), b"small".to_vec()).await, success());
    assert_eq!(read(&c, 0, &uri).await, (200, b"small".to_vec()), "the old pages are not served");
    assert_eq!(post(&c, 0, &format!("/v1/chunk/{id}?ufsFullPath={uri}"), Vec::new()).await, success());
    assert_eq!(on_disk(&c, "up/big.bin"), Some(Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_through_one_worker_is_seen_by_all() {
    let c = cluster(2).await;
    let old = pattern(3 * PAGE as usize, 1);
    let uri = c.write("f.bin", &old);
    cache_everywhere(&c, &uri, &old).await;
    // Same length, so nothing but the invalidation can tell the versions apart within max_age.
    let new = pattern(3 * PAGE as usize, 2);
    let id = loam_core::file_id(&uri);
    assert_eq!(post(&c, 0, &format!("/v1/chunk/{id}?ufsFullPath={uri}"), new.clone()).await, success());
    assert_eq!(read(&c, 0, &uri).await, (200, new.clone()), "the writer re-reads the new bytes");
    assert_eq!(read(&c, 1, &uri).await, (200, new), "the peer re-reads the new bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_drops_files_and_trees_everywhere() {
    let c = cluster(2).await;
    let f = c.write("gone.bin", b"bye");
    let (a, b) = (c.write("tree/a", b"a"), c.write("tree/sub/b", b"bb"));
    for (uri, bytes) in [(&f, &b"bye"[..]), (&a, b"a"), (&b, b"bb")] {
        cache_everywhere(&c, uri, bytes).await;
    }
    assert_eq!(op(&c, 0, "rm", &f, "").await, success());
    assert_eq!(op(&c, 1, "rm", &f, "").await.0, 404, "already gone");
    let tree = c.uri("tree");
    let (status, body) = op(&c, 0, "rm", &tree, "&recursive=False").await;
    assert_eq!(status, 400, "a non-empty directory needs recursive: {body}");
    assert_eq!(op(&c, 0, "rm", &tree, "&recursive=maybe").await.0, 400);
    assert_eq!(op(&c, 0, "rm", &tree, "&recursive=True").await, success());
    assert!(on_disk(&c, "tree/a").is_none() && !c.ufs_root().join("tree").exists());
    for w in 0..2 {
        for uri in [&f, &a, &b] {
            assert_eq!(read(&c, w, uri).await.0, 404, "{uri} through worker {w}");
        }
    }
    // An empty directory goes without recursive.
    std::fs::create_dir(c.ufs_root().join("empty")).unwrap();
    assert_eq!(op(&c, 0, "rm", &c.uri("empty"), "").await, success());
    assert!(!c.ufs_root().join("empty").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mv_and_copy_are_seen_by_all() {
    let c = cluster(2).await;
    let (src, dst) = (c.write("m/src", b"new bytes"), c.write("m/dst", b"old bytes"));
    cache_everywhere(&c, &src, b"new bytes").await;
    cache_everywhere(&c, &dst, b"old bytes").await;
    assert_eq!(two_paths(&c, 0, "mv", &src, &dst).await, success());
    for w in 0..2 {
        assert_eq!(read(&c, w, &src).await.0, 404, "the source is gone through worker {w}");
        assert_eq!(read(&c, w, &dst).await, (200, b"new bytes".to_vec()), "the target is new through worker {w}");
    }
    let copy_src = c.write("m/other", b"copied");
    assert_eq!(two_paths(&c, 1, "copy", &copy_src, &dst).await, success());
    for w in 0..2 {
        assert_eq!(read(&c, w, &dst).await, (200, b"copied".to_vec()), "the copy through worker {w}");
    }
    assert_eq!(on_disk(&c, "m/other").as_deref(), Some(&b"copied"[..]), "a copy keeps its source");
    // A directory moves whole, and cached files under its old name are dropped.
    let (x, y) = (c.write("d1/x", b"x"), c.write("d1/deep/y", b"y"));
    cache_everywhere(&c, &x, b"x").await;
    cache_everywhere(&c, &y, b"y").await;
    assert_eq!(two_paths(&c, 0, "mv", &c.uri("d1"), &c.uri("d2")).await, success());
    for w in 0..2 {
        assert_eq!(read(&c, w, &x).await.0, 404);
        assert_eq!(read(&c, w, &c.uri("d2/deep/y")).await, (200, b"y".to_vec()));
    }
    assert!(!c.ufs_root().join("d1").exists(), "nothing is left of the source");
    // Errors: a missing source, onto itself, a directory into itself, a directory copy.
    assert_eq!(two_paths(&c, 0, "mv", &c.uri("nope"), &c.uri("x")).await.0, 404);
    assert_eq!(two_paths(&c, 0, "copy", &c.uri("nope"), &c.uri("x")).await.0, 404);
    assert_eq!(two_paths(&c, 0, "mv", &dst, &dst).await.0, 400);
    assert_eq!(two_paths(&c, 0, "mv", &c.uri("d2"), &c.uri("d2/in")).await.0, 400);
    assert_eq!(two_paths(&c, 0, "copy", &c.uri("d2"), &c.uri("d3")).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mkdir_and_touch() {
    let c = cluster(1).await;
    let dir = c.uri("made/inner");
    assert_eq!(op(&c, 0, "mkdir", &dir, "").await, success());
    assert!(c.ufs_root().join("made/inner").is_dir());
    assert_eq!(op(&c, 0, "mkdir", &dir, "").await, success(), "mkdir is idempotent");
    let file = c.write("plain", b"content");
    assert_eq!(op(&c, 0, "mkdir", &file, "").await.0, 409, "a file is in the way");
    assert_eq!(op(&c, 0, "mkdir", &c.uri("plain/below"), "").await.0, 409, "a file is a parent");
    let under = c.uri("plain/below/f");
    let path = format!("/v1/chunk/{}?ufsFullPath={under}", loam_core::file_id(&under));
    let (status, body) = post(&c, 0, &path, b"x".to_vec()).await;
    assert_eq!(status, 409, "a write under a file: {body}");
    assert_eq!(on_disk(&c, "plain").as_deref(), Some(&b"content"[..]), "the file in the way is untouched");
    let fresh = c.uri("made/touched");
    assert_eq!(op(&c, 0, "touch", &fresh, "").await, success());
    assert_eq!(on_disk(&c, "made/touched"), Some(Vec::new()));
    assert_eq!(op(&c, 0, "touch", &file, "").await, success());
    assert_eq!(on_disk(&c, "plain").as_deref(), Some(&b"content"[..]), "touch keeps an existing file");
    assert_eq!(op(&c, 0, "touch", &dir, "").await.0, 400, "a directory is no file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_ufs_failures() {
    let c = cluster(1).await;
    let uri = c.write("e/f", b"f");
    let id = loam_core::file_id(&uri);
    let other = loam_core::file_id("s3://elsewhere/x");
    for (path, why) in [
        (format!("/v1/mkdir/{id}"), "no ufsFullPath"),
        (format!("/v1/rm/{id}?recursive=True"), "no ufsFullPath"),
        (format!("/v1/touch/{other}?ufsFullPath={uri}"), "the id is another file's"),
        (format!("/v1/chunk/{id}?ufsFullPath={uri}&chunkSize=0"), "chunkSize 0"),
        (format!("/v1/mv/{id}?srcPath={uri}"), "no dstPath"),
        (format!("/v1/copy/{id}?dstPath={uri}"), "no srcPath"),
        (format!("/v1/mv/not-an-id?srcPath={uri}&dstPath={uri}2"), "a malformed id"),
        ("/v1/internal/invalidate".to_string(), "an empty invalidation body"),
    ] {
        let (status, body) = post(&c, 0, &path, Vec::new()).await;
        assert_eq!(status, 400, "{why}: {body}");
    }
    // Under no mount: 404, as for reads.
    let unmounted = "s3://no-such-mount/x";
    assert_eq!(op(&c, 0, "touch", unmounted, "").await.0, 404);
    assert_eq!(two_paths(&c, 0, "copy", &uri, unmounted).await.0, 404);
    // The UFS is down: 503, and nothing changed.
    c.faulty().fail_matching("/e/", UfsError::Unavailable("injected outage".into()));
    let (status, body) = post(&c, 0, &format!("/v1/chunk/{id}?ufsFullPath={uri}"), b"new".to_vec()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(op(&c, 0, "rm", &uri, "").await.0, 503);
    assert_eq!(two_paths(&c, 0, "mv", &uri, &c.uri("e/g")).await.0, 503);
    c.faulty().clear_faults();
    assert_eq!(on_disk(&c, "e/f").as_deref(), Some(&b"f"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_is_down_does_not_fail_the_write() {
    let c = cluster(1).await;
    // A member whose port nobody listens on.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let record = WorkerRecord::new(WorkerId::random(), "127.0.0.1", dead_port, 0);
    let _dead = loam_store::membership::register(c.store.clone(), DEFAULT_CLUSTER_NAME, record, HOUR).await.unwrap();
    c.wait_for_ring(2).await;
    let uri = c.write("p/f", b"old");
    cache_everywhere(&c, &uri, b"old").await;
    let id = loam_core::file_id(&uri);
    assert_eq!(post(&c, 0, &format!("/v1/chunk/{id}?ufsFullPath={uri}"), b"new".to_vec()).await, success());
    assert_eq!(read(&c, 0, &uri).await, (200, b"new".to_vec()));
    assert_eq!(c.worker(0).state.metrics.peer_invalidations_failed.get(), 1, "the failed peer is counted");
    let metrics = c.http.get(format!("{}/metrics", c.worker(0).http_base())).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(text.contains("loam_worker_peer_invalidations_failed_total 1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_endpoint_drops_files_and_prefixes() {
    let c = cluster(1).await;
    let (a, b, keep) = (c.write("i/a", b"a"), c.write("i/sub/b", b"b"), c.write("ix/keep", b"k"));
    for (uri, bytes) in [(&a, &b"a"[..]), (&b, b"b"), (&keep, b"k")] {
        cache_everywhere(&c, uri, bytes).await;
    }
    let inv = serde_json::json!({"version": 1, "uris": [], "prefixes": [c.uri("i")]});
    // Not declared JSON (as a cross-origin form or text post would be): 415, and nothing dropped.
    let (status, body) = post(&c, 0, "/v1/internal/invalidate", inv.to_string()).await;
    assert_eq!(status, 415, "{body}");
    assert!(body["status"].as_str().unwrap().contains("Content-Type: application/json"), "{body}");
    assert!(c.worker(0).state.rt.pages().file(&loam_core::file_id(&a)).is_some(), "nothing dropped");
    let (status, body) = post_json(&c, 0, "/v1/internal/invalidate", &inv).await;
    assert_eq!((status, &body["files"]), (200, &serde_json::json!(2)), "{body}");
    let pages = c.worker(0).state.rt.pages();
    assert!(pages.file(&loam_core::file_id(&a)).is_none() && pages.file(&loam_core::file_id(&b)).is_none());
    assert!(pages.file(&loam_core::file_id(&keep)).is_some(), "a sibling sharing the prefix stays");
    let bad = serde_json::json!({"version": 99, "uris": [keep]});
    assert_eq!(post_json(&c, 0, "/v1/internal/invalidate", &bad).await.0, 400);
}

/// The write endpoints use the exact path: names that differ only in whitespace are different files
/// (the UFS layer trimmed them, so a write of `report ` replaced `report`), and `%`/`+` survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_are_exact_whitespace_and_all() {
    let c = cluster(2).await;
    let names = ["ws/report", "ws/report ", "ws/ report", "ws/a+b 100%"];
    for (i, rel) in names.iter().enumerate() {
        let uri = c.uri(rel);
        let q = loam_client::reader::encode_query(&uri);
        let path = format!("/v1/chunk/{}?ufsFullPath={q}", loam_core::file_id(&uri));
        assert_eq!(post(&c, i % 2, &path, pattern(100 + i, i as u8)).await, success(), "{rel:?}");
    }
    for (i, rel) in names.iter().enumerate() {
        assert_eq!(on_disk(&c, rel), Some(pattern(100 + i, i as u8)), "the UFS holds {rel:?} exactly");
    }
    let gone = c.uri("ws/ report");
    let q = loam_client::reader::encode_query(&gone);
    let (status, _) = post(&c, 0, &format!("/v1/rm/{}?ufsFullPath={q}", loam_core::file_id(&gone)), Vec::new()).await;
    assert_eq!(status, 200);
    assert!(on_disk(&c, "ws/ report").is_none());
    assert_eq!(on_disk(&c, "ws/report"), Some(pattern(100, 0)), "its neighbour stays");
}
