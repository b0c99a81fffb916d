//! TTL expiry on a real worker: the scan removes exactly the files past the most specific rule's TTL,
//! rules follow the cluster store, and the background loop expires data and stops on shutdown.

use crate::one_worker;
use bytes::Bytes;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_core::rules::{StoredRule, TtlRule};
use loam_core::store_keys::rule_key;
use loam_testsupport::cluster::Cluster;
use loam_testsupport::data::pattern;
use loam_worker::rules::rule_view::RuleView;
use loam_worker::rules::ttl::TtlScanner;
use std::time::Duration;
use tokio::sync::watch;

fn ttl(seconds: u64) -> TtlRule {
    TtlRule { ttl_seconds: seconds }
}

fn scanner(t: &Cluster, rules: RuleView<TtlRule>) -> TtlScanner {
    let rt = &t.worker(0).state.rt;
    TtlScanner::new(rt.pages().clone(), rt.mounts().clone(), rules)
}

fn cached(t: &Cluster, uri: &str) -> bool {
    t.worker(0).state.rt.pages().file(&loam_core::file_id(uri)).is_some()
}

#[tokio::test]
async fn the_most_specific_rule_decides_when_a_file_expires() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let short = t.write("logs/a", &pattern(100, 1));
    let long = t.write("logs/keep/b", &pattern(100, 2));
    let none = t.write("other/c", &pattern(100, 3));
    for uri in [&short, &long, &none] {
        t.range(0, uri, 0, 100).await;
        assert!(cached(&t, uri));
    }
    let cached_ms = t.worker(0).state.rt.pages().file(&loam_core::file_id(&short)).unwrap().cached_ms;
    let rules = RuleView::fixed([("/data/logs".to_string(), ttl(10)), ("/data/logs/keep".to_string(), ttl(100))]);
    let s = scanner(&t, rules);

    assert!(s.expire(cached_ms + 9_999).await.is_empty(), "nothing is older than its TTL yet");
    assert_eq!(s.expire(cached_ms + 20_000).await, vec![short.clone()]);
    assert!(!cached(&t, &short) && cached(&t, &long) && cached(&t, &none));
    assert_eq!(s.expire(cached_ms + 200_000).await, vec![long.clone()]);
    assert!(cached(&t, &none), "a file under no rule never expires");
    // An expired file is read through again and cached anew.
    assert_eq!(t.range(0, &short, 0, 100).await, pattern(100, 1));
    assert!(cached(&t, &short));
}

#[tokio::test]
async fn rules_follow_the_cluster_store() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let key = rule_key(DEFAULT_CLUSTER_NAME, "ttl", "/data/x");
    let put = |secs: u64| Bytes::from(serde_json::to_vec(&StoredRule::new("/data/x".into(), ttl(secs))).unwrap());
    t.store.put(&key, put(7), None).await.unwrap();
    let (tx, rx) = watch::channel(false);
    let (view, task) = RuleView::<TtlRule>::follow(t.store.clone(), DEFAULT_CLUSTER_NAME, rx).await.unwrap();
    assert_eq!(view.lookup("/data/x/y"), Some(ttl(7)), "loaded at start");

    t.store.put(&key, put(8), None).await.unwrap();
    while view.lookup("/data/x/y") != Some(ttl(8)) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A record of another version is ignored rather than misread.
    t.store
        .put(
            &rule_key(DEFAULT_CLUSTER_NAME, "ttl", "/data/v"),
            r#"{"version": 99, "path": "/data/v", "ttlSeconds": 1}"#.into(),
            None,
        )
        .await
        .unwrap();
    t.store.delete(&key).await.unwrap();
    while view.lookup("/data/x/y").is_some() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(view.lookup("/data/v"), None);

    tx.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn the_background_scan_expires_data_and_stops_on_shutdown() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let uri = t.write("tmp/a", &pattern(100, 4));
    t.range(0, &uri, 0, 100).await;
    let (tx, rx) = watch::channel(false);
    let task = scanner(&t, RuleView::fixed([("/data/tmp".to_string(), ttl(1))])).spawn(Duration::from_millis(20), rx);
    while cached(&t, &uri) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send(true).unwrap();
    task.await.unwrap();

    // Dropping the sender (the worker handle going away) stops the loop too.
    let (tx, rx) = watch::channel(false);
    let task = scanner(&t, RuleView::fixed([("/data/tmp".to_string(), ttl(1))])).spawn(Duration::from_secs(3600), rx);
    drop(tx);
    task.await.unwrap();
}
