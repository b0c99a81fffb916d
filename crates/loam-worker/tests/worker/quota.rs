//! Quota admission on a real worker: usage is reported per quota path to the cluster store, an exceeded
//! quota stops new pages from being cached under it (reads still succeed), and freeing data reopens it.

use crate::one_worker;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_core::rules::{QuotaRule, QuotaUsageRecord, StoredRule};
use loam_core::store_keys::{quota_usage_key, rule_key};
use loam_testsupport::cluster::Cluster;
use loam_testsupport::data::pattern;
use loam_worker::rules::quota::QuotaTracker;
use loam_worker::rules::rule_view::RuleView;
use std::sync::Arc;
use std::time::Duration;

fn tracker(t: &Cluster, rules: RuleView<QuotaRule>) -> QuotaTracker {
    let w = t.worker(0);
    let q = QuotaTracker::new(
        w.state.rt.pages().clone(),
        w.state.rt.mounts().clone(),
        rules,
        t.store.clone(),
        DEFAULT_CLUSTER_NAME,
        w.id,
    );
    // Replace the worker's own tracker, so the test decides when passes run.
    let admission = q.clone();
    w.state.rt.pages().set_admission(Arc::new(move |uri: &str| admission.admits(uri)));
    q
}

fn cached_bytes(t: &Cluster, uri: &str) -> u64 {
    t.worker(0).state.rt.pages().cached_bytes(&loam_core::file_id(uri))
}

#[tokio::test]
async fn an_exceeded_quota_stops_caching_under_its_path_only() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let q = tracker(&t, RuleView::fixed([("/data/q".to_string(), QuotaRule { quota_bytes: 150 })]));
    let a = t.write("q/a", &pattern(100, 1));
    let b = t.write("q/b", &pattern(100, 2));
    let c = t.write("q/c", &pattern(100, 3));
    let free = t.write("other/d", &pattern(100, 4));

    t.range(0, &a, 0, 100).await;
    q.refresh().await.unwrap();
    assert!(q.exceeded().is_empty(), "100 of 150 bytes used");
    t.range(0, &b, 0, 100).await;
    q.refresh().await.unwrap();
    assert_eq!(q.exceeded(), vec!["/data/q".to_string()]);
    let raw = t.store.get(&quota_usage_key(DEFAULT_CLUSTER_NAME, &t.worker(0).id.to_string())).await.unwrap().unwrap();
    assert_eq!(QuotaUsageRecord::decode(&raw.value).unwrap().used["/data/q"], 200);

    // Served from the UFS, not cached; data under no quota is cached as before.
    assert_eq!(t.range(0, &c, 0, 100).await, pattern(100, 3));
    assert_eq!(cached_bytes(&t, &c), 0);
    t.range(0, &free, 0, 100).await;
    assert_eq!(cached_bytes(&t, &free), 100);

    // Freeing data brings the quota back under its limit.
    t.worker(0).state.rt.pages().remove_file(&loam_core::file_id(&a)).await.unwrap();
    q.refresh().await.unwrap();
    assert!(q.exceeded().is_empty());
    t.range(0, &c, 0, 100).await;
    assert_eq!(cached_bytes(&t, &c), 100);
}

#[tokio::test]
async fn the_worker_follows_quota_rules_from_the_store_and_its_loop_stops() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let rule = StoredRule::new("/data/q".into(), QuotaRule { quota_bytes: 10 });
    let key = rule_key(DEFAULT_CLUSTER_NAME, "quota", "/data/q");
    t.store.put(&key, serde_json::to_vec(&rule).unwrap().into(), None).await.unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (rules, rule_task) =
        RuleView::<QuotaRule>::follow(t.store.clone(), DEFAULT_CLUSTER_NAME, rx.clone()).await.unwrap();
    let q = tracker(&t, rules);
    let a = t.write("q/a", &pattern(100, 1));
    t.range(0, &a, 0, 100).await;
    let task = q.clone().spawn(Duration::from_millis(10), rx);
    while q.exceeded().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tx.send(true).unwrap();
    task.await.unwrap();
    rule_task.await.unwrap();
}
