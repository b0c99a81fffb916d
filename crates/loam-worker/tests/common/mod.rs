//! A real worker on a real embedded store, reading a real `file://` UFS through a counting, fault-injecting
//! wrapper; served over real HTTP on a free loopback port.

#![allow(dead_code)]

use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_store::{ClusterStore, EmbeddedStore};
use loam_ufs::faulty::FaultyUfs;
use loam_ufs::{Mount, OpendalUfs, UfsRegistry};
use loam_worker::{WorkerConfig, WorkerHandle};
use prometheus_client::registry::Registry;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Page size used by tests: small, so files of a few pages stay tiny.
pub const PAGE: u64 = 64 * 1024;

/// A worker under test.
pub struct TestWorker {
    pub worker: Option<WorkerHandle>,
    pub faulty: Arc<FaultyUfs>,
    pub registry: UfsRegistry,
    pub store: Arc<dyn ClusterStore>,
    pub ufs_dir: tempfile::TempDir,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub max_age: Duration,
}

/// Deterministic test bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed).collect()
}

impl TestWorker {
    /// Starts a worker with `/data` mounted on a temp dir.
    pub async fn start(max_age: Duration) -> Self {
        loam_ufs::install_process_defaults();
        let ufs_dir = tempfile::tempdir().unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ClusterStore> = EmbeddedStore::open(&data_dir.path().join("cluster.redb")).unwrap();
        let root = format!("file://{}", ufs_dir.path().display());
        let mount = Mount::new("/data", &root, Default::default()).unwrap();
        let key = loam_core::store_keys::mount_key(DEFAULT_CLUSTER_NAME, "data");
        store.put(&key, serde_json::to_vec(&mount).unwrap().into(), None).await.unwrap();
        let inner = Arc::new(OpendalUfs::new(&mount.ufs_uri(), &mount.options).unwrap());
        let faulty = Arc::new(FaultyUfs::new(inner));
        let registry = UfsRegistry::new();
        registry.insert_override(&root, faulty.clone());
        let mut t =
            Self { worker: None, faulty, registry, store, ufs_dir, data_dir, http: reqwest::Client::new(), max_age };
        t.restart().await;
        t
    }

    /// (Re)starts the worker on the same data directory.
    pub async fn restart(&mut self) {
        if let Some(w) = self.worker.take() {
            w.shutdown().await;
        }
        let mut cfg = WorkerConfig::new(self.data_dir.path().join("worker"), 4 * PAGE, 64 * PAGE);
        cfg.page_store.page_size = PAGE;
        cfg.max_age = self.max_age;
        cfg.ufs_read_size = 4 * PAGE;
        let w = loam_worker::start(cfg, self.store.clone(), self.registry.clone(), Registry::default()).await.unwrap();
        self.worker = Some(w);
    }

    pub fn worker(&self) -> &WorkerHandle {
        self.worker.as_ref().unwrap()
    }

    pub fn base(&self) -> String {
        self.worker().http_base()
    }

    /// Writes a UFS file under the mount; returns its UFS URI.
    pub fn write(&self, rel: &str, data: &[u8]) -> String {
        let p = self.ufs_dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        format!("file://{}", p.display())
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.path().join("worker").join("cache")
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.http.get(format!("{}{path_and_query}", self.base())).send().await.unwrap()
    }

    pub async fn range(&self, uri: &str, offset: u64, len: u64) -> Vec<u8> {
        let id = loam_core::file_id(uri);
        let r = self.get(&format!("/v1/range/{id}?ufsFullPath={uri}&offset={offset}&length={len}")).await;
        assert_eq!(r.status(), 200, "range of {uri}");
        r.bytes().await.unwrap().to_vec()
    }
}

/// Every regular file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() { stack.push(p) } else { out.push(p) }
            }
        }
    }
    out
}
