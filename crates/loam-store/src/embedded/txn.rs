//! One write transaction of the embedded store: the key operations the trait's writes are built from.
//! Every change in a transaction happens at the same revision (as in etcd, where a `delete_prefix` or a
//! lease revocation is one revision however many keys it removes), and each change is recorded as the
//! watch event that is published once the transaction commits.

use super::tables::{KV, LEASE_KEYS, META, META_NEXT_LEASE, Record, db_err, lease_from_raw, to_key_value};
use crate::{KeyValue, LeaseId, Revision, StoreResult, WatchEvent};
use redb::{ReadableTable, Table, WriteTransaction};

/// An open write transaction's tables, the revision its changes get, and the events they produce.
pub(super) struct Tx<'t> {
    pub(super) meta: Table<'t, &'static str, i64>,
    kv: Table<'t, &'static str, Record>,
    lease_keys: Table<'t, (i64, &'static str), ()>,
    revision: Revision,
    pub(super) events: Vec<WatchEvent>,
}

impl<'t> Tx<'t> {
    /// Opens the tables of `txn`; changes will carry `revision`.
    pub(super) fn open(txn: &'t WriteTransaction, revision: Revision) -> StoreResult<Self> {
        Ok(Self {
            meta: txn.open_table(META).map_err(db_err)?,
            kv: txn.open_table(KV).map_err(db_err)?,
            lease_keys: txn.open_table(LEASE_KEYS).map_err(db_err)?,
            revision,
            events: Vec::new(),
        })
    }

    /// The current value of `key`.
    pub(super) fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        Ok(self.kv.get(key).map_err(db_err)?.map(|g| to_key_value(key, g.value())))
    }

    /// Writes `key`, keeping its create revision if it exists and moving it to `lease`.
    pub(super) fn put(&mut self, key: &str, value: &[u8], lease: Option<LeaseId>) -> StoreResult<KeyValue> {
        let old = self.kv.get(key).map_err(db_err)?.map(|g| {
            let (create, _, old_lease, _) = g.value();
            (create, old_lease)
        });
        let create = old.map_or(self.revision, |(create, _)| create);
        let new_lease = lease.unwrap_or(0);
        if let Some((_, old_lease)) = old
            && old_lease != 0
            && old_lease != new_lease
        {
            self.lease_keys.remove((old_lease, key)).map_err(db_err)?;
        }
        if new_lease != 0 {
            self.lease_keys.insert((new_lease, key), ()).map_err(db_err)?;
        }
        self.kv.insert(key, (create, self.revision, new_lease, value)).map_err(db_err)?;
        let kv = KeyValue {
            key: key.to_string(),
            value: bytes::Bytes::copy_from_slice(value),
            create_revision: create,
            mod_revision: self.revision,
            lease: lease_from_raw(new_lease),
        };
        self.events.push(WatchEvent::Put(kv.clone()));
        Ok(kv)
    }

    /// Deletes `key`; whether it existed.
    pub(super) fn delete(&mut self, key: &str) -> StoreResult<bool> {
        let old_lease = self.kv.remove(key).map_err(db_err)?.map(|g| g.value().2);
        let Some(old_lease) = old_lease else {
            return Ok(false);
        };
        if old_lease != 0 {
            self.lease_keys.remove((old_lease, key)).map_err(db_err)?;
        }
        self.events.push(WatchEvent::Delete { key: key.to_string(), revision: self.revision });
        Ok(true)
    }

    /// The keys under `prefix` (keys only: values stay on disk).
    pub(super) fn keys_with_prefix(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let mut keys = Vec::new();
        for item in self.kv.range::<&str>(prefix..).map_err(db_err)? {
            let (key, _) = item.map_err(db_err)?;
            if !key.value().starts_with(prefix) {
                break;
            }
            keys.push(key.value().to_string());
        }
        Ok(keys)
    }

    /// The keys attached to `lease`.
    pub(super) fn lease_keys(&self, lease: LeaseId) -> StoreResult<Vec<String>> {
        let mut keys = Vec::new();
        for item in self.lease_keys.range::<(i64, &str)>((lease, "")..).map_err(db_err)? {
            let (entry, _) = item.map_err(db_err)?;
            let (owner, key) = entry.value();
            if owner != lease {
                break;
            }
            keys.push(key.to_string());
        }
        Ok(keys)
    }

    /// Every key attached to any lease (on open: their leases died with the previous process).
    pub(super) fn all_leased_keys(&self) -> StoreResult<Vec<String>> {
        let mut keys = Vec::new();
        for item in self.lease_keys.iter().map_err(db_err)? {
            let (entry, _) = item.map_err(db_err)?;
            keys.push(entry.value().1.to_string());
        }
        Ok(keys)
    }

    /// Hands out the next lease id, persisted so ids are never reused across restarts.
    pub(super) fn next_lease_id(&mut self) -> StoreResult<LeaseId> {
        let id = self.meta.get(META_NEXT_LEASE).map_err(db_err)?.map_or(1, |g| g.value());
        self.meta.insert(META_NEXT_LEASE, id + 1).map_err(db_err)?;
        Ok(id)
    }
}
