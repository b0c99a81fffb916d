//! Translation between etcd-client's types and the store's: key-values, watch events, errors.
//!
//! Error mapping, by what a caller can do about it: anything that says "etcd cannot be reached or did not
//! answer" (transport errors, gRPC `Unavailable`/`DeadlineExceeded`/`Cancelled`/`Aborted`/`Unknown`, which
//! tonic reports for broken connections) is `Unavailable`, so callers retry; etcd's "requested lease not
//! found" is `LeaseNotFound`; a compacted revision is `Compacted`. gRPC codes are compared as numbers (they
//! are fixed by the gRPC spec) so this crate need not depend on tonic itself.

use crate::{KeyValue, LeaseId, Revision, StoreError, WatchEvent};
use bytes::Bytes;
use etcd_client::{Error, EventType};

/// gRPC status codes that mean "try again": Cancelled, Unknown, DeadlineExceeded, ResourceExhausted,
/// Aborted, Unavailable.
const RETRYABLE_CODES: [i32; 6] = [1, 2, 4, 8, 10, 14];
/// gRPC `NotFound`, which etcd uses for a missing lease.
const NOT_FOUND: i32 = 5;
/// gRPC `OutOfRange`, which etcd uses for a compacted revision.
const OUT_OF_RANGE: i32 = 11;

/// Maps an etcd-client error. `lease` is the lease the request named, reported by `LeaseNotFound`;
/// `revision` the revision it asked for, reported by `Compacted`.
pub(super) fn store_error(e: Error, lease: Option<LeaseId>, revision: Option<Revision>) -> StoreError {
    match e {
        Error::TransportError(e) => StoreError::Unavailable(format!("etcd transport error: {e}")),
        Error::IoError(e) => StoreError::Unavailable(format!("etcd I/O error: {e}")),
        Error::GRpcStatus(status) => {
            let code = i32::from(status.code());
            let message = status.message();
            if let Some(id) = lease.filter(|_| code == NOT_FOUND || message.contains("lease not found")) {
                StoreError::LeaseNotFound(id)
            } else if code == OUT_OF_RANGE && message.contains("compacted") {
                StoreError::Compacted(revision.unwrap_or_default())
            } else if RETRYABLE_CODES.contains(&code) {
                StoreError::Unavailable(format!("etcd: {message} ({:?})", status.code()))
            } else {
                StoreError::Other(format!("etcd: {message} ({:?})", status.code()))
            }
        }
        // The keepalive call reports a TTL of 0 (an expired or revoked lease) this way.
        Error::LeaseKeepAliveError(msg) if msg.contains("lease not found") => match lease {
            Some(id) => StoreError::LeaseNotFound(id),
            None => StoreError::Other(format!("etcd: {msg}")),
        },
        // The client's request channels closing: the connection under them went away.
        Error::LeaseKeepAliveError(msg) | Error::WatchError(msg) => {
            StoreError::Unavailable(format!("etcd stream closed: {msg}"))
        }
        other => StoreError::Other(format!("etcd: {other}")),
    }
}

/// A store key-value from etcd's.
pub(super) fn key_value(kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: key(kv)?,
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        lease: Some(kv.lease()).filter(|&l| l != 0),
    })
}

/// A key as a string; etcd keys are bytes, but every key this store writes is UTF-8, so another is corrupt.
fn key(kv: &etcd_client::KeyValue) -> Result<String, StoreError> {
    kv.key_str()
        .map(str::to_string)
        .map_err(|_| StoreError::Corrupt(format!("etcd key {:?} is not UTF-8", String::from_utf8_lossy(kv.key()))))
}

/// A watch event from etcd's. A delete's key-value carries the deletion's revision as its `mod_revision`.
pub(super) fn watch_event(event: &etcd_client::Event) -> Result<WatchEvent, StoreError> {
    let kv = event.kv().ok_or_else(|| StoreError::Other("etcd sent a watch event without a key".into()))?;
    Ok(match event.event_type() {
        EventType::Put => WatchEvent::Put(key_value(kv)?),
        EventType::Delete => WatchEvent::Delete { key: key(kv)?, revision: kv.mod_revision() },
    })
}

/// The revision in a response header, which etcd always sends.
pub(super) fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    header.map(|h| h.revision()).ok_or_else(|| StoreError::Other("etcd sent a response without a header".into()))
}
