//! `loam worker`: one cache worker process of a distributed cluster. It registers in etcd (its liveness
//! key on a lease it keeps alive), follows the mount table and the membership from there, and serves the
//! worker HTTP API. etcd is required: the embedded store belongs to one process, so a worker in another
//! process could not share it. Its identity lives in its data directory, so a restarted worker keeps its
//! place on the ring and its cache.
//!
//! Settings come from the flags, then the `--config` file (`config_file`), then the defaults. The
//! `--coordinator` URL is kept in the worker's configuration for forwarding load requests; reads never
//! need it. The worker also serves the S3 API (`--s3-port`, default 29998), signed with
//! `--s3-access-key`/`--s3-secret-key` and, with `--s3-anonymous-read`, unsigned reads too; with neither
//! it refuses every S3 request (and logs so). When ready it prints, one line each (stable, for scripts):
//!
//! ```text
//! Loam worker is running (cluster DefaultAlluxioCluster, store etcd http://127.0.0.1:2379, data in /var/lib/loam/w1)
//!   worker  http://127.0.0.1:28080  worker-3f0c…
//!   s3      http://127.0.0.1:29998
//! Press Ctrl-C to stop.
//! ```
//!
//! On SIGINT or SIGTERM it revokes its lease first (OFFLINE at once, so clients stop routing to it), then
//! stops serving and exits 0.

use crate::assembly::{self, CacheSizing, DEFAULT_HOST, DEFAULT_WORKER_HTTP_PORT, DEFAULT_WORKER_S3_PORT};
use crate::cluster_store::{self, ClusterFlags};
use crate::config_file::{self, ConfigError, WorkerFile};
use crate::duration::parse_duration;
use anyhow::Context;
use clap::Args;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_core::size::parse_size;
use loam_ufs::UfsRegistry;
use loam_worker::WorkerConfig;
use loam_worker::config::DEFAULT_LEASE_TTL;
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `loam worker` (besides the global `--etcd`, `--cluster-name` and `--coordinator`).
#[derive(Args, Debug, Clone, Default)]
pub struct WorkerArgs {
    /// TOML config file; its keys are these flags' names, and flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to bind and advertise; clients connect to it [default: 127.0.0.1].
    #[arg(long)]
    pub host: Option<String>,
    /// Worker HTTP API port (0: a free one) [default: 28080].
    #[arg(long)]
    pub http_port: Option<u16>,
    /// S3 API port (0: a free one); the membership record advertises it [default: 29998].
    #[arg(long)]
    pub s3_port: Option<u16>,
    /// Access key id S3 requests must be signed with (with --s3-secret-key).
    #[arg(long, env = "LOAM_S3_ACCESS_KEY")]
    pub s3_access_key: Option<String>,
    /// Secret key of --s3-access-key.
    #[arg(long, env = "LOAM_S3_SECRET_KEY", hide_env_values = true)]
    pub s3_secret_key: Option<String>,
    /// Serve unsigned S3 reads (GET, HEAD, listings), as alluxiofs sends them [default: false].
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub s3_anonymous_read: Option<bool>,
    /// Where the worker keeps its identity and, by default, its cache (required).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Disk cache capacity over all cache directories, e.g. 100GiB [default: 10GiB].
    #[arg(long, value_parser = parse_size)]
    pub cache_size: Option<u64>,
    /// Memory tier, e.g. 4GiB; 0 for none [default: 256MiB].
    #[arg(long, value_parser = parse_size)]
    pub memory_size: Option<u64>,
    /// A cache directory (repeatable) [default: <data-dir>/cache].
    #[arg(long = "cache-dir", value_name = "DIR")]
    pub cache_dirs: Vec<PathBuf>,
    /// Page size [default: 1MiB].
    #[arg(long, value_parser = parse_size)]
    pub page_size: Option<u64>,
    /// Seconds a cached file is trusted before it is re-validated against the UFS; 0: every read [default: 60].
    #[arg(long)]
    pub max_age: Option<u64>,
    /// Seconds between scans that evict data past its TTL [default: 60].
    #[arg(long)]
    pub ttl_scan_interval: Option<u64>,
    /// Time between quota passes (usage reports to the cluster, admission): seconds or e.g. `500ms` [default: 2s].
    #[arg(long, value_parser = parse_duration)]
    pub quota_check_interval: Option<Duration>,
    /// Seconds of the liveness lease in etcd; the worker turns OFFLINE this long after it dies [default: 15].
    #[arg(long)]
    pub lease_ttl: Option<u64>,
}

/// The worker's settings after merging flags, file and defaults.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// etcd endpoints (never empty).
    pub etcd: Vec<String>,
    /// The worker's configuration.
    pub worker: WorkerConfig,
}

impl WorkerSettings {
    /// Reads `args.config` (if given) and merges; `coordinator` is the global `--coordinator`.
    pub fn resolve(args: &WorkerArgs, cluster: &ClusterFlags, coordinator: Option<&str>) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => config_file::load::<WorkerFile>(path)?,
            None => WorkerFile::default(),
        };
        Self::merge(args, cluster, coordinator, file)
    }

    /// Flags over `file` over the defaults; fails when etcd or the data directory is missing.
    pub fn merge(
        args: &WorkerArgs,
        cluster: &ClusterFlags,
        coordinator: Option<&str>,
        file: WorkerFile,
    ) -> Result<Self, ConfigError> {
        let mut etcd = cluster.endpoints();
        if etcd.is_empty() {
            etcd = file.etcd.map(|e| e.0).unwrap_or_default();
        }
        if etcd.is_empty() {
            return Err(ConfigError::Invalid(
                "loam worker needs etcd: pass --etcd URL[,URL...] (or set LOAM_ETCD, or `etcd` in the config file); \
                 the embedded store belongs to one process, so only `loam local` runs workers without etcd"
                    .into(),
            ));
        }
        let data_dir = args.data_dir.clone().or(file.data_dir).ok_or_else(|| {
            ConfigError::Invalid(
                "loam worker needs --data-dir (or `data-dir` in the config file): it keeps its identity there".into(),
            )
        })?;
        let defaults = CacheSizing::default();
        let sizing = CacheSizing {
            cache_size: args.cache_size.or(file.cache_size.map(|s| s.0)).unwrap_or(defaults.cache_size),
            memory_size: args.memory_size.or(file.memory_size.map(|s| s.0)).unwrap_or(defaults.memory_size),
            page_size: args.page_size.or(file.page_size.map(|s| s.0)).unwrap_or(defaults.page_size),
            max_age_secs: args.max_age.or(file.max_age).unwrap_or(defaults.max_age_secs),
            ttl_scan_secs: args.ttl_scan_interval.or(file.ttl_scan_interval).unwrap_or(defaults.ttl_scan_secs),
            quota_check_interval: args
                .quota_check_interval
                .or(file.quota_check_interval.map(|d| d.0))
                .unwrap_or(defaults.quota_check_interval),
        };
        if sizing.quota_check_interval.is_zero() {
            return Err(ConfigError::Invalid("quota-check-interval must be longer than 0".into()));
        }
        if sizing.page_size == 0 {
            return Err(ConfigError::Invalid("page-size must be at least 1 byte".into()));
        }
        let lease_ttl = args.lease_ttl.or(file.lease_ttl).map(Duration::from_secs).unwrap_or(DEFAULT_LEASE_TTL);
        if lease_ttl.is_zero() {
            return Err(ConfigError::Invalid("lease-ttl must be at least 1 second".into()));
        }
        let host = args.host.clone().or(file.host).unwrap_or(DEFAULT_HOST.into());
        let http_port = args.http_port.or(file.http_port).unwrap_or(DEFAULT_WORKER_HTTP_PORT);
        let mut worker = assembly::worker_config(data_dir, &host, http_port, &sizing);
        let cache_dirs =
            if args.cache_dirs.is_empty() { file.cache_dir.map(|d| d.0) } else { Some(args.cache_dirs.clone()) };
        if let Some(dirs) = cache_dirs.filter(|d| !d.is_empty()) {
            worker.page_store.disk_dirs = dirs;
        }
        worker.s3.port = args.s3_port.or(file.s3_port).unwrap_or(DEFAULT_WORKER_S3_PORT);
        let access_key = args.s3_access_key.clone().or(file.s3_access_key);
        let secret_key = args.s3_secret_key.clone().or(file.s3_secret_key);
        worker.s3.credentials = assembly::s3_credentials(access_key, secret_key).map_err(ConfigError::Invalid)?;
        worker.s3.anonymous_read = args.s3_anonymous_read.or(file.s3_anonymous_read).unwrap_or(false);
        worker.cluster_name = cluster.cluster_name.clone().or(file.cluster_name).unwrap_or(DEFAULT_CLUSTER_NAME.into());
        worker.lease_ttl = lease_ttl;
        worker.coordinator_url = coordinator.map(str::to_string).or(file.coordinator);
        Ok(Self { etcd, worker })
    }
}

/// Runs `loam worker` until SIGINT/SIGTERM.
pub async fn run(args: WorkerArgs, cluster: ClusterFlags, coordinator: Option<String>) -> anyhow::Result<()> {
    let settings = WorkerSettings::resolve(&args, &cluster, coordinator.as_deref())?;
    let store = cluster_store::connect_etcd(&settings.etcd).await?;
    let cfg = settings.worker.clone();
    let worker =
        loam_worker::start(cfg, store, UfsRegistry::new(), Registry::default()).await.context("starting the worker")?;
    println!(
        "Loam worker is running (cluster {}, store etcd {}, data in {})",
        settings.worker.cluster_name,
        settings.etcd.join(","),
        settings.worker.data_dir.display()
    );
    println!("  worker  {}  {}", worker.http_base(), worker.id);
    println!("  s3      {}", worker.s3_base());
    println!("Press Ctrl-C to stop.");
    let signal = assembly::shutdown_signal().await;
    eprintln!("{}: leaving the cluster and shutting down…", signal.as_ref().copied().unwrap_or("error"));
    // Leave the ring even when listening for signals failed, so the worker is not left ONLINE.
    worker.shutdown().await;
    signal.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::{ByteSize, Endpoints, PathList};

    fn etcd() -> ClusterFlags {
        ClusterFlags { etcd: vec!["http://e:2379".into()], cluster_name: None }
    }

    fn with_data_dir() -> WorkerArgs {
        WorkerArgs { data_dir: Some("/w".into()), ..Default::default() }
    }

    #[test]
    fn defaults() {
        let s = WorkerSettings::merge(&with_data_dir(), &etcd(), None, WorkerFile::default()).unwrap();
        assert_eq!(s.etcd, ["http://e:2379"]);
        let w = s.worker;
        assert_eq!((w.host.as_str(), w.http_port, w.s3.port), (DEFAULT_HOST, DEFAULT_WORKER_HTTP_PORT, 29998));
        assert_eq!((w.s3_port, w.s3.credentials.as_ref(), w.s3.anonymous_read), (0, None, false));
        assert_eq!(w.cluster_name, DEFAULT_CLUSTER_NAME);
        assert_eq!(w.lease_ttl, Duration::from_secs(15));
        assert_eq!(w.page_store.disk_dirs, [PathBuf::from("/w/cache")]);
        assert_eq!(w.page_store.disk_capacity, assembly::DEFAULT_CACHE_SIZE);
        assert_eq!(w.page_store.memory_capacity, assembly::DEFAULT_MEMORY_SIZE);
        assert_eq!(w.page_store.page_size, 1 << 20);
        assert_eq!(w.max_age, Duration::from_secs(60));
        assert_eq!(w.quota_check_interval, loam_worker::quota::DEFAULT_QUOTA_CHECK_INTERVAL);
        assert_eq!(w.coordinator_url, None);
    }

    #[test]
    fn the_quota_check_interval_flag_parses_and_reaches_the_worker_config() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            worker: WorkerArgs,
        }
        for (given, want) in [("500ms", Duration::from_millis(500)), ("3", Duration::from_secs(3))] {
            let cli = Cli::try_parse_from(["loam", "--data-dir", "/w", "--quota-check-interval", given]).unwrap();
            let s = WorkerSettings::merge(&cli.worker, &etcd(), None, WorkerFile::default()).unwrap();
            assert_eq!(s.worker.quota_check_interval, want, "{given}");
        }
        assert!(Cli::try_parse_from(["loam", "--quota-check-interval", "soon"]).is_err());
        let zero = WorkerArgs { quota_check_interval: Some(Duration::ZERO), ..with_data_dir() };
        let e = WorkerSettings::merge(&zero, &etcd(), None, WorkerFile::default()).unwrap_err();
        assert!(e.to_string().contains("quota-check-interval"), "{e}");
    }

    fn file() -> WorkerFile {
        WorkerFile {
            version: None,
            etcd: Some(Endpoints(vec!["http://file:2379".into()])),
            cluster_name: Some("fc".into()),
            coordinator: Some("http://file:19999".into()),
            host: Some("fh".into()),
            http_port: Some(1),
            s3_port: Some(2),
            s3_access_key: Some("fak".into()),
            s3_secret_key: Some("fsk".into()),
            s3_anonymous_read: Some(true),
            data_dir: Some("/fd".into()),
            cache_size: Some(ByteSize(3)),
            memory_size: Some(ByteSize(4)),
            cache_dir: Some(PathList(vec!["/c1".into(), "/c2".into()])),
            page_size: Some(ByteSize(5)),
            max_age: Some(6),
            ttl_scan_interval: Some(8),
            quota_check_interval: Some(config_file::HumaneDuration(Duration::from_secs(9))),
            lease_ttl: Some(7),
        }
    }

    #[test]
    fn the_file_alone() {
        let s = WorkerSettings::merge(&WorkerArgs::default(), &ClusterFlags::default(), None, file()).unwrap();
        assert_eq!(s.etcd, ["http://file:2379"]);
        let w = s.worker;
        assert_eq!((w.cluster_name.as_str(), w.host.as_str(), w.http_port, w.s3.port), ("fc", "fh", 1, 2));
        let keys = w.s3.credentials.as_ref().map(|c| (c.access_key.as_str(), c.secret_key.as_str()));
        assert_eq!((keys, w.s3.anonymous_read), (Some(("fak", "fsk")), true));
        assert_eq!(w.coordinator_url.as_deref(), Some("http://file:19999"));
        assert_eq!(w.data_dir, PathBuf::from("/fd"));
        assert_eq!(w.page_store.disk_dirs, [PathBuf::from("/c1"), PathBuf::from("/c2")]);
        let ps = &w.page_store;
        assert_eq!((ps.disk_capacity, ps.memory_capacity, ps.page_size), (3, 4, 5));
        assert_eq!((w.max_age, w.lease_ttl), (Duration::from_secs(6), Duration::from_secs(7)));
        assert_eq!(w.ttl_check_interval, Duration::from_secs(8));
        assert_eq!(w.quota_check_interval, Duration::from_secs(9));
    }

    #[test]
    fn flags_override_every_key_of_the_file() {
        let args = WorkerArgs {
            config: None,
            host: Some("ah".into()),
            http_port: Some(11),
            s3_port: Some(12),
            s3_access_key: Some("aak".into()),
            s3_secret_key: Some("ask".into()),
            s3_anonymous_read: Some(false),
            data_dir: Some("/ad".into()),
            cache_size: Some(13),
            memory_size: Some(14),
            cache_dirs: vec!["/ac".into()],
            page_size: Some(15),
            max_age: Some(16),
            ttl_scan_interval: Some(18),
            quota_check_interval: Some(Duration::from_millis(190)),
            lease_ttl: Some(17),
        };
        let cluster = ClusterFlags { etcd: vec!["http://a:1,http://b:1".into()], cluster_name: Some("ac".into()) };
        let s = WorkerSettings::merge(&args, &cluster, Some("http://a:19999"), file()).unwrap();
        assert_eq!(s.etcd, ["http://a:1", "http://b:1"]);
        let w = s.worker;
        assert_eq!((w.cluster_name.as_str(), w.host.as_str(), w.http_port, w.s3.port), ("ac", "ah", 11, 12));
        let keys = w.s3.credentials.as_ref().map(|c| (c.access_key.as_str(), c.secret_key.as_str()));
        assert_eq!((keys, w.s3.anonymous_read), (Some(("aak", "ask")), false));
        assert_eq!(w.coordinator_url.as_deref(), Some("http://a:19999"));
        assert_eq!(w.data_dir, PathBuf::from("/ad"));
        assert_eq!(w.page_store.disk_dirs, [PathBuf::from("/ac")]);
        let ps = &w.page_store;
        assert_eq!((ps.disk_capacity, ps.memory_capacity, ps.page_size), (13, 14, 15));
        assert_eq!((w.max_age, w.lease_ttl), (Duration::from_secs(16), Duration::from_secs(17)));
        assert_eq!(w.ttl_check_interval, Duration::from_secs(18));
        assert_eq!(w.quota_check_interval, Duration::from_millis(190));
    }

    #[test]
    fn the_default_cache_dir_follows_the_data_dir_of_the_flags() {
        let f = WorkerFile { cache_dir: None, ..file() };
        let s = WorkerSettings::merge(&with_data_dir(), &ClusterFlags::default(), None, f).unwrap();
        assert_eq!(s.worker.page_store.disk_dirs, [PathBuf::from("/w/cache")]);
    }

    #[test]
    fn etcd_and_the_data_dir_are_required() {
        let e = WorkerSettings::merge(&with_data_dir(), &ClusterFlags::default(), None, WorkerFile::default());
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("needs etcd") && msg.contains("--etcd"), "{msg}");
        let e = WorkerSettings::merge(&WorkerArgs::default(), &etcd(), None, WorkerFile::default());
        assert!(e.unwrap_err().to_string().contains("--data-dir"));
    }

    #[test]
    fn an_s3_access_key_needs_its_secret() {
        let args = WorkerArgs { s3_access_key: Some("ak".into()), ..with_data_dir() };
        let e = WorkerSettings::merge(&args, &etcd(), None, WorkerFile::default()).unwrap_err();
        assert!(e.to_string().contains("s3-secret-key"), "{e}");
        let f = WorkerFile { s3_secret_key: Some("sk".into()), ..WorkerFile::default() };
        let s = WorkerSettings::merge(&args, &etcd(), None, f).unwrap();
        assert_eq!(s.worker.s3.credentials.unwrap().secret_key, "sk", "the flag's key, the file's secret");
    }

    #[test]
    fn zero_page_size_and_lease_ttl_are_refused() {
        let args = WorkerArgs { page_size: Some(0), ..with_data_dir() };
        assert!(WorkerSettings::merge(&args, &etcd(), None, WorkerFile::default()).is_err());
        let args = WorkerArgs { lease_ttl: Some(0), ..with_data_dir() };
        let e = WorkerSettings::merge(&args, &etcd(), None, WorkerFile::default()).unwrap_err();
        assert!(e.to_string().contains("lease-ttl"), "{e}");
    }

    #[test]
    fn resolve_reads_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        let text = "etcd = \"http://f:2379\"\ndata-dir = \"/fd\"\nhttp-port = 5\ncache-size = \"1GiB\"\n\
                    quota-check-interval = \"750ms\"\n";
        std::fs::write(&path, text).unwrap();
        let args = WorkerArgs { config: Some(path.clone()), http_port: Some(6), ..Default::default() };
        let s = WorkerSettings::resolve(&args, &ClusterFlags::default(), None).unwrap();
        assert_eq!((s.worker.http_port, s.worker.page_store.disk_capacity), (6, 1 << 30));
        assert_eq!(s.etcd, ["http://f:2379"]);
        assert_eq!(s.worker.quota_check_interval, Duration::from_millis(750));
    }
}
