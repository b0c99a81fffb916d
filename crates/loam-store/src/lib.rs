//! The cluster store: membership, mounts, rules and jobs live here. One trait, [`ClusterStore`], with
//! etcd's semantics (revisions, prefix listing, watches, compare-and-set, leases) and two backends:
//! embedded (redb, one process: `loam local`) and etcd (distributed). Both pass the same behaviour
//! tests (`testkit`). Leader election (`election`) sits beside it: etcd's election API, or the sole
//! leader of an embedded store. This crate knows nothing about jobs or HTTP.

pub mod election;
pub mod embedded;
pub mod error;
pub mod etcd;
pub mod follow;
pub mod membership;
pub mod quota_usage;
pub mod testkit;
pub mod timed;

pub use election::{Election, Fenced, SoleLeader, Term};
pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use error::{StoreError, StoreResult};
pub use etcd::{EtcdOptions, EtcdSecurity, EtcdStore};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::time::Duration;

/// A store-wide revision, increasing with every change (etcd's `revision`).
pub type Revision = i64;

/// A lease id (etcd's lease id); keys put with a lease vanish when it expires or is revoked.
pub type LeaseId = i64;

/// A key and its value, with etcd's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value bytes.
    pub value: Bytes,
    /// Revision of the put that created the key.
    pub create_revision: Revision,
    /// Revision of the last put to the key.
    pub mod_revision: Revision,
    /// The lease the key is attached to, if any.
    pub lease: Option<LeaseId>,
}

/// What a watch reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// A key was created or changed.
    Put(KeyValue),
    /// A key was deleted (explicitly, or by its lease expiring); `revision` is the deletion's.
    Delete {
        /// The deleted key.
        key: String,
        /// The revision of the deletion.
        revision: Revision,
    },
}

/// What a compare-and-set expects of the key's current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The key must not exist.
    Absent,
    /// The key must exist with this `mod_revision`.
    ModRevision(Revision),
}

/// The result of a compare-and-set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// The value was written at this revision.
    Written(Revision),
    /// The expectation failed; the key's current state is returned.
    Conflict(Option<KeyValue>),
}

/// A page of a prefix listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Entries in key order.
    pub kvs: Vec<KeyValue>,
    /// Whether more entries follow the last one returned.
    pub more: bool,
}

/// The cluster store's operations. Every implementation passes `testkit::run_all`.
#[async_trait]
pub trait ClusterStore: Send + Sync + 'static {
    /// The value at `key`.
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>>;

    /// Puts `value` at `key`, attached to `lease` if given; returns the new revision.
    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> StoreResult<Revision>;

    /// Deletes `key`; whether it existed.
    async fn delete(&self, key: &str) -> StoreResult<bool>;

    /// Deletes every key under `prefix`; how many.
    async fn delete_prefix(&self, prefix: &str) -> StoreResult<u64>;

    /// Keys under `prefix` strictly after `start_after` (if given), at most `limit` (0 = no limit),
    /// in key order. Callers page through large prefixes instead of loading them whole.
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StoreResult<ListPage>;

    /// Writes `value` at `key` only if the key's state matches `expect`.
    async fn compare_and_set(
        &self,
        key: &str,
        expect: Expect,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> StoreResult<CasOutcome>;

    /// Grants a lease that expires after `ttl` unless kept alive.
    async fn grant_lease(&self, ttl: Duration) -> StoreResult<LeaseId>;

    /// Renews a lease for another TTL; `StoreError::LeaseNotFound` once it has expired.
    async fn keep_alive(&self, lease: LeaseId) -> StoreResult<()>;

    /// Revokes a lease, deleting its keys.
    async fn revoke_lease(&self, lease: LeaseId) -> StoreResult<()>;

    /// Changes under `prefix` after revision `after` (0 = from now on). The stream ends with an error
    /// when the backend loses the watch; callers re-watch from the last revision they saw.
    async fn watch(&self, prefix: &str, after: Revision) -> StoreResult<BoxStream<'static, StoreResult<WatchEvent>>>;

    /// The current revision.
    async fn revision(&self) -> StoreResult<Revision>;
}

/// Lists every key under `prefix`, page by page. For prefixes known to be small (mounts, rules).
pub async fn list_all(store: &dyn ClusterStore, prefix: &str) -> StoreResult<Vec<KeyValue>> {
    const PAGE: usize = 1000;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(prefix, after.as_deref(), PAGE).await?;
        after = page.kvs.last().map(|kv| kv.key.clone());
        out.extend(page.kvs);
        if !page.more || after.is_none() {
            return Ok(out);
        }
    }
}
