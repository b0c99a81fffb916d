//! Load jobs end to end: a tree on the local file system loaded onto real workers, read back with no UFS
//! read; replicas; filter; skipIfExists; verify; failures; stop and resume; coordinator restart; a worker
//! shut down mid-job; batches refused with a 4xx or a 5xx. Workers that die or restart mid-job: `jobs_churn`.

use crate::{PAGE, cluster};
use loam_testsupport::cluster::Cluster;
use loam_testsupport::data::pattern;
use loam_ufs::UfsError;
use std::time::Duration;

/// `n` files of 0–4 pages and a bit under `d0`–`d2`: their URIs and contents.
pub(crate) fn tree(c: &Cluster, n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let data = pattern((i % 5) * PAGE as usize + 100 * i, i as u8);
            (c.write(&format!("d{}/sub/f{i:03}", i % 3), &data), data)
        })
        .collect()
}

#[tokio::test]
async fn a_tree_loads_and_reads_back_without_ufs_reads() {
    let c = cluster(3).await;
    let files = tree(&c, 24);
    let (s, v) = c
        .call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"sync": true, "batchSize": 5}}"#))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    assert_eq!(v["totalBytes"], total);
    assert_eq!(v["loadedBytes"], total);
    assert_eq!(v["scannedFiles"], 24);
    assert_eq!(v["failedFiles"], 0);
    assert_eq!(v["loadedNonEmptyFiles"], 23, "f000 is empty");
    assert!(v.get("errorMessage").is_none() && v.get("runningState").is_none(), "{v}");
    c.faulty().reset_counters();
    for (uri, data) in &files {
        let holders = c.holders(uri);
        assert_eq!(holders.len(), 1, "{uri} on {holders:?}");
        assert_eq!(&c.range(holders[0], uri, 0, data.len() as u64).await, data);
    }
    assert_eq!(c.faulty().read_calls(), 0, "every read was served from the cache");
    // The list shows the job too, and a twin of a finished job is a new job.
    let (s, list) = c.call("GET", "/api/v1/load", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["results"][0]["id"], v["id"]);
    let (s, again) = c
        .call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"skipIfExists": true, "sync": true}}"#))
        .await;
    assert_eq!(s, 200);
    assert_ne!(again["id"], v["id"]);
    assert_eq!(again["skippedBytes"], total, "{again}");
    assert_eq!(c.faulty().read_calls(), 0);
}

#[tokio::test]
async fn replicas_land_on_distinct_workers_and_the_filter_applies() {
    let c = cluster(3).await;
    let files = tree(&c, 12);
    let body = r#"{"paths": ["/data/d0", "/data/d1"], "options": {"sync": true, "replicas": 2, "fileFilterRegx": "f00[0-9]$", "verify": true}}"#;
    let (s, v) = c.call("POST", "/api/v1/load", Some(body)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    assert_eq!(v["verify"], true);
    for (uri, _) in &files {
        let name = uri.rsplit('/').next().unwrap();
        let wanted = (uri.contains("/d0/") || uri.contains("/d1/")) && name < "f010";
        assert_eq!(c.holders(uri).len(), if wanted { 2 } else { 0 }, "{uri}");
    }
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"replicas": 4}}"#)).await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test]
async fn failing_files_are_retried_then_listed() {
    let c = cluster(2).await;
    let files = tree(&c, 8);
    c.faulty().fail_matching("f003", UfsError::Unavailable("injected".into()));
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"sync": true}}"#)).await;
    assert_eq!(s, 200);
    assert_eq!(v["state"], "FAILED", "{v}");
    assert_eq!(v["failedFiles"], 1);
    let bad = &files[3].0;
    assert!(v["errorMessage"][bad].as_str().unwrap().contains("injected"), "{v}");
    let list = std::fs::read_to_string(v["failedFileListPath"].as_str().unwrap()).unwrap();
    assert_eq!(list.trim(), bad);
    c.faulty().clear_faults();
    let (s, v) =
        c.call("POST", "/api/v1/load", Some(&format!(r#"{{"paths": ["{bad}"], "options": {{"sync": true}}}}"#))).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")));
}

#[tokio::test]
async fn stop_then_resubmit_resumes_without_reloading() {
    let c = cluster(2).await;
    let files = tree(&c, 30);
    c.faulty().set_read_delay(Some(Duration::from_millis(30)));
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"batchSize": 1}}"#)).await;
    assert_eq!(s, 200);
    let id = v["id"].as_str().unwrap().to_string();
    c.wait_for("load", &id, |v| v["loadedNonEmptyFiles"].as_u64() >= Some(3)).await;
    let (s, _) = c.call("DELETE", "/api/v1/load", Some(&format!(r#"{{"id": "{id}"}}"#))).await;
    assert_eq!(s, 200);
    let v = c.wait_end("load", &id).await;
    assert_eq!(v["state"], "STOPPED");
    // Stopping a job that is not running answers 410, as Alluxio does, and changes nothing.
    let (s, v) = c.call("DELETE", "/api/v1/load", Some(&format!(r#"{{"id": "{id}"}}"#))).await;
    assert_eq!((s, v["status"].as_str()), (410, Some("The job doesn't exist or has already finished")));
    let (_, v) = c.call("GET", &format!("/api/v1/load?id={id}"), None).await;
    assert_eq!(v["state"], "STOPPED", "{v}");
    c.faulty().set_read_delay(None);
    c.faulty().reset_counters();
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"sync": true}}"#)).await;
    assert_eq!((s, v["id"].as_str()), (409, Some(id.as_str())), "{v}");
    let v = c.wait_end("load", &id).await;
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    assert_eq!(v["scannedFiles"], 30, "nothing counted twice: {v}");
    for (uri, data) in &files {
        assert!(c.faulty().reads_of(uri).bytes <= data.len() as u64, "{uri} read more than once");
        assert_eq!(c.holders(uri).len(), 1);
    }
}

#[tokio::test]
async fn a_restarted_coordinator_continues_the_job() {
    let mut c = cluster(2).await;
    let files = tree(&c, 30);
    c.faulty().set_read_delay(Some(Duration::from_millis(30)));
    let (_, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"batchSize": 1}}"#)).await;
    let id = v["id"].as_str().unwrap().to_string();
    c.wait_for("load", &id, |v| v["loadedNonEmptyFiles"].as_u64() >= Some(3)).await;
    c.stop_coordinator().await;
    c.faulty().set_read_delay(None);
    c.start_coordinator().await;
    let v = c.wait_end("load", &id).await;
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    assert_eq!(v["scannedFiles"], 30, "{v}");
    assert_eq!(v["loadedNonEmptyFiles"], 29, "f000 is empty: {v}");
    for (uri, data) in &files {
        assert!(c.faulty().reads_of(uri).bytes <= data.len() as u64, "{uri} was loaded twice");
    }
}

#[tokio::test]
async fn a_worker_shut_down_mid_job_has_its_files_re_planned_onto_their_owners() {
    let mut c = cluster(2).await;
    let files = tree(&c, 40);
    c.faulty().set_read_delay(Some(Duration::from_millis(20)));
    let (_, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"batchSize": 1}}"#)).await;
    let id = v["id"].as_str().unwrap().to_string();
    c.wait_for("load", &id, |v| v["loadedNonEmptyFiles"].as_u64() >= Some(2)).await;
    // It leaves the ring at once: its files go to their owner on the ring of now, worker 0.
    c.kill_worker(1).await;
    let v = c.wait_end("load", &id).await;
    assert_eq!((v["state"].as_str(), v["failedFiles"].as_u64()), (Some("SUCCEEDED"), Some(0)), "{v}");
    c.faulty().set_read_delay(None);
    c.faulty().reset_counters();
    for (uri, data) in &files {
        assert_eq!(c.holders(uri), vec![0], "{uri}");
        assert_eq!(&c.range(0, uri, 0, data.len() as u64).await, data);
    }
    assert_eq!(c.faulty().read_calls(), 0, "every file was cached on its owner");
}

/// A "worker" that answers every load batch with `status` and counts the batches; registered in the
/// membership store so the coordinator sends it work. Returns the counter and the membership handle.
async fn refusing_worker(
    c: &Cluster,
    status: u16,
) -> (std::sync::Arc<std::sync::atomic::AtomicUsize>, loam_store::membership::MembershipHandle) {
    use axum::{Json, http::StatusCode, routing::post};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        loam_core::job_api::LOAD_TASK_PATH,
        post(move || async move {
            counted.fetch_add(1, Ordering::SeqCst);
            (StatusCode::from_u16(status).unwrap(), Json(serde_json::json!({"status": "this batch is refused"})))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let id = loam_core::WorkerId::random();
    let record = loam_core::membership::WorkerRecord::new(id, "127.0.0.1", port, 0);
    let cluster = loam_core::membership::DEFAULT_CLUSTER_NAME;
    let member = loam_store::membership::register(c.store.clone(), cluster, record, Duration::from_secs(60)).await;
    (calls, member.unwrap())
}

#[tokio::test]
async fn a_batch_refused_with_a_4xx_is_not_retried_but_a_5xx_is_for_the_retry_window() {
    use std::sync::atomic::Ordering;
    let window = Duration::from_secs(2);
    let c =
        Cluster::start(loam_testsupport::cluster::Options { job_retry_window: Some(window), ..crate::jobs(0) }).await;
    c.write("f.bin", &pattern(100, 1));
    for status in [400, 503] {
        let (calls, member) = refusing_worker(&c, status).await;
        let started = std::time::Instant::now();
        let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"sync": true}}"#)).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["state"], "FAILED", "{status}: {v}");
        assert_eq!(v["failedFiles"], 1, "{v}");
        let calls = calls.load(Ordering::SeqCst);
        if status == 400 {
            assert_eq!(calls, 1, "a 400 is asked once");
        } else {
            // A worker that answers 5xx may be restarting: asked again with backoff until the window ends.
            assert!(calls > loam_coordinator::jobs::MAX_ATTEMPTS as usize, "a 503 is asked {calls} times");
            assert!(started.elapsed() >= window, "given up after {:?}", started.elapsed());
        }
        assert!(v["errorMessage"].to_string().contains("answered 400: this batch is refused") || status != 400, "{v}");
        assert!(v["errorMessage"].to_string().contains("this batch is refused"), "the worker's message is kept: {v}");
        member.shutdown().await.unwrap();
    }
}
