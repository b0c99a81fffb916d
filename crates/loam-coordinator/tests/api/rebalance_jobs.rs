//! Rebalance jobs end to end, on real workers over real HTTP: a fourth worker joins a loaded three-worker
//! cluster and gets exactly the files that moved to it, copied from their old holders (no UFS read); ALL
//! with `skipPrune` keeps the old copies, ALL without it prunes them; a holder that is down makes the
//! target read the UFS instead; stop and resume, and a coordinator restart, count nothing twice. The
//! scenario runs on the embedded store and on etcd.

use crate::{PAGE, cluster, jobs};
use loam_client::WorkerEndpoint;
use loam_core::WorkerId;
use loam_core::cluster_ops_api::{CLUSTER_OPS_API_VERSION, IndexReport};
use loam_core::membership::{DEFAULT_CLUSTER_NAME, WorkerRecord};
use loam_store::ClusterStore;
use loam_store::membership::MembershipHandle;
use loam_store::{EtcdOptions, EtcdStore};
use loam_testsupport::cluster::{Cluster, Options, holds};
use loam_testsupport::data::pattern;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The live workers as the coordinator sees them.
fn endpoints(c: &Cluster) -> Vec<WorkerEndpoint> {
    c.worker_endpoints()
}

/// The files worker `i` counts as cached.
fn cached(c: &Cluster, i: usize) -> BTreeSet<String> {
    loam_worker::cluster::file_report::cached_uris(c.worker(i).state.rt.pages()).into_iter().collect()
}

/// Submits a rebalance and waits for it to end.
async fn rebalance(c: &Cluster, body: &str) -> Value {
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(body)).await;
    assert_eq!(s, 200, "{body}: {v}");
    c.wait_end("rebalance", v["id"].as_str().unwrap()).await
}

fn numbers(v: &Value, keys: &[&str]) -> Vec<u64> {
    keys.iter().map(|k| v[*k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))).collect()
}

/// A registered, live worker that answers nothing (its port is closed); keep the handle to stay live.
pub(crate) async fn dead_worker(c: &Cluster) -> (WorkerEndpoint, MembershipHandle) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let id = WorkerId::random();
    let record = WorkerRecord::new(id, "127.0.0.1", port, 0);
    let lease =
        loam_store::membership::register(c.store.clone(), DEFAULT_CLUSTER_NAME, record, Duration::from_secs(60))
            .await
            .unwrap();
    (WorkerEndpoint { id, host: "127.0.0.1".into(), http_port: port, s3_port: 0, tls: false }, lease)
}

/// Tells the coordinator's file index that `worker` holds `uris` (what its own reports would say).
async fn report(c: &Cluster, worker: WorkerId, uris: &[String]) {
    let body = IndexReport {
        version: CLUSTER_OPS_API_VERSION,
        worker: worker.to_string(),
        reset: false,
        added: uris.to_vec(),
        removed: vec![],
    };
    let (s, v) = c.call("POST", "/api/v1/internal/file_index", Some(&serde_json::to_string(&body).unwrap())).await;
    assert_eq!(s, 200, "{v}");
}

/// Writes files of `len` bytes until worker `target` of `ring` owns `n` of them; those files and their bytes.
fn files_owned_by(
    c: &Cluster,
    ring: &[WorkerEndpoint],
    target: WorkerId,
    n: usize,
    len: usize,
) -> Vec<(String, Vec<u8>)> {
    let ring = loam_coordinator::jobs::workers::ring(ring);
    let mut out = Vec::new();
    for i in 0.. {
        let data = pattern(len, i as u8);
        let uri = c.write(&format!("g{i}"), &data);
        if ring.primary(&uri).unwrap().1.id == target {
            out.push((uri, data));
            if out.len() == n {
                break;
            }
        }
    }
    out
}

/// Writes `n` files (an empty one and multi-page ones among them) and loads them; the files and bytes.
pub(crate) async fn loaded(c: &Cluster, n: usize) -> Vec<(String, Vec<u8>)> {
    let files: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let data = pattern((i % 4) * PAGE as usize + 37 * i, i as u8);
            (c.write(&format!("d{}/f{i:02}", i % 3), &data), data)
        })
        .collect();
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"sync": true}}"#)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");
    files
}

async fn a_fourth_worker_gets_exactly_the_moved_files(mut c: Cluster) {
    // A tree (an empty file and multi-page ones included) loaded onto three workers.
    let files = loaded(&c, 36).await;
    let old: Vec<usize> = files.iter().map(|(u, _)| c.holders(u)[0]).collect();

    // A new worker's share of the ring is random (5 points each, as Alluxio): one that would take none of
    // the files leaves again and another joins (about 1 in 300 takes none).
    let (d, ring, moved) = loop {
        let d = c.add_worker().await;
        let ring = loam_coordinator::jobs::workers::ring(&endpoints(&c));
        let moved: Vec<usize> =
            (0..files.len()).filter(|i| ring.primary(&files[*i].0).unwrap().1.id == c.worker(d).id).collect();
        if !moved.is_empty() {
            break (d, ring, moved);
        }
        c.kill_worker(d).await;
    };
    let d_id = c.worker(d).id;
    let owner = |uri: &str| {
        let id = ring.primary(uri).unwrap().1.id;
        c.workers.iter().position(|w| w.as_ref().is_some_and(|w| w.id == id))
    };
    assert!(moved.len() < files.len(), "the new worker took some files, not all");
    let moved_bytes: u64 = moved.iter().map(|i| files[*i].1.len() as u64).sum();
    let total_bytes: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    c.faulty().reset_counters();

    // Only the new worker: it loads exactly what moved to it, copied from the old holders.
    let v = rebalance(&c, &format!(r#"{{"target": "{d_id}"}}"#)).await;
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    let keys = ["filesLoaded", "bytesLoaded", "filesPreserved", "filesPruned", "filesFailed"];
    assert_eq!(numbers(&v, &keys), vec![moved.len() as u64, moved_bytes, 0, 0, 0], "{v}");
    assert_eq!(numbers(&v, &["totalWorkers", "succeededWorkers", "failedWorkers"]), vec![1, 1, 0], "{v}");
    let want: BTreeSet<String> = moved.iter().map(|i| files[*i].0.clone()).collect();
    assert_eq!(cached(&c, d), want);
    for &i in &moved {
        let (uri, data) = &files[i];
        assert_eq!(c.holders(uri), BTreeSet::from([old[i], d]).into_iter().collect::<Vec<_>>(), "{uri}");
        if !data.is_empty() {
            assert_eq!(&c.range(d, uri, 0, data.len() as u64).await, data);
        }
    }
    assert_eq!(c.faulty().read_calls(), 0, "every moved file was copied from its old holder");

    // ALL, skipPrune: every file is already where the ring wants it; the old copies stay.
    let v = rebalance(&c, r#"{"target": "ALL", "options": {"skipPrune": true}}"#).await;
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    let keys = ["filesLoaded", "filesPreserved", "bytesPreserved", "filesPruned", "totalWorkers", "succeededWorkers"];
    assert_eq!(numbers(&v, &keys), vec![0, files.len() as u64, total_bytes, 0, 4, 4], "{v}");
    for &i in &moved {
        assert_eq!(c.holders(&files[i].0).len(), 2);
    }

    // ALL: the old copies of the moved files are pruned, nothing else.
    let v = rebalance(&c, r#"{"target": "ALL"}"#).await;
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    let keys = ["filesLoaded", "filesPreserved", "filesPruned", "bytesPruned", "filesFailed"];
    assert_eq!(numbers(&v, &keys), vec![0, files.len() as u64, moved.len() as u64, moved_bytes, 0], "{v}");
    for (uri, _) in &files {
        assert_eq!(c.holders(uri), vec![owner(uri).unwrap()], "{uri}");
    }
    assert_eq!(c.faulty().read_calls(), 0);
}

#[tokio::test]
async fn a_fourth_worker_gets_exactly_the_moved_files_on_the_embedded_store() {
    a_fourth_worker_gets_exactly_the_moved_files(cluster(3).await).await;
}

#[tokio::test]
async fn a_fourth_worker_gets_exactly_the_moved_files_on_etcd() {
    let etcd = loam_testsupport::EtcdServer::start();
    let store = EtcdStore::connect(vec![etcd.endpoint()], EtcdOptions::default()).await.unwrap();
    a_fourth_worker_gets_exactly_the_moved_files(Cluster::start(Options { store: Some(store), ..jobs(3) }).await).await;
}

#[tokio::test]
async fn files_whose_holder_is_down_are_read_from_the_ufs() {
    let c = cluster(2).await;
    let (dead, _lease) = dead_worker(&c).await;
    let mut ring = endpoints(&c);
    ring.push(dead.clone());
    let a = c.worker(0).id;
    let owned = files_owned_by(&c, &ring, a, 8, 5 * PAGE as usize / 2);
    let uris: Vec<String> = owned.iter().map(|(u, _)| u.clone()).collect();
    // Half of worker 0's files are cached on worker 1; the index says the dead worker holds the others.
    let (copied, hinted) = uris.split_at(4);
    for (uri, data) in &owned[..4] {
        c.range(1, uri, 0, data.len() as u64).await;
    }
    report(&c, dead.id, hinted).await;
    c.faulty().reset_counters();

    let v = rebalance(&c, &format!(r#"{{"target": "{a}"}}"#)).await;
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    assert_eq!(numbers(&v, &["filesLoaded", "filesFailed", "filesPruned"]), vec![8, 0, 0], "{v}");
    for uri in copied {
        assert_eq!(c.faulty().reads_of(uri).calls, 0, "{uri} was copied from worker 1");
    }
    for uri in hinted {
        assert!(c.faulty().reads_of(uri).calls > 0, "{uri} could not be copied and was read from the UFS");
    }
    assert_eq!(cached(&c, 0), uris.iter().cloned().collect());
    c.faulty().reset_counters();
    for (uri, data) in &owned {
        assert_eq!(&c.range(0, uri, 0, data.len() as u64).await, data, "{uri}");
    }
    assert_eq!(c.faulty().read_calls(), 0, "served from worker 0's cache");
}

/// Two workers and a dead one that (by the index) holds `n` files worker 0 owns: a job that reads the UFS.
async fn slow_setup(n: usize) -> (Cluster, MembershipHandle, Vec<String>, String) {
    let c = cluster(2).await;
    let (dead, lease) = dead_worker(&c).await;
    let mut ring = endpoints(&c);
    ring.push(dead.clone());
    let a = c.worker(0).id;
    let owned: Vec<String> = files_owned_by(&c, &ring, a, n, PAGE as usize).into_iter().map(|(u, _)| u).collect();
    report(&c, dead.id, &owned).await;
    c.faulty().reset_counters();
    c.faulty().set_read_delay(Some(Duration::from_millis(100)));
    let body = format!(r#"{{"target": "{a}", "options": {{"loadBatchSize": 1}}}}"#);
    (c, lease, owned, body)
}

fn assert_each_read_once(c: &Cluster, owned: &[String]) {
    for uri in owned {
        assert!(c.faulty().reads_of(uri).bytes <= PAGE, "{uri} was read more than once");
        assert_eq!(c.holders(uri), vec![0], "{uri}");
    }
}

#[tokio::test]
async fn stop_then_resubmit_resumes_and_counts_nothing_twice() {
    let (c, _lease, owned, body) = slow_setup(12).await;
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(&body)).await;
    assert_eq!(s, 200);
    let id = v["id"].as_str().unwrap().to_string();
    c.wait_for("rebalance", &id, |v| v["filesLoaded"].as_u64() >= Some(2)).await;
    let (s, _) = c.call("DELETE", "/api/v1/rebalance", Some(&format!(r#"{{"id": "{id}"}}"#))).await;
    assert_eq!(s, 200);
    let v = c.wait_end("rebalance", &id).await;
    assert_eq!(v["state"], "STOPPED", "{v}");
    assert!(v["filesLoaded"].as_u64().unwrap() < owned.len() as u64, "{v}");
    c.faulty().set_read_delay(None);
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(&body)).await;
    assert_eq!((s, v["id"].as_str()), (409, Some(id.as_str())), "{v}");
    let v = c.wait_end("rebalance", &id).await;
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    assert_eq!(numbers(&v, &["filesLoaded", "bytesLoaded", "filesFailed"]), vec![12, 12 * PAGE, 0], "{v}");
    assert_each_read_once(&c, &owned);
}

#[tokio::test]
async fn a_restarted_coordinator_continues_the_rebalance() {
    let (mut c, _lease, owned, body) = slow_setup(12).await;
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(&body)).await;
    assert_eq!(s, 200);
    let id = v["id"].as_str().unwrap().to_string();
    c.wait_for("rebalance", &id, |v| v["filesLoaded"].as_u64() >= Some(2)).await;
    c.stop_coordinator().await;
    c.faulty().set_read_delay(None);
    c.start_coordinator().await;
    let v = c.wait_end("rebalance", &id).await;
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    assert_eq!(numbers(&v, &["filesLoaded", "bytesLoaded", "filesFailed"]), vec![12, 12 * PAGE, 0], "{v}");
    assert_eq!(numbers(&v, &["totalWorkers", "succeededWorkers"]), vec![1, 1], "{v}");
    assert_each_read_once(&c, &owned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_restarted_on_another_port_mid_rebalance_gets_its_files() {
    let (c, mut third) = crate::jobs_churn::churn_cluster().await;
    let target = crate::jobs_churn::the_third(&third).id;
    // The target lacks files it owns that a worker which answers nothing holds (by the index): the
    // rebalance reads them from the UFS, slowly, one per batch.
    let (dead, _lease) = dead_worker(&c).await;
    let mut ring = endpoints(&c);
    ring.push(WorkerEndpoint { id: target, ..dead.clone() });
    ring.push(dead.clone());
    let owned: Vec<String> = files_owned_by(&c, &ring, target, 8, PAGE as usize).into_iter().map(|(u, _)| u).collect();
    report(&c, dead.id, &owned).await;
    c.faulty().set_read_delay(Some(Duration::from_millis(200)));
    let body = format!(r#"{{"target": "{target}", "options": {{"loadBatchSize": 1}}}}"#);
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(&body)).await;
    assert_eq!(s, 200, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    c.wait_for("rebalance", &id, |v| v["filesLoaded"].as_u64() >= Some(1)).await;
    // Killed (its port closed) and back on another port, with its cache, before its lease runs out.
    let addr = crate::jobs_churn::the_third(&third).http_addr;
    third.kill();
    crate::jobs_churn::wait_refused(addr).await;
    third = c.start_isolated(2).await;
    let v = c.wait_end("rebalance", &id).await;
    c.faulty().set_read_delay(None);
    assert_eq!((v["state"].as_str(), v["filesFailed"].as_u64()), (Some("SUCCEEDED"), Some(0)), "{v}");
    for uri in &owned {
        assert!(holds(crate::jobs_churn::the_third(&third), uri), "{uri} is not on its owner, the restarted target");
    }
}

#[tokio::test]
async fn a_rebalances_stored_plan_is_deleted_with_the_job_at_retention() {
    let retention = Duration::from_secs(2);
    let c = Cluster::start(Options { job_retention: retention, ..jobs(1) }).await;
    c.write("r/f", &pattern(100, 1));
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data/r"], "options": {"sync": true}}"#)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");
    let v = rebalance(&c, r#"{"target": "ALL"}"#).await;
    assert_eq!((v["state"].as_str(), v["filesPreserved"].as_u64()), (Some("SUCCEEDED"), Some(1)), "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let prefix = loam_core::store_keys::rebalance_plan_prefix(DEFAULT_CLUSTER_NAME, &id);
    let keys = |store: Arc<dyn ClusterStore>| {
        let prefix = prefix.clone();
        async move { loam_store::list_all(store.as_ref(), &prefix).await.unwrap().len() }
    };
    assert_eq!(keys(c.store.clone()).await, 2, "a chunk and the header are stored");
    // Looked up past its retention, the job is dropped, and its plan with it.
    loop {
        let (s, _) = c.call("GET", &format!("/api/v1/rebalance?id={id}"), None).await;
        if s == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(keys(c.store.clone()).await, 0, "nothing is left under {prefix}");
}
