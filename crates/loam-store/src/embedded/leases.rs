//! Leases of the embedded store. The store serves one process, so a lease lives only in memory (a TTL and a
//! deadline): when the process ends its leases end with it, and `open` deletes the keys they left behind.
//! A background task ([`expiry_loop`]) revokes leases whose deadline has passed; it holds only a weak
//! reference to the store so that dropping the store closes the file at once, and it stops when the
//! store's stop channel fires or its sender is dropped.

use super::state::Inner;
use crate::{LeaseId, StoreError, StoreResult};
use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// One live lease.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lease {
    ttl: Duration,
    deadline: Instant,
}

impl Lease {
    /// Whether the deadline is still ahead.
    pub(super) fn is_live(&self) -> bool {
        self.deadline > Instant::now()
    }
}

/// The live leases.
#[derive(Default)]
pub(super) struct Leases {
    live: HashMap<LeaseId, Lease>,
}

impl Leases {
    /// Starts lease `id`, due `ttl` from now.
    pub(super) fn grant(&mut self, id: LeaseId, ttl: Duration) {
        self.live.insert(id, Lease { ttl, deadline: Instant::now() + ttl });
    }

    /// Fails with `LeaseNotFound` unless `id` is live. A lease past its deadline counts as gone even
    /// before the expiry task has revoked it, so nothing can attach to or revive a lease that is due.
    pub(super) fn check(&self, id: LeaseId) -> StoreResult<()> {
        match self.live.get(&id) {
            Some(lease) if lease.is_live() => Ok(()),
            _ => Err(StoreError::LeaseNotFound(id)),
        }
    }

    /// Pushes the deadline of live lease `id` one TTL from now.
    pub(super) fn keep_alive(&mut self, id: LeaseId) -> StoreResult<()> {
        let now = Instant::now();
        match self.live.get_mut(&id) {
            Some(lease) if lease.deadline > now => {
                lease.deadline = now + lease.ttl;
                Ok(())
            }
            _ => Err(StoreError::LeaseNotFound(id)),
        }
    }

    /// Removes lease `id` (live or due), returning it so a failed revocation can put it back.
    pub(super) fn remove(&mut self, id: LeaseId) -> Option<Lease> {
        self.live.remove(&id)
    }

    /// Puts back a lease whose revocation failed, so the expiry task retries it.
    pub(super) fn restore(&mut self, id: LeaseId, lease: Lease) {
        self.live.insert(id, lease);
    }

    /// The leases whose deadline has passed.
    pub(super) fn due(&self) -> Vec<LeaseId> {
        let now = Instant::now();
        self.live.iter().filter(|(_, l)| l.deadline <= now).map(|(id, _)| *id).collect()
    }

    /// Forgets every lease (store shutdown).
    pub(super) fn clear(&mut self) {
        self.live.clear();
    }
}

/// Revokes due leases every `tick` until `stop` fires (or its sender is dropped) or the store is gone.
pub(super) async fn expiry_loop(store: Weak<Inner>, mut stop: watch::Receiver<bool>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = interval.tick() => {}
        }
        let Some(inner) = store.upgrade() else { return };
        let due = inner.leases.lock().due();
        if due.is_empty() {
            continue;
        }
        let result = tokio::task::spawn_blocking(move || {
            for id in due {
                match inner.drop_lease(id) {
                    // Revoked by its owner since `due` was taken.
                    Ok(_) | Err(StoreError::LeaseNotFound(_)) => {}
                    Err(e) => tracing::warn!(lease = id, error = %e, "could not delete the keys of an expired lease; will retry"),
                }
            }
        })
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "lease expiry task failed");
        }
    }
}
