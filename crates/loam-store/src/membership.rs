//! Worker membership over any [`ClusterStore`], in Alluxio's etcd layout: a permanent registration at
//! `/DHT/<cluster>/AUTHORIZED/<id>` and a liveness record at `/ServiceDiscovery/<cluster>/<id>` on a lease
//! (both values the same `WorkerRecord` JSON). A worker is ONLINE while its liveness key exists.
//!
//! [`register`] writes both keys and starts a keepalive task (see `keepalive`) that renews the lease,
//! re-grants it and re-puts the liveness key after a lost lease or a store outage, and gives up for good
//! when an admin has deleted the registration (the worker must be restarted to join again).

mod keepalive;

use crate::{ClusterStore, StoreError, StoreResult, list_all};
use bytes::Bytes;
use keepalive::{Keeper, Registration};
use loam_core::WorkerId;
use loam_core::membership::{WorkerRecord, authorized_prefix, liveness_prefix};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A worker as the membership keys describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// The worker's record (from its liveness key when it has one, the fresher of the two).
    pub record: WorkerRecord,
    /// Whether its liveness key exists.
    pub online: bool,
}

/// The registration key of worker `id`.
pub fn authorized_key(cluster: &str, id: &WorkerId) -> String {
    format!("{}{id}", authorized_prefix(cluster))
}

/// The liveness key of worker `id`.
pub fn liveness_key(cluster: &str, id: &WorkerId) -> String {
    format!("{}{id}", liveness_prefix(cluster))
}

/// Whether a registered worker's liveness key was in place at the last keepalive (shared with its handle).
#[derive(Clone, Debug)]
pub struct Liveness(Arc<AtomicBool>);

impl Liveness {
    /// As [`MembershipHandle::is_live`].
    pub fn is_live(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A registered worker's keepalive. Dropping it stops the task too, which then revokes the lease.
pub struct MembershipHandle {
    id: WorkerId,
    live: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    task: JoinHandle<StoreResult<()>>,
}

impl MembershipHandle {
    /// The registered worker.
    pub fn worker_id(&self) -> WorkerId {
        self.id
    }

    /// Whether the liveness key was in place at the last keepalive (false while recovering, or after an
    /// admin removed the worker).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// A view of [`MembershipHandle::is_live`] that outlives no one: readiness probes read it.
    pub fn liveness(&self) -> Liveness {
        Liveness(self.live.clone())
    }

    /// Stops the keepalive task, waits for it, and revokes the lease so the worker is OFFLINE at once.
    pub async fn shutdown(self) -> StoreResult<()> {
        self.stop.send_replace(true);
        self.task.await.map_err(|e| StoreError::Other(format!("membership keepalive task failed: {e}")))?
    }
}

/// Registers `record` in `cluster`: the permanent registration, then the liveness key on a lease of `ttl`,
/// kept alive every `ttl / 3` by a background task.
pub async fn register(
    store: Arc<dyn ClusterStore>,
    cluster: &str,
    record: WorkerRecord,
    ttl: Duration,
) -> StoreResult<MembershipHandle> {
    let id = record.worker_id().ok_or_else(|| {
        StoreError::Other(format!("worker record {:?} does not name a worker id", record.service_entity_name))
    })?;
    let value = serde_json::to_vec(&record)
        .map(Bytes::from)
        .map_err(|e| StoreError::Other(format!("cannot encode the record of {id}: {e}")))?;
    let auth_key = authorized_key(cluster, &id);
    let live_key = liveness_key(cluster, &id);
    store.put(&auth_key, value.clone(), None).await?;
    let lease = store.grant_lease(ttl).await?;
    if let Err(e) = store.put(&live_key, value.clone(), Some(lease)).await {
        // Best effort: the lease would expire by itself anyway.
        let _ = store.revoke_lease(lease).await;
        return Err(e);
    }
    tracing::info!(worker = %id, cluster, lease, "registered worker");
    let live = Arc::new(AtomicBool::new(true));
    let (stop, stopped) = watch::channel(false);
    let reg = Registration { id, auth_key, live_key, value, ttl };
    let keeper = Keeper::new(store, reg, lease, live.clone());
    let task = tokio::spawn(keeper.run(stopped));
    Ok(MembershipHandle { id, live, stop, task })
}

/// Every worker in `cluster`, registered or live, sorted by worker id. Values that do not decode are skipped
/// with a warning.
pub async fn list_workers(store: &dyn ClusterStore, cluster: &str) -> StoreResult<Vec<MemberInfo>> {
    let mut members: BTreeMap<String, MemberInfo> = BTreeMap::new();
    // Registrations first: a liveness record then marks its worker ONLINE, and replaces the record.
    for (prefix, online) in [(authorized_prefix(cluster), false), (liveness_prefix(cluster), true)] {
        for kv in list_all(store, &prefix).await? {
            let id = kv.key[prefix.len()..].to_string();
            match serde_json::from_slice::<WorkerRecord>(&kv.value) {
                Ok(record) => {
                    members.insert(id, MemberInfo { record, online });
                }
                Err(e) => tracing::warn!(key = %kv.key, error = %e, "skipping an undecodable membership record"),
            }
        }
    }
    Ok(members.into_values().collect())
}

/// Deletes worker `id`'s registration and liveness keys; false when neither existed. A running worker
/// notices at its next keepalive and stops announcing itself.
pub async fn deregister(store: &dyn ClusterStore, cluster: &str, id: &WorkerId) -> StoreResult<bool> {
    // The registration goes first: a keepalive that runs in between then stops instead of re-putting
    // the liveness key.
    let registered = store.delete(&authorized_key(cluster, id)).await?;
    let live = store.delete(&liveness_key(cluster, id)).await?;
    Ok(registered || live)
}
