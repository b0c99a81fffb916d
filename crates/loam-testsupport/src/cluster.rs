//! An in-process cluster: real workers (`loam_worker::start`) on one real cluster store (embedded, in the
//! cluster's directory, or one the test passes, e.g. on etcd), a UFS mounted at `/data` — a `file://`
//! directory by default — read through one counting, fault-injecting [`FaultyUfs`], real HTTP on free
//! loopback ports; optionally a Coordinator on the same store and a moto bucket mounted at `/s3data`.
//!
//! Every in-process test of the workspace starts its servers here, and so do the benchmarks that measure
//! an in-process worker (with [`Options::faulty`] off and a worker's real defaults, [`Options::worker_defaults`]).
//! The test defaults ([`Options::default`]) are small: 64 KiB pages, four of them in memory, 64 on disk,
//! UFS reads of four pages, so files of a few pages exercise every path.
//!
//! A worker can also run on a runtime of its own ([`Cluster::start_isolated`]), so that a test can kill it
//! the hard way (its runtime dropped mid-request, sockets and all) rather than by a graceful shutdown that
//! drains its streams.

use loam_coordinator::CoordinatorConfig;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_store::{ClusterStore, EmbeddedStore};
use loam_ufs::faulty::FaultyUfs;
use loam_ufs::{Mount, MountOptions, OpendalUfs, UfsRegistry};
use loam_worker::s3_api::S3Config;
use loam_worker::{WorkerConfig, WorkerHandle};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::S3TestServer;
use crate::coordinator::Served;

/// The moto bucket mounted at `/s3data` when [`Options::moto`] is on.
pub const MOTO_BUCKET: &str = "loam-s3-api";
/// How long [`Cluster::start`] waits for every worker's ring to hold them all.
const RING_CAP: Duration = Duration::from_secs(30);
/// How long a test waits for a job to get somewhere before it fails (no test job takes near this).
const JOB_WAIT_CAP: Duration = Duration::from_secs(120);

/// How to start a [`Cluster`]. [`Options::default`] is one worker with small test pages; change what a
/// test needs with struct update syntax.
#[derive(Clone)]
pub struct Options {
    /// Workers started at once.
    pub workers: usize,
    /// Page size of every worker.
    pub page_size: u64,
    /// Memory tier of each worker, bytes.
    pub memory_size: u64,
    /// Disk tier of each worker, bytes.
    pub cache_size: u64,
    /// Bytes per UFS read on a miss.
    pub ufs_read_size: u64,
    /// Bytes that the worker's responses may read ahead (and read as UFS runs) together.
    pub read_ahead_size: u64,
    /// How long workers trust cached data without asking the UFS.
    pub max_age: Duration,
    /// How often workers report quota usage and scan for TTLs, and the Coordinator checks a running load's
    /// quotas; `None` leaves the defaults.
    pub policy_interval: Option<Duration>,
    /// The S3 API of every worker.
    pub s3: S3Config,
    /// The workers' lease TTL; `None` leaves the default.
    pub lease_ttl: Option<Duration>,
    /// How long the Coordinator's jobs retry an unreachable worker; `None` leaves the default.
    pub job_retry_window: Option<Duration>,
    /// The Coordinator's `--auto-rebalance` delay (`None`: off).
    pub auto_rebalance: Option<Duration>,
    /// The cluster path of the mount.
    pub mount_path: String,
    /// The mounted UFS: `None` is the `file://` directory `<dir>/ufs`; else a root URI and its options.
    pub ufs: Option<(String, MountOptions)>,
    /// Whether the workers read the mount through [`Cluster::faulty`] (else they build its UFS themselves).
    pub faulty: bool,
    /// Whether to mount a bucket of a fresh moto S3 server at `/s3data` too.
    pub moto: bool,
    /// Whether to run a Coordinator on the cluster's store.
    pub coordinator: bool,
    /// Whether workers forward Alluxio's `/v1/load` to that Coordinator.
    pub forward_loads: bool,
    /// How long the Coordinator keeps finished jobs.
    pub job_retention: Duration,
    /// The cluster store; `None` is an embedded store in the cluster's directory.
    pub store: Option<Arc<dyn ClusterStore>>,
    /// Where the cluster keeps its state; `None` is a fresh temp dir, removed on drop.
    pub dir: Option<PathBuf>,
    /// TLS and limits of every worker's listeners (plain HTTP by default).
    pub listener: loam_listener::ListenerConfig,
}

impl Default for Options {
    /// One worker with 64 KiB pages, 4 pages of memory, 64 of disk, UFS reads of 4 pages, max-age 1 h,
    /// `/data` on a local directory behind `FaultyUfs`; no Coordinator.
    fn default() -> Self {
        const PAGE: u64 = 64 << 10;
        Self {
            workers: 1,
            page_size: PAGE,
            memory_size: 4 * PAGE,
            cache_size: 64 * PAGE,
            ufs_read_size: 4 * PAGE,
            read_ahead_size: loam_worker::config::DEFAULT_READ_AHEAD_SIZE,
            max_age: Duration::from_secs(3600),
            policy_interval: None,
            s3: S3Config::default(),
            lease_ttl: None,
            job_retry_window: None,
            auto_rebalance: None,
            mount_path: "/data".into(),
            ufs: None,
            faulty: true,
            moto: false,
            coordinator: false,
            forward_loads: false,
            job_retention: loam_coordinator::jobs::DEFAULT_JOB_RETENTION,
            store: None,
            dir: None,
            listener: loam_listener::ListenerConfig::default(),
        }
    }
}

impl Options {
    /// One worker as `loam worker` runs by default (its page size, UFS read size and max-age), with
    /// `memory_size` and `cache_size`, reading the UFS directly (no `FaultyUfs`): what benchmarks measure.
    pub fn worker_defaults(memory_size: u64, cache_size: u64) -> Self {
        let d = WorkerConfig::new(PathBuf::new(), memory_size, cache_size);
        Self {
            page_size: d.page_store.page_size,
            memory_size,
            cache_size,
            ufs_read_size: d.ufs_read_size,
            max_age: d.max_age,
            faulty: false,
            ..Self::default()
        }
    }
}

/// Whether worker `w` holds every page of `uri`.
pub fn holds(w: &WorkerHandle, uri: &str) -> bool {
    let id = loam_core::file_id(uri);
    let pages = w.state.rt.pages();
    pages.file(&id).is_some_and(|rec| (0..rec.page_count(pages.page_size())).all(|p| pages.has_page(&id, p)))
}

/// A worker running on a runtime of its own.
pub struct Isolated {
    runtime: Option<tokio::runtime::Runtime>,
    /// The worker.
    pub handle: Option<WorkerHandle>,
}

impl Isolated {
    /// Kills the worker at once: its runtime stops, every socket of it closes, nothing is drained. Returns
    /// once its page store is gone (as a killed process's is: its cache directories unlocked), so that the
    /// same worker can start again on them; the runtime drops its tasks in the background.
    pub fn kill(&mut self) {
        let store = self.handle.as_ref().map(|h| Arc::downgrade(h.state.rt.pages()));
        // The runtime first: the handle's drop signals shutdown, and live tasks would leave the ring
        // gracefully (a killed process does not). Then the signal reaches no one.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        drop(self.handle.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while store.as_ref().is_some_and(|s| s.strong_count() > 0) {
            if std::time::Instant::now() > deadline {
                // Not a panic: this also runs in `Drop`. A restart on the same directories will say why.
                eprintln!("a killed worker's page store is still alive after 30 s");
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running cluster. Workers, the Coordinator and the moto server stop when it drops.
pub struct Cluster {
    /// The workers by index; `None` once shut down.
    pub workers: Vec<Option<WorkerHandle>>,
    /// The shared store.
    pub store: Arc<dyn ClusterStore>,
    /// UFS instances, shared by the workers and the Coordinator.
    pub registry: UfsRegistry,
    /// The UFS root URI of the mount.
    pub root: String,
    /// The cluster's directory: the embedded store, `ufs/`, each worker's `worker-<i>/`, `coordinator/`.
    pub dir: PathBuf,
    /// The S3 server behind `/s3data`.
    pub moto: Option<S3TestServer>,
    /// The client of [`Cluster::get`], [`Cluster::range`] and [`Cluster::call`].
    pub http: reqwest::Client,
    /// The Coordinator's URL (empty without one).
    pub base: String,
    faulty: Option<Arc<FaultyUfs>>,
    coordinator: Option<Served>,
    opts: Options,
    _tmp: Option<tempfile::TempDir>,
}

impl Cluster {
    /// Mounts the UFS (and the moto bucket), starts the Coordinator (its listener first, so that forwarding
    /// workers know its URL) and the workers; returns once every worker's ring holds them all.
    pub async fn start(opts: Options) -> Self {
        loam_ufs::install_process_defaults();
        let (tmp, dir) = match &opts.dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::tempdir().expect("temp dir");
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        let store = match &opts.store {
            Some(s) => s.clone(),
            None => EmbeddedStore::open(&dir.join("store.redb")).expect("open the embedded store"),
        };
        let (root, options) = opts.ufs.clone().unwrap_or_else(|| {
            std::fs::create_dir_all(dir.join("ufs")).expect("create the UFS directory");
            (format!("file://{}/ufs", dir.display()), MountOptions::new())
        });
        let mount = Mount::new(&opts.mount_path, &root, options).expect("a valid mount");
        put_mount(&store, &mount).await;
        let registry = UfsRegistry::new();
        let faulty = opts.faulty.then(|| {
            let inner = OpendalUfs::new(&mount.ufs_uri(), &mount.options).expect("build the mount's UFS");
            let faulty = Arc::new(FaultyUfs::new(Arc::new(inner)));
            registry.insert_override(&mount.ufs_uri().as_string(), faulty.clone());
            faulty
        });
        let moto = opts.moto.then(S3TestServer::start);
        if let Some(m) = &moto {
            m.create_bucket(MOTO_BUCKET);
            let bucket = Mount::new("/s3data", &format!("s3://{MOTO_BUCKET}/"), m.mount_options()).expect("mount");
            put_mount(&store, &bucket).await;
        }
        let mut c = Self {
            workers: Vec::new(),
            store,
            registry,
            root: mount.ufs_uri().as_string(),
            dir,
            moto,
            http: crate::coordinator::client(),
            base: String::new(),
            faulty,
            coordinator: None,
            opts,
            _tmp: tmp,
        };
        let listener = c.opts.coordinator.then(|| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"));
        let url = listener.as_ref().map(|l| format!("http://{}", l.local_addr().expect("local addr")));
        for i in 0..c.opts.workers {
            let mut cfg = c.config(i);
            cfg.coordinators = url.clone().filter(|_| c.opts.forward_loads).into_iter().collect();
            let w = c.start_worker(cfg).await;
            c.workers.push(Some(w));
        }
        if let Some(l) = listener {
            l.set_nonblocking(true).expect("a non-blocking listener");
            c.serve_coordinator(tokio::net::TcpListener::from_std(l).expect("a tokio listener"));
        }
        c.wait_for_ring(c.opts.workers).await;
        c
    }

    /// The configuration of worker `i` (data directory `<dir>/worker-<i>`).
    pub fn config(&self, i: usize) -> WorkerConfig {
        let o = &self.opts;
        let mut cfg = WorkerConfig::new(self.dir.join(format!("worker-{i}")), o.memory_size, o.cache_size);
        cfg.page_store.page_size = o.page_size;
        cfg.ufs_read_size = o.ufs_read_size;
        cfg.read_ahead_size = o.read_ahead_size;
        cfg.max_age = o.max_age;
        cfg.s3 = o.s3.clone();
        cfg.auth = crate::auth::node_auth();
        cfg.listener = o.listener.clone();
        if let Some(ttl) = o.lease_ttl {
            cfg.lease_ttl = ttl;
        }
        if let Some(every) = o.policy_interval {
            cfg.quota_check_interval = every;
            cfg.ttl_check_interval = every;
        }
        cfg
    }

    /// Starts a worker with `cfg` on the cluster's store and UFS instances (not added to
    /// [`Cluster::workers`]).
    pub async fn start_worker(&self, cfg: WorkerConfig) -> WorkerHandle {
        loam_worker::start(cfg, self.store.clone(), self.registry.clone(), Default::default())
            .await
            .expect("start a worker")
    }

    /// Starts one more worker, configured as the others; answers its index.
    pub async fn add_worker(&mut self) -> usize {
        let i = self.workers.len();
        let w = self.start_worker(self.config(i)).await;
        self.workers.push(Some(w));
        i
    }

    /// Shuts worker `i` down (it leaves the ring and stops serving) and starts it again on the same data
    /// directory: the same identity, and whatever its page store kept.
    pub async fn restart_worker(&mut self, i: usize) {
        if let Some(w) = self.workers[i].take() {
            w.shutdown().await;
        }
        self.workers[i] = Some(self.start_worker(self.config(i)).await);
    }

    /// Shuts worker `i` down gracefully (it leaves the ring and stops serving).
    pub async fn kill_worker(&mut self, i: usize) {
        if let Some(w) = self.workers[i].take() {
            w.shutdown().await;
        }
    }

    /// Starts worker `i` on a runtime of its own (so that it can be killed).
    pub async fn start_isolated(&self, i: usize) -> Isolated {
        let (cfg, store, registry) = (self.config(i), self.store.clone(), self.registry.clone());
        tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let handle = rt.block_on(loam_worker::start(cfg, store, registry, Default::default())).unwrap();
            Isolated { runtime: Some(rt), handle: Some(handle) }
        })
        .await
        .unwrap()
    }

    /// Waits until every live worker's ring holds `n` members (the membership follows the store).
    pub async fn wait_for_ring(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + RING_CAP;
        while !self.live().iter().all(|w| w.state.members.ring().len() == n) {
            assert!(tokio::time::Instant::now() < deadline, "the ring never reached {n} workers");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Worker `i`, which must be running.
    pub fn worker(&self, i: usize) -> &WorkerHandle {
        self.workers[i].as_ref().unwrap_or_else(|| panic!("worker {i} is not running"))
    }

    /// The running workers, in order.
    pub fn live(&self) -> Vec<&WorkerHandle> {
        self.workers.iter().flatten().collect()
    }

    /// The counting, fault-injecting UFS every read of the mount goes through.
    pub fn faulty(&self) -> &FaultyUfs {
        self.faulty.as_deref().expect("the cluster was started with Options::faulty")
    }

    /// The live workers as the ring and the Coordinator see them.
    pub fn worker_endpoints(&self) -> Vec<loam_client::membership::WorkerEndpoint> {
        self.live()
            .iter()
            .map(|w| loam_client::membership::WorkerEndpoint {
                id: w.id,
                host: "127.0.0.1".into(),
                http_port: w.http_addr.port(),
                s3_port: 0,
                tls: false,
            })
            .collect()
    }

    /// The S3 endpoints of the running workers, in order.
    pub fn endpoints(&self) -> Vec<String> {
        self.live().iter().map(|w| w.s3_base()).collect()
    }

    /// The local directory of a `file://` mount.
    pub fn ufs_root(&self) -> PathBuf {
        let path = self.root.strip_prefix("file://").expect("the mount is a local directory");
        PathBuf::from(path.trim_end_matches('/'))
    }

    /// The UFS URI of `rel` under the mount.
    pub fn uri(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root.trim_end_matches('/'))
    }

    /// Writes `rel` under a `file://` mount straight into the UFS; its UFS URI.
    pub fn write(&self, rel: &str, data: &[u8]) -> String {
        let p = self.ufs_root().join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("create UFS directories");
        std::fs::write(&p, data).expect("write a UFS file");
        self.uri(rel)
    }

    /// The cache directory of worker `i`.
    pub fn cache_dir(&self, i: usize) -> PathBuf {
        self.config(i).page_store.disk_dirs[0].clone()
    }

    /// `GET <path_and_query>` on worker `i`'s HTTP API.
    pub async fn get(&self, i: usize, path_and_query: &str) -> reqwest::Response {
        let url = format!("{}{path_and_query}", self.worker(i).http_base());
        self.http.get(url).send().await.expect("GET a worker")
    }

    /// `len` bytes at `offset` of `uri` through worker `i`'s `/v1/range`, which must answer 200; returns
    /// once what the read brought from the UFS is cached ([`Cluster::settled`]).
    pub async fn range(&self, i: usize, uri: &str, offset: u64, len: u64) -> Vec<u8> {
        let id = loam_core::file_id(uri);
        let r = self.get(i, &format!("/v1/range/{id}?ufsFullPath={uri}&offset={offset}&length={len}")).await;
        assert_eq!(r.status(), 200, "range of {uri} through worker {i}");
        let body = r.bytes().await.expect("a body").to_vec();
        self.settled(i).await;
        body
    }

    /// Waits until worker `i` has stored every run it read from the UFS: a cold read caches on the side,
    /// so its pages may still be on their way to the store when its response has ended.
    pub async fn settled(&self, i: usize) {
        let rt = self.worker(i).state.rt.clone();
        crate::wait::until("the worker's UFS reads are cached", Duration::from_secs(60), || rt.runs_in_flight() == 0)
            .await;
    }

    /// The workers that hold every page of `uri`.
    pub fn holders(&self, uri: &str) -> Vec<usize> {
        self.workers.iter().enumerate().filter_map(|(i, w)| holds(w.as_ref()?, uri).then_some(i)).collect()
    }

    /// (Re)starts the Coordinator on the same store and data directory, on a new port.
    pub async fn start_coordinator(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        self.serve_coordinator(listener);
    }

    fn serve_coordinator(&mut self, listener: tokio::net::TcpListener) {
        let d = CoordinatorConfig::default();
        let cfg = CoordinatorConfig {
            data_dir: self.dir.join("coordinator"),
            job_retention: self.opts.job_retention,
            quota_check_interval: self.opts.policy_interval.unwrap_or(d.quota_check_interval),
            job_retry_window: self.opts.job_retry_window.unwrap_or(d.job_retry_window),
            auth: crate::auth::node_auth(),
            auto_rebalance: self.opts.auto_rebalance,
            ..d
        };
        let mut cfg = cfg;
        // The cluster's own directory holds its file:// UFS; a test may mount others under it.
        cfg.ufs_policy.allow_local(&self.dir).expect("the cluster's directory exists");
        let served = Served::start(self.store.clone(), self.registry.clone(), cfg, listener);
        self.base = served.base.clone();
        self.coordinator = Some(served);
    }

    /// Stops the Coordinator gracefully (its job runners persist their progress).
    pub async fn stop_coordinator(&mut self) {
        if let Some(served) = self.coordinator.take() {
            served.stop().await;
        }
    }

    /// Sends a request with an optional JSON body to the Coordinator; the status and the JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        crate::coordinator::call(method, &format!("{}{path}", self.base), body, Some("application/json")).await
    }

    /// Polls `GET /api/v1/<kind>?id=` until `done(progress)`.
    pub async fn wait_for(&self, kind: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + JOB_WAIT_CAP;
        loop {
            let (s, v) = self.call("GET", &format!("/api/v1/{kind}?id={id}"), None).await;
            assert_eq!(s, 200, "{v}");
            if done(&v) {
                return v;
            }
            assert!(tokio::time::Instant::now() < deadline, "{kind} {id} never got there: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the job is no longer RUNNING or VERIFYING; its progress.
    pub async fn wait_end(&self, kind: &str, id: &str) -> Value {
        self.wait_for(kind, id, |v| !matches!(v["state"].as_str(), Some("RUNNING") | Some("VERIFYING"))).await
    }
}

/// Puts `mount` into `store`'s mount table, as the Coordinator's mount API does.
pub async fn put_mount(store: &Arc<dyn ClusterStore>, mount: &Mount) {
    let key = loam_core::store_keys::mount_key(DEFAULT_CLUSTER_NAME, mount.name());
    store.put(&key, serde_json::to_vec(mount).expect("a mount as JSON").into(), None).await.expect("put the mount");
}
