//! The embedded store: every testkit behaviour (each as its own test, and all at once on a multi-threaded
//! runtime), plus what only this backend promises: persistence across reopen, the format-version check,
//! bounded watch history, lagging watchers, and a clean stop of the expiry task.

use futures::StreamExt;
use loam_store::embedded::FORMAT_VERSION;
use loam_store::{ClusterStore, EmbeddedOptions, EmbeddedStore, StoreError, WatchEvent, testkit};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

fn open(path: &Path) -> Arc<EmbeddedStore> {
    EmbeddedStore::open(path).expect("open the embedded store")
}

fn temp() -> (TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cluster.redb");
    (dir, path)
}

macro_rules! behaviour {
    ($($name:ident),+ $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (_dir, path) = temp();
            let store = open(&path);
            testkit::$name(store.as_ref()).await;
            store.shutdown().await;
        }
    )+};
}

every_behaviour!(behaviour);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_concurrently_in_memory() {
    let store = EmbeddedStore::in_memory().expect("in-memory store");
    testkit::run_all(store.clone()).await;
    store.shutdown().await;
}

#[tokio::test]
async fn values_and_revision_survive_reopen_but_leased_keys_do_not() {
    let (_dir, path) = temp();
    let store = open(&path);
    let r1 = store.put("/p/a", "1".into(), None).await.expect("put");
    let r2 = store.put("/p/a", "2".into(), None).await.expect("put");
    store.put("/p/b", "b".into(), None).await.expect("put");
    let lease = store.grant_lease(Duration::from_secs(600)).await.expect("grant");
    store.put("/p/leased", "l".into(), Some(lease)).await.expect("put on lease");
    let before = store.revision().await.expect("revision");
    store.shutdown().await;
    drop(store);

    let store = open(&path);
    let a = store.get("/p/a").await.expect("get").expect("/p/a survives");
    assert_eq!((a.value.as_ref(), a.create_revision, a.mod_revision), (b"2".as_ref(), r1, r2));
    assert!(store.get("/p/b").await.expect("get").is_some());
    assert_eq!(store.get("/p/leased").await.expect("get"), None, "a dead process's leased keys are deleted");
    let now = store.revision().await.expect("revision");
    assert!(now > before, "deleting the leased key is a change after the last revision ({now} <= {before})");
    let next = store.put("/p/c", "c".into(), None).await.expect("put");
    assert!(next > now, "revisions continue after reopen");
    let new_lease = store.grant_lease(Duration::from_secs(5)).await.expect("grant");
    assert_ne!(new_lease, lease, "lease ids are not reused across restarts");
    match store.keep_alive(lease).await {
        Err(StoreError::LeaseNotFound(_)) => {}
        other => panic!("a previous process's lease must be gone, got {other:?}"),
    }
    match store.watch("/p/", 1).await {
        Err(StoreError::Compacted(_)) => {}
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(_) => panic!("history from before the reopen cannot be replayed"),
    }
    let _live = store.watch("/p/", now).await.expect("a watch from the current revision works");
    store.shutdown().await;
}

#[tokio::test]
async fn format_version_mismatch_is_refused() {
    let (_dir, path) = temp();
    let store = open(&path);
    store.put("/k", "v".into(), None).await.expect("put");
    store.shutdown().await;
    drop(store);
    {
        let db = redb::Database::create(&path).expect("open with redb");
        let txn = db.begin_write().expect("write");
        {
            let mut meta = txn.open_table(redb::TableDefinition::<&str, i64>::new("meta")).expect("meta table");
            meta.insert("format_version", FORMAT_VERSION + 998).expect("insert");
        }
        txn.commit().expect("commit");
    }
    match EmbeddedStore::open(&path) {
        Err(e @ StoreError::Corrupt(_)) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("format version {}", FORMAT_VERSION + 998)), "{msg}");
            assert!(msg.contains(&format!("reads only version {FORMAT_VERSION}")), "{msg}");
            assert_eq!(e.kind(), loam_core::ErrorKind::Corrupt);
        }
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("a store with another format version must not open"),
    }
}

#[tokio::test]
async fn a_foreign_redb_file_is_refused() {
    let (_dir, path) = temp();
    {
        let db = redb::Database::create(&path).expect("create with redb");
        let txn = db.begin_write().expect("write");
        txn.open_table(redb::TableDefinition::<u64, u64>::new("something_else")).expect("table");
        txn.commit().expect("commit");
    }
    match EmbeddedStore::open(&path) {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("no format version"), "{msg}"),
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("a redb file of something else must not open as a store"),
    }
}

#[tokio::test]
async fn a_file_already_open_is_unavailable() {
    let (_dir, path) = temp();
    let store = open(&path);
    match EmbeddedStore::open(&path) {
        Err(StoreError::Unavailable(_)) => {}
        Err(e) => panic!("expected Unavailable, got {e}"),
        Ok(_) => panic!("one store file cannot be opened twice"),
    }
    store.shutdown().await;
}

#[tokio::test]
async fn history_older_than_kept_is_compacted() {
    let options = EmbeddedOptions { history_events: 4, ..EmbeddedOptions::default() };
    let store = EmbeddedStore::in_memory_with(options).expect("store");
    let mut revs = Vec::new();
    for i in 0..5 {
        revs.push(store.put(&format!("/h/{i}"), "v".into(), None).await.expect("put"));
    }
    match store.watch("/h/", revs[0] - 1).await {
        Err(StoreError::Compacted(rev)) => assert_eq!(rev, revs[0]),
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(_) => panic!("the first put has left the 4-event history"),
    }
    let mut watch = store.watch("/h/", revs[0]).await.expect("the last 4 puts are kept");
    for (i, rev) in revs.iter().enumerate().skip(1) {
        match watch.next().await {
            Some(Ok(WatchEvent::Put(kv))) => assert_eq!((kv.key, kv.mod_revision), (format!("/h/{i}"), *rev)),
            other => panic!("expected the put of /h/{i}, got {other:?}"),
        }
    }

    // A transaction bigger than the whole history is dropped whole, never replayed in part.
    let before_delete = store.revision().await.expect("revision");
    assert_eq!(store.delete_prefix("/h/").await.expect("delete_prefix"), 5);
    match store.watch("/h/", before_delete).await {
        Err(StoreError::Compacted(_)) => {}
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(_) => panic!("five deletes cannot be replayed from a 4-event history"),
    }
    store.shutdown().await;
}

#[tokio::test]
async fn a_lagging_watcher_gets_an_error_not_a_gap() {
    let options = EmbeddedOptions { watch_buffer: 2, ..EmbeddedOptions::default() };
    let store = EmbeddedStore::in_memory_with(options).expect("store");
    let start = store.revision().await.expect("revision");
    let mut watch = store.watch("/lag/", 0).await.expect("watch");
    for i in 0..10 {
        store.put(&format!("/lag/{i:02}"), "v".into(), None).await.expect("put");
    }
    let mut seen = Vec::new();
    let failed = loop {
        match watch.next().await {
            Some(Ok(WatchEvent::Put(kv))) => seen.push(kv.key),
            Some(Ok(other)) => panic!("unexpected event {other:?}"),
            Some(Err(e)) => break e,
            None => panic!("the stream ended without reporting that it fell behind"),
        }
    };
    assert!(matches!(failed, StoreError::Unavailable(_)), "{failed}");
    let expected: Vec<String> = (0..seen.len()).map(|i| format!("/lag/{i:02}")).collect();
    assert_eq!(seen, expected, "events before the error must be consecutive from the first");
    assert!(watch.next().await.is_none(), "the stream ends after its error");

    // The caller re-watches from the last revision it saw, and the history fills the gap.
    let mut rewatch = store.watch("/lag/", start + seen.len() as i64).await.expect("re-watch");
    for i in seen.len()..10 {
        match rewatch.next().await {
            Some(Ok(WatchEvent::Put(kv))) => assert_eq!(kv.key, format!("/lag/{i:02}")),
            other => panic!("expected the put of /lag/{i:02}, got {other:?}"),
        }
    }
    store.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_expiry_task_and_ends_watches() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let (_dir, path) = temp();
    let store = open(&path);
    assert_eq!(metrics.num_alive_tasks(), before + 1, "the store runs one expiry task");
    let mut watch = store.watch("/", 0).await.expect("watch");
    store.shutdown().await;
    assert_eq!(metrics.num_alive_tasks(), before, "shutdown waits for the expiry task to end");
    assert!(matches!(watch.next().await, Some(Err(StoreError::Unavailable(_)))), "watches end with an error");
    assert!(watch.next().await.is_none());
    assert!(matches!(store.get("/k").await, Err(StoreError::Unavailable(_))), "a shut-down store refuses calls");
    assert!(matches!(store.watch("/", 0).await, Err(StoreError::Unavailable(_))));
}

#[tokio::test]
async fn dropping_the_store_closes_the_file_and_stops_the_expiry_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let (_dir, path) = temp();
    let store = open(&path);
    store.put("/k", "v".into(), None).await.expect("put");
    drop(store);
    let reopened = open(&path);
    assert!(reopened.get("/k").await.expect("get").is_some());
    reopened.shutdown().await;
    drop(reopened);
    // The dropped store's task notices at its next poll; this waits for that (a cap against hangs only).
    tokio::time::timeout(Duration::from_secs(10), async {
        while metrics.num_alive_tasks() > before {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the expiry task of a dropped store must end");
}
