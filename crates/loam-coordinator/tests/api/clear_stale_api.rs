//! `/api/v1/cache` (clear stale cache): status codes, per-worker errors, and 3 → 4 workers, where
//! clear-stale drops exactly the files whose ring owner moved to the new worker and nothing else.

use crate::{PAGE, cluster};
use loam_client::WorkerEndpoint;
use loam_core::WorkerId;
use loam_core::membership::{DEFAULT_CLUSTER_NAME, WorkerRecord};
use loam_testsupport::cluster::Cluster;
use loam_testsupport::coordinator::status_text;
use loam_testsupport::data::pattern;
use std::time::{Duration, Instant};

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn status_codes_and_per_worker_errors() {
    let c = cluster(1).await;
    for m in ["POST", "DELETE"] {
        for bad in ["", "{", r#"{"other": 1}"#, r#"{"op": 5}"#, r#"{"op": "clear-stale", "replicas": 0}"#] {
            let (s, v) = c.call(m, "/api/v1/cache", Some(bad)).await;
            assert_eq!(s, 400, "{m} {bad}: {v}");
        }
        let (s, v) = c.call(m, "/api/v1/cache", Some(r#"{"op": "clear-all"}"#)).await;
        assert_eq!((s, status_text(&v)), (501, "OP not implemented"));
        let (s, v) = c.call(m, "/api/v1/cache", Some(r#"{"op": "clear-stale"}"#)).await;
        assert_eq!((s, v), (200, serde_json::json!({"errors": {}})), "{m}");
    }
    // A registered worker that does not answer is reported by host:port; the others still accept.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let record = WorkerRecord::new(WorkerId::random(), "127.0.0.1", port, 0);
    let _member =
        loam_store::membership::register(c.store.clone(), DEFAULT_CLUSTER_NAME, record, Duration::from_secs(30))
            .await
            .unwrap();
    let (s, v) = c.call("POST", "/api/v1/cache", Some(r#"{"op": "clear-stale"}"#)).await;
    assert_eq!(s, 200);
    let errors = v["errors"].as_object().unwrap();
    assert_eq!(errors.keys().collect::<Vec<_>>(), vec![&format!("127.0.0.1:{port}")], "{v}");
    assert!(errors.values().all(|e| e.as_str().unwrap().contains("unreachable")), "{v}");
    let (s, v) = c.call("DELETE", "/api/v1/cache", Some(r#"{"op": "clear-stale"}"#)).await;
    assert_eq!((s, v["errors"].as_object().unwrap().len()), (200, 1));
}

#[tokio::test]
async fn after_a_fourth_worker_joins_clear_stale_drops_exactly_the_moved_files() {
    let mut c = cluster(3).await;
    let old_ring = loam_coordinator::jobs::workers::ring(&endpoints(&c));
    // Each file is cached on its primary owner under the 3-worker ring.
    let mut placed = Vec::new();
    for i in 0..40 {
        let uri = c.write(&format!("f{i}"), &pattern(PAGE as usize, i as u8));
        let (_, owner) = old_ring.primary(&uri).unwrap();
        let idx = c.workers.iter().position(|w| w.as_ref().is_some_and(|w| w.id == owner.id)).unwrap();
        c.range(idx, &uri, 0, PAGE).await;
        placed.push((uri, idx));
    }
    // The fourth worker, configured as the others. Its share of the ring is random (5 points each, as
    // Alluxio): one that would take none of the files leaves again and another joins (about 1 in 400).
    let (expected, moved) = loop {
        let d = c.add_worker().await;
        let new_ring = loam_coordinator::jobs::workers::ring(&endpoints(&c));
        let expected: Vec<(String, usize, bool)> = placed
            .iter()
            .map(|(uri, idx)| {
                let (_, owner) = new_ring.primary(uri).unwrap();
                (uri.clone(), *idx, owner.id == c.workers[*idx].as_ref().unwrap().id)
            })
            .collect();
        let moved = expected.iter().filter(|(_, _, kept)| !kept).count();
        if moved > 0 {
            break (expected, moved);
        }
        c.kill_worker(d).await;
    };
    assert!(moved < placed.len(), "the new worker took some files, not all ({moved})");
    let live: Vec<_> = c.live().iter().map(|w| w.state.members.clone()).collect();
    eventually("every worker sees 4 members", || live.iter().all(|m| m.ring().len() == 4)).await;

    let (s, v) = c.call("POST", "/api/v1/cache", Some(r#"{"op": "clear-stale"}"#)).await;
    assert_eq!((s, v), (200, serde_json::json!({"errors": {}})));
    let held = |uri: &str, idx: usize| c.worker(idx).state.rt.pages().file(&loam_core::file_id(uri)).is_some();
    eventually("the moved files are dropped", || expected.iter().filter(|(u, i, _)| !held(u, *i)).count() == moved)
        .await;
    for (uri, idx, kept) in &expected {
        assert_eq!(held(uri, *idx), *kept, "{uri} on worker {idx}");
    }
}

fn endpoints(c: &Cluster) -> Vec<WorkerEndpoint> {
    c.worker_endpoints()
}
