//! `GET /api/v1/nodes/stats` over real workers (in-process, real HTTP, one store): each worker's
//! `/v1/stats` as its page store holds it, the cluster's totals, a stopped worker listed with an error
//! while the totals cover the others, and a worker that accepts connections but never answers, which
//! costs the answer no more than the timeout (it comes back, with an error for that worker).

use crate::cluster;
use crate::rebalance_jobs::{dead_worker, loaded};
use loam_core::stats_api::{ClusterStats, ClusterTotals, WorkerStats};
use loam_testsupport::cluster::Cluster;

async fn stats(c: &Cluster) -> ClusterStats {
    let (s, v) = c.call("GET", "/api/v1/nodes/stats", None).await;
    assert_eq!(s, 200, "{v}");
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"))
}

fn of<'a>(all: &'a ClusterStats, id: &str) -> &'a WorkerStats {
    let w = all.workers.iter().find(|w| w.identity == id).unwrap_or_else(|| panic!("{id} in {all:?}"));
    w.stats.as_ref().unwrap_or_else(|| panic!("stats of {id}: {:?}", w.error))
}

#[tokio::test]
async fn every_worker_answers_its_page_store_and_the_totals_sum_them_without_a_stopped_one() {
    let mut c = cluster(2).await;
    let files = loaded(&c, 6).await;
    // A read of a loaded file through its holder: hits.
    let (uri, data) = files.iter().find(|(_, d)| !d.is_empty()).unwrap();
    let holder = c.holders(uri)[0];
    assert_eq!(&c.range(holder, uri, 0, data.len() as u64).await, data);

    let all = stats(&c).await;
    assert_eq!(all.workers.len(), 2);
    for i in 0..2 {
        let w = c.worker(i);
        let s = of(&all, &w.id.to_string());
        // The worker's own endpoint answers the same page store.
        let direct: WorkerStats = c.get(i, "/v1/stats").await.json().await.unwrap();
        let u = w.state.pages.usage();
        for s in [s, &direct] {
            assert_eq!((s.memory.used_bytes, s.disk.used_bytes), (u.memory_bytes, u.disk_bytes), "{s:?}");
            assert_eq!((s.memory.pages, s.disk.pages, s.cached_files), (u.memory_pages, u.disk_pages, u.files));
            assert_eq!(s.version, env!("CARGO_PKG_VERSION"));
            assert!(s.start_time_ms > 0 && s.memory.capacity_bytes > 0 && s.disk.capacity_bytes > 0, "{s:?}");
            assert_eq!(s.dirs.len(), 1, "{s:?}");
            let d = &s.dirs[0];
            assert!(d.healthy && d.problem.is_none() && d.errors == 0, "{d:?}");
            assert_eq!((d.used_bytes, d.capacity_bytes), (s.disk.used_bytes, s.disk.capacity_bytes));
        }
        assert!(!all.workers[i].address.is_empty());
    }
    let t = &all.totals;
    let answered: Vec<&WorkerStats> = all.workers.iter().filter_map(|w| w.stats.as_ref()).collect();
    assert_eq!(t, &ClusterTotals::sum(answered));
    let held: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    assert!(t.used_bytes >= held && t.disk.used_bytes >= held, "every loaded byte is cached: {t:?}");
    assert!(t.page_hits >= 1 && t.hit_ratio.is_some() && t.served_bytes >= data.len() as u64, "{t:?}");
    assert_eq!(t.workers_answered, 2);

    // Worker 1 stops: its entry says why, and the totals are worker 0's alone.
    let (gone, stays) = (c.worker(1).id.to_string(), c.worker(0).id.to_string());
    c.kill_worker(1).await;
    let all = stats(&c).await;
    let entry = all.workers.iter().find(|w| w.identity == gone).expect("still registered");
    assert!(entry.stats.is_none() && entry.error.as_deref().is_some_and(|e| !e.is_empty()), "{entry:?}");
    assert_eq!(all.totals, ClusterTotals::sum([of(&all, &stays)]));
    assert_eq!(all.totals.workers_answered, 1);
}

#[tokio::test]
async fn a_worker_that_never_answers_gets_an_error_and_the_others_their_stats() {
    let c = cluster(1).await;
    // Registered, ONLINE, and its port accepts connections (the kernel's backlog) but nothing answers.
    let (hung, _lease) = dead_worker(&c).await;
    let _silent = std::net::TcpListener::bind(("127.0.0.1", hung.http_port)).unwrap();
    let all = stats(&c).await;
    assert_eq!(all.workers.len(), 2, "{all:?}");
    let entry = all.workers.iter().find(|w| w.identity == hung.id.to_string()).unwrap();
    assert_eq!(entry.status, "ONLINE");
    assert!(entry.stats.is_none() && entry.error.is_some(), "{entry:?}");
    of(&all, &c.worker(0).id.to_string());
    assert_eq!(all.totals.workers_answered, 1);
}
