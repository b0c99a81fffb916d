//! TTL, priority and quota rules written through the REST API reach a real worker that follows the cluster
//! store, and take effect there: cached data is re-levelled by a priority rule, evicted by a TTL rule,
//! and counted (and reported back) under a quota; removing a rule undoes it. The same scenario runs on
//! the embedded store and on etcd, whose watches deliver the rules to the worker.

use crate::{PAGE, cluster, jobs};
use loam_core::rules::Priority;
use loam_store::{EtcdOptions, EtcdStore};
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::pattern;
use serde_json::{Value, json};
use std::time::Duration;

/// Polls `check` until it holds (the worker applies rules asynchronously, within a policy interval).
async fn until(mut check: impl AsyncFnMut() -> bool) {
    while !check().await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn rule(c: &Cluster, method: &str, kind: &str, body: Value) {
    let (s, v) = c.call(method, &format!("/api/v1/{kind}"), Some(&body.to_string())).await;
    assert_eq!(s, 200, "{method} {kind} {body}: {v}");
}

async fn rules_reach_a_worker(c: Cluster) {
    let ttl_file = c.write("ttl/a", &pattern(2 * PAGE as usize, 1));
    let prio_file = c.write("prio/b", &pattern(PAGE as usize, 2));
    let quota_len = 3 * PAGE + 7;
    c.write("q/c", &pattern(quota_len as usize, 3));
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"sync": true}}"#)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");
    let pages = c.worker(0).state.rt.pages().clone();
    let priority = |uri: &str| pages.priority(&loam_core::file_id(uri));
    assert_eq!(priority(&prio_file), Some(Priority::Medium), "no rule: medium");

    // Priority: cached data moves to the rule's level, and back when the rule goes.
    rule(&c, "POST", "priority", json!({"path": "/data/prio", "priority": "low"})).await;
    until(async || priority(&prio_file) == Some(Priority::Low)).await;
    rule(&c, "DELETE", "priority", json!({"path": "/data/prio"})).await;
    until(async || priority(&prio_file) == Some(Priority::Medium)).await;

    // Quota: the worker counts its cached bytes under the new quota and reports them to the coordinator.
    rule(&c, "POST", "quota", json!({"path": "/data/q", "quotaBytes": 1 << 20})).await;
    until(async || {
        let (_, q) = c.call("GET", "/api/v1/quota?path=/data/q", None).await;
        q["usedBytes"] == quota_len
    })
    .await;

    // TTL: data under the rule is evicted once older than the TTL; the rest stays.
    rule(&c, "POST", "ttl", json!({"path": "/data/ttl", "ttlSeconds": 1})).await;
    until(async || c.holders(&ttl_file).is_empty()).await;
    assert_eq!(c.holders(&prio_file), [0], "data under no TTL rule stays");
}

#[tokio::test]
async fn rules_reach_a_worker_on_the_embedded_store() {
    rules_reach_a_worker(cluster(1).await).await;
}

#[tokio::test]
async fn rules_reach_a_worker_on_etcd() {
    let etcd = loam_testsupport::EtcdServer::start();
    let store = EtcdStore::connect(vec![etcd.endpoint()], EtcdOptions::default()).await.unwrap();
    rules_reach_a_worker(Cluster::start(Options { store: Some(store), ..jobs(1) }).await).await;
}
