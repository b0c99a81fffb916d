//! A [`ClusterStore`] that times every call of the one it wraps and reports each to a [`StoreObserver`]:
//! one seam, so every operation of every caller is counted, whichever backend (embedded or etcd) is
//! under it. This crate knows no metric names: the process (the Coordinator) implements the observer
//! and registers the metrics.
//!
//! - **What is timed:** the call, from entry to its answer. `watch` is timed until the stream is open,
//!   not for the stream's life; an error a stream yields later is not counted here.
//! - **What is an error:** any `Err` the backend returns (a timeout, an unreachable store, a lease
//!   already gone). A compare-and-set that finds the key in another state answers `Ok` and is not one.

use crate::{CasOutcome, ClusterStore, Expect, KeyValue, LeaseId, ListPage, Revision, StoreResult, WatchEvent};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cluster store operation: the `op` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreOp {
    /// [`ClusterStore::get`].
    Get,
    /// [`ClusterStore::put`].
    Put,
    /// [`ClusterStore::delete`].
    Delete,
    /// [`ClusterStore::delete_prefix`].
    DeletePrefix,
    /// [`ClusterStore::list`].
    List,
    /// [`ClusterStore::compare_and_set`] (a transaction in etcd).
    Txn,
    /// [`ClusterStore::grant_lease`].
    GrantLease,
    /// [`ClusterStore::keep_alive`].
    KeepAlive,
    /// [`ClusterStore::revoke_lease`].
    RevokeLease,
    /// [`ClusterStore::watch`] (opening it).
    Watch,
    /// [`ClusterStore::revision`].
    Revision,
}

impl StoreOp {
    /// Every operation, to create each series at start.
    pub const ALL: [StoreOp; 11] = [
        Self::Get,
        Self::Put,
        Self::Delete,
        Self::DeletePrefix,
        Self::List,
        Self::Txn,
        Self::GrantLease,
        Self::KeepAlive,
        Self::RevokeLease,
        Self::Watch,
        Self::Revision,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Put => "put",
            Self::Delete => "delete",
            Self::DeletePrefix => "delete_prefix",
            Self::List => "list",
            Self::Txn => "txn",
            Self::GrantLease => "grant_lease",
            Self::KeepAlive => "keep_alive",
            Self::RevokeLease => "revoke_lease",
            Self::Watch => "watch",
            Self::Revision => "revision",
        }
    }
}

/// Told of every call a [`TimedStore`] passes on.
pub trait StoreObserver: Send + Sync + 'static {
    /// `op` answered after `elapsed`, successfully or not.
    fn observe(&self, op: StoreOp, elapsed: Duration, ok: bool);
}

/// Wraps a store, reporting every call to an observer.
pub struct TimedStore {
    inner: Arc<dyn ClusterStore>,
    observer: Arc<dyn StoreObserver>,
}

impl TimedStore {
    /// `inner`, with every call reported to `observer`.
    pub fn wrap(inner: Arc<dyn ClusterStore>, observer: Arc<dyn StoreObserver>) -> Arc<dyn ClusterStore> {
        Arc::new(Self { inner, observer })
    }

    async fn timed<T>(&self, op: StoreOp, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let start = Instant::now();
        let r = call.await;
        self.observer.observe(op, start.elapsed(), r.is_ok());
        r
    }
}

#[async_trait]
impl ClusterStore for TimedStore {
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        self.timed(StoreOp::Get, self.inner.get(key)).await
    }

    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> StoreResult<Revision> {
        self.timed(StoreOp::Put, self.inner.put(key, value, lease)).await
    }

    async fn delete(&self, key: &str) -> StoreResult<bool> {
        self.timed(StoreOp::Delete, self.inner.delete(key)).await
    }

    async fn delete_prefix(&self, prefix: &str) -> StoreResult<u64> {
        self.timed(StoreOp::DeletePrefix, self.inner.delete_prefix(prefix)).await
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StoreResult<ListPage> {
        self.timed(StoreOp::List, self.inner.list(prefix, start_after, limit)).await
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expect: Expect,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> StoreResult<CasOutcome> {
        self.timed(StoreOp::Txn, self.inner.compare_and_set(key, expect, value, lease)).await
    }

    async fn grant_lease(&self, ttl: Duration) -> StoreResult<LeaseId> {
        self.timed(StoreOp::GrantLease, self.inner.grant_lease(ttl)).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> StoreResult<()> {
        self.timed(StoreOp::KeepAlive, self.inner.keep_alive(lease)).await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> StoreResult<()> {
        self.timed(StoreOp::RevokeLease, self.inner.revoke_lease(lease)).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> StoreResult<BoxStream<'static, StoreResult<WatchEvent>>> {
        self.timed(StoreOp::Watch, self.inner.watch(prefix, after)).await
    }

    async fn revision(&self) -> StoreResult<Revision> {
        self.timed(StoreOp::Revision, self.inner.revision()).await
    }
}
