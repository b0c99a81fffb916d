//! Worker membership on the embedded store: registration, listing, a lost lease re-granted, recovery from
//! a store outage, shutdown, drop, and an admin's deregistration.

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use loam_core::WorkerId;
use loam_core::membership::{WorkerRecord, liveness_prefix};
use loam_store::membership::{MemberInfo, authorized_key, deregister, list_workers, liveness_key, register};
use loam_store::{
    CasOutcome, ClusterStore, EmbeddedStore, Expect, KeyValue, LeaseId, ListPage, Revision, StoreError, StoreResult,
    WatchEvent,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const CLUSTER: &str = "TestCluster";
/// A cap on waits for background work, so a broken loop fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(15);

fn record() -> WorkerRecord {
    WorkerRecord::new(WorkerId::random(), "10.0.0.5", 28080, 0)
}

fn store() -> Arc<EmbeddedStore> {
    EmbeddedStore::in_memory().expect("in-memory store")
}

async fn next(stream: &mut BoxStream<'static, StoreResult<WatchEvent>>) -> WatchEvent {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

async fn wait_until(what: &str, condition: impl FnMut() -> bool) {
    loam_testsupport::wait::until(what, WAIT, condition).await
}

#[tokio::test]
async fn a_registered_worker_is_listed_online() {
    let store = store();
    let rec = record();
    let id = rec.worker_id().expect("id");
    let handle = register(store.clone(), CLUSTER, rec.clone(), Duration::from_secs(10)).await.expect("register");
    assert!(handle.is_live());
    assert_eq!(handle.worker_id(), id);
    let workers = list_workers(store.as_ref(), CLUSTER).await.expect("list");
    assert_eq!(workers, vec![MemberInfo { record: rec.clone(), online: true }]);
    let auth = store.get(&format!("/DHT/{CLUSTER}/AUTHORIZED/{id}")).await.expect("get").expect("registration");
    assert_eq!(auth.lease, None, "the registration is permanent");
    let live = store.get(&format!("/ServiceDiscovery/{CLUSTER}/{id}")).await.expect("get").expect("liveness");
    assert!(live.lease.is_some(), "the liveness record is on a lease");
    let json: serde_json::Value = serde_json::from_slice(&live.value).expect("JSON");
    assert_eq!(json["ServiceEntityName"], id.to_string());
    assert_eq!(json["WorkerNetAddress"]["HttpServerPort"], 28080);
    assert!(list_workers(store.as_ref(), "OtherCluster").await.expect("list").is_empty());
    handle.shutdown().await.expect("shutdown");
    store.shutdown().await;
}

#[tokio::test]
async fn a_lost_lease_is_regranted() {
    let store = store();
    let rec = record();
    let id = rec.worker_id().expect("id");
    let handle = register(store.clone(), CLUSTER, rec, Duration::from_secs(1)).await.expect("register");
    let key = liveness_key(CLUSTER, &id);
    let first = store.get(&key).await.expect("get").expect("liveness").lease.expect("lease");
    let mut watch = store.watch(&key, store.revision().await.expect("revision")).await.expect("watch");
    store.revoke_lease(first).await.expect("revoke behind the handle's back");
    assert!(matches!(next(&mut watch).await, WatchEvent::Delete { .. }));
    match next(&mut watch).await {
        WatchEvent::Put(kv) => {
            let lease = kv.lease.expect("the re-put key is on a lease");
            assert_ne!(lease, first, "a new lease is granted");
            store.keep_alive(lease).await.expect("the new lease is live");
        }
        other => panic!("expected the liveness key to be put again, got {other:?}"),
    }
    let workers = list_workers(store.as_ref(), CLUSTER).await.expect("list");
    assert!(workers[0].online);
    handle.shutdown().await.expect("shutdown");
    store.shutdown().await;
}

/// The embedded store with a switch that makes every call fail as an unreachable etcd would.
struct Outage {
    store: Arc<EmbeddedStore>,
    down: AtomicBool,
}

impl Outage {
    fn check(&self) -> StoreResult<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("simulated outage".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl ClusterStore for Outage {
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        self.check()?;
        self.store.get(key).await
    }
    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> StoreResult<Revision> {
        self.check()?;
        self.store.put(key, value, lease).await
    }
    async fn delete(&self, key: &str) -> StoreResult<bool> {
        self.check()?;
        self.store.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> StoreResult<u64> {
        self.check()?;
        self.store.delete_prefix(prefix).await
    }
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StoreResult<ListPage> {
        self.check()?;
        self.store.list(prefix, start_after, limit).await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expect: Expect,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> StoreResult<CasOutcome> {
        self.check()?;
        self.store.compare_and_set(key, expect, value, lease).await
    }
    async fn grant_lease(&self, ttl: Duration) -> StoreResult<LeaseId> {
        self.check()?;
        self.store.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> StoreResult<()> {
        self.check()?;
        self.store.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> StoreResult<()> {
        self.check()?;
        self.store.revoke_lease(lease).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> StoreResult<BoxStream<'static, StoreResult<WatchEvent>>> {
        self.check()?;
        self.store.watch(prefix, after).await
    }
    async fn revision(&self) -> StoreResult<Revision> {
        self.check()?;
        self.store.revision().await
    }
}

#[tokio::test]
async fn the_worker_rejoins_after_a_store_outage_outlasting_its_lease() {
    let inner = store();
    let flaky = Arc::new(Outage { store: inner.clone(), down: AtomicBool::new(false) });
    let rec = record();
    let id = rec.worker_id().expect("id");
    let handle = register(flaky.clone(), CLUSTER, rec, Duration::from_secs(1)).await.expect("register");
    let key = liveness_key(CLUSTER, &id);
    let mut watch = inner.watch(&key, inner.revision().await.expect("revision")).await.expect("watch");
    flaky.down.store(true, Ordering::SeqCst);
    // Keepalives fail, so the lease expires and the worker drops out.
    assert!(matches!(next(&mut watch).await, WatchEvent::Delete { .. }));
    wait_until("the handle reports the worker not live", || !handle.is_live()).await;
    flaky.down.store(false, Ordering::SeqCst);
    match next(&mut watch).await {
        WatchEvent::Put(kv) => assert!(kv.lease.is_some()),
        other => panic!("expected the liveness key back, got {other:?}"),
    }
    wait_until("the handle reports the worker live again", || handle.is_live()).await;
    assert!(list_workers(inner.as_ref(), CLUSTER).await.expect("list")[0].online);
    handle.shutdown().await.expect("shutdown");
    inner.shutdown().await;
}

#[tokio::test]
async fn shutdown_turns_the_worker_offline_at_once_and_ends_the_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let store = store();
    let before = metrics.num_alive_tasks();
    let rec = record();
    let handle = register(store.clone(), CLUSTER, rec.clone(), Duration::from_secs(30)).await.expect("register");
    assert_eq!(metrics.num_alive_tasks(), before + 1, "registration runs one keepalive task");
    handle.shutdown().await.expect("shutdown");
    assert_eq!(metrics.num_alive_tasks(), before, "shutdown waits for the keepalive task to end");
    let workers = list_workers(store.as_ref(), CLUSTER).await.expect("list");
    assert_eq!(
        workers,
        vec![MemberInfo { record: rec, online: false }],
        "registered but OFFLINE, without waiting for the TTL"
    );
    store.shutdown().await;
}

#[tokio::test]
async fn dropping_the_handle_also_revokes_the_lease() {
    let store = store();
    let rec = record();
    let id = rec.worker_id().expect("id");
    let handle = register(store.clone(), CLUSTER, rec, Duration::from_secs(30)).await.expect("register");
    let key = liveness_key(CLUSTER, &id);
    let mut watch = store.watch(&key, store.revision().await.expect("revision")).await.expect("watch");
    drop(handle);
    match next(&mut watch).await {
        WatchEvent::Delete { key: deleted, .. } => assert_eq!(deleted, key),
        other => panic!("expected the liveness key's delete, got {other:?}"),
    }
    store.shutdown().await;
}

#[tokio::test]
async fn a_deregistered_worker_does_not_come_back_by_itself() {
    let store = store();
    let rec = record();
    let id = rec.worker_id().expect("id");
    let handle = register(store.clone(), CLUSTER, rec, Duration::from_secs(1)).await.expect("register");
    assert!(deregister(store.as_ref(), CLUSTER, &id).await.expect("deregister"));
    assert_eq!(store.get(&authorized_key(CLUSTER, &id)).await.expect("get"), None);
    // The keepalive notices the missing registration and gives up (it would stay live if it re-put).
    wait_until("the keepalive notices the deregistration", || !handle.is_live()).await;
    assert_eq!(store.get(&liveness_key(CLUSTER, &id)).await.expect("get"), None, "no liveness key comes back");
    assert!(list_workers(store.as_ref(), CLUSTER).await.expect("list").is_empty());
    assert!(!deregister(store.as_ref(), CLUSTER, &id).await.expect("deregister"), "nothing left to delete");
    handle.shutdown().await.expect("shutdown after removal");
    store.shutdown().await;
}

#[tokio::test]
async fn listing_merges_both_prefixes_sorted_and_skips_garbage() {
    let store = store();
    let records: Vec<WorkerRecord> = (0..4).map(|_| record()).collect();
    let json = |r: &WorkerRecord| Bytes::from(serde_json::to_vec(r).expect("encode"));
    let id = |r: &WorkerRecord| r.worker_id().expect("id");
    let (offline, online, live_only, garbage) = (&records[0], &records[1], &records[2], &records[3]);
    store.put(&authorized_key(CLUSTER, &id(offline)), json(offline), None).await.expect("put");
    store.put(&authorized_key(CLUSTER, &id(online)), json(online), None).await.expect("put");
    let lease = store.grant_lease(Duration::from_secs(30)).await.expect("grant");
    store.put(&liveness_key(CLUSTER, &id(online)), json(online), Some(lease)).await.expect("put");
    store.put(&liveness_key(CLUSTER, &id(live_only)), json(live_only), Some(lease)).await.expect("put");
    store.put(&authorized_key(CLUSTER, &id(garbage)), Bytes::from_static(b"{not json"), None).await.expect("put");
    store.put(&format!("{}x", liveness_prefix(CLUSTER)), Bytes::from_static(b"[]"), None).await.expect("put");

    let listed = list_workers(store.as_ref(), CLUSTER).await.expect("list");
    let mut expected = vec![
        MemberInfo { record: offline.clone(), online: false },
        MemberInfo { record: online.clone(), online: true },
        MemberInfo { record: live_only.clone(), online: true },
    ];
    expected.sort_by_key(|m| m.record.worker_id().map(|w| w.to_string()));
    assert_eq!(listed, expected, "sorted by worker id, undecodable values skipped");
    store.shutdown().await;
}
