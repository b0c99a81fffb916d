//! Watch behaviours: live events arrive in revision order (including deletes by lease expiry), only for
//! the watched prefix; a watch from an earlier revision replays what happened since, then follows live.

use super::{bytes, expect_delete, expect_put, next_event, unique_prefix};
use crate::ClusterStore;
use std::time::Duration;

/// A watch from now sees puts, deletes and a lease expiry's delete, in order, and nothing outside its prefix.
pub async fn watch_in_order(store: &dyn ClusterStore) {
    let base = unique_prefix("watch-order");
    let p = format!("{base}w/");
    let sibling = format!("{base}wx");
    let mut watch = store.watch(&p, 0).await.expect("watch");
    let (a, b, c) = (format!("{p}a"), format!("{p}b"), format!("{p}c"));
    store.put(&sibling, bytes("not watched"), None).await.expect("put");
    let ra = store.put(&a, bytes("1"), None).await.expect("put");
    let rb = store.put(&b, bytes("2"), None).await.expect("put");
    assert!(store.delete(&a).await.expect("delete"));
    let lease = store.grant_lease(Duration::from_secs(1)).await.expect("grant_lease");
    let rc = store.put(&c, bytes("3"), Some(lease)).await.expect("put on lease");

    let put_a = expect_put(next_event(&mut watch, "put a").await, &a, "1");
    assert_eq!(put_a.mod_revision, ra);
    assert_eq!(put_a.create_revision, ra);
    let put_b = expect_put(next_event(&mut watch, "put b").await, &b, "2");
    assert_eq!(put_b.mod_revision, rb);
    let del_a = expect_delete(next_event(&mut watch, "delete a").await, &a);
    assert!(rb < del_a && del_a < rc, "the delete's revision {del_a} must fall between {rb} and {rc}");
    let put_c = expect_put(next_event(&mut watch, "put c").await, &c, "3");
    assert_eq!((put_c.mod_revision, put_c.lease), (rc, Some(lease)));
    let del_c = expect_delete(next_event(&mut watch, "c's lease expiry").await, &c);
    assert!(del_c > rc, "the expiry's revision {del_c} must follow the put's {rc}");
}

/// A watch after revision `r` replays every change after `r` under its prefix, in order, then goes live.
pub async fn watch_replays_from_revision(store: &dyn ClusterStore) {
    let p = unique_prefix("watch-replay");
    let (x, y, z) = (format!("{p}x"), format!("{p}y"), format!("{p}z"));
    let r1 = store.put(&x, bytes("1"), None).await.expect("put");
    let r2 = store.put(&y, bytes("2"), None).await.expect("put");
    assert!(store.delete(&x).await.expect("delete"));
    let r4 = store.put(&x, bytes("4"), None).await.expect("put");

    let mut full = store.watch(&p, r1 - 1).await.expect("watch from before the first put");
    let e1 = expect_put(next_event(&mut full, "replayed put x").await, &x, "1");
    assert_eq!((e1.create_revision, e1.mod_revision), (r1, r1));
    assert_eq!(expect_put(next_event(&mut full, "replayed put y").await, &y, "2").mod_revision, r2);
    let del = expect_delete(next_event(&mut full, "replayed delete x").await, &x);
    assert!(r2 < del && del < r4);
    let e4 = expect_put(next_event(&mut full, "replayed re-put x").await, &x, "4");
    assert_eq!(
        (e4.create_revision, e4.mod_revision),
        (r4, r4),
        "a re-created key replays with its new create_revision"
    );

    let mut partial = store.watch(&p, r2).await.expect("watch from the middle");
    assert_eq!(expect_delete(next_event(&mut partial, "replayed delete x").await, &x), del);
    expect_put(next_event(&mut partial, "replayed re-put x").await, &x, "4");

    let mut live_only = store.watch(&p, 0).await.expect("watch from now");
    let r5 = store.put(&z, bytes("5"), None).await.expect("put");
    for (stream, name) in [(&mut full, "full"), (&mut partial, "partial"), (&mut live_only, "live")] {
        let kv = expect_put(next_event(stream, &format!("live put z on the {name} watch")).await, &z, "5");
        assert_eq!(kv.mod_revision, r5, "the {name} watch must follow live after its replay");
    }
}
