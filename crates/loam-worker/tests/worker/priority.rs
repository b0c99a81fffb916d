//! Priority eviction: the page store evicts `low` before `medium` before `high` (LRU within a level),
//! refuses data below everything a full tier holds, re-levels cached files when the rules change, and a
//! real worker follows the priority rules in the cluster store.

use crate::one_worker;
use bytes::Bytes;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_core::rules::{Priority, PriorityRule, StoredRule};
use loam_core::store_keys::rule_key;
use loam_page_store::metrics::PageStoreMetrics;
use loam_page_store::{FileRecord, PageStore, PageStoreConfig};
use loam_testsupport::data::pattern;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const PS: u64 = 64;

/// A memory-only store of four pages whose priorities come from `levels` (by URI; `medium` otherwise).
fn store(levels: Arc<Mutex<HashMap<String, Priority>>>) -> Arc<PageStore> {
    let cfg = PageStoreConfig { page_size: PS, memory_capacity: 4 * PS, disk_dirs: Vec::new(), disk_capacity: 0 };
    let s = PageStore::open(cfg, PageStoreMetrics::default()).unwrap();
    s.set_priority_source(Arc::new(move |uri: &str| levels.lock().get(uri).copied().unwrap_or_default()));
    s
}

/// Caches a one-page file at `uri`; returns whether the page was admitted.
async fn cache(s: &PageStore, uri: &str) -> bool {
    let rec = FileRecord::new(uri, PS, Some("e".into()), Some(1), 1);
    s.put_file(rec).await.unwrap();
    s.put_page(&loam_core::file_id(uri), 0, Bytes::from(vec![1u8; PS as usize])).await.unwrap()
}

fn held(s: &PageStore, uri: &str) -> bool {
    s.has_page(&loam_core::file_id(uri), 0)
}

#[tokio::test]
async fn low_goes_before_medium_before_high_and_lru_decides_within_a_level() {
    let levels = Arc::new(Mutex::new(HashMap::new()));
    for (uri, p) in [("s3://b/h1", Priority::High), ("s3://b/h2", Priority::High), ("s3://b/l1", Priority::Low)] {
        levels.lock().insert(uri.to_string(), p);
    }
    let s = store(levels.clone());
    for uri in ["s3://b/h1", "s3://b/h2", "s3://b/m1", "s3://b/l1"] {
        assert!(cache(&s, uri).await, "{uri}");
    }
    assert_eq!(s.priority(&loam_core::file_id("s3://b/h1")), Some(Priority::High));
    // The low page goes first although the high ones are older.
    assert!(cache(&s, "s3://b/m2").await);
    assert!(!held(&s, "s3://b/l1") && held(&s, "s3://b/h1") && held(&s, "s3://b/m1"));
    // Within medium, the least recently used goes.
    assert!(cache(&s, "s3://b/m3").await);
    assert!(!held(&s, "s3://b/m1") && held(&s, "s3://b/m2") && held(&s, "s3://b/h1") && held(&s, "s3://b/h2"));
    // Low data is lower than everything cached on this full store: not admitted, nothing evicted.
    levels.lock().insert("s3://b/l2".into(), Priority::Low);
    assert!(!cache(&s, "s3://b/l2").await);
    for uri in ["s3://b/h1", "s3://b/h2", "s3://b/m2", "s3://b/m3"] {
        assert!(held(&s, uri), "{uri}");
    }
}

#[tokio::test]
async fn a_rule_change_re_levels_cached_files() {
    let levels = Arc::new(Mutex::new(HashMap::new()));
    let s = store(levels.clone());
    for uri in ["s3://b/a", "s3://b/b", "s3://b/c", "s3://b/d"] {
        assert!(cache(&s, uri).await);
    }
    // `a` is the least recently used medium page; made high, it survives and `b` goes instead.
    levels.lock().insert("s3://b/a".into(), Priority::High);
    assert_eq!(s.reprioritize(), 1);
    assert_eq!(s.reprioritize(), 0, "nothing changed since");
    assert!(cache(&s, "s3://b/e").await);
    assert!(held(&s, "s3://b/a") && !held(&s, "s3://b/b"));
    // Made low, `d` (the newest) goes next.
    levels.lock().insert("s3://b/d".into(), Priority::Low);
    s.reprioritize();
    assert!(cache(&s, "s3://b/f").await);
    assert!(!held(&s, "s3://b/d") && held(&s, "s3://b/c"));
}

#[tokio::test]
async fn a_worker_follows_the_priority_rules_in_the_store() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let uri = t.write("hot/a", &pattern(100, 1));
    let other = t.write("cold/b", &pattern(100, 2));
    t.range(0, &uri, 0, 100).await;
    t.range(0, &other, 0, 100).await;
    let pages = t.worker(0).state.rt.pages().clone();
    let level = |u: &str| pages.priority(&loam_core::file_id(u));
    assert_eq!(level(&uri), Some(Priority::Medium));

    let rule = StoredRule::new("/data/hot".into(), PriorityRule { priority: Priority::High });
    let key = rule_key(DEFAULT_CLUSTER_NAME, "priority", "/data/hot");
    t.store.put(&key, serde_json::to_vec(&rule).unwrap().into(), None).await.unwrap();
    while level(&uri) != Some(Priority::High) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(level(&other), Some(Priority::Medium));
    // Data cached after the rule gets its level at once.
    let later = t.write("hot/c", &pattern(10, 3));
    t.range(0, &later, 0, 10).await;
    assert_eq!(level(&later), Some(Priority::High));

    t.store.delete(&key).await.unwrap();
    while level(&uri) != Some(Priority::Medium) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_priority_follower_stops_on_shutdown() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let rt = &t.worker(0).state.rt;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let rules = loam_worker::rules::rule_view::RuleView::<PriorityRule>::default();
    let task = loam_worker::rules::priority::follow(rt.pages().clone(), rules.clone(), rt.mounts().clone(), rx);
    tx.send(true).unwrap();
    task.await.unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = loam_worker::rules::priority::follow(rt.pages().clone(), rules, rt.mounts().clone(), rx);
    drop(tx);
    task.await.unwrap();
}

#[tokio::test]
async fn a_page_refused_by_the_disk_tier_leaves_no_page_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = PageStoreConfig {
        page_size: PS,
        memory_capacity: 0,
        disk_dirs: vec![dir.path().to_path_buf()],
        disk_capacity: 2 * PS,
    };
    let s = PageStore::open(cfg, PageStoreMetrics::default()).unwrap();
    s.set_priority_source(Arc::new(|uri: &str| if uri.ends_with("low") { Priority::Low } else { Priority::High }));
    assert!(cache(&s, "s3://b/h1").await && cache(&s, "s3://b/h2").await);
    assert!(!cache(&s, "s3://b/low").await);
    assert_eq!(crate::files_under(dir.path()).iter().filter(|p| p.extension().is_some_and(|e| e == "page")).count(), 2);
    assert!(held(&s, "s3://b/h1") && held(&s, "s3://b/h2") && !held(&s, "s3://b/low"));
}
