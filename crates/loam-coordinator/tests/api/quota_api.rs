//! `/api/v1/quota` against a running coordinator: every status code of the spec's table, nested quotas,
//! usage summed from the registered workers' reports, the state that follows, and the enable switch.
//! The rule behaviours run on the embedded store and on etcd (`on_both_stores!`).

use loam_coordinator::CoordinatorConfig;
use loam_core::WorkerId;
use loam_core::membership::WorkerRecord;
use loam_core::rules::QuotaUsageRecord;
use loam_core::store_keys::quota_usage_key;
use loam_testsupport::coordinator::{Backend, TestCoordinator, start_on, start_with, status_text};
use serde_json::json;
use std::time::Duration;

loam_testsupport::on_both_stores!(quotas_are_set_listed_with_usage_and_removed, bad_quota_requests_are_400);

async fn mounted(backend: Backend) -> TestCoordinator {
    loam_ufs::install_process_defaults();
    let c = start_on(backend).await;
    let ufs = c.ufs_dir("ufs", true);
    let (status, body) = c.call("POST", "/api/v1/mount", Some(&json!({"path": "/data", "ufs": ufs}).to_string())).await;
    assert_eq!(status, 200, "{body}");
    c
}

async fn report(c: &TestCoordinator, worker: &WorkerId, path: &str, bytes: u64) {
    let record = QuotaUsageRecord { version: 1, used: [(path.to_string(), bytes)].into() };
    let key = quota_usage_key(&c.cluster, &worker.to_string());
    c.store.put(&key, serde_json::to_vec(&record).unwrap().into(), None).await.unwrap();
}

async fn quotas_are_set_listed_with_usage_and_removed(backend: Backend) {
    let c = mounted(backend).await;
    assert_eq!(c.call("GET", "/api/v1/quota", None).await, (200, json!({"results": []})));
    let ok = (200, json!({"status": "ok"}));
    assert_eq!(c.call("POST", "/api/v1/quota", Some(r#"{"path": "/data/a/", "quotaBytes": 1000}"#)).await, ok);
    assert_eq!(
        c.call("GET", "/api/v1/quota?path=/data/a", None).await,
        (200, json!({"path": "/data/a", "state": "Available", "quotaBytes": 1000, "usedBytes": 0, "reservedBytes": 0}))
    );

    // Two registered workers report; a third, not registered, is not counted.
    let (w1, w2, gone) = (WorkerId::random(), WorkerId::random(), WorkerId::random());
    let mut handles = Vec::new();
    for (i, w) in [w1, w2].into_iter().enumerate() {
        let record = WorkerRecord::new(w, "127.0.0.1", 1000 + i as u16, 0);
        handles.push(
            loam_store::membership::register(c.store.clone(), &c.cluster, record, Duration::from_secs(30))
                .await
                .unwrap(),
        );
    }
    report(&c, &w1, "/data/a", 600).await;
    report(&c, &w2, "/data/a", 300).await;
    report(&c, &gone, "/data/a", 5000).await;
    let (_, body) = c.call("GET", "/api/v1/quota?path=/data/a", None).await;
    assert_eq!((body["usedBytes"].as_u64(), body["state"].as_str()), (Some(900), Some("Available")));
    report(&c, &w2, "/data/a", 400).await;
    let (status, body) = c.call("GET", "/api/v1/quota", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["usedBytes"], 1000);
    assert_eq!(body["results"][0]["state"], "Exceeded");
    // A load under an exceeded quota is refused, naming the quota.
    let (status, body) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data/a/x"], "options": {}}"#)).await;
    assert_eq!(status, 400, "{body}");
    assert!(status_text(&body).contains("quota exceeded") && status_text(&body).contains("/data/a"), "{body}");
    assert_eq!(body["quotaCheckError"], body["status"], "the reason is the job's quotaCheckError too");

    let (status, body) = c.call("GET", "/api/v1/quota?path=/data/b", None).await;
    assert_eq!((status, status_text(&body)), (404, "No quota item found for path: /data/b"));
    assert_eq!(c.call("DELETE", "/api/v1/quota", Some(r#"{"path": "/data/a"}"#)).await, ok);
    assert_eq!(c.call("DELETE", "/api/v1/quota", Some(r#"{"path": "/data/a"}"#)).await.0, 400);
    assert_eq!(c.call("GET", "/api/v1/quota", None).await, (200, json!({"results": []})));
    for h in handles {
        h.shutdown().await.unwrap();
    }
}

async fn bad_quota_requests_are_400(backend: Backend) {
    let c = mounted(backend).await;
    assert_eq!(c.call("POST", "/api/v1/quota", Some(r#"{"path": "/data/a", "quotaBytes": 10}"#)).await.0, 200);
    for body in [
        r#"{"path": "/data/b"}"#,
        r#"{"quotaBytes": 10}"#,
        r#"{"path": "/data/b", "quotaBytes": -1}"#,
        r#"{"path": "/data/a/inner", "quotaBytes": 10}"#,
        r#"{"path": "/data", "quotaBytes": 10}"#,
        "",
    ] {
        let (status, resp) = c.call("POST", "/api/v1/quota", Some(body)).await;
        assert_eq!(status, 400, "{body} -> {resp}");
    }
    let (status, body) = c.call("POST", "/api/v1/quota", Some(r#"{"path": "/nomount/x", "quotaBytes": 10}"#)).await;
    assert_eq!((status, status_text(&body)), (400, "No mounted UFS found"));
    // Replacing the limit of an existing quota is not nesting.
    assert_eq!(c.call("POST", "/api/v1/quota", Some(r#"{"path": "/data/a", "quotaBytes": 20}"#)).await.0, 200);
    assert_eq!(c.call("DELETE", "/api/v1/quota", Some("{}")).await.0, 400);
    let (_, body) = c.call("GET", "/api/v1/quota", None).await;
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    assert_eq!(body["results"][0]["quotaBytes"], 20);
}

#[tokio::test]
async fn a_disabled_quota_answers_501() {
    loam_ufs::install_process_defaults();
    let dir = tempfile::tempdir().unwrap();
    let store = loam_testsupport::coordinator::open_store(dir.path());
    let c = start_with(dir, store, CoordinatorConfig { quota_enabled: false, ..CoordinatorConfig::default() }).await;
    for (method, path, body) in [
        ("GET", "/api/v1/quota", None),
        ("GET", "/api/v1/quota?path=/data", None),
        ("POST", "/api/v1/quota", Some(r#"{"path": "/data", "quotaBytes": 1}"#)),
        ("DELETE", "/api/v1/quota", Some(r#"{"path": "/data"}"#)),
    ] {
        let (status, resp) = c.call(method, path, body).await;
        assert_eq!((status, status_text(&resp)), (501, "Quota not enabled"), "{method} {path}");
    }
}
