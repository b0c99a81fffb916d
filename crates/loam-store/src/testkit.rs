//! Behaviour tests every [`ClusterStore`] backend must pass, written against the trait's etcd semantics
//! only, never a backend's internals. It is ordinary code (not `#[cfg(test)]`) so each backend's tests can
//! call it: [`run_all`], or each behaviour as its own test. Every behaviour works under its own random key
//! prefix and asserts only what concurrent users of the same store cannot disturb (revisions increase, they
//! are not expected to be consecutive), so the behaviours can run side by side on one shared etcd.
//! A failed expectation panics, like `assert!`; waits for watch events give up after [`EVENT_WAIT`]
//! so a broken backend fails instead of hanging.

mod kv;
mod leases;
mod watch;

pub use kv::{
    cas_absent, cas_mod_revision, create_and_mod_revision, delete, delete_prefix, get_put_revision,
    list_order_and_paging, prefix_boundaries,
};
pub use leases::{keep_alive_after_expiry, keep_alive_extends, lease_expiry_deletes_keys, revoke_deletes_keys};
pub use watch::{watch_in_order, watch_replays_from_revision};

use crate::{ClusterStore, StoreResult, WatchEvent};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a behaviour waits for a watch event before failing (a cap against hangs, not a timing check).
pub const EVENT_WAIT: Duration = Duration::from_secs(15);

/// Runs every behaviour, side by side.
pub async fn run_all(store: Arc<dyn ClusterStore>) {
    let s = store.as_ref();
    futures::join!(
        get_put_revision(s),
        create_and_mod_revision(s),
        delete(s),
        delete_prefix(s),
        list_order_and_paging(s),
        prefix_boundaries(s),
        cas_absent(s),
        cas_mod_revision(s),
        lease_expiry_deletes_keys(s),
        keep_alive_extends(s),
        keep_alive_after_expiry(s),
        revoke_deletes_keys(s),
        watch_in_order(s),
        watch_replays_from_revision(s),
    );
}

/// A key prefix (ending in `/`) that no other behaviour, run or process uses.
pub fn unique_prefix(behaviour: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("/loam-testkit/{behaviour}/{nanos:x}-{:x}-{n}/", std::process::id())
}

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The next event of a watch; panics on an error, the end of the stream, or no event within [`EVENT_WAIT`].
async fn next_event(stream: &mut BoxStream<'static, StoreResult<WatchEvent>>, waiting_for: &str) -> WatchEvent {
    match tokio::time::timeout(EVENT_WAIT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed while waiting for {waiting_for}: {e}"),
        Ok(None) => panic!("watch ended while waiting for {waiting_for}"),
        Err(_) => panic!("no watch event within {EVENT_WAIT:?} while waiting for {waiting_for}"),
    }
}

/// Asserts `event` is a put of `key` with `value`; returns the key-value.
fn expect_put(event: WatchEvent, key: &str, value: &str) -> crate::KeyValue {
    match event {
        WatchEvent::Put(kv) if kv.key == key && kv.value == value.as_bytes() => kv,
        other => panic!("expected Put({key:?} = {value:?}), got {other:?}"),
    }
}

/// Asserts `event` is a delete of `key`; returns its revision.
fn expect_delete(event: WatchEvent, key: &str) -> crate::Revision {
    match event {
        WatchEvent::Delete { key: k, revision } if k == key => revision,
        other => panic!("expected Delete({key:?}), got {other:?}"),
    }
}
