//! Jobs while workers die and come back (issue 13, "jobs that survive worker churn"): a worker killed
//! mid-load leaves the ring and its files load onto their new owners; one back in time gets its own files;
//! a free reaches a worker restarted on another port (the same worker, wherever it serves now; a
//! rebalance's target the same: `rebalance_jobs`). Every job ends `SUCCEEDED`, with the cache as the job says.

use crate::jobs_load::tree;
use loam_testsupport::cluster::{Cluster, Isolated, holds};
use std::time::Duration;

/// Three workers whose leases expire 2 s after their last renewal, and jobs that retry an unreachable
/// worker for 8 s; the third worker runs on a runtime of its own, so that it can be killed at once.
pub(crate) async fn churn_cluster() -> (Cluster, loam_testsupport::cluster::Isolated) {
    churn_cluster_with(Duration::from_secs(2), Duration::from_secs(8)).await
}

/// [`churn_cluster`] with leases of `lease_ttl` and jobs that retry for `retry_window`.
async fn churn_cluster_with(
    lease_ttl: Duration,
    retry_window: Duration,
) -> (Cluster, loam_testsupport::cluster::Isolated) {
    let opts = loam_testsupport::cluster::Options {
        lease_ttl: Some(lease_ttl),
        job_retry_window: Some(retry_window),
        ..crate::jobs(2)
    };
    let c = Cluster::start(opts).await;
    let third = c.start_isolated(2).await;
    c.wait_for_ring(3).await;
    (c, third)
}

/// Loads `/data` (one file per batch, verified) while `during` kills the third worker; the job's end.
async fn load_through(c: &Cluster, during: impl std::future::Future<Output = ()>) -> serde_json::Value {
    c.faulty().set_read_delay(Some(Duration::from_millis(20)));
    let body = r#"{"paths": ["/data"], "options": {"batchSize": 1, "verify": true}}"#;
    let (_, v) = c.call("POST", "/api/v1/load", Some(body)).await;
    let id = v["id"].as_str().unwrap().to_string();
    c.wait_for("load", &id, |v| v["loadedNonEmptyFiles"].as_u64() >= Some(3)).await;
    during.await;
    let v = c.wait_end("load", &id).await;
    c.faulty().set_read_delay(None);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_load_leaves_the_ring_and_its_files_load_onto_their_new_owners() {
    let (c, mut third) = churn_cluster().await;
    let files = tree(&c, 45);
    // Killed without a word: it stays on the ring until its lease expires, and its batches fail meanwhile.
    let v = load_through(&c, async { third.kill() }).await;
    assert_eq!((v["state"].as_str(), v["failedFiles"].as_u64()), (Some("SUCCEEDED"), Some(0)), "{v}");
    // Every file is cached on its owner on the ring of the two live workers.
    let ring = loam_coordinator::jobs::workers::ring(&c.worker_endpoints());
    for (uri, _) in &files {
        let owner = ring.lookup(uri, 1)[0].1.id;
        let holders: Vec<_> = c.holders(uri).into_iter().map(|i| c.worker(i).id).collect();
        assert_eq!(holders, vec![owner], "{uri}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_load_and_back_in_time_gets_its_own_files() {
    let (c, mut third) = churn_cluster().await;
    tree(&c, 45);
    let c = &c;
    let v = load_through(c, async {
        third.kill();
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The same data directory: the same identity, back before its lease ran out.
        third = c.start_isolated(2).await;
    })
    .await;
    // `verify` asked each file's owner on the ring, the restarted worker included, for every page.
    assert_eq!((v["state"].as_str(), v["failedFiles"].as_u64()), (Some("SUCCEEDED"), Some(0)), "{v}");
    drop(third);
}

pub(crate) fn the_third(third: &Isolated) -> &loam_worker::WorkerHandle {
    third.handle.as_ref().expect("the third worker runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_free_reaches_a_worker_restarted_on_another_port() {
    // A lease long enough that the killed worker is still ONLINE when the free starts, so the free must
    // reach it (a worker already OFFLINE then is not asked: it is not among the live workers).
    let (c, mut third) = churn_cluster_with(Duration::from_secs(6), Duration::from_secs(15)).await;
    let files = tree(&c, 30);
    let (_, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"sync": true}}"#)).await;
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    let held = files.iter().filter(|(uri, _)| holds(the_third(&third), uri)).count();
    assert!(held > 0, "the third worker holds some files");
    // Killed before the free is sent (its port closed), back on another port while the free retries.
    let addr = the_third(&third).http_addr;
    third.kill();
    wait_refused(addr).await;
    let c = &c;
    let free = c.call("POST", "/api/v1/free", Some(r#"{"paths": ["/data"], "options": {"sync": true}}"#));
    let restart = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        third = c.start_isolated(2).await;
    };
    let ((_, v), ()) = tokio::join!(free, restart);
    assert_eq!((v["state"].as_str(), v["failedFiles"].as_u64()), (Some("SUCCEEDED"), Some(0)), "{v}");
    // The restarted worker came back with its cache, and the free reached it there.
    for (uri, _) in &files {
        assert!(!holds(the_third(&third), uri), "{uri} is still cached on the restarted worker");
        assert_eq!(c.holders(uri), Vec::<usize>::new(), "{uri}");
    }
}

/// Waits until nothing accepts connections at `addr` (a killed worker's runtime closes its sockets in the
/// background).
pub(crate) async fn wait_refused(addr: std::net::SocketAddr) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "{addr} still accepts connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
