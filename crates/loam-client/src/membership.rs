//! The membership view: the set of live workers and the hash ring over them, kept current from the
//! cluster store (etcd or embedded: the liveness prefix, as Alluxio's clients read it) or from the
//! Coordinator's nodes API. When the source is unreachable the last known ring is kept, so an etcd
//! outage does not send every read to the UFS.
//!
//! **An empty membership is not believed at once.** When a followed membership turns empty, the view
//! keeps serving the workers known last — those that left it within [`EMPTY_HOLD`], so all of them
//! when their leases went one after the other within a second — for [`EMPTY_HOLD`] (the default
//! lease TTL plus 15 s), or until a worker is listed again, whichever comes first; then it turns
//! empty. While the membership lists anyone, it is believed as it is. The case it is for: etcd paused
//! (or slow) past the lease TTL revokes every worker's lease at once when it resumes, before their
//! keep-alives arrive, and the workers re-register at their next keep-alive round (every TTL / 3,
//! 5 s by default). In that moment the last known workers are alive and are the best knowledge there
//! is: reading from them beats failing (`no worker is online`, a FUSE `EIO`) or sending every read to
//! the UFS, and a read from a worker that really left fails over as a read from any dead worker does.
//! The hold is bounded so that a cluster whose workers all left is seen empty within a lease TTL
//! plus a margin (the margin the Coordinator's job retries use too), and reads go straight to the UFS
//! fallback instead of trying addresses that are gone. Every follower (FUSE, `loam fs`, the
//! workers' own forwarding) goes through [`MembershipView::update`], so all of them hold alike; a
//! [`MembershipView::fixed`] view (a workers file) is what it is told.
//!
//! **At a thousand workers** (`loam-bench scale`): the ring is rebuilt once per batch of watch events
//! (`loam_store::follow`), not once per event, so a thousand workers registering at once cost a few
//! rebuilds instead of a thousand; a put that does not change a worker's endpoint (a worker re-putting
//! its liveness key after a lost lease) rebuilds nothing; and an update is linear in the workers (the
//! ones that left are found with a set). Renewing a lease sends no watch event at all.
//! [`MembershipView::ring_builds`] counts the rebuilds, for the benchmark and the tests.

use loam_core::coordinator_api::{NODE_ONLINE, NodeList};
use loam_core::membership::{WorkerRecord, liveness_prefix};
use loam_core::{HashRing, WorkerId};
use loam_store::follow::{PrefixView, follow_prefix};
use loam_store::{ClusterStore, KeyValue, StoreResult, WatchEvent};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where a worker serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerEndpoint {
    /// The worker's id.
    pub id: WorkerId,
    /// Host clients connect to.
    pub host: String,
    /// HTTP API port.
    pub http_port: u16,
    /// S3 API port (0 when unknown).
    pub s3_port: u16,
    /// Whether it serves over TLS (its record says so).
    pub tls: bool,
}

impl WorkerEndpoint {
    /// `http://host:port` (`https://` with TLS) of the worker HTTP API.
    pub fn http_base(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.http_port)
    }

    /// The endpoint of a membership record.
    pub fn from_record(r: &WorkerRecord) -> Option<Self> {
        Some(Self {
            id: r.worker_id()?,
            host: r.worker_net_address.host.clone(),
            http_port: r.worker_net_address.http_server_port,
            s3_port: r.worker_net_address.s3_port,
            tls: r.worker_net_address.tls,
        })
    }
}

/// The ring of live workers.
pub type Ring = HashRing<WorkerEndpoint>;

/// How long a followed membership that turned empty keeps serving the workers known last (see the
/// module header): the default lease TTL plus 15 s.
pub const EMPTY_HOLD: Duration = Duration::from_secs(loam_core::membership::DEFAULT_LEASE_TTL.as_secs() + 15);

/// A shared, live view of the ring.
#[derive(Clone)]
pub struct MembershipView {
    state: Arc<RwLock<State>>,
    virtual_nodes: u32,
    /// Rings built so far.
    builds: Arc<AtomicU64>,
}

struct State {
    ring: Arc<Ring>,
    /// Since when the followed membership is empty while `ring` still holds the workers known last.
    held_since: Option<Instant>,
    /// Workers that left the followed membership within [`EMPTY_HOLD`], and when: if it turns empty,
    /// they are the ring held.
    left: Vec<(WorkerEndpoint, Instant)>,
}

impl State {
    fn of(ring: Ring) -> Self {
        Self { ring: Arc::new(ring), held_since: None, left: Vec::new() }
    }
}

impl MembershipView {
    /// A view of a fixed set of workers.
    pub fn fixed(workers: Vec<WorkerEndpoint>, virtual_nodes: u32) -> Self {
        let v = Self {
            state: Arc::new(RwLock::new(State::of(HashRing::new(Vec::new(), virtual_nodes)))),
            virtual_nodes,
            builds: Arc::new(AtomicU64::new(0)),
        };
        v.set(workers);
        v
    }

    /// The current ring (cheap: an `Arc`). A held ring past [`EMPTY_HOLD`] turns empty here.
    pub fn ring(&self) -> Arc<Ring> {
        {
            let s = self.state.read();
            if s.held_since.is_none_or(|since| since.elapsed() < EMPTY_HOLD) {
                return s.ring.clone();
            }
        }
        let mut s = self.state.write();
        if s.held_since.is_some_and(|since| since.elapsed() >= EMPTY_HOLD) {
            tracing::warn!(
                "the membership has listed no worker for {}s; the {} workers known last are forgotten",
                EMPTY_HOLD.as_secs(),
                s.ring.len()
            );
            *s = State::of(self.build(Vec::new()));
        }
        s.ring.clone()
    }

    /// Whether the followed membership is empty and the ring served holds the workers known last.
    pub fn is_holding(&self) -> bool {
        self.state.read().held_since.is_some()
    }

    /// Replaces the set of workers (for a fixed view: an empty set is taken as it is).
    pub fn set(&self, workers: Vec<WorkerEndpoint>) {
        *self.state.write() = State::of(self.build(workers));
    }

    /// Replaces the set of workers as a follower of the membership: when it turns empty, the workers
    /// that left within [`EMPTY_HOLD`] (all of them when every lease went at once) stay in the ring for
    /// [`EMPTY_HOLD`] (see the module header).
    pub fn update(&self, workers: Vec<WorkerEndpoint>) {
        let now = Instant::now();
        let listed: HashSet<WorkerId> = workers.iter().map(|w| w.id).collect();
        let mut s = self.state.write();
        if s.held_since.is_none() {
            let gone: Vec<WorkerEndpoint> =
                s.ring.members().filter(|(_, w)| !listed.contains(&w.id)).map(|(_, w)| w.clone()).collect();
            s.left.extend(gone.into_iter().map(|w| (w, now)));
        }
        s.left.retain(|(w, at)| now.duration_since(*at) < EMPTY_HOLD && !listed.contains(&w.id));
        if !workers.is_empty() {
            if s.held_since.take().is_some() {
                tracing::info!("the membership lists {} workers again", workers.len());
            }
            s.ring = Arc::new(self.build(workers));
            return;
        }
        if s.held_since.is_none() && !s.left.is_empty() {
            let mut last: Vec<WorkerEndpoint> = Vec::new();
            for (w, _) in s.left.iter().rev() {
                if !last.iter().any(|l| l.id == w.id) {
                    last.push(w.clone());
                }
            }
            tracing::warn!(
                "the membership lists no worker; reads keep going to the {} workers known last for up to {}s",
                last.len(),
                EMPTY_HOLD.as_secs()
            );
            s.ring = Arc::new(self.build(last));
            s.held_since = Some(now);
        }
    }

    /// While the followed membership is empty (and nothing is held yet), serves `workers` known from
    /// elsewhere (a view kept on disk) as the workers known last, for [`EMPTY_HOLD`] from now.
    pub fn hold_last_known(&self, workers: Vec<WorkerEndpoint>) {
        let mut s = self.state.write();
        if s.ring.is_empty() && !workers.is_empty() {
            s.ring = Arc::new(self.build(workers));
            s.held_since = Some(Instant::now());
        }
    }

    /// How many rings this view has built (each change of the membership builds one).
    pub fn ring_builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    fn build(&self, workers: Vec<WorkerEndpoint>) -> Ring {
        self.builds.fetch_add(1, Ordering::Relaxed);
        HashRing::new(workers.into_iter().map(|w| (w.id.identity(), w)), self.virtual_nodes)
    }

    /// Follows the liveness records in the cluster store; the ring is rebuilt on every change.
    pub async fn follow_store(
        store: Arc<dyn ClusterStore>,
        cluster: &str,
        virtual_nodes: u32,
        shutdown: watch::Receiver<bool>,
    ) -> StoreResult<(Self, JoinHandle<()>)> {
        let view = Self::fixed(Vec::new(), virtual_nodes);
        let follower = Arc::new(LivenessFollower { view: view.clone(), live: Mutex::new(BTreeMap::new()) });
        let task = follow_prefix(store, liveness_prefix(cluster), follower, shutdown).await?;
        Ok((view, task))
    }

    /// Polls the Coordinators' `GET /api/v1/nodes` every `interval` (for `loam local`, which has no etcd).
    pub async fn follow_coordinator(
        coordinators: crate::Coordinators,
        virtual_nodes: u32,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(Self, JoinHandle<()>), crate::PeerError> {
        let view = Self::fixed(Vec::new(), virtual_nodes);
        view.update(fetch_nodes(&coordinators).await?);
        let v = view.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
                match fetch_nodes(&coordinators).await {
                    Ok(w) => v.update(w),
                    Err(e) => tracing::warn!("nodes refresh failed, keeping the last ring: {e}"),
                }
            }
        });
        Ok((view, task))
    }
}

/// Keeps a [`MembershipView`]'s ring equal to the live workers under the liveness prefix.
struct LivenessFollower {
    view: MembershipView,
    /// Liveness key -> endpoint, so one change does not need the whole prefix re-read.
    live: Mutex<BTreeMap<String, WorkerEndpoint>>,
}

fn endpoint_of(kv: &KeyValue) -> Option<WorkerEndpoint> {
    serde_json::from_slice::<WorkerRecord>(&kv.value).ok().and_then(|r| WorkerEndpoint::from_record(&r))
}

impl LivenessFollower {
    fn publish(&self, live: &BTreeMap<String, WorkerEndpoint>) {
        self.view.update(live.values().cloned().collect());
    }
}

impl PrefixView for LivenessFollower {
    fn reset(&self, kvs: Vec<KeyValue>) {
        let mut live = self.live.lock();
        *live = kvs.iter().filter_map(|kv| Some((kv.key.clone(), endpoint_of(kv)?))).collect();
        self.publish(&live);
    }

    fn apply(&self, event: WatchEvent) {
        self.apply_batch(vec![event]);
    }

    /// Applies the events to the map and rebuilds the ring once, if any of them changed a worker.
    fn apply_batch(&self, events: Vec<WatchEvent>) {
        let mut live = self.live.lock();
        let mut changed = false;
        for event in events {
            changed |= match event {
                WatchEvent::Put(kv) => match endpoint_of(&kv) {
                    Some(w) if live.get(&kv.key) == Some(&w) => false,
                    Some(w) => {
                        live.insert(kv.key, w);
                        true
                    }
                    None => live.remove(&kv.key).is_some(),
                },
                WatchEvent::Delete { key, .. } => live.remove(&key).is_some(),
            };
        }
        if changed {
            self.publish(&live);
        }
    }
}

/// The ONLINE workers the Coordinators list.
pub async fn fetch_nodes(coordinators: &crate::Coordinators) -> Result<Vec<WorkerEndpoint>, crate::PeerError> {
    let list: NodeList = coordinators.json(reqwest::Method::GET, "/api/v1/nodes", |r| r).await?;
    Ok(list
        .result
        .into_iter()
        .filter(|n| n.status == NODE_ONLINE)
        .filter_map(|n| {
            let id = n.identity.parse().ok()?;
            let (host, port) = n.address.rsplit_once(':')?;
            Some(WorkerEndpoint { id, host: host.to_string(), http_port: port.parse().ok()?, s3_port: 0, tls: n.tls })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(port: u16) -> WorkerEndpoint {
        WorkerEndpoint { id: WorkerId::random(), host: "127.0.0.1".into(), http_port: port, s3_port: 0, tls: false }
    }

    fn ports(ring: &Ring) -> Vec<u16> {
        let mut p: Vec<u16> = ring.members().map(|(_, w)| w.http_port).collect();
        p.sort();
        p
    }

    /// Moves the start of the hold back by `by`, as if that much time had passed.
    fn age(view: &MembershipView, by: Duration) {
        let mut s = view.state.write();
        let since = s.held_since.expect("a held ring");
        s.held_since = Some(since.checked_sub(by).expect("an instant that far back"));
    }

    #[test]
    fn a_followed_membership_that_turns_empty_keeps_its_last_ring_until_a_worker_is_back() {
        let view = MembershipView::fixed(Vec::new(), 16);
        let (w1, w2) = (worker(1), worker(2));
        view.update(vec![w1.clone(), w2.clone()]);
        view.update(vec![w2.clone()]);
        assert_eq!(ports(&view.ring()), [2], "a membership that lists anyone is believed");
        view.update(Vec::new());
        assert!(view.is_holding());
        assert_eq!(ports(&view.ring()), [1, 2], "the workers that left in the run-up are served");
        view.update(Vec::new());
        age(&view, EMPTY_HOLD - Duration::from_secs(1));
        assert_eq!(ports(&view.ring()), [1, 2], "still held within the hold");
        view.update(vec![worker(3)]);
        assert!(!view.is_holding());
        assert_eq!(ports(&view.ring()), [3], "a listed worker replaces the held ring");
    }

    #[test]
    fn a_held_ring_is_forgotten_after_the_hold() {
        let view = MembershipView::fixed(Vec::new(), 16);
        view.update(vec![worker(1)]);
        view.update(Vec::new());
        age(&view, EMPTY_HOLD);
        assert!(view.ring().is_empty(), "an empty membership is believed after the hold");
        assert!(!view.is_holding());
        view.update(Vec::new());
        assert!(view.ring().is_empty() && !view.is_holding(), "nothing to hold");
    }

    #[test]
    fn a_fixed_view_is_what_it_is_told_and_a_kept_ring_fills_only_an_empty_one() {
        let view = MembershipView::fixed(vec![worker(1)], 16);
        view.set(Vec::new());
        assert!(view.ring().is_empty() && !view.is_holding(), "set is not followed: no hold");
        view.hold_last_known(vec![worker(7)]);
        assert!(view.is_holding());
        assert_eq!(ports(&view.ring()), [7]);
        view.hold_last_known(vec![worker(8)]);
        assert_eq!(ports(&view.ring()), [7], "only an empty ring takes a kept one");
        view.update(vec![worker(2)]);
        assert_eq!(ports(&view.ring()), [2], "the followed membership wins once it lists a worker");
        view.hold_last_known(vec![worker(9)]);
        assert_eq!(ports(&view.ring()), [2]);
    }

    fn kv(key: &str, w: &WorkerEndpoint) -> KeyValue {
        let record = WorkerRecord::new(w.id, &w.host, w.http_port, 0);
        KeyValue {
            key: key.into(),
            value: serde_json::to_vec(&record).unwrap().into(),
            create_revision: 1,
            mod_revision: 1,
            lease: None,
        }
    }

    #[test]
    fn the_liveness_follower_holds_across_deletes_and_an_empty_reload() {
        let view = MembershipView::fixed(Vec::new(), 16);
        let follower = LivenessFollower { view: view.clone(), live: Mutex::new(BTreeMap::new()) };
        let (a, b) = (worker(1), worker(2));
        follower.reset(vec![kv("l/a", &a), kv("l/b", &b)]);
        follower.apply(WatchEvent::Delete { key: "l/a".into(), revision: 2 });
        follower.apply(WatchEvent::Delete { key: "l/b".into(), revision: 3 });
        assert_eq!(ports(&view.ring()), [1, 2], "every lease revoked at once: the workers are held");
        follower.reset(Vec::new());
        assert_eq!(ports(&view.ring()), [1, 2], "a reload that lists nobody holds too");
        follower.apply(WatchEvent::Put(kv("l/a", &a)));
        assert!(!view.is_holding());
        assert_eq!(ports(&view.ring()), [1]);
    }

    #[test]
    fn a_batch_of_watch_events_builds_the_ring_once_and_a_same_endpoint_put_builds_none() {
        let view = MembershipView::fixed(Vec::new(), 16);
        let follower = LivenessFollower { view: view.clone(), live: Mutex::new(BTreeMap::new()) };
        let ws: Vec<WorkerEndpoint> = (1..=50).map(worker).collect();
        let before = view.ring_builds();
        follower.apply_batch(ws.iter().enumerate().map(|(i, w)| WatchEvent::Put(kv(&format!("l/{i}"), w))).collect());
        assert_eq!(view.ring_builds(), before + 1, "fifty workers joining together: one ring");
        assert_eq!(ports(&view.ring()), (1..=50).collect::<Vec<u16>>());
        // A worker re-putting its liveness key (a new lease) with the same endpoint changes nothing.
        follower.apply(WatchEvent::Put(kv("l/3", &ws[3])));
        follower.apply(WatchEvent::Delete { key: "l/none".into(), revision: 9 });
        assert_eq!(view.ring_builds(), before + 1, "no change, no rebuild");
        follower.apply_batch(vec![
            WatchEvent::Delete { key: "l/0".into(), revision: 10 },
            WatchEvent::Put(kv("l/0", &worker(99))),
        ]);
        assert_eq!(view.ring_builds(), before + 2);
        assert!(ports(&view.ring()).contains(&99) && !ports(&view.ring()).contains(&1));
    }

    #[test]
    fn a_worker_that_left_before_the_hold_is_not_held() {
        let view = MembershipView::fixed(Vec::new(), 16);
        view.update(vec![worker(1), worker(2)]);
        let w2 = view.ring().members().map(|(_, w)| w.clone()).find(|w| w.http_port == 2).unwrap();
        view.update(vec![w2]);
        // Worker 1 left a hold ago.
        view.state.write().left.iter_mut().for_each(|(_, at)| *at = at.checked_sub(EMPTY_HOLD).unwrap());
        view.update(Vec::new());
        assert_eq!(ports(&view.ring()), [2]);
    }
}
