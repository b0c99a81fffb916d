//! A registered worker's keepalive loop. Every `ttl / 3` it checks that the registration still exists,
//! renews the lease, and makes sure the liveness key is on that lease. When the lease is lost (expired
//! during a pause, or revoked) it grants a new one and re-puts the liveness key; when the store errors it
//! retries with a doubling backoff (capped at the normal period) until the store answers again. When an
//! admin has deleted the registration it revokes the lease and stops announcing the worker for good.
//! On stop (the handle's `shutdown`, or its drop) it revokes the lease so the worker turns OFFLINE at once.

use crate::{ClusterStore, LeaseId, StoreError, StoreResult};
use bytes::Bytes;
use loam_core::WorkerId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// The first retry delay after a failed keepalive.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// What one keepalive round found.
enum Round {
    /// The liveness key is in place on a live lease.
    Live,
    /// The registration is gone: the worker was removed.
    Removed,
}

/// What a worker registered: its id, its two keys, their value, and the lease TTL.
pub(super) struct Registration {
    pub(super) id: WorkerId,
    pub(super) auth_key: String,
    pub(super) live_key: String,
    pub(super) value: Bytes,
    pub(super) ttl: Duration,
}

/// The state of one worker's keepalive.
pub(super) struct Keeper {
    store: Arc<dyn ClusterStore>,
    reg: Registration,
    lease: Option<LeaseId>,
    live: Arc<AtomicBool>,
}

impl Keeper {
    /// A keepalive for the keys `register` has just written on `lease`.
    pub(super) fn new(store: Arc<dyn ClusterStore>, reg: Registration, lease: LeaseId, live: Arc<AtomicBool>) -> Self {
        Self { store, reg, lease: Some(lease), live }
    }

    /// Keeps the worker live until `stop` fires or its sender is dropped, then revokes the lease.
    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) -> StoreResult<()> {
        let period = (self.reg.ttl / 3).max(Duration::from_millis(1));
        let mut delay = period;
        let mut failures = 0u32;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(delay) => {}
            }
            match self.round().await {
                Ok(Round::Live) => {
                    if failures > 0 {
                        tracing::info!(worker = %self.reg.id, lease = ?self.lease, "membership restored");
                    }
                    self.live.store(true, Ordering::SeqCst);
                    failures = 0;
                    delay = period;
                }
                Ok(Round::Removed) => {
                    tracing::warn!(worker = %self.reg.id, "the worker's registration was deleted; it must be restarted to join again");
                    self.live.store(false, Ordering::SeqCst);
                    self.revoke().await?;
                    // Nothing more to announce: wait for the owner to stop us.
                    let _ = stop.changed().await;
                    return Ok(());
                }
                Err(e) => {
                    self.live.store(false, Ordering::SeqCst);
                    tracing::warn!(worker = %self.reg.id, error = %e, "membership keepalive failed; retrying");
                    delay = FIRST_RETRY.saturating_mul(1 << failures.min(16)).min(period);
                    failures = failures.saturating_add(1);
                }
            }
        }
        self.live.store(false, Ordering::SeqCst);
        self.revoke().await
    }

    /// One keepalive round.
    async fn round(&mut self) -> StoreResult<Round> {
        if self.store.get(&self.reg.auth_key).await?.is_none() {
            return Ok(Round::Removed);
        }
        if let Some(lease) = self.lease {
            match self.store.keep_alive(lease).await {
                Ok(()) => {}
                Err(StoreError::LeaseNotFound(_)) => {
                    tracing::warn!(worker = %self.reg.id, lease, "membership lease lost; granting a new one");
                    self.lease = None;
                }
                Err(e) => return Err(e),
            }
        }
        let lease = match self.lease {
            Some(lease) => lease,
            None => {
                let lease = self.store.grant_lease(self.reg.ttl).await?;
                self.lease = Some(lease);
                lease
            }
        };
        // Re-put when the key went with a lost lease, or someone deleted it by hand.
        let current = self.store.get(&self.reg.live_key).await?;
        if current.and_then(|kv| kv.lease) != Some(lease) {
            match self.store.put(&self.reg.live_key, self.reg.value.clone(), Some(lease)).await {
                Ok(_) => {}
                Err(e @ StoreError::LeaseNotFound(_)) => {
                    // Expired between the renewal and the put: grant afresh next round.
                    self.lease = None;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Round::Live)
    }

    /// Revokes the current lease (deleting the liveness key); a lease already gone is fine.
    async fn revoke(&mut self) -> StoreResult<()> {
        let Some(lease) = self.lease.take() else {
            return Ok(());
        };
        match self.store.revoke_lease(lease).await {
            Ok(()) | Err(StoreError::LeaseNotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
