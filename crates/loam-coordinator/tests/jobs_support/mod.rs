//! Test harness of the job tests: a real coordinator and real workers on one embedded store, all reading a
//! `file://` UFS (or the S3 test server) through one counting, fault-injecting `FaultyUfs`, over real HTTP.

#![allow(dead_code)]

use loam_coordinator::{Coordinator, CoordinatorConfig};
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_store::{ClusterStore, EmbeddedStore};
use loam_ufs::faulty::FaultyUfs;
use loam_ufs::{Mount, MountOptions, OpendalUfs, UfsRegistry};
use loam_worker::{WorkerConfig, WorkerHandle};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Page size of test workers.
pub const PAGE: u64 = 16 * 1024;
/// How often test workers report quota usage and scan for TTLs, and the coordinator checks a load's quotas.
pub const POLICY_INTERVAL: Duration = Duration::from_millis(100);

/// A coordinator, its workers and the UFS they share.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn ClusterStore>,
    pub registry: UfsRegistry,
    pub faulty: Arc<FaultyUfs>,
    pub root: String,
    pub workers: Vec<Option<WorkerHandle>>,
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    pub http: reqwest::Client,
    /// How long the coordinator keeps finished jobs.
    pub retention: Duration,
}

/// Deterministic file bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed).collect()
}

impl Cluster {
    /// `n` workers, `/data` mounted on a local directory.
    pub async fn start(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("file://{}/ufs", dir.path().display());
        std::fs::create_dir_all(dir.path().join("ufs")).unwrap();
        Self::start_on(dir, root, MountOptions::new(), n).await
    }

    /// `n` workers, `/data` mounted on `root` with `options`.
    pub async fn start_on(dir: tempfile::TempDir, root: String, options: MountOptions, n: usize) -> Self {
        Self::start_with(dir, root, options, n, false, loam_coordinator::jobs::DEFAULT_JOB_RETENTION, None).await
    }

    /// `n` workers on a local `/data`, all on `store` (e.g. an etcd store) instead of an embedded one.
    pub async fn start_on_store(store: Arc<dyn ClusterStore>, n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("file://{}/ufs", dir.path().display());
        std::fs::create_dir_all(dir.path().join("ufs")).unwrap();
        let retention = loam_coordinator::jobs::DEFAULT_JOB_RETENTION;
        Self::start_with(dir, root, MountOptions::new(), n, false, retention, Some(store)).await
    }

    /// `n` workers on a local `/data` whose `/v1/load` forwards to the coordinator (its listener is bound
    /// first, so the workers know its URL).
    pub async fn start_forwarding(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("file://{}/ufs", dir.path().display());
        std::fs::create_dir_all(dir.path().join("ufs")).unwrap();
        Self::start_with(dir, root, MountOptions::new(), n, true, loam_coordinator::jobs::DEFAULT_JOB_RETENTION, None)
            .await
    }

    /// `n` workers on a local `/data`, finished jobs kept for `retention`.
    pub async fn start_with_retention(n: usize, retention: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("file://{}/ufs", dir.path().display());
        std::fs::create_dir_all(dir.path().join("ufs")).unwrap();
        Self::start_with(dir, root, MountOptions::new(), n, false, retention, None).await
    }

    async fn start_with(
        dir: tempfile::TempDir,
        root: String,
        options: MountOptions,
        n: usize,
        forward: bool,
        retention: Duration,
        store: Option<Arc<dyn ClusterStore>>,
    ) -> Self {
        loam_ufs::install_process_defaults();
        let store: Arc<dyn ClusterStore> =
            store.unwrap_or_else(|| EmbeddedStore::open(&dir.path().join("store.redb")).unwrap());
        let mount = Mount::new("/data", &root, options.clone()).unwrap();
        let key = loam_core::store_keys::mount_key(DEFAULT_CLUSTER_NAME, "data");
        store.put(&key, serde_json::to_vec(&mount).unwrap().into(), None).await.unwrap();
        let inner = Arc::new(OpendalUfs::new(&mount.ufs_uri(), &mount.options).unwrap());
        let faulty = Arc::new(FaultyUfs::new(inner));
        let registry = UfsRegistry::new();
        registry.insert_override(&mount.ufs_uri().as_string(), faulty.clone());
        let mut c = Self {
            dir,
            store,
            registry,
            faulty,
            root: mount.ufs_uri().as_string(),
            workers: Vec::new(),
            base: String::new(),
            stop: None,
            task: None,
            http: reqwest::Client::new(),
            retention,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        for i in 0..n {
            c.workers.push(Some(c.start_worker(i, forward.then(|| url.clone())).await));
        }
        c.serve_coordinator(listener);
        c
    }

    async fn start_worker(&self, i: usize, coordinator_url: Option<String>) -> WorkerHandle {
        let mut cfg = WorkerConfig::new(self.dir.path().join(format!("worker{i}")), 64 * PAGE, 1024 * PAGE);
        cfg.page_store.page_size = PAGE;
        cfg.ufs_read_size = 4 * PAGE;
        cfg.max_age = Duration::from_secs(3600);
        cfg.quota_check_interval = POLICY_INTERVAL;
        cfg.ttl_check_interval = POLICY_INTERVAL;
        cfg.coordinator_url = coordinator_url;
        loam_worker::start(cfg, self.store.clone(), self.registry.clone(), Default::default()).await.unwrap()
    }

    /// Starts one more worker, configured as the others; answers its index.
    pub async fn add_worker(&mut self) -> usize {
        let i = self.workers.len();
        let w = self.start_worker(i, None).await;
        self.workers.push(Some(w));
        i
    }

    /// (Re)starts the coordinator on the same store and data dir.
    pub async fn start_coordinator(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.serve_coordinator(listener);
    }

    fn serve_coordinator(&mut self, listener: tokio::net::TcpListener) {
        let cfg = CoordinatorConfig {
            data_dir: self.dir.path().join("coordinator"),
            job_retention: self.retention,
            quota_check_interval: POLICY_INTERVAL,
            ..CoordinatorConfig::default()
        };
        let coordinator = Coordinator::new(self.store.clone(), self.registry.clone(), cfg);
        self.base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        self.task = Some(tokio::spawn(coordinator.serve(listener, async move {
            let _ = rx.await;
        })));
        self.stop = Some(tx);
    }

    /// Stops the coordinator gracefully (its runners persist their progress).
    pub async fn stop_coordinator(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    /// Shuts worker `i` down (it leaves the ring and stops serving).
    pub async fn kill_worker(&mut self, i: usize) {
        if let Some(w) = self.workers[i].take() {
            w.shutdown().await;
        }
    }

    /// Writes a UFS file under the mount; returns its UFS URI.
    pub fn write(&self, rel: &str, data: &[u8]) -> String {
        let p = self.dir.path().join("ufs").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        format!("{}/{rel}", self.root.trim_end_matches('/'))
    }

    /// Sends a request to the coordinator; status and JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{path}", self.base)).header("content-type", "application/json");
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Polls `GET /api/v1/<kind>?id=` until `done(progress)`.
    pub async fn wait_for(&self, kind: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        loop {
            let (s, v) = self.call("GET", &format!("/api/v1/{kind}?id={id}"), None).await;
            assert_eq!(s, 200, "{v}");
            if done(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the job is no longer RUNNING or VERIFYING.
    pub async fn wait_end(&self, kind: &str, id: &str) -> Value {
        self.wait_for(kind, id, |v| !matches!(v["state"].as_str(), Some("RUNNING") | Some("VERIFYING"))).await
    }

    /// The live workers.
    pub fn live(&self) -> Vec<&WorkerHandle> {
        self.workers.iter().flatten().collect()
    }

    /// Workers that hold every page of `uri`.
    pub fn holders(&self, uri: &str) -> Vec<usize> {
        let id = loam_core::file_id(uri);
        self.workers
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                let w = w.as_ref()?;
                let pages = w.state.rt.pages();
                let rec = pages.file(&id)?;
                let n = rec.page_count(pages.page_size());
                (0..n).all(|p| pages.has_page(&id, p)).then_some(i)
            })
            .collect()
    }

    /// Reads `uri` through worker `i`'s HTTP API.
    pub async fn read_via(&self, i: usize, uri: &str, len: usize) -> Vec<u8> {
        let w = self.workers[i].as_ref().unwrap();
        let id = loam_core::file_id(uri);
        let url = format!("{}/v1/range/{id}?ufsFullPath={uri}&offset=0&length={len}", w.http_base());
        let r = self.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
