//! Leader election over the cluster store: one leader among several candidates (HA Coordinators).
//!
//! - **etcd** ([`EtcdStore`]): etcd's election API. A candidate grants a lease (the caller keeps it alive),
//!   then [`Election::campaign`] puts `<name>/<lease>` with its value on that lease and waits until its key
//!   has the lowest create revision under `<name>/`: it leads. The lease expiring (a dead or cut-off
//!   leader) deletes the key and the next candidate leads. [`Election::leader`] reads the current value.
//! - **Fencing.** Leading is a [`Term`]: the leader key and its create revision. A write that only the
//!   leader may make ([`Election::put_fenced`], [`Election::delete_fenced`],
//!   [`Election::delete_prefix_fenced`]) is one etcd transaction that compares the leader key's create
//!   revision with the term's: once the lease is gone (and a new leader
//!   exists) the write is refused with [`Fenced::Deposed`] instead of overwriting the new leader's state,
//!   whatever the old leader still believes.
//! - **Embedded store** ([`SoleLeader`]): one process owns the store, so it always leads; campaigning
//!   returns at once and fenced writes are plain writes.

use crate::{ClusterStore, LeaseId, Revision, StoreError, StoreResult};
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::Arc;

/// One candidate's leadership: it leads while its key, created at `revision`, exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// The election name.
    pub name: String,
    /// The leader key (`<name>/<lease in hex>` with etcd).
    pub key: String,
    /// The leader key's create revision (what fenced writes compare).
    pub revision: Revision,
    /// The lease the key lives on.
    pub lease: LeaseId,
}

/// What a fenced write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fenced {
    /// Written (or deleted): the term still led.
    Done,
    /// Refused: the term no longer leads; nothing changed.
    Deposed,
}

/// An election backend (see the module header).
#[async_trait]
pub trait Election: Send + Sync + std::fmt::Debug + 'static {
    /// Waits until this candidate leads `name`, announcing `value`; its key lives on `lease`, which the
    /// caller keeps alive while it campaigns and while it leads.
    async fn campaign(&self, name: &str, value: &str, lease: LeaseId) -> StoreResult<Term>;

    /// The current leader's value; `None` when nobody leads.
    async fn leader(&self, name: &str) -> StoreResult<Option<String>>;

    /// Gives leadership up (the next candidate leads at once).
    async fn resign(&self, term: &Term) -> StoreResult<()>;

    /// Puts `value` at `key` only while `term` leads.
    async fn put_fenced(&self, term: &Term, key: &str, value: Bytes) -> StoreResult<Fenced>;

    /// Deletes `key` only while `term` leads.
    async fn delete_fenced(&self, term: &Term, key: &str) -> StoreResult<Fenced>;

    /// Deletes every key under `prefix` only while `term` leads (one transaction: all or nothing).
    async fn delete_prefix_fenced(&self, term: &Term, prefix: &str) -> StoreResult<Fenced>;

    /// Whether this process leads without campaigning (the sole user of its store): fenced writes need no term.
    fn sole(&self) -> bool {
        false
    }
}

/// The election of a store only one process uses (the embedded store): that process always leads.
pub struct SoleLeader {
    store: Arc<dyn ClusterStore>,
    value: Mutex<Option<String>>,
}

impl std::fmt::Debug for SoleLeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoleLeader").field("value", &self.value.lock()).finish()
    }
}

impl SoleLeader {
    /// The election over `store`.
    pub fn new(store: Arc<dyn ClusterStore>) -> Arc<Self> {
        Arc::new(Self { store, value: Mutex::new(None) })
    }
}

#[async_trait]
impl Election for SoleLeader {
    async fn campaign(&self, name: &str, value: &str, lease: LeaseId) -> StoreResult<Term> {
        *self.value.lock() = Some(value.to_string());
        Ok(Term { name: name.to_string(), key: String::new(), revision: 0, lease })
    }

    async fn leader(&self, _name: &str) -> StoreResult<Option<String>> {
        Ok(self.value.lock().clone())
    }

    async fn resign(&self, _term: &Term) -> StoreResult<()> {
        *self.value.lock() = None;
        Ok(())
    }

    async fn put_fenced(&self, _term: &Term, key: &str, value: Bytes) -> StoreResult<Fenced> {
        self.store.put(key, value, None).await.map(|_| Fenced::Done)
    }

    async fn delete_fenced(&self, _term: &Term, key: &str) -> StoreResult<Fenced> {
        self.store.delete(key).await.map(|_| Fenced::Done)
    }

    async fn delete_prefix_fenced(&self, _term: &Term, prefix: &str) -> StoreResult<Fenced> {
        self.store.delete_prefix(prefix).await.map(|_| Fenced::Done)
    }

    fn sole(&self) -> bool {
        true
    }
}

/// A leader key's value as text (values this crate's callers write are URLs).
pub(crate) fn value_text(value: &[u8]) -> StoreResult<String> {
    String::from_utf8(value.to_vec()).map_err(|_| StoreError::Corrupt("an election value is not UTF-8".into()))
}
