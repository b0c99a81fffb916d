//! `/api/v1/file_index`: every status code, paging and prefix, POST/DELETE counts, the disabled index, and
//! the index following real workers (read-through, free, eviction) and its rebuild after a restart.

use crate::{PAGE, cluster, jobs};
use loam_coordinator::CoordinatorConfig;
use loam_core::WorkerId;
use loam_core::membership::WorkerRecord;
use loam_store::ClusterStore;
use loam_store::membership::MembershipHandle;
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::coordinator::status_text;
use loam_testsupport::data::pattern;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Registers a worker (on a port nothing serves) as a live member; it stays one while the handle lives.
async fn member(store: &Arc<dyn ClusterStore>, cluster: &str) -> (WorkerId, MembershipHandle) {
    let id = WorkerId::random();
    let record = WorkerRecord::new(id, "127.0.0.1", loam_testsupport::free_port(), 0);
    let lease =
        loam_store::membership::register(store.clone(), cluster, record, Duration::from_secs(60)).await.unwrap();
    (id, lease)
}

async fn report(c: &loam_testsupport::coordinator::TestCoordinator, worker: &str, added: &[&str]) -> (u16, Value) {
    let body = json!({"version": 1, "worker": worker, "added": added}).to_string();
    c.call("POST", "/api/v1/internal/file_index", Some(&body)).await
}

/// The attacks on the index: reports for workers that are not members (forged ids), a 65th worker, and
/// filling the index. Non-members are refused with 400 and change nothing; any number of real members is
/// tracked; past `--file-index-max-entries` an update answers 507 and changes nothing.
#[tokio::test]
async fn reports_only_from_members_any_number_of_workers_and_a_size_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = loam_testsupport::coordinator::open_store(dir.path());
    let cfg = CoordinatorConfig { file_index_max_entries: 80, ..CoordinatorConfig::default() };
    let c = loam_testsupport::coordinator::start_with(dir, store, cfg).await;
    let (s, v) = report(&c, &WorkerId::random().to_string(), &["s3://b/forged"]).await;
    assert_eq!(s, 400, "{v}");
    assert!(status_text(&v).contains("not a current member"), "{v}");
    let (s, v) = report(&c, "worker-x", &["s3://b/forged"]).await;
    assert_eq!(s, 400, "{v}");
    let (_, v) = c.call("GET", "/api/v1/file_index", None).await;
    assert!(strings(&v).is_empty(), "nothing indexed: {v}");

    let mut members = Vec::new();
    for i in 0..70 {
        let (id, lease) = member(&c.store, &c.cluster).await;
        let (s, v) = report(&c, &id.to_string(), &[&format!("s3://b/own-{i:02}"), "s3://b/shared"]).await;
        assert_eq!(s, 200, "worker {i}: {v}");
        members.push((id, lease));
    }
    let (_, v) = c.call("GET", "/api/v1/file_index?file=s3://b/shared", None).await;
    assert_eq!(v["workers"].as_array().unwrap().len(), 70, "every member is tracked past 64");
    let (_, v) = c.call("GET", "/api/v1/file_index?file=s3://b/own-69", None).await;
    assert_eq!(v["workers"][0]["identity"], members[69].0.to_string());

    // 71 entries; the cap is 80.
    let many: Vec<String> = (0..10).map(|i| format!("s3://b/more-{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let (s, v) = report(&c, &members[0].0.to_string(), &refs).await;
    assert_eq!(s, 507, "{v}");
    assert!(status_text(&v).contains("--file-index-max-entries"), "{v}");
    let (s, v) = c.call("POST", "/api/v1/file_index", Some(&json!({"files": many}).to_string())).await;
    assert_eq!(s, 507, "{v}");
    let (_, v) = c.call("GET", "/api/v1/file_index?limit=1000", None).await;
    assert_eq!(strings(&v).len(), 71, "nothing changed");
    let (s, _) = report(&c, &members[0].0.to_string(), &refs[..9]).await;
    assert_eq!(s, 200, "up to the cap");
    c.shutdown().await;
}

/// Polls `cond` until it holds; fails (instead of hanging) after a generous deadline.
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn strings(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn status_codes_paging_prefix_and_counts() {
    let c = loam_testsupport::coordinator::start().await;
    let ufs = c.ufs_dir("u", true);
    let (s, _) = c.call("POST", "/api/v1/mount", Some(&json!({"path": "/data", "ufs": ufs}).to_string())).await;
    assert_eq!(s, 200);
    let (s, v) = c.call("GET", "/api/v1/file_index", None).await;
    assert_eq!((s, strings(&v)), (200, vec![]));
    for bad in ["", "{", "[]", r#"{"files": "x"}"#, r#"{"other": 1}"#] {
        for m in ["POST", "DELETE"] {
            let (s, v) = c.call(m, "/api/v1/file_index", Some(bad)).await;
            assert_eq!(s, 400, "{m} {bad}: {v}");
            assert!(status_text(&v).starts_with("Required parameters not provided"), "{v}");
        }
    }
    let files = json!({"files": ["s3://b/x/1", "s3://b/x/2", "s3://b/y", "s3://b/x/1"]}).to_string();
    let (s, v) = c.call("POST", "/api/v1/file_index", Some(&files)).await;
    assert_eq!((s, v["entries"].as_u64()), (200, Some(3)));
    let (s, v) = c.call("POST", "/api/v1/file_index", Some(r#"{"files": ["s3://b/y", "/data/f"]}"#)).await;
    assert_eq!((s, v["entries"].as_u64()), (200, Some(1)), "only the Alluxio path is new");
    let local = format!("{}/f", ufs.trim_end_matches('/'));
    let (_, v) = c.call("GET", "/api/v1/file_index", None).await;
    assert_eq!(strings(&v), vec![local.clone(), "s3://b/x/1".into(), "s3://b/x/2".into(), "s3://b/y".into()]);
    let (_, v) = c.call("GET", "/api/v1/file_index?prefix=s3://b/x/", None).await;
    assert_eq!(strings(&v), vec!["s3://b/x/1", "s3://b/x/2"]);
    let (_, v) = c.call("GET", "/api/v1/file_index?prefix=s3://b/&offset=1&limit=1", None).await;
    assert_eq!(strings(&v), vec!["s3://b/x/2"]);
    let (_, v) = c.call("GET", "/api/v1/file_index?prefix=/data/", None).await;
    assert_eq!(strings(&v), vec![local.clone()]);
    let (s, v) = c.call("GET", "/api/v1/file_index?file=/data/f", None).await;
    assert_eq!((s, v["file"].as_str(), v["workers"].as_array().map(Vec::len)), (200, Some(&*local), Some(0)));
    let (s, v) = c.call("GET", "/api/v1/file_index?file=s3://b/none", None).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = c.call("GET", "/api/v1/file_index?limit=x", None).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = c.call("POST", "/api/v1/file_index", Some(r#"{"files": ["/nomount/f"]}"#)).await;
    assert_eq!(s, 400, "{v}");
    assert!(status_text(&v).starts_with("No mounted UFS found"), "{v}");
    let (s, v) =
        c.call("DELETE", "/api/v1/file_index", Some(r#"{"files": ["s3://b/y", "s3://b/none", "/data/f"]}"#)).await;
    assert_eq!((s, v["entries"].as_u64()), (200, Some(2)));
    let (s, _) = c.call("PUT", "/api/v1/file_index", Some("{}")).await;
    assert_eq!(s, 405);
    let (worker_x, _lease) = member(&c.store, &c.cluster).await;
    let report = r#"{"version": 99, "worker": "worker-x", "added": ["s3://b/z"]}"#;
    let (s, v) = c.call("POST", "/api/v1/internal/file_index", Some(report)).await;
    assert_eq!(s, 400, "{v}");
    let report = json!({"version": 1, "worker": worker_x.to_string(), "added": ["s3://b/z"]}).to_string();
    let (s, _) = c.call("POST", "/api/v1/internal/file_index", Some(&report)).await;
    assert_eq!(s, 200);
    let (_, v) = c.call("GET", "/api/v1/file_index?file=s3://b/z", None).await;
    assert_eq!(v["workers"][0]["identity"], worker_x.to_string());
    // A reset report (a restarted worker's first) replaces what the worker held.
    let report =
        json!({"version": 1, "worker": worker_x.to_string(), "reset": true, "added": ["s3://b/z2"]}).to_string();
    let (s, _) = c.call("POST", "/api/v1/internal/file_index", Some(&report)).await;
    assert_eq!(s, 200);
    let (_, v) = c.call("GET", "/api/v1/file_index?prefix=s3://b/z", None).await;
    assert_eq!(strings(&v), vec!["s3://b/z2"]);
    c.shutdown().await;
}

#[tokio::test]
async fn a_disabled_index_answers_404() {
    let dir = tempfile::tempdir().unwrap();
    let store = loam_testsupport::coordinator::open_store(dir.path());
    let c = loam_testsupport::coordinator::start_with(
        dir,
        store,
        CoordinatorConfig { file_index: false, ..CoordinatorConfig::default() },
    )
    .await;
    let body = Some(r#"{"files": ["s3://b/f"]}"#);
    for (m, b) in [("GET", None), ("POST", body), ("DELETE", body)] {
        let (s, v) = c.call(m, "/api/v1/file_index", b).await;
        assert_eq!((s, status_text(&v)), (404, "Global file index is not enabled"), "{m}");
    }
    let (s, _) = c.call("POST", "/api/v1/internal/file_index", Some(r#"{"version": 1, "worker": "w"}"#)).await;
    assert_eq!(s, 404);
    c.shutdown().await;
}

async fn indexed(c: &Cluster) -> Vec<String> {
    let (s, v) = c.call("GET", "/api/v1/file_index", None).await;
    assert_eq!(s, 200, "{v}");
    strings(&v)
}

async fn holders(c: &Cluster, uri: &str) -> Vec<String> {
    let (s, v) = c.call("GET", &format!("/api/v1/file_index?file={uri}"), None).await;
    if s == 404 {
        return vec![];
    }
    v["workers"].as_array().unwrap().iter().map(|w| w["identity"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn the_index_follows_read_through_free_and_eviction() {
    let c = Cluster::start(Options { forward_loads: true, ..jobs(2) }).await;
    let w0 = c.live()[0].id.to_string();
    let a = c.write("a", &pattern(3 * PAGE as usize, 1));
    c.range(0, &a, 0, 3 * PAGE).await;
    eventually("read-through reported", async || holders(&c, &a).await == vec![w0.clone()]).await;
    let (s, v) = c.call("GET", &format!("/api/v1/file_index?file={a}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["workers"][0]["address"].as_str(), Some(&*c.live()[0].http_addr.to_string()));

    let (s, v) = c
        .call("POST", "/api/v1/free", Some(r#"{"paths": ["/data/a"], "options": {"sync": true, "recursive": false}}"#))
        .await;
    assert_eq!(s, 200, "{v}");
    eventually("free reported", async || !indexed(&c).await.contains(&a)).await;

    // The workers hold 1088 pages (64 in memory, 1024 on disk); 20 files of 64 pages evict the first ones.
    let mut uris = Vec::new();
    for i in 0..20 {
        let uri = c.write(&format!("big/{i}"), &pattern(64 * PAGE as usize, i as u8));
        c.range(1, &uri, 0, 64 * PAGE).await;
        uris.push(uri);
    }
    let pages = c.live()[1].state.rt.pages().clone();
    let expected: Vec<String> =
        uris.iter().filter(|u| pages.cached_page_count(&loam_core::file_id(u)) > 0).cloned().collect();
    assert!(expected.len() < uris.len() && !expected.is_empty(), "some files were evicted, not all");
    assert!(pages.file(&loam_core::file_id(&uris[0])).is_some(), "eviction keeps the record of an evicted file");
    eventually("eviction reported", async || {
        let big = format!("{}/big/", c.root.trim_end_matches('/'));
        let (_, v) = c.call("GET", &format!("/api/v1/file_index?prefix={big}"), None).await;
        let got = strings(&v);
        let mut want = expected.clone();
        want.sort();
        got == want
    })
    .await;
}

#[tokio::test]
async fn the_index_is_rebuilt_from_the_workers_when_the_coordinator_restarts() {
    // No forwarding: these workers do not report, so only the rebuild can fill the index.
    let mut c = cluster(2).await;
    let a = c.write("a", &pattern(PAGE as usize, 1));
    let b = c.write("b", &pattern(PAGE as usize, 2));
    c.range(0, &a, 0, PAGE).await;
    c.range(1, &a, 0, PAGE).await;
    c.range(1, &b, 0, PAGE).await;
    c.stop_coordinator().await;
    c.start_coordinator().await;
    eventually("rebuilt", async || indexed(&c).await == vec![a.clone(), b.clone()]).await;
    let mut both = holders(&c, &a).await;
    both.sort();
    let mut ids: Vec<String> = c.live().iter().map(|w| w.id.to_string()).collect();
    ids.sort();
    assert_eq!(both, ids);
    assert_eq!(holders(&c, &b).await, vec![c.live()[1].id.to_string()]);
}
