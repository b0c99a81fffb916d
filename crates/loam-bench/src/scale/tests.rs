//! The pieces of `loam-bench scale` at small N, on a real etcd and a real Coordinator: behaviour only,
//! no timing.

use super::planning::{self, GeneratedUfs, file_uri};
use super::standins::StandIns;
use futures::StreamExt;
use loam_client::{MembershipView, WorkerEndpoint};
use loam_core::hash_ring::DEFAULT_VIRTUAL_NODES;
use loam_store::{ClusterStore, EtcdOptions, EtcdStore};
use loam_testsupport::EtcdServer;
use loam_ufs::{ListOptions, Ufs, UfsError};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

const CLUSTER: &str = "scale-test";

async fn connect(etcd: &EtcdServer) -> Arc<dyn ClusterStore> {
    EtcdStore::connect(vec![etcd.endpoint()], EtcdOptions::default()).await.expect("connect to etcd")
}

fn ids(ws: &[WorkerEndpoint]) -> BTreeSet<String> {
    ws.iter().map(|w| w.id.to_string()).collect()
}

/// Waits (without a deadline of its own: nextest's slow-test timeout is the limit) until `view`'s ring
/// is exactly `want`.
async fn until_ring_is(view: &MembershipView, want: &[WorkerEndpoint]) {
    loop {
        let ring: BTreeSet<String> = view.ring().members().map(|(_, w)| w.id.to_string()).collect();
        if ring == ids(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn twenty_stand_ins_register_on_a_real_etcd_and_a_client_ring_follows_them() {
    let etcd = EtcdServer::start();
    let mut standins = StandIns::new(connect(&etcd).await, CLUSTER);
    let (_tx, rx) = watch::channel(false);
    let (view, _task) =
        MembershipView::follow_store(connect(&etcd).await, CLUSTER, DEFAULT_VIRTUAL_NODES, rx).await.unwrap();
    standins.join(20).await.unwrap();
    until_ring_is(&view, &standins.live()).await;
    // Registered as a worker registers: both keys, listed by the same function the Coordinator uses.
    let members = loam_store::membership::list_workers(connect(&etcd).await.as_ref(), CLUSTER).await.unwrap();
    assert_eq!(members.len(), 20);
    assert!(members.iter().all(|m| m.online));
    // Two leave (their leases revoked), two join: the ring follows.
    standins.leave(0).await.unwrap();
    standins.leave(1).await.unwrap();
    standins.join(2).await.unwrap();
    let live = standins.live();
    assert_eq!(live.len(), 20);
    assert!(!ids(&live).contains(&standins.endpoints[0].id.to_string()));
    until_ring_is(&view, &live).await;
    standins.stop().await;
}

#[tokio::test]
async fn the_generated_listing_lists_each_file_once_and_stats_only_those() {
    let ufs = GeneratedUfs::new("file:///g/", 25_001);
    let listed: Vec<String> =
        ufs.list("file:///g", ListOptions { recursive: true, page_size: None }).map(|s| s.unwrap().uri).collect().await;
    assert_eq!(listed.len(), 25_001);
    assert_eq!(listed.iter().collect::<BTreeSet<_>>().len(), 25_001, "no name twice");
    assert_eq!(listed[25_000], file_uri("file:///g", 25_000));
    assert!(ufs.stat("file:///g").await.unwrap().is_dir);
    let st = ufs.stat(&listed[7]).await.unwrap();
    assert_eq!((st.is_dir, st.length), (false, planning::FILE_LENGTH));
    assert!(matches!(ufs.stat(&file_uri("file:///g", 25_001)).await, Err(UfsError::NotFound(_))));
    assert!(matches!(ufs.stat("file:///g/d0000/part-7.bin").await, Err(UfsError::NotFound(_))));
    assert!(ufs.read_range(&listed[0], 0, 1).await.is_err(), "it has no bytes");
}

#[tokio::test]
async fn a_coordinator_loads_each_listed_file_onto_its_owner_and_rebalances_onto_a_joiner() {
    const FILES: u64 = 2_000;
    let etcd = EtcdServer::start();
    let mut standins = StandIns::new(connect(&etcd).await, CLUSTER);
    standins.join(20).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (m, _tc) = planning::start_coordinator(connect(&etcd).await, CLUSTER, dir.path(), FILES).await.unwrap();
    let http = loam_testsupport::auth::client_with(loam_testsupport::auth::ALL_ROLES);

    let p = planning::load(&http, &m.base, 0).await.unwrap();
    assert_eq!((p.state.as_str(), p.loaded_non_empty_files, p.failed_files), ("SUCCEEDED", FILES, 0));
    // Each stand-in was sent exactly the files it owns on the ring of the live stand-ins.
    let before = standins.endpoints.clone();
    let owned = planning::holdings(&m.root, FILES, &before);
    for (k, files) in owned.files.iter().enumerate() {
        assert_eq!(standins.loads[k].load(Ordering::Relaxed), files.len() as u64, "stand-in {k}");
    }
    assert_eq!(standins.shared.loaded.load(Ordering::Relaxed), FILES);

    // One leaves (its cache with it), one joins; the others hold what they own on the ring before.
    let held: u64 = owned.files.iter().skip(1).map(|f| f.len() as u64).sum();
    let before_owner: Vec<usize> = {
        let mut o = vec![0; FILES as usize];
        owned.files.iter().enumerate().for_each(|(k, fs)| fs.iter().for_each(|i| o[*i as usize] = k));
        o
    };
    standins.leave(0).await.unwrap();
    let joined = standins.join(1).await.unwrap().start;
    standins.set_holdings(owned);
    let after = planning::holdings(&m.root, FILES, &standins.live());
    let live = standins.live();
    let joiner = live.iter().position(|w| w.id == standins.endpoints[joined].id).unwrap();
    let moved = after.files[joiner].iter().filter(|i| before_owner[**i as usize] != 0).count() as u64;
    assert!(moved > 0, "the joiner owns some of the files still held");
    let (_, _, r) = planning::rebalance(&http, &m.base).await.unwrap();
    assert_eq!(r.state, "SUCCEEDED", "{r:?}");
    assert_eq!(r.files_failed, 0);
    // Every held file is loaded (or kept) on its owner now; those the joiner took are pruned where they were.
    assert_eq!(r.files_loaded + r.files_preserved, held, "{r:?}");
    assert_eq!(r.files_loaded, moved, "only the files the joiner took are loaded: {r:?}");
    assert_eq!(r.files_pruned, moved, "{r:?}");
    standins.stop().await;
}

#[test]
fn etcd_grpc_counts_are_summed_by_method_over_codes() {
    let page = "# HELP grpc_server_handled_total Total number of RPCs completed on the server.\n\
        grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 40\n\
        grpc_server_handled_total{grpc_code=\"NotFound\",grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 2\n\
        grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"LeaseKeepAlive\",grpc_service=\"etcdserverpb.Lease\",grpc_type=\"bidi_stream\"} 1.5e+01\n\
        grpc_server_started_total{grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 99\n";
    let m = super::membership::parse_grpc_handled(page);
    assert_eq!(m.get("Range"), Some(&42));
    assert_eq!(m.get("LeaseKeepAlive"), Some(&15));
    assert_eq!(m.len(), 2, "started counters are not handled ones");
}
