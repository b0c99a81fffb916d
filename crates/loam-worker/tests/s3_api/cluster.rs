//! Real workers sharing one embedded store, each serving its S3 API on a free port, over two UFSes:
//! bucket `data` is a `file://` temp dir, bucket `s3data` (when asked for) a bucket of a moto S3 server.
//! A worker can also run on a runtime of its own, so that a test can kill it the hard way (its runtime
//! dropped mid-request, sockets and all) rather than by a graceful shutdown that drains its streams.

use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_store::{ClusterStore, EmbeddedStore};
use loam_testsupport::S3TestServer;
use loam_ufs::{Mount, UfsRegistry};
use loam_worker::s3_api::{S3Config, S3Credentials};
use loam_worker::{WorkerConfig, WorkerHandle};
use prometheus_client::registry::Registry;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The key pair workers accept in these tests.
pub const ACCESS_KEY: &str = "loam-s3-test-key";
/// Its secret.
pub const SECRET_KEY: &str = "loam-s3-test-secret";
/// The moto bucket mounted as `s3data`.
pub const MOTO_BUCKET: &str = "loam-s3-api";

/// How to start a cluster.
pub struct Options {
    /// Number of workers.
    pub workers: usize,
    /// Page size of each worker.
    pub page_size: u64,
    /// Disk cache of each worker.
    pub cache_size: u64,
    /// The S3 API settings of every worker.
    pub s3: S3Config,
    /// Whether to mount a moto bucket as `s3data`.
    pub moto: bool,
}

impl Options {
    /// `n` workers with 64 KiB pages, the test key pair and anonymous read on, no moto.
    pub fn new(n: usize) -> Self {
        let credentials = Some(S3Credentials { access_key: ACCESS_KEY.into(), secret_key: SECRET_KEY.into() });
        Self {
            workers: n,
            page_size: 64 << 10,
            cache_size: 256 << 20,
            s3: S3Config { port: 0, credentials, anonymous_read: true },
            moto: false,
        }
    }
}

/// A worker running on a runtime of its own.
pub struct Isolated {
    runtime: Option<tokio::runtime::Runtime>,
    /// The worker.
    pub handle: Option<WorkerHandle>,
}

impl Isolated {
    /// Kills the worker at once: its runtime stops, every socket of it closes, nothing is drained.
    pub fn kill(&mut self) {
        // The handle's drop only signals the (already dead) tasks.
        drop(self.handle.take());
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running cluster.
pub struct Cluster {
    /// The workers started on the test's runtime.
    pub workers: Vec<WorkerHandle>,
    /// The shared store.
    pub store: Arc<dyn ClusterStore>,
    /// UFS instances, shared by the workers.
    pub registry: UfsRegistry,
    /// Root of the `file://` UFS of bucket `data`.
    pub ufs_dir: tempfile::TempDir,
    /// Data directories of the store and the workers.
    pub data_dir: tempfile::TempDir,
    /// The S3 server behind bucket `s3data`.
    pub moto: Option<S3TestServer>,
    opts: Options,
}

impl Cluster {
    /// Mounts the buckets and starts `opts.workers` workers; returns once every ring holds them all.
    pub async fn start(opts: Options) -> Self {
        loam_ufs::install_process_defaults();
        let ufs_dir = tempfile::tempdir().unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ClusterStore> = EmbeddedStore::open(&data_dir.path().join("cluster.redb")).unwrap();
        mount(
            &store,
            Mount::new("/data", &format!("file://{}", ufs_dir.path().display()), Default::default()).unwrap(),
        )
        .await;
        let moto = opts.moto.then(S3TestServer::start);
        if let Some(m) = &moto {
            m.create_bucket(MOTO_BUCKET);
            mount(&store, Mount::new("/s3data", &format!("s3://{MOTO_BUCKET}/"), m.mount_options()).unwrap()).await;
        }
        let mut c = Self { workers: Vec::new(), store, registry: UfsRegistry::new(), ufs_dir, data_dir, moto, opts };
        for i in 0..c.opts.workers {
            let w = loam_worker::start(c.config(i), c.store.clone(), c.registry.clone(), Registry::default()).await;
            c.workers.push(w.unwrap());
        }
        c.wait_for_ring(c.opts.workers).await;
        c
    }

    /// The configuration of worker `i`.
    pub fn config(&self, i: usize) -> WorkerConfig {
        let o = &self.opts;
        let mut cfg = WorkerConfig::new(self.data_dir.path().join(format!("w{i}")), 8 * o.page_size, o.cache_size);
        cfg.page_store.page_size = o.page_size;
        cfg.ufs_read_size = 4 * o.page_size;
        cfg.max_age = Duration::from_secs(3600);
        cfg.s3 = o.s3.clone();
        cfg
    }

    /// Starts worker `i` on a runtime of its own (so that it can be killed).
    pub async fn start_isolated(&self, i: usize) -> Isolated {
        let (cfg, store, registry) = (self.config(i), self.store.clone(), self.registry.clone());
        tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let handle = rt.block_on(loam_worker::start(cfg, store, registry, Registry::default())).unwrap();
            Isolated { runtime: Some(rt), handle: Some(handle) }
        })
        .await
        .unwrap()
    }

    /// Waits until every worker's ring holds `n` members (the membership follows the store).
    pub async fn wait_for_ring(&self, n: usize) {
        for _ in 0..3000 {
            if self.workers.iter().all(|w| w.state.members.ring().len() == n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the ring never reached {n} workers");
    }

    /// The S3 endpoints of the workers, in order.
    pub fn endpoints(&self) -> Vec<String> {
        self.workers.iter().map(|w| w.s3_base()).collect()
    }

    /// Writes a file of bucket `data` straight into its UFS.
    pub fn write(&self, key: &str, data: &[u8]) -> PathBuf {
        let p = self.ufs_dir.path().join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }

    /// The UFS URI of `key` in bucket `data`.
    pub fn uri(&self, key: &str) -> String {
        format!("file://{}/{key}", self.ufs_dir.path().display())
    }

    /// The UFS root of bucket `data`.
    pub fn ufs_root(&self) -> &Path {
        self.ufs_dir.path()
    }
}

async fn mount(store: &Arc<dyn ClusterStore>, m: Mount) {
    let key = loam_core::store_keys::mount_key(DEFAULT_CLUSTER_NAME, m.name());
    store.put(&key, serde_json::to_vec(&m).unwrap().into(), None).await.unwrap();
}

/// Deterministic test bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed).collect()
}
