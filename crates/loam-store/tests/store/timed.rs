//! `TimedStore` over a real etcd: it changes no behaviour (every testkit behaviour passes through it),
//! it reports every call by operation, and it reports failures when etcd is down.

use loam_store::timed::{StoreObserver, StoreOp, TimedStore};
use loam_store::{ClusterStore, EtcdOptions, EtcdStore, Expect, testkit};
use loam_testsupport::EtcdServer;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Counts (successes, failures) by operation.
#[derive(Default)]
struct Recorder(Mutex<HashMap<StoreOp, (u64, u64)>>);

impl StoreObserver for Recorder {
    fn observe(&self, op: StoreOp, _elapsed: Duration, ok: bool) {
        let mut m = self.0.lock();
        let e = m.entry(op).or_default();
        if ok { e.0 += 1 } else { e.1 += 1 }
    }
}

impl Recorder {
    fn get(&self, op: StoreOp) -> (u64, u64) {
        self.0.lock().get(&op).copied().unwrap_or_default()
    }
}

async fn timed(server: &EtcdServer, opts: EtcdOptions) -> (Arc<dyn ClusterStore>, Arc<Recorder>) {
    let inner = EtcdStore::connect(vec![server.endpoint()], opts).await.expect("connect to etcd");
    let recorder = Arc::new(Recorder::default());
    (TimedStore::wrap(inner, recorder.clone()), recorder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_behaviour_passes_through_and_every_operation_is_reported() {
    let server = EtcdServer::start();
    let (store, recorder) = timed(&server, EtcdOptions::default()).await;
    testkit::run_all(store.clone()).await;
    for op in [StoreOp::Get, StoreOp::Put, StoreOp::Delete, StoreOp::DeletePrefix, StoreOp::List, StoreOp::Txn] {
        assert!(recorder.get(op).0 > 0, "{op:?} was not reported: {:?}", recorder.0.lock());
    }
    for op in [StoreOp::GrantLease, StoreOp::KeepAlive, StoreOp::RevokeLease, StoreOp::Watch, StoreOp::Revision] {
        assert!(recorder.get(op).0 > 0, "{op:?} was not reported");
    }
    // A compare-and-set that finds another state is an answer, not an error.
    let before = recorder.get(StoreOp::Txn);
    store.compare_and_set("/timed/k", Expect::Absent, "a".into(), None).await.unwrap();
    store.compare_and_set("/timed/k", Expect::Absent, "b".into(), None).await.unwrap();
    assert_eq!(recorder.get(StoreOp::Txn), (before.0 + 2, before.1));
}

#[tokio::test]
async fn calls_that_fail_are_reported_as_failures() {
    let mut server = EtcdServer::start();
    let quick = EtcdOptions {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        ..Default::default()
    };
    let (store, recorder) = timed(&server, quick).await;
    store.get("/timed/a").await.unwrap();
    assert_eq!(recorder.get(StoreOp::Get), (1, 0));
    assert!(store.keep_alive(0x7fff_0000).await.is_err(), "no such lease");
    assert_eq!(recorder.get(StoreOp::KeepAlive), (0, 1));
    server.stop();
    assert!(store.get("/timed/a").await.is_err());
    assert!(store.put("/timed/a", "x".into(), None).await.is_err());
    assert_eq!((recorder.get(StoreOp::Get), recorder.get(StoreOp::Put)), ((1, 1), (0, 1)));
}
