//! Which Coordinator leads (a highly available Coordinator: several processes against one etcd).
//!
//! - **Election.** Every Coordinator campaigns in etcd's election `/loam/<cluster>/coordinator-leader`
//!   (`loam_core::store_keys::coordinator_leader_election`) with its advertised URL as the value, on a
//!   lease of `leader-lease-ttl` that [`Elector`] keeps alive every third of the TTL from the moment it is
//!   granted. The one whose key is oldest leads. The embedded store's election ([`loam_store::SoleLeader`])
//!   makes the single Coordinator lead at once, so `loam local` behaves as before.
//! - **Only the leader writes in the background.** Becoming leader resumes the stored running jobs
//!   (`JobService::start`, from their persisted cursors, as a restarted Coordinator does); losing the lease
//!   stops them at once (`JobService::step_down`) and the Coordinator campaigns again.
//! - **Fencing.** The lease is lost for this process when etcd says so, or when no renewal has succeeded
//!   for two thirds of the TTL (it may still live in etcd, but this process cannot know: it steps down
//!   first). Job records and rebalance plans are written through [`Fence`]: a transaction that compares
//!   the leader key's create revision, so a paused or cut-off former leader cannot overwrite the new
//!   leader's progress even before it notices (`loam_store::election`).
//! - **Who leads** is followed by watching the election's keys ([`LeaderState`]): the forwarding of writes
//!   (`api::leader`), the readiness probe ([`LeaderState::readiness`]) and `GET /api/v1/coordinators` read it.
//! - **Shutdown** stops the jobs (persisting their progress), resigns and revokes the lease, so another
//!   Coordinator leads at once instead of after the TTL.

use crate::jobs::JobService;
use bytes::Bytes;
use futures::StreamExt;
use loam_store::{ClusterStore, Election, Fenced, LeaseId, StoreError, StoreResult, Term};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Default TTL of the leader's lease: how long a dead leader leads before another takes over.
pub const DEFAULT_LEADER_LEASE_TTL: Duration = Duration::from_secs(10);

/// What this Coordinator knows of the election.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leadership {
    /// Whether this Coordinator leads (holds the lease and runs the jobs).
    pub leading: bool,
    /// The leader's advertised URL, when one is known.
    pub leader: Option<String>,
}

/// The election as this process sees it, shared with the HTTP edge; cheap to clone.
#[derive(Clone, Debug)]
pub struct LeaderState {
    tx: Arc<watch::Sender<Leadership>>,
    name: Arc<str>,
}

impl LeaderState {
    /// Nobody known to lead yet, in election `name`.
    pub fn new(name: &str) -> Self {
        Self { tx: Arc::new(watch::channel(Leadership::default()).0), name: name.into() }
    }

    /// The current view.
    pub fn get(&self) -> Leadership {
        self.tx.borrow().clone()
    }

    /// A receiver of every change.
    pub fn subscribe(&self) -> watch::Receiver<Leadership> {
        self.tx.subscribe()
    }

    /// The readiness condition the election adds: a leader is known; otherwise why not.
    pub fn readiness(&self) -> Result<(), String> {
        match self.get().leader {
            Some(_) => Ok(()),
            None => Err(format!("no Coordinator leads yet (election {})", self.name)),
        }
    }

    fn set_leading(&self, leading: bool, me: &str) {
        self.tx.send_modify(|l| {
            l.leading = leading;
            if leading {
                l.leader = Some(me.to_string());
            } else if l.leader.as_deref() == Some(me) {
                l.leader = None;
            }
        });
    }

    fn set_leader(&self, leader: Option<String>) {
        self.tx.send_if_modified(|l| {
            // While this process leads, only it can be the leader (the watch may briefly lag behind).
            let leader = if l.leading { l.leader.clone() } else { leader };
            let changed = l.leader != leader;
            l.leader = leader;
            changed
        });
    }
}

/// Writes only the leader may make (job records): refused once this process's term is over.
#[derive(Debug)]
pub struct Fence {
    election: Arc<dyn Election>,
    term: Mutex<Option<Term>>,
}

impl Fence {
    /// A fence with no term yet (every write refused until this process leads).
    pub fn new(election: Arc<dyn Election>) -> Self {
        Self { election, term: Mutex::new(None) }
    }

    /// A fence for `term` of `election`, as this process holds it while it leads (tests of fenced writes).
    #[cfg(test)]
    pub(crate) fn leading(election: Arc<dyn Election>, term: Term) -> Self {
        Self { election, term: Mutex::new(Some(term)) }
    }

    fn term(&self) -> StoreResult<Term> {
        match self.term.lock().clone() {
            Some(t) => Ok(t),
            // The sole user of its store leads from the start (the job service used without `serve`, too).
            None if self.election.sole() => Ok(Term { name: String::new(), key: String::new(), revision: 0, lease: 0 }),
            None => Err(not_leader()),
        }
    }

    /// Puts `value` at `key` while this process leads.
    pub async fn put(&self, key: &str, value: Bytes) -> StoreResult<()> {
        match self.election.put_fenced(&self.term()?, key, value).await? {
            Fenced::Done => Ok(()),
            Fenced::Deposed => Err(not_leader()),
        }
    }

    /// Deletes `key` while this process leads.
    pub async fn delete(&self, key: &str) -> StoreResult<()> {
        match self.election.delete_fenced(&self.term()?, key).await? {
            Fenced::Done => Ok(()),
            Fenced::Deposed => Err(not_leader()),
        }
    }

    /// Deletes every key under `prefix` while this process leads.
    pub async fn delete_prefix(&self, prefix: &str) -> StoreResult<()> {
        match self.election.delete_prefix_fenced(&self.term()?, prefix).await? {
            Fenced::Done => Ok(()),
            Fenced::Deposed => Err(not_leader()),
        }
    }
}

/// The error of a write this process may no longer make: `Unavailable`, so a client retries (on the leader).
fn not_leader() -> StoreError {
    StoreError::Unavailable("this Coordinator does not lead (its leader lease is gone); retry".into())
}

/// Campaigns, leads and steps down, for as long as the Coordinator runs.
pub struct Elector {
    pub(crate) store: Arc<dyn ClusterStore>,
    pub(crate) election: Arc<dyn Election>,
    pub(crate) fence: Arc<Fence>,
    pub(crate) state: LeaderState,
    pub(crate) name: String,
    pub(crate) ttl: Duration,
}

impl Elector {
    /// Runs until `stop` fires: campaigns as `url`, resumes the jobs when it leads, stops them when it
    /// loses the lease; on stop it stops the jobs and gives leadership up.
    pub async fn run(self, url: String, jobs: &JobService, mut stop: watch::Receiver<bool>) {
        let observer =
            tokio::spawn(observe(self.store.clone(), self.election.clone(), self.name.clone(), self.state.clone()));
        while !*stop.borrow() {
            let lease = match self.store.grant_lease(self.ttl).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("cannot grant the leader lease (retrying): {e}");
                    if sleep_or_stop(&mut stop, Duration::from_secs(1)).await {
                        break;
                    }
                    continue;
                }
            };
            let (lost_tx, mut lost) = watch::channel(false);
            let keeper = tokio::spawn(keep_alive(self.store.clone(), lease, self.ttl, lost_tx));
            let term = tokio::select! {
                t = self.election.campaign(&self.name, &url, lease) => t,
                _ = lost.wait_for(|l| *l) => Err(StoreError::LeaseNotFound(lease)),
                _ = stop.wait_for(|s| *s) => Err(StoreError::Other("stopping".into())),
            };
            let term = match term {
                Ok(t) => t,
                Err(e) => {
                    keeper.abort();
                    let _ = self.store.revoke_lease(lease).await;
                    if !*stop.borrow() {
                        tracing::warn!("campaigning for Coordinator leader failed (trying again): {e}");
                        sleep_or_stop(&mut stop, Duration::from_millis(500)).await;
                    }
                    continue;
                }
            };
            *self.fence.term.lock() = Some(term.clone());
            self.state.set_leading(true, &url);
            tracing::info!(%url, election = %self.name, "this Coordinator leads: resuming the running jobs");
            if let Err(e) = jobs.start().await {
                tracing::error!("cannot resume the stored jobs: {e}");
            }
            let stopping = tokio::select! {
                _ = lost.wait_for(|l| *l) => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            if stopping {
                jobs.shutdown().await;
            } else {
                // Fence first: from here on no job record is written, even by a runner not yet stopped.
                *self.fence.term.lock() = None;
                tracing::error!(%url, "the leader lease is lost: stopping the jobs and campaigning again");
            }
            *self.fence.term.lock() = None;
            self.state.set_leading(false, &url);
            if !stopping {
                jobs.step_down().await;
            }
            keeper.abort();
            if stopping {
                let _ = self.election.resign(&term).await;
            }
            let _ = self.store.revoke_lease(lease).await;
        }
        observer.abort();
    }
}

/// Sleeps `d`; `true` when `stop` fired first.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = stop.wait_for(|s| *s) => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// Renews `lease` every third of `ttl`; sets `lost` when etcd no longer has it or no renewal succeeded
/// for two thirds of the TTL.
async fn keep_alive(store: Arc<dyn ClusterStore>, lease: LeaseId, ttl: Duration, lost: watch::Sender<bool>) {
    let period = (ttl / 3).max(Duration::from_millis(100));
    let mut last_ok = Instant::now();
    loop {
        tokio::time::sleep(period).await;
        let sent = Instant::now();
        match store.keep_alive(lease).await {
            Ok(()) => last_ok = sent,
            Err(StoreError::LeaseNotFound(_)) => break,
            Err(e) => {
                tracing::warn!("cannot renew the leader lease: {e}");
                if last_ok.elapsed() >= ttl * 2 / 3 {
                    break;
                }
            }
        }
    }
    let _ = lost.send(true);
}

/// Follows who leads: reads the leader at start and on every change of the election's keys.
async fn observe(store: Arc<dyn ClusterStore>, election: Arc<dyn Election>, name: String, state: LeaderState) {
    let prefix = format!("{name}/");
    loop {
        let watch = store.watch(&prefix, 0).await;
        // Read after the watch is open, so no change between the read and the watch is missed.
        match election.leader(&name).await {
            Ok(l) => state.set_leader(l),
            Err(e) => {
                tracing::warn!("cannot read the Coordinator leader: {e}");
                state.set_leader(None);
            }
        }
        if let Ok(mut events) = watch {
            while let Some(ev) = events.next().await {
                if ev.is_err() {
                    break;
                }
                match election.leader(&name).await {
                    Ok(l) => state.set_leader(l),
                    Err(e) => tracing::warn!("cannot read the Coordinator leader: {e}"),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
