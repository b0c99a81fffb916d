//! The membership view: the set of live workers and the hash ring over them, kept current from the
//! cluster store (etcd or embedded: the liveness prefix, as Alluxio's clients read it) or from the
//! Coordinator's nodes API. When the source is unreachable the last known ring is kept, so an etcd
//! outage does not send every read to the UFS.

use loam_core::coordinator_api::{NODE_ONLINE, NodeList};
use loam_core::membership::{WorkerRecord, liveness_prefix};
use loam_core::{HashRing, WorkerId};
use loam_store::follow::{PrefixView, follow_prefix};
use loam_store::{ClusterStore, KeyValue, StoreResult, WatchEvent};
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
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

/// A shared, live view of the ring.
#[derive(Clone)]
pub struct MembershipView {
    ring: Arc<RwLock<Arc<Ring>>>,
    virtual_nodes: u32,
}

impl MembershipView {
    /// A view of a fixed set of workers.
    pub fn fixed(workers: Vec<WorkerEndpoint>, virtual_nodes: u32) -> Self {
        let v = Self { ring: Arc::new(RwLock::new(Arc::new(HashRing::new(Vec::new(), virtual_nodes)))), virtual_nodes };
        v.set(workers);
        v
    }

    /// The current ring (cheap: an `Arc`).
    pub fn ring(&self) -> Arc<Ring> {
        self.ring.read().clone()
    }

    /// Replaces the set of workers.
    pub fn set(&self, workers: Vec<WorkerEndpoint>) {
        let ring = HashRing::new(workers.into_iter().map(|w| (w.id.identity(), w)), self.virtual_nodes);
        *self.ring.write() = Arc::new(ring);
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

    /// Polls the Coordinator's `GET /api/v1/nodes` every `interval` (for `loam local`, which has no etcd).
    pub async fn follow_coordinator(
        http: crate::PeerClient,
        coordinator: String,
        virtual_nodes: u32,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(Self, JoinHandle<()>), reqwest::Error> {
        let view = Self::fixed(Vec::new(), virtual_nodes);
        view.set(fetch_nodes(&http, &coordinator).await?);
        let v = view.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
                match fetch_nodes(&http, &coordinator).await {
                    Ok(w) => v.set(w),
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
        self.view.set(live.values().cloned().collect());
    }
}

impl PrefixView for LivenessFollower {
    fn reset(&self, kvs: Vec<KeyValue>) {
        let mut live = self.live.lock();
        *live = kvs.iter().filter_map(|kv| Some((kv.key.clone(), endpoint_of(kv)?))).collect();
        self.publish(&live);
    }

    fn apply(&self, event: WatchEvent) {
        let mut live = self.live.lock();
        match event {
            WatchEvent::Put(kv) => match endpoint_of(&kv) {
                Some(w) => live.insert(kv.key, w),
                None => live.remove(&kv.key),
            },
            WatchEvent::Delete { key, .. } => live.remove(&key),
        };
        self.publish(&live);
    }
}

/// The ONLINE workers the Coordinator lists.
pub async fn fetch_nodes(http: &crate::PeerClient, coordinator: &str) -> Result<Vec<WorkerEndpoint>, reqwest::Error> {
    let url = format!("{}/api/v1/nodes", coordinator.trim_end_matches('/'));
    let list: NodeList = http.request(reqwest::Method::GET, url).send().await?.error_for_status()?.json().await?;
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
