//! The etcd store on a real etcd (Debian's binary, started per test by `loam_testsupport::EtcdServer`):
//! every testkit behaviour (each as its own test, and all at once), then what only a remote store has to
//! get right: connecting while etcd is down, outages that yield `Unavailable` instead of hanging, watches
//! that end on a broken connection or a compacted revision, and worker membership across an etcd restart.

use futures::StreamExt;
use futures::stream::BoxStream;
use loam_core::WorkerId;
use loam_core::membership::WorkerRecord;
use loam_store::membership::{MemberInfo, list_workers, liveness_key, register};
use loam_store::{ClusterStore, EtcdOptions, EtcdStore, StoreError, StoreResult, WatchEvent, testkit};
use loam_testsupport::EtcdServer;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// A cap on waits for background work, so a broken store fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(20);
const CLUSTER: &str = "EtcdTestCluster";

async fn connect(server: &EtcdServer) -> Arc<EtcdStore> {
    EtcdStore::connect(vec![server.endpoint()], EtcdOptions::default()).await.expect("connect to etcd")
}

/// Options that give up quickly, for outage tests.
fn quick() -> EtcdOptions {
    EtcdOptions {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        ..Default::default()
    }
}

async fn next(stream: &mut BoxStream<'static, StoreResult<WatchEvent>>) -> Option<StoreResult<WatchEvent>> {
    tokio::time::timeout(WAIT, stream.next()).await.expect("the watch neither yielded nor ended")
}

async fn wait_until(what: &str, condition: impl FnMut() -> bool) {
    loam_testsupport::wait::until(what, WAIT, condition).await
}

macro_rules! behaviour {
    ($($name:ident),+ $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let server = EtcdServer::start();
            let store = connect(&server).await;
            testkit::$name(store.as_ref()).await;
        }
    )+};
}

every_behaviour!(behaviour);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_concurrently() {
    let server = EtcdServer::start();
    testkit::run_all(connect(&server).await).await;
}

#[tokio::test]
async fn endpoints_without_a_scheme_work_and_none_is_an_error() {
    let server = EtcdServer::start();
    let store = EtcdStore::connect(vec![format!("127.0.0.1:{}", server.port())], EtcdOptions::default())
        .await
        .expect("connect with host:port");
    let rev = store.put("/scheme/k", "v".into(), None).await.expect("put");
    assert_eq!(store.get("/scheme/k").await.expect("get").expect("key").mod_revision, rev);
    match EtcdStore::connect(Vec::new(), EtcdOptions::default()).await {
        Err(StoreError::Other(msg)) => assert!(msg.contains("no etcd endpoints"), "{msg}"),
        other => panic!("connecting to no endpoint must fail, got {other:?}"),
    }
    match EtcdStore::connect(vec!["http://not a host:2379".into()], EtcdOptions::default()).await {
        Err(StoreError::Other(msg)) => assert!(msg.contains("not a host"), "{msg}"),
        other => panic!("an endpoint that is no URL must fail, got {other:?}"),
    }
}

#[tokio::test]
async fn connecting_while_etcd_is_down_succeeds_and_requests_work_once_it_is_back() {
    let mut server = EtcdServer::start();
    server.stop();
    let store = EtcdStore::connect(vec![server.endpoint()], quick()).await.expect("connect while etcd is down");
    match store.get("/down/k").await {
        Err(e @ StoreError::Unavailable(_)) => assert_eq!(e.kind(), loam_core::ErrorKind::Unavailable),
        other => panic!("a request while etcd is down must be Unavailable, got {other:?}"),
    }
    assert!(matches!(store.grant_lease(Duration::from_secs(5)).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(store.watch("/down/", 0).await, Err(StoreError::Unavailable(_))));
    server.start_again();
    let rev = store.put("/down/k", "v".into(), None).await.expect("put once etcd is back");
    assert_eq!(store.get("/down/k").await.expect("get").expect("key").mod_revision, rev);
}

#[tokio::test]
async fn an_etcd_that_never_answers_is_unavailable_at_the_request_timeout() {
    // A listener that never accepts: the TCP connect succeeds (backlog), then nothing ever answers.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a silent listener");
    let endpoint = format!("http://{}", silent.local_addr().expect("address"));
    let store = EtcdStore::connect(vec![endpoint], quick()).await.expect("connect is lazy");
    let attempts = async {
        let get = store.get("/silent/k").await;
        let keep = store.keep_alive(1).await;
        let watch = store.watch("/silent/", 0).await.map(drop);
        (get, keep, watch)
    };
    // The cap is far above the 0.8 s request timeout: it only turns a hang into a failure.
    let (get, keep, watch) = tokio::time::timeout(WAIT, attempts).await.expect("requests to a silent etcd hung");
    for (what, result) in [("get", get.map(drop)), ("keep_alive", keep), ("watch", watch)] {
        match result {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("{what} on a silent etcd must be Unavailable, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_request_during_an_outage_is_unavailable_and_the_store_recovers() {
    let mut server = EtcdServer::start();
    let store = EtcdStore::connect(vec![server.endpoint()], quick()).await.expect("connect");
    store.put("/outage/k", "before".into(), None).await.expect("put before the outage");
    server.stop();
    let during = tokio::time::timeout(WAIT, store.put("/outage/k", "during".into(), None))
        .await
        .expect("a request during the outage hung");
    assert!(matches!(during, Err(StoreError::Unavailable(_))), "got {during:?}");
    server.start_again();
    let kv = store.get("/outage/k").await.expect("get after the restart").expect("the key survives a restart");
    assert_eq!(kv.value, "before".as_bytes(), "the failed put wrote nothing");
}

#[tokio::test]
async fn a_watch_ends_with_an_error_when_etcd_goes_away() {
    let mut server = EtcdServer::start();
    let store = connect(&server).await;
    let mut watch = store.watch("/gone/", 0).await.expect("watch");
    store.put("/gone/a", "1".into(), None).await.expect("put");
    assert!(matches!(next(&mut watch).await, Some(Ok(WatchEvent::Put(_)))));
    server.stop();
    match next(&mut watch).await {
        Some(Err(StoreError::Unavailable(_))) => {}
        other => panic!("a watch whose etcd went away must end with Unavailable, got {other:?}"),
    }
    assert!(next(&mut watch).await.is_none(), "nothing follows the error");
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_is_compacted() {
    let server = EtcdServer::start();
    let store = connect(&server).await;
    let first = store.put("/compact/a", "1".into(), None).await.expect("put");
    let last = store.put("/compact/a", "2".into(), None).await.expect("put");
    let mut admin = etcd_client::Client::connect([server.endpoint()], None).await.expect("admin client");
    admin.compact(last, None).await.expect("compact");
    match store.watch("/compact/", first - 1).await {
        Err(StoreError::Compacted(rev)) => assert_eq!(rev, first, "the first revision asked for is reported"),
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(_) => panic!("history before the compaction cannot be replayed"),
    }
    // From the compaction on, history is still there.
    let mut watch = store.watch("/compact/", last - 1).await.expect("watch from the compaction revision");
    match next(&mut watch).await {
        Some(Ok(WatchEvent::Put(kv))) => assert_eq!(kv.mod_revision, last),
        other => panic!("expected the last put, got {other:?}"),
    }
}

#[tokio::test]
async fn a_worker_stays_registered_across_an_etcd_restart() {
    let mut server = EtcdServer::start();
    let store: Arc<dyn ClusterStore> = EtcdStore::connect(vec![server.endpoint()], quick()).await.expect("connect");
    let record = WorkerRecord::new(WorkerId::random(), "10.0.0.7", 28080, 0);
    let id = record.worker_id().expect("id");
    let ttl = Duration::from_secs(2);
    let handle = register(store.clone(), CLUSTER, record.clone(), ttl).await.expect("register");
    let online = vec![MemberInfo { record: record.clone(), online: true }];
    assert_eq!(list_workers(store.as_ref(), CLUSTER).await.expect("list"), online);

    server.stop();
    wait_until("the keepalive notices the outage", || !handle.is_live()).await;
    // Down for longer than the TTL: etcd restores leases on restart (extending them), or the keepalive
    // re-grants one; either way the worker must come back.
    tokio::time::sleep(ttl).await;
    server.start_again();
    // No action: the keepalive loop alone brings the worker back.
    wait_until("the keepalive recovers after the restart", || handle.is_live()).await;
    assert_eq!(list_workers(store.as_ref(), CLUSTER).await.expect("list"), online);
    let live = store.get(&liveness_key(CLUSTER, &id)).await.expect("get").expect("the liveness key is back");
    store.keep_alive(live.lease.expect("on a lease")).await.expect("the liveness key's lease is alive");

    handle.shutdown().await.expect("shutdown");
    let offline = vec![MemberInfo { record, online: false }];
    assert_eq!(list_workers(store.as_ref(), CLUSTER).await.expect("list"), offline, "OFFLINE at once");
}

#[tokio::test]
async fn a_worker_whose_lease_is_revoked_gets_a_new_one() {
    let server = EtcdServer::start();
    let store = connect(&server).await;
    let record = WorkerRecord::new(WorkerId::random(), "10.0.0.8", 28080, 0);
    let key = liveness_key(CLUSTER, &record.worker_id().expect("id"));
    let handle = register(store.clone(), CLUSTER, record, Duration::from_secs(2)).await.expect("register");
    let first = store.get(&key).await.expect("get").expect("liveness").lease.expect("lease");
    let mut watch = store.watch(&key, store.revision().await.expect("revision")).await.expect("watch");
    store.revoke_lease(first).await.expect("revoke behind the handle's back");
    assert!(matches!(next(&mut watch).await, Some(Ok(WatchEvent::Delete { .. }))));
    match next(&mut watch).await {
        Some(Ok(WatchEvent::Put(kv))) => {
            let lease = kv.lease.expect("the re-put key is on a lease");
            assert_ne!(lease, first, "a new lease is granted");
            store.keep_alive(lease).await.expect("the new lease is live");
        }
        other => panic!("expected the liveness key to be put again, got {other:?}"),
    }
    handle.shutdown().await.expect("shutdown");
    assert_eq!(store.get(&key).await.expect("get"), None, "shutdown revokes the new lease too");
}
