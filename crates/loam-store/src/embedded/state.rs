//! The embedded store's shared state and its synchronous operations (called on blocking threads).
//! Writes are serialised by one lock held across the redb write transaction *and* the publication of its
//! watch events, so events are published in revision order; redb admits one writer at a time anyway, so the
//! lock costs no concurrency. Reads use redb read transactions and take no lock.
//! Lock order: `writer`, then `leases` or `events`; nothing takes `writer` while holding another.

use super::leases::{Lease, Leases};
use super::tables::{KV, META_REVISION, check_format, db_err, to_key_value};
use super::txn::Tx;
use super::watch::Events;
use crate::{CasOutcome, Expect, KeyValue, LeaseId, ListPage, Revision, StoreError, StoreResult, WatchEvent};
use futures::stream::BoxStream;
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// What the store instance shares between its handle, its blocking calls and its expiry task.
pub(super) struct Inner {
    db: Database,
    /// The last committed revision; holding it is the right to write.
    writer: Mutex<Revision>,
    /// A copy of the last committed revision, readable without waiting for a writer.
    revision: AtomicI64,
    pub(super) leases: Mutex<Leases>,
    pub(super) events: Mutex<Events>,
}

impl Inner {
    /// Checks the format of `db` and deletes keys left on leases by a previous process.
    pub(super) fn open(db: Database, origin: &Path, history: usize, buffer: usize) -> StoreResult<Self> {
        let txn = db.begin_write().map_err(db_err)?;
        let revision = check_format(&txn, origin)?;
        let result = (|| {
            let mut tx = Tx::open(&txn, revision + 1)?;
            let orphans = tx.all_leased_keys()?;
            for key in &orphans {
                tx.delete(key)?;
            }
            if orphans.is_empty() {
                return Ok((revision, 0));
            }
            tx.meta.insert(META_REVISION, revision + 1).map_err(db_err)?;
            Ok((revision + 1, orphans.len()))
        })();
        let (revision, orphans) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = txn.abort();
                return Err(e);
            }
        };
        txn.commit().map_err(db_err)?;
        if orphans > 0 {
            tracing::info!(keys = orphans, store = %origin.display(), "deleted keys left on the leases of a previous process");
        }
        Ok(Self {
            db,
            writer: Mutex::new(revision),
            revision: AtomicI64::new(revision),
            leases: Mutex::new(Leases::default()),
            events: Mutex::new(Events::new(revision, history, buffer)),
        })
    }

    /// Runs `f` in a write transaction and publishes its events once it commits.
    fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut revision = self.writer.lock();
        let next = *revision + 1;
        let txn = self.db.begin_write().map_err(db_err)?;
        let result = (|| {
            let mut tx = Tx::open(&txn, next)?;
            let out = f(&mut tx)?;
            if !tx.events.is_empty() {
                tx.meta.insert(META_REVISION, next).map_err(db_err)?;
            }
            Ok((out, std::mem::take(&mut tx.events)))
        })();
        let (out, events) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = txn.abort();
                return Err(e);
            }
        };
        txn.commit().map_err(db_err)?;
        if !events.is_empty() {
            *revision = next;
            self.revision.store(next, Ordering::SeqCst);
            self.events.lock().publish(next, events);
        }
        Ok(out)
    }

    /// The last committed revision.
    pub(super) fn revision(&self) -> Revision {
        self.revision.load(Ordering::SeqCst)
    }

    /// See `ClusterStore::get`.
    pub(super) fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(KV).map_err(db_err)?;
        Ok(table.get(key).map_err(db_err)?.map(|g| to_key_value(key, g.value())))
    }

    /// See `ClusterStore::list`: a range scan from the first candidate key, stopping at the prefix's end.
    pub(super) fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StoreResult<ListPage> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(KV).map_err(db_err)?;
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut page = ListPage::default();
        for item in table.range::<&str>((lower, Bound::Unbounded)).map_err(db_err)? {
            let (key, record) = item.map_err(db_err)?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            if limit != 0 && page.kvs.len() == limit {
                page.more = true;
                break;
            }
            page.kvs.push(to_key_value(key, record.value()));
        }
        Ok(page)
    }

    /// See `ClusterStore::put`.
    pub(super) fn put(&self, key: &str, value: &[u8], lease: Option<LeaseId>) -> StoreResult<Revision> {
        self.write(|tx| {
            self.check_lease(lease)?;
            Ok(tx.put(key, value, lease)?.mod_revision)
        })
    }

    /// See `ClusterStore::delete`.
    pub(super) fn delete(&self, key: &str) -> StoreResult<bool> {
        self.write(|tx| tx.delete(key))
    }

    /// See `ClusterStore::delete_prefix`: one revision for all the keys, as in etcd.
    pub(super) fn delete_prefix(&self, prefix: &str) -> StoreResult<u64> {
        self.write(|tx| {
            let keys = tx.keys_with_prefix(prefix)?;
            for key in &keys {
                tx.delete(key)?;
            }
            Ok(keys.len() as u64)
        })
    }

    /// See `ClusterStore::compare_and_set`.
    pub(super) fn compare_and_set(
        &self,
        key: &str,
        expect: Expect,
        value: &[u8],
        lease: Option<LeaseId>,
    ) -> StoreResult<CasOutcome> {
        self.write(|tx| {
            let current = tx.get(key)?;
            let matches = match (expect, &current) {
                (Expect::Absent, None) => true,
                (Expect::ModRevision(rev), Some(kv)) => kv.mod_revision == rev,
                _ => false,
            };
            if !matches {
                return Ok(CasOutcome::Conflict(current));
            }
            self.check_lease(lease)?;
            Ok(CasOutcome::Written(tx.put(key, value, lease)?.mod_revision))
        })
    }

    /// Fails unless `lease` (if any) is live. Called under the writer lock, so a lease cannot be revoked
    /// between this check and the put that attaches a key to it.
    fn check_lease(&self, lease: Option<LeaseId>) -> StoreResult<()> {
        match lease {
            Some(id) => self.leases.lock().check(id),
            None => Ok(()),
        }
    }

    /// See `ClusterStore::grant_lease`.
    pub(super) fn grant_lease(&self, ttl: Duration) -> StoreResult<LeaseId> {
        if ttl.is_zero() {
            return Err(StoreError::Other("a lease needs a positive TTL".into()));
        }
        self.write(|tx| {
            let id = tx.next_lease_id()?;
            self.leases.lock().grant(id, ttl);
            Ok(id)
        })
    }

    /// See `ClusterStore::revoke_lease`. A lease already past its deadline has expired, so it is reported
    /// as not found, but its keys are deleted all the same (the expiry task would do it a moment later).
    pub(super) fn revoke_lease(&self, id: LeaseId) -> StoreResult<()> {
        match self.drop_lease(id)? {
            true => Ok(()),
            false => Err(StoreError::LeaseNotFound(id)),
        }
    }

    /// Ends lease `id` and deletes its keys in one revision; whether it was still live.
    pub(super) fn drop_lease(&self, id: LeaseId) -> StoreResult<bool> {
        let mut removed: Option<Lease> = None;
        let result = self.write(|tx| {
            let lease = self.leases.lock().remove(id).ok_or(StoreError::LeaseNotFound(id))?;
            removed = Some(lease);
            for key in tx.lease_keys(id)? {
                tx.delete(&key)?;
            }
            Ok(lease.is_live())
        });
        if result.is_err()
            && let Some(lease) = removed
        {
            // The keys are still there: keep the lease so its expiry is retried.
            self.leases.lock().restore(id, lease);
        }
        result
    }

    /// See `ClusterStore::watch`.
    pub(super) fn watch(
        &self,
        prefix: &str,
        after: Revision,
    ) -> StoreResult<BoxStream<'static, StoreResult<WatchEvent>>> {
        self.events.lock().watch(prefix, after)
    }
}
