//! The embedded store's on-disk layout (redb), format version [`FORMAT_VERSION`]:
//!
//! - `meta` (`&str` → `i64`): `format_version`, `revision` (the last committed revision; 1 when new) and
//!   `next_lease`.
//! - `kv` (`&str` → `(create_revision, mod_revision, lease, value)`): the keys; `lease` is 0 for none, as in
//!   etcd, so the record stays one flat tuple.
//! - `lease_keys` (`(lease, key)` → `()`): the keys attached to each lease, so revoking or expiring a lease
//!   (and, on open, dropping keys whose leases died with the previous process) touches only those keys
//!   instead of scanning `kv`.
//!
//! Any change to these tables' meaning bumps [`FORMAT_VERSION`]; `open` refuses other versions.

use crate::{KeyValue, LeaseId, StoreError};
use bytes::Bytes;
use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use std::path::Path;

/// The format version this build reads and writes.
pub const FORMAT_VERSION: i64 = 1;

/// Name of the meta table (see the module header).
pub(super) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// Meta key of the format version.
pub(super) const META_FORMAT_VERSION: &str = "format_version";
/// Meta key of the last committed revision.
pub(super) const META_REVISION: &str = "revision";
/// Meta key of the next lease id to hand out (ids are never reused, even across restarts).
pub(super) const META_NEXT_LEASE: &str = "next_lease";

/// A key's record: create revision, mod revision, lease (0 = none), value.
pub(super) type Record = (i64, i64, i64, &'static [u8]);
/// The keys.
pub(super) const KV: TableDefinition<&str, Record> = TableDefinition::new("kv");
/// Index of leased keys.
pub(super) const LEASE_KEYS: TableDefinition<(i64, &str), ()> = TableDefinition::new("lease_keys");

/// Builds the trait's `KeyValue` from a stored record.
pub(super) fn to_key_value(key: &str, (create, modified, lease, value): (i64, i64, i64, &[u8])) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Bytes::copy_from_slice(value),
        create_revision: create,
        mod_revision: modified,
        lease: lease_from_raw(lease),
    }
}

/// The stored lease field (0 = none) as an optional lease id.
pub(super) fn lease_from_raw(raw: i64) -> Option<LeaseId> {
    (raw != 0).then_some(raw)
}

/// Maps a redb error onto the store's error kinds.
pub(super) fn db_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(m) => StoreError::Corrupt(m),
        redb::Error::UpgradeRequired(v) => {
            StoreError::Corrupt(format!("the store file has redb file format {v}, which needs an upgrade"))
        }
        redb::Error::DatabaseAlreadyOpen => {
            StoreError::Unavailable("the store file is already open (by this or another process)".into())
        }
        redb::Error::Io(e) => StoreError::Unavailable(format!("store file I/O error: {e}")),
        other => StoreError::Other(other.to_string()),
    }
}

/// Checks (or, in a new file, writes) the format version and creates the tables; returns the last
/// committed revision. Runs inside the first write transaction of `open`.
pub(super) fn check_format(txn: &WriteTransaction, origin: &Path) -> Result<i64, StoreError> {
    let mut meta = txn.open_table(META).map_err(db_err)?;
    let version = meta.get(META_FORMAT_VERSION).map_err(db_err)?.map(|g| g.value());
    match version {
        Some(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(StoreError::Corrupt(format!(
                "embedded store {} has format version {v}, but this build of Loam reads only version \
                 {FORMAT_VERSION}",
                origin.display()
            )));
        }
        None => {
            // A file with tables but no version was not written by this store: refuse rather than guess.
            let foreign = txn.list_tables().map_err(db_err)?.find(|t| t.name() != META.name());
            if let Some(table) = foreign {
                return Err(StoreError::Corrupt(format!(
                    "embedded store {} has no format version but holds table {:?}: not a Loam store file",
                    origin.display(),
                    table.name()
                )));
            }
            meta.insert(META_FORMAT_VERSION, FORMAT_VERSION).map_err(db_err)?;
        }
    }
    // A new store is at revision 1, as a new etcd is, so no change ever has revision 0, which a watch
    // reads as "from now on".
    let revision = meta.get(META_REVISION).map_err(db_err)?.map_or(1, |g| g.value());
    drop(meta);
    txn.open_table(KV).map_err(db_err)?;
    txn.open_table(LEASE_KEYS).map_err(db_err)?;
    Ok(revision)
}
