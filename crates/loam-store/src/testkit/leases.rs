//! Lease behaviours: expiry deletes a lease's keys (and only those), keep-alive extends a lease, an expired
//! or revoked lease is gone for good. Expiry is awaited through a watch, never by sleeping a fixed time.

use super::{bytes, expect_delete, next_event, unique_prefix};
use crate::{ClusterStore, StoreError, WatchEvent};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;

/// The TTL of leases meant to expire during a behaviour.
const SHORT_TTL: Duration = Duration::from_secs(1);

/// Keys put on a lease vanish when it expires, with a watch `Delete` each; keys without it stay.
pub async fn lease_expiry_deletes_keys(store: &dyn ClusterStore) {
    let p = unique_prefix("lease-expiry");
    let lease = store.grant_lease(SHORT_TTL).await.expect("grant_lease");
    let (k1, k2, kept) = (format!("{p}k1"), format!("{p}k2"), format!("{p}kept"));
    store.put(&k1, bytes("1"), Some(lease)).await.expect("put on lease");
    store.put(&kept, bytes("k"), None).await.expect("put");
    let last = store.put(&k2, bytes("2"), Some(lease)).await.expect("put on lease");
    assert_eq!(store.get(&k1).await.expect("get").expect("k1").lease, Some(lease), "the key must carry its lease");

    let mut watch = store.watch(&p, last).await.expect("watch");
    let mut deleted = BTreeSet::new();
    while deleted.len() < 2 {
        match next_event(&mut watch, "the expired lease's deletes").await {
            WatchEvent::Delete { key, .. } => {
                assert!(key == k1 || key == k2, "only the lease's keys may be deleted, not {key}");
                deleted.insert(key);
            }
            other => panic!("expected the lease's deletes, got {other:?}"),
        }
    }
    assert_eq!(store.get(&k1).await.expect("get"), None);
    assert_eq!(store.get(&k2).await.expect("get"), None);
    assert!(store.get(&kept).await.expect("get").is_some(), "a key without the lease must survive its expiry");
}

/// A lease kept alive outlives its TTL, and so do its keys.
pub async fn keep_alive_extends(store: &dyn ClusterStore) {
    let p = unique_prefix("keep-alive");
    let ttl = Duration::from_secs(2);
    let lease = store.grant_lease(ttl).await.expect("grant_lease");
    let key = format!("{p}k");
    store.put(&key, bytes("v"), Some(lease)).await.expect("put on lease");
    let start = Instant::now();
    // Renew well inside the TTL for longer than one TTL; without renewals the key would be gone.
    while start.elapsed() < ttl + Duration::from_secs(1) {
        store.keep_alive(lease).await.expect("keep_alive on a live lease");
        tokio::time::sleep(ttl / 8).await;
    }
    let kv = store.get(&key).await.expect("get").expect("a kept-alive lease's key must still exist");
    assert_eq!(kv.lease, Some(lease));
    store.keep_alive(lease).await.expect("keep_alive on a live lease");
    store.revoke_lease(lease).await.expect("revoke");
}

/// Once a lease has expired, keep-alive and puts on it fail with `LeaseNotFound`.
pub async fn keep_alive_after_expiry(store: &dyn ClusterStore) {
    let p = unique_prefix("keep-alive-expired");
    let lease = store.grant_lease(SHORT_TTL).await.expect("grant_lease");
    let key = format!("{p}k");
    let rev = store.put(&key, bytes("v"), Some(lease)).await.expect("put on lease");
    let mut watch = store.watch(&p, rev).await.expect("watch");
    expect_delete(next_event(&mut watch, "the lease's expiry").await, &key);
    match store.keep_alive(lease).await {
        Err(StoreError::LeaseNotFound(id)) => assert_eq!(id, lease),
        other => panic!("keep_alive on an expired lease must fail with LeaseNotFound, got {other:?}"),
    }
    match store.put(&key, bytes("again"), Some(lease)).await {
        Err(StoreError::LeaseNotFound(_)) => {}
        other => panic!("a put on an expired lease must fail with LeaseNotFound, got {other:?}"),
    }
    assert_eq!(store.get(&key).await.expect("get"), None, "a failed put writes nothing");
}

/// Revoking deletes the lease's keys at once; the lease is then gone. A key re-put without the lease has
/// left it and survives.
pub async fn revoke_deletes_keys(store: &dyn ClusterStore) {
    let p = unique_prefix("revoke");
    let lease = store.grant_lease(Duration::from_secs(60)).await.expect("grant_lease");
    let (k1, k2, moved, plain) = (format!("{p}k1"), format!("{p}k2"), format!("{p}moved"), format!("{p}plain"));
    for k in [&k1, &k2, &moved] {
        store.put(k, bytes("v"), Some(lease)).await.expect("put on lease");
    }
    store.put(&plain, bytes("v"), None).await.expect("put");
    store.put(&moved, bytes("w"), None).await.expect("re-put without the lease");
    assert_eq!(store.get(&moved).await.expect("get").expect("moved").lease, None, "a put without a lease detaches");
    store.revoke_lease(lease).await.expect("revoke_lease");
    assert_eq!(store.get(&k1).await.expect("get"), None, "revoke deletes the lease's keys");
    assert_eq!(store.get(&k2).await.expect("get"), None, "revoke deletes the lease's keys");
    assert!(store.get(&moved).await.expect("get").is_some(), "a key moved off the lease must survive");
    assert!(store.get(&plain).await.expect("get").is_some(), "a key without the lease must survive");
    match store.keep_alive(lease).await {
        Err(StoreError::LeaseNotFound(_)) => {}
        other => panic!("keep_alive on a revoked lease must fail with LeaseNotFound, got {other:?}"),
    }
    match store.revoke_lease(lease).await {
        Err(StoreError::LeaseNotFound(_)) => {}
        other => panic!("revoking a revoked lease must fail with LeaseNotFound, got {other:?}"),
    }
}
