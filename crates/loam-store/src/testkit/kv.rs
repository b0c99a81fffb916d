//! Key behaviours: get/put/delete, revisions, prefix listing and paging, compare-and-set.

use super::{bytes, unique_prefix};
use crate::{CasOutcome, ClusterStore, Expect};

/// Put then get; every put takes a new, higher revision; `revision()` is never behind a put's revision.
pub async fn get_put_revision(store: &dyn ClusterStore) {
    let p = unique_prefix("get-put-revision");
    let key = format!("{p}k");
    assert_eq!(store.get(&key).await.expect("get"), None, "a key never written must be absent");
    let before = store.revision().await.expect("revision");
    let r1 = store.put(&key, bytes("v1"), None).await.expect("put");
    assert!(r1 > before, "a put must take a revision after the current one ({r1} <= {before})");
    let kv = store.get(&key).await.expect("get").expect("the key just put must exist");
    assert_eq!(kv.key, key);
    assert_eq!(kv.value, "v1".as_bytes());
    assert_eq!(kv.lease, None);
    assert_eq!((kv.create_revision, kv.mod_revision), (r1, r1));
    let r2 = store.put(&key, bytes("v2"), None).await.expect("put");
    assert!(r2 > r1, "revisions must increase ({r2} <= {r1})");
    assert_eq!(store.get(&key).await.expect("get").expect("key").value, "v2".as_bytes());
    let now = store.revision().await.expect("revision");
    assert!(now >= r2, "revision() {now} is behind the last put's revision {r2}");
    let empty = store.put(&format!("{p}empty"), bytes(""), None).await.expect("put of an empty value");
    let kv = store.get(&format!("{p}empty")).await.expect("get").expect("an empty value is still a key");
    assert!(kv.value.is_empty());
    assert_eq!(kv.mod_revision, empty);
}

/// `create_revision` stays at the key's creation; `mod_revision` follows every put; a deleted and
/// re-created key starts over.
pub async fn create_and_mod_revision(store: &dyn ClusterStore) {
    let key = format!("{}k", unique_prefix("create-mod-revision"));
    let r1 = store.put(&key, bytes("a"), None).await.expect("put");
    let r2 = store.put(&key, bytes("b"), None).await.expect("put");
    let r3 = store.put(&key, bytes("c"), None).await.expect("put");
    let kv = store.get(&key).await.expect("get").expect("key");
    assert_eq!(kv.create_revision, r1, "create_revision must be the first put's");
    assert_eq!(kv.mod_revision, r3, "mod_revision must be the last put's");
    assert!(r1 < r2 && r2 < r3);
    assert!(store.delete(&key).await.expect("delete"));
    let r4 = store.put(&key, bytes("d"), None).await.expect("put");
    let kv = store.get(&key).await.expect("get").expect("key");
    assert_eq!((kv.create_revision, kv.mod_revision), (r4, r4), "a re-created key has a new create_revision");
}

/// `delete` removes one key and reports whether it existed.
pub async fn delete(store: &dyn ClusterStore) {
    let p = unique_prefix("delete");
    let (key, other) = (format!("{p}k"), format!("{p}other"));
    assert!(!store.delete(&key).await.expect("delete"), "deleting a missing key must report false");
    store.put(&key, bytes("v"), None).await.expect("put");
    store.put(&other, bytes("w"), None).await.expect("put");
    assert!(store.delete(&key).await.expect("delete"), "deleting an existing key must report true");
    assert_eq!(store.get(&key).await.expect("get"), None);
    assert!(!store.delete(&key).await.expect("delete"), "a second delete must report false");
    assert!(store.get(&other).await.expect("get").is_some(), "delete must not touch other keys");
}

/// `delete_prefix` removes exactly the keys under the prefix and counts them.
pub async fn delete_prefix(store: &dyn ClusterStore) {
    let p = unique_prefix("delete-prefix");
    let dir = format!("{p}dir/");
    for k in ["a", "b", "c/d"] {
        store.put(&format!("{dir}{k}"), bytes(k), None).await.expect("put");
    }
    let neighbours = [format!("{p}dir"), format!("{p}dirx"), format!("{p}dis/a")];
    for k in &neighbours {
        store.put(k, bytes("keep"), None).await.expect("put");
    }
    assert_eq!(store.delete_prefix(&dir).await.expect("delete_prefix"), 3);
    assert!(store.list(&dir, None, 0).await.expect("list").kvs.is_empty());
    for k in &neighbours {
        assert!(store.get(k).await.expect("get").is_some(), "{k} is not under {dir} and must survive");
    }
    assert_eq!(store.delete_prefix(&dir).await.expect("delete_prefix"), 0, "nothing is left to delete");
}

/// Listing returns keys in byte order; `limit`, `more` and `start_after` page through them.
pub async fn list_order_and_paging(store: &dyn ClusterStore) {
    let p = unique_prefix("list");
    let names = ["m", "b", "z", "a/1", "a", "c", "B"];
    for n in names {
        store.put(&format!("{p}{n}"), bytes(n), None).await.expect("put");
    }
    let mut sorted: Vec<String> = names.iter().map(|n| format!("{p}{n}")).collect();
    sorted.sort();
    let keys = |page: &crate::ListPage| page.kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>();

    let all = store.list(&p, None, 0).await.expect("list");
    assert_eq!(keys(&all), sorted, "limit 0 lists everything, in key order");
    assert!(!all.more);
    assert!(all.kvs.iter().all(|kv| kv.value == kv.key.as_bytes()[p.len()..]), "values must match their keys");

    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list(&p, after.as_deref(), 3).await.expect("list");
        assert!(page.kvs.len() <= 3, "a page must respect the limit");
        pages += 1;
        paged.extend(keys(&page));
        after = page.kvs.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
        assert!(pages < 10, "paging does not terminate");
    }
    assert_eq!(paged, sorted, "pages must cover every key once, in order");
    assert_eq!(pages, 3, "7 keys in pages of 3 is 3 pages");

    let exact = store.list(&p, None, sorted.len()).await.expect("list");
    assert_eq!(exact.kvs.len(), sorted.len());
    assert!(!exact.more, "a limit equal to the number of keys leaves nothing more");

    let from_middle = store.list(&p, Some(&sorted[2]), 0).await.expect("list");
    assert_eq!(keys(&from_middle), sorted[3..].to_vec(), "start_after is exclusive");
    let not_a_key = format!("{p}b0");
    let between = store.list(&p, Some(&not_a_key), 1).await.expect("list");
    assert_eq!(keys(&between), vec![format!("{p}c")], "start_after need not be an existing key");
    assert!(between.more);
    let last = store.list(&p, Some(&sorted[sorted.len() - 1]), 0).await.expect("list");
    assert!(last.kvs.is_empty() && !last.more, "nothing follows the last key");
    let before_prefix = store.list(&p, Some("/"), 0).await.expect("list");
    assert_eq!(keys(&before_prefix), sorted, "a start_after before the prefix lists the whole prefix");
}

/// A prefix matches bytes, not path segments: `/a/` does not list `/ab` or `/a`.
pub async fn prefix_boundaries(store: &dyn ClusterStore) {
    let p = unique_prefix("prefix-boundaries");
    let inside = [format!("{p}a/1"), format!("{p}a/2")];
    let outside = [format!("{p}a"), format!("{p}ab"), format!("{p}a0"), format!("{p}a."), format!("{p}b/1")];
    for k in inside.iter().chain(&outside) {
        store.put(k, bytes("v"), None).await.expect("put");
    }
    let listed: Vec<String> =
        store.list(&format!("{p}a/"), None, 0).await.expect("list").kvs.into_iter().map(|kv| kv.key).collect();
    assert_eq!(listed, inside.to_vec(), "only keys starting with the prefix's bytes are listed");
    let under_a: Vec<String> =
        store.list(&format!("{p}a"), None, 0).await.expect("list").kvs.into_iter().map(|kv| kv.key).collect();
    assert_eq!(under_a.len(), 6, "the prefix `a` covers a, a., a/1, a/2, a0 and ab: {under_a:?}");
    assert_eq!(store.delete_prefix(&format!("{p}a/")).await.expect("delete_prefix"), 2);
    for k in &outside {
        assert!(store.get(k).await.expect("get").is_some(), "{k} is outside the prefix and must survive");
    }
}

/// `Expect::Absent` writes only a missing key; a conflict returns the current key-value.
pub async fn cas_absent(store: &dyn ClusterStore) {
    let key = format!("{}k", unique_prefix("cas-absent"));
    let written = match store.compare_and_set(&key, Expect::Absent, bytes("first"), None).await.expect("cas") {
        CasOutcome::Written(rev) => rev,
        other => panic!("creating a missing key must succeed, got {other:?}"),
    };
    let kv = store.get(&key).await.expect("get").expect("key");
    assert_eq!((kv.create_revision, kv.mod_revision), (written, written));
    assert_eq!(kv.value, "first".as_bytes());
    match store.compare_and_set(&key, Expect::Absent, bytes("second"), None).await.expect("cas") {
        CasOutcome::Conflict(Some(current)) => assert_eq!(current, kv, "a conflict returns the current key-value"),
        other => panic!("creating an existing key must conflict with its current state, got {other:?}"),
    }
    assert_eq!(
        store.get(&key).await.expect("get").expect("key").value,
        "first".as_bytes(),
        "a conflict writes nothing"
    );
}

/// `Expect::ModRevision` writes only over that exact revision; a stale revision or a missing key conflicts.
pub async fn cas_mod_revision(store: &dyn ClusterStore) {
    let p = unique_prefix("cas-mod-revision");
    let key = format!("{p}k");
    let r1 = store.put(&key, bytes("v1"), None).await.expect("put");
    let r2 = match store.compare_and_set(&key, Expect::ModRevision(r1), bytes("v2"), None).await.expect("cas") {
        CasOutcome::Written(rev) => rev,
        other => panic!("a CAS on the current mod_revision must succeed, got {other:?}"),
    };
    assert!(r2 > r1);
    let kv = store.get(&key).await.expect("get").expect("key");
    assert_eq!((kv.create_revision, kv.mod_revision), (r1, r2), "a CAS write is a put: create_revision stays");
    assert_eq!(kv.value, "v2".as_bytes());
    match store.compare_and_set(&key, Expect::ModRevision(r1), bytes("v3"), None).await.expect("cas") {
        CasOutcome::Conflict(Some(current)) => assert_eq!(current, kv, "a conflict returns the current key-value"),
        other => panic!("a CAS on a stale mod_revision must conflict, got {other:?}"),
    }
    assert_eq!(store.get(&key).await.expect("get").expect("key").value, "v2".as_bytes());
    let missing = format!("{p}missing");
    match store.compare_and_set(&missing, Expect::ModRevision(r2), bytes("x"), None).await.expect("cas") {
        CasOutcome::Conflict(None) => {}
        other => panic!("a CAS expecting a revision of a missing key must conflict with None, got {other:?}"),
    }
    assert_eq!(store.get(&missing).await.expect("get"), None);
}
