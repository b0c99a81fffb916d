//! Workers that come and go cleanly, on real workers over real HTTP with the faulty UFS's counters: a
//! drained worker's files reach the owners of the ring without it, copied from it (no UFS read); a next
//! owner that is down fails its files and the rest still move; who may drain; `--auto-rebalance` moves
//! exactly what the ring moved when a fourth worker joins, and stops with the Coordinator.

use crate::rebalance_jobs::{dead_worker, loaded};
use crate::{cluster, jobs};
use loam_client::WorkerEndpoint;
use loam_coordinator::jobs::workers::ring;
use loam_core::WorkerId;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_testsupport::auth::{ADMIN, CLUSTER, READ, WRITE, anonymous_client, client_with};
use loam_testsupport::cluster::{Cluster, Options};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// The files worker `i` counts as cached.
fn cached(c: &Cluster, i: usize) -> BTreeSet<String> {
    loam_worker::cluster::file_report::cached_uris(c.worker(i).state.rt.pages()).into_iter().collect()
}

fn numbers(v: &Value, keys: &[&str]) -> Vec<u64> {
    keys.iter().map(|k| v[*k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))).collect()
}

async fn drain(c: &Cluster, id: WorkerId) -> Value {
    let (s, v) = c.call("POST", "/api/v1/nodes/drain", Some(&json!({ "id": id.to_string() }).to_string())).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// The ids of the rebalance jobs.
async fn jobs_now(c: &Cluster) -> Vec<String> {
    let (_, v) = c.call("GET", "/api/v1/rebalance", None).await;
    v["results"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()).collect()
}

/// The index in `c.workers` of the worker `id`.
fn index(c: &Cluster, id: WorkerId) -> usize {
    c.workers.iter().position(|w| w.as_ref().is_some_and(|w| w.id == id)).unwrap()
}

#[tokio::test]
async fn four_to_three_with_drain_keeps_every_cached_file_cached_on_its_new_owner() {
    let mut c = cluster(4).await;
    c.wait_for_ring(4).await;
    let files = loaded(&c, 40).await;
    // The worker holding the empty file leaves: an empty file is whole as soon as it is opened, and was
    // counted "present" on its next owner rather than moved (a regression).
    assert!(files[0].1.is_empty());
    let d = c.holders(&files[0].0)[0];
    let d_id = c.worker(d).id;
    let d_files = cached(&c, d);
    assert!(!d_files.is_empty());
    let rest: Vec<WorkerEndpoint> = c.worker_endpoints().into_iter().filter(|w| w.id != d_id).collect();
    let ring3 = ring(&rest);
    let d_bytes: u64 = files.iter().filter(|(u, _)| d_files.contains(u)).map(|(_, b)| b.len() as u64).sum();
    c.faulty().reset_counters();

    let v = drain(&c, d_id).await;
    let keys = ["files", "movedFiles", "movedBytes", "presentFiles", "failedFiles"];
    assert_eq!(numbers(&v, &keys), vec![d_files.len() as u64, d_files.len() as u64, d_bytes, 0, 0], "{v}");
    assert_eq!(v["worker"], d_id.to_string());
    assert_eq!(c.faulty().read_calls(), 0, "every file was copied from the leaving worker");
    let (_, node) = c.call("GET", &format!("/api/v1/nodes?id={d_id}"), None).await;
    assert_eq!(node["status"], "OFFLINE", "it left the ring first: {node}");
    // It still serves reads until it exits.
    let (uri, data) = files.iter().find(|(u, b)| d_files.contains(u) && !b.is_empty()).unwrap();
    assert_eq!(&c.range(d, uri, 0, data.len() as u64).await, data);

    c.kill_worker(d).await;
    for (uri, data) in &files {
        let owner = index(&c, ring3.primary(uri).unwrap().1.id);
        assert!(c.holders(uri).contains(&owner), "{uri} is cached on its owner of the 3-worker ring");
        if d_files.contains(uri) {
            assert_eq!(c.holders(uri), vec![owner], "{uri}");
            if !data.is_empty() {
                assert_eq!(&c.range(owner, uri, 0, data.len() as u64).await, data);
            }
        }
    }
    assert_eq!(c.faulty().read_calls(), 0, "nothing was read from the UFS");
}

#[tokio::test]
async fn a_next_owner_that_is_down_fails_its_files_and_the_rest_still_move() {
    let c = cluster(2).await;
    c.wait_for_ring(2).await;
    let files = loaded(&c, 30).await;
    let leaving = c.worker(0).id;
    let mine = cached(&c, 0);
    // A registered, live worker that answers nothing, which the ring without worker 0 gives some (not all)
    // of worker 0's files.
    let (dead, _lease, to_dead) = loop {
        let (dead, lease) = dead_worker(&c).await;
        let ring2 = ring(&[c.worker_endpoints()[1].clone(), dead.clone()]);
        let to_dead: BTreeSet<String> =
            mine.iter().filter(|u| ring2.primary(u).unwrap().1.id == dead.id).cloned().collect();
        if !to_dead.is_empty() && to_dead.len() < mine.len() {
            break (dead, lease, to_dead);
        }
        lease.shutdown().await.unwrap();
    };
    while !c.live().iter().all(|w| {
        let r = w.state.members.ring();
        r.len() == 3 && r.members().any(|(_, m)| m.id == dead.id)
    }) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.faulty().reset_counters();

    let v = drain(&c, leaving).await;
    let moved = (mine.len() - to_dead.len()) as u64;
    let keys = ["files", "movedFiles", "presentFiles", "failedFiles"];
    assert_eq!(numbers(&v, &keys), vec![mine.len() as u64, moved, 0, to_dead.len() as u64], "{v}");
    let failures = v["failures"].as_array().unwrap();
    let failed: BTreeSet<String> = failures.iter().map(|f| f["uri"].as_str().unwrap().to_string()).collect();
    assert_eq!(failed, to_dead);
    for f in failures {
        assert_eq!(f["owner"], dead.id.to_string(), "{f}");
        assert!(f["error"].as_str().unwrap().contains("unreachable"), "{f}");
    }
    for (uri, _) in &files {
        if mine.contains(uri) && !to_dead.contains(uri) {
            assert!(c.holders(uri).contains(&1), "{uri} moved to worker 1");
        }
    }
    assert_eq!(c.faulty().read_calls(), 0);
}

#[tokio::test]
async fn a_drain_needs_the_cluster_or_admin_role_and_names_a_registered_worker() {
    let c = cluster(2).await;
    c.wait_for_ring(2).await;
    let url = |i: usize| format!("{}/v1/drain", c.worker(i).http_base());
    for (http, want) in [
        (anonymous_client(), 401),
        (client_with("not-a-known-token-0123"), 401),
        (client_with(READ), 403),
        (client_with(WRITE), 403),
    ] {
        let r = http.post(url(0)).send().await.unwrap();
        assert_eq!(r.status(), want);
    }
    let online = || async {
        loam_store::membership::list_workers(c.store.as_ref(), DEFAULT_CLUSTER_NAME)
            .await
            .unwrap()
            .iter()
            .filter(|m| m.online)
            .count()
    };
    assert_eq!(online().await, 2, "a refused drain changed nothing");

    for (bad, want) in [
        (json!({"id": WorkerId::random().to_string()}), 404),
        (json!({"id": "worker-x"}), 400),
        (json!({}), 400),
        (json!({"id": c.worker(0).id.to_string(), "more": 1}), 400),
    ] {
        let (s, v) = c.call("POST", "/api/v1/nodes/drain", Some(&bad.to_string())).await;
        assert_eq!(s, want, "{bad}: {v}");
    }
    assert_eq!(online().await, 2, "a refused drain changed nothing");

    for (i, token) in [(0, ADMIN), (1, CLUSTER)] {
        let r = client_with(token).post(url(i)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["worker"], c.worker(i).id.to_string());
    }
    assert_eq!(online().await, 0, "both left the ring");
}

#[tokio::test]
async fn auto_rebalance_moves_exactly_the_files_the_ring_moved_to_a_fourth_worker() {
    let opts = Options { auto_rebalance: Some(Duration::from_millis(300)), ..jobs(3) };
    let mut c = Cluster::start(opts).await;
    c.wait_for_ring(3).await;
    let files = loaded(&c, 36).await;
    // The fourth worker's identity is chosen so that it takes some files, not all (5 ring points each:
    // a random worker may take none), so the membership changes once.
    let (id, ring4, moved) = loop {
        let id = WorkerId::random();
        let mut eps = c.worker_endpoints();
        eps.push(WorkerEndpoint { id, host: "127.0.0.1".into(), http_port: 1, s3_port: 0, tls: false });
        let ring4 = ring(&eps);
        let moved: Vec<usize> = (0..files.len()).filter(|i| ring4.primary(&files[*i].0).unwrap().1.id == id).collect();
        if !moved.is_empty() && moved.len() < files.len() {
            break (id, ring4, moved);
        }
    };
    let dir = c.config(3).data_dir;
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("worker-identity.json"), json!({"version": 1, "workerId": id.to_string()}).to_string())
        .unwrap();
    let moved_bytes: u64 = moved.iter().map(|i| files[*i].1.len() as u64).sum();
    let before: BTreeSet<String> = jobs_now(&c).await.into_iter().collect();
    c.faulty().reset_counters();

    let d = c.add_worker().await;
    assert_eq!(c.worker(d).id, id);
    // The first rebalance submitted after the join planned over the four workers.
    let job = loop {
        if let Some(j) = jobs_now(&c).await.into_iter().find(|j| !before.contains(j)) {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let v = c.wait_end("rebalance", &job).await;
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    assert_eq!(v["totalWorkers"], 4, "a rebalance of ALL over the four workers: {v}");
    let keys = ["filesLoaded", "bytesLoaded", "filesPruned", "bytesPruned", "filesFailed"];
    assert_eq!(numbers(&v, &keys), vec![moved.len() as u64, moved_bytes, moved.len() as u64, moved_bytes, 0], "{v}");
    assert_eq!(c.faulty().read_calls(), 0, "every moved file was copied from its old holder");
    for (uri, _) in &files {
        assert_eq!(c.holders(uri), vec![index(&c, ring4.primary(uri).unwrap().1.id)], "{uri}");
    }
    // The loop stops with the Coordinator (its serve waits for it).
    c.stop_coordinator().await;
}
