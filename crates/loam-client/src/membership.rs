//! The membership view: the set of live workers and the hash ring over them, kept current from the
//! cluster store (etcd or embedded: the liveness prefix, as Alluxio's clients read it) or from the
//! Coordinator's nodes API. When the source is unreachable the last known ring is kept, so an etcd
//! outage does not send every read to the UFS.

use loam_core::coordinator_api::{NODE_ONLINE, NodeList};
use loam_core::membership::{WorkerRecord, liveness_prefix};
use loam_core::{HashRing, WorkerId};
use loam_store::{ClusterStore, StoreResult, list_all};
use parking_lot::RwLock;
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
}

impl WorkerEndpoint {
    /// `http://host:port` of the worker HTTP API.
    pub fn http_base(&self) -> String {
        format!("http://{}:{}", self.host, self.http_port)
    }

    /// The endpoint of a membership record.
    pub fn from_record(r: &WorkerRecord) -> Option<Self> {
        Some(Self {
            id: r.worker_id()?,
            host: r.worker_net_address.host.clone(),
            http_port: r.worker_net_address.http_server_port,
            s3_port: r.worker_net_address.s3_port,
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

    /// Follows the liveness records in the cluster store; refreshes on every change.
    pub async fn follow_store(
        store: Arc<dyn ClusterStore>,
        cluster: &str,
        virtual_nodes: u32,
        mut shutdown: watch::Receiver<bool>,
    ) -> StoreResult<(Self, JoinHandle<()>)> {
        let view = Self::fixed(Vec::new(), virtual_nodes);
        let prefix = liveness_prefix(cluster);
        let mut rev = view.reload_store(store.as_ref(), &prefix).await?;
        let v = view.clone();
        let task = tokio::spawn(async move {
            use futures::StreamExt;
            loop {
                let watched = async {
                    let mut events = store.watch(&prefix, rev).await?;
                    while let Some(ev) = events.next().await {
                        ev?;
                        // Any change: re-read the (small) liveness prefix rather than patching the ring.
                        rev = v.reload_store(store.as_ref(), &prefix).await?;
                    }
                    StoreResult::Ok(())
                };
                tokio::select! {
                    _ = shutdown.changed() => return,
                    r = watched => if let Err(e) = r {
                        tracing::warn!("membership watch failed, keeping the last ring: {e}");
                    },
                }
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if let Ok(r) = v.reload_store(store.as_ref(), &prefix).await {
                    rev = r;
                }
            }
        });
        Ok((view, task))
    }

    async fn reload_store(&self, store: &dyn ClusterStore, prefix: &str) -> StoreResult<i64> {
        let rev = store.revision().await?;
        let workers = list_all(store, prefix)
            .await?
            .iter()
            .filter_map(|kv| serde_json::from_slice::<WorkerRecord>(&kv.value).ok())
            .filter_map(|r| WorkerEndpoint::from_record(&r))
            .collect();
        self.set(workers);
        Ok(rev)
    }

    /// Polls the Coordinator's `GET /api/v1/nodes` every `interval` (for `loam local`, which has no etcd).
    pub async fn follow_coordinator(
        http: reqwest::Client,
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

/// The ONLINE workers the Coordinator lists.
pub async fn fetch_nodes(http: &reqwest::Client, coordinator: &str) -> Result<Vec<WorkerEndpoint>, reqwest::Error> {
    let url = format!("{}/api/v1/nodes", coordinator.trim_end_matches('/'));
    let list: NodeList = http.get(url).send().await?.error_for_status()?.json().await?;
    Ok(list
        .result
        .into_iter()
        .filter(|n| n.status == NODE_ONLINE)
        .filter_map(|n| {
            let id = n.identity.parse().ok()?;
            let (host, port) = n.address.rsplit_once(':')?;
            Some(WorkerEndpoint { id, host: host.to_string(), http_port: port.parse().ok()?, s3_port: 0 })
        })
        .collect())
}
