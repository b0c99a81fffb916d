//! The pieces `loam local`, `loam coordinator` and `loam worker` are assembled from, so the three
//! commands start a coordinator or a worker the same way and differ only in where their settings and
//! their cluster store come from: the coordinator's HTTP server with its stop handle, a worker's
//! configuration from the cache sizes, and the wait for SIGINT/SIGTERM.

use anyhow::Context;
use loam_coordinator::{Coordinator, CoordinatorConfig};
use loam_store::ClusterStore;
use loam_ufs::UfsRegistry;
use loam_worker::WorkerConfig;
use loam_worker::s3_api::S3Credentials;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Default address to bind and advertise.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default Coordinator REST API port.
pub const DEFAULT_COORDINATOR_PORT: u16 = 19999;
/// Default worker HTTP API port.
pub const DEFAULT_WORKER_HTTP_PORT: u16 = 28080;
/// Default worker S3 API port.
pub const DEFAULT_WORKER_S3_PORT: u16 = loam_worker::s3_api::DEFAULT_S3_PORT;
/// Default disk cache per worker.
pub const DEFAULT_CACHE_SIZE: u64 = 10 << 30;
/// Default memory tier per worker.
pub const DEFAULT_MEMORY_SIZE: u64 = 256 << 20;
/// Default seconds a cached file is trusted before re-validation.
pub const DEFAULT_MAX_AGE_SECS: u64 = 60;
/// Default time finished load and free jobs are kept (7 days).
pub const DEFAULT_JOB_RETENTION: Duration = loam_coordinator::jobs::DEFAULT_JOB_RETENTION;

/// A coordinator serving its REST API; `shutdown` (or drop) stops it.
pub struct CoordinatorServer {
    /// `http://host:port` of the REST API.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Where a coordinator keeps its own files: `<data_dir>/coordinator` (failed-file lists of jobs).
pub fn coordinator_files(data_dir: &Path) -> PathBuf {
    data_dir.join("coordinator")
}

/// A coordinator configuration for `cluster_name`, keeping its files under `data_dir`
/// ([`coordinator_files`]) and finished jobs for `job_retention`.
pub fn coordinator_config(cluster_name: &str, data_dir: &Path, job_retention: Duration) -> CoordinatorConfig {
    CoordinatorConfig {
        cluster_name: cluster_name.to_string(),
        static_mounts: None,
        data_dir: coordinator_files(data_dir),
        job_retention,
        ..CoordinatorConfig::default()
    }
}

/// Starts a coordinator over `store` configured by `cfg`, serving on `host:port` (0: a free port).
pub async fn start_coordinator(
    store: Arc<dyn ClusterStore>,
    ufs: UfsRegistry,
    cfg: CoordinatorConfig,
    host: &str,
    port: u16,
) -> anyhow::Result<CoordinatorServer> {
    let coordinator = Coordinator::new(store, ufs, cfg);
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding the coordinator on {host}:{port}"))?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = oneshot::channel::<()>();
    // A dropped sender resolves the receiver too, so dropping the handle also stops the server.
    let task = tokio::spawn(coordinator.serve(listener, async move {
        let _ = stop_rx.await;
    }));
    Ok(CoordinatorServer { url: format!("http://{addr}"), addr, stop, task })
}

impl CoordinatorServer {
    /// Stops accepting requests, drains those in flight, and waits for the server to end.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the coordinator task panicked")?.context("the coordinator server failed")
    }
}

/// How a worker caches: the sizes and freshness every worker command sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizing {
    /// Disk cache capacity.
    pub cache_size: u64,
    /// Memory tier capacity (0: none).
    pub memory_size: u64,
    /// Page size.
    pub page_size: u64,
    /// Seconds a cached file is trusted before it is re-validated against the UFS.
    pub max_age_secs: u64,
    /// Seconds between TTL scans (at least 1).
    pub ttl_scan_secs: u64,
    /// Time between quota passes (usage reports and admission); at least 1 ms.
    pub quota_check_interval: Duration,
}

impl Default for CacheSizing {
    fn default() -> Self {
        Self {
            cache_size: DEFAULT_CACHE_SIZE,
            memory_size: DEFAULT_MEMORY_SIZE,
            page_size: loam_worker::config::DEFAULT_PAGE_SIZE,
            max_age_secs: DEFAULT_MAX_AGE_SECS,
            ttl_scan_secs: loam_worker::ttl::DEFAULT_TTL_CHECK_INTERVAL.as_secs(),
            quota_check_interval: loam_worker::quota::DEFAULT_QUOTA_CHECK_INTERVAL,
        }
    }
}

/// A worker configuration keeping its state in `data_dir` (cache in `<data_dir>/cache`), serving on
/// `host:http_port` (0: a free port), sized by `sizing`; the other settings are the worker's defaults.
pub fn worker_config(data_dir: PathBuf, host: &str, http_port: u16, sizing: &CacheSizing) -> WorkerConfig {
    let mut cfg = WorkerConfig::new(data_dir, sizing.memory_size, sizing.cache_size);
    cfg.host = host.to_string();
    cfg.http_port = http_port;
    cfg.page_store.page_size = sizing.page_size;
    cfg.max_age = Duration::from_secs(sizing.max_age_secs);
    cfg.ttl_check_interval = Duration::from_secs(sizing.ttl_scan_secs.max(1));
    // A zero period would make the quota loop spin (and tokio's interval refuses it).
    cfg.quota_check_interval = sizing.quota_check_interval.max(Duration::from_millis(1));
    cfg
}

/// The S3 key pair of `--s3-access-key` and `--s3-secret-key`, which go together: both or neither.
pub fn s3_credentials(access_key: Option<String>, secret_key: Option<String>) -> Result<Option<S3Credentials>, String> {
    match (access_key, secret_key) {
        (None, None) => Ok(None),
        (Some(access_key), Some(secret_key)) if !access_key.is_empty() && !secret_key.is_empty() => {
            Ok(Some(S3Credentials { access_key, secret_key }))
        }
        _ => Err("s3-access-key and s3-secret-key go together: give both (not empty) or neither".into()),
    }
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM and says which came.
pub async fn shutdown_signal() -> anyhow::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|_| "SIGINT").context("listening for SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        Ok("Ctrl-C")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_coordinator_serves_until_shut_down() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::cluster_store::open_embedded(&dir.path().join("cluster.redb")).unwrap();
        let cfg = coordinator_config("c", dir.path(), DEFAULT_JOB_RETENTION);
        let server = start_coordinator(store, UfsRegistry::new(), cfg, DEFAULT_HOST, 0).await.unwrap();
        let url = format!("{}/api/v1/nodes", server.url);
        loam_ufs::install_process_defaults();
        let http = reqwest::Client::new();
        let r = http.get(&url).send().await.unwrap();
        assert!(r.status().is_success());
        let addr = server.addr;
        server.shutdown().await.unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed after shutdown");
    }

    #[test]
    fn the_coordinator_keeps_its_files_under_the_data_dir() {
        let cfg = coordinator_config("c1", Path::new("/d"), Duration::from_secs(5));
        assert_eq!(cfg.data_dir, PathBuf::from("/d/coordinator"));
        assert_eq!((cfg.cluster_name.as_str(), cfg.job_retention), ("c1", Duration::from_secs(5)));
        assert!(cfg.static_mounts.is_none());
    }

    #[test]
    fn s3_keys_come_in_pairs() {
        assert_eq!(s3_credentials(None, None), Ok(None));
        let pair = s3_credentials(Some("a".into()), Some("s".into())).unwrap().unwrap();
        assert_eq!((pair.access_key.as_str(), pair.secret_key.as_str()), ("a", "s"));
        assert!(s3_credentials(Some("a".into()), None).is_err());
        assert!(s3_credentials(None, Some("s".into())).is_err());
        assert!(s3_credentials(Some(String::new()), Some("s".into())).is_err());
    }

    #[test]
    fn worker_config_applies_the_sizing() {
        let s = CacheSizing {
            cache_size: 5,
            memory_size: 7,
            page_size: 4096,
            max_age_secs: 9,
            ttl_scan_secs: 3,
            quota_check_interval: Duration::from_millis(300),
        };
        let cfg = worker_config("/w".into(), "10.0.0.5", 1234, &s);
        assert_eq!((cfg.host.as_str(), cfg.http_port), ("10.0.0.5", 1234));
        assert_eq!((cfg.page_store.disk_capacity, cfg.page_store.memory_capacity), (5, 7));
        assert_eq!(cfg.page_store.page_size, 4096);
        assert_eq!(cfg.ttl_check_interval, Duration::from_secs(3));
        assert_eq!(cfg.quota_check_interval, Duration::from_millis(300));
        assert_eq!(cfg.page_store.disk_dirs, [PathBuf::from("/w/cache")]);
        assert_eq!(cfg.max_age, Duration::from_secs(9));
    }
}
