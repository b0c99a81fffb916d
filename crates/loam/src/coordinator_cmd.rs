//! `loam coordinator`: one Coordinator process. With `--etcd` it keeps the cluster state (mounts, and the
//! membership the workers write) in etcd, so workers on other machines join it; without, it uses the
//! embedded store under its data directory (a single node, like `loam local` without workers).
//!
//! Settings come from the flags, then the `--config` file (`config_file`), then the defaults. When
//! ready it prints, one line each (stable, for scripts):
//!
//! ```text
//! Loam coordinator is running (cluster DefaultAlluxioCluster, store etcd http://127.0.0.1:2379)
//!   coordinator  http://127.0.0.1:19999   (REST API /api/v1, LOAM_COORDINATOR=http://127.0.0.1:19999)
//! Press Ctrl-C to stop.
//! ```
//!
//! It runs until SIGINT or SIGTERM, then drains the requests in flight and exits 0.

use crate::assembly::{self, CoordinatorServer, DEFAULT_COORDINATOR_PORT, DEFAULT_HOST, DEFAULT_JOB_RETENTION};
use crate::cluster_store::{ClusterFlags, StoreBackend};
use crate::config_file::{self, ConfigError, CoordinatorFile};
use crate::duration::parse_duration;
use anyhow::Context;
use clap::Args;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_ufs::UfsRegistry;
use std::path::PathBuf;
use std::time::Duration;

/// Default data directory of the coordinator.
pub const DEFAULT_DATA_DIR: &str = "./loam-data";

/// Flags of `loam coordinator` (besides the global `--etcd` and `--cluster-name`).
#[derive(Args, Debug, Clone, Default)]
pub struct CoordinatorArgs {
    /// TOML config file; its keys are these flags' names, and flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to bind and advertise [default: 127.0.0.1].
    #[arg(long)]
    pub host: Option<String>,
    /// REST API port [default: 19999].
    #[arg(long)]
    pub port: Option<u16>,
    /// Where the coordinator keeps its state (the embedded store when there is no etcd) [default: ./loam-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// How long finished load and free jobs are kept: seconds or a duration like `7d`, `12h` [default: 7d].
    #[arg(long, value_parser = parse_duration)]
    pub job_retention: Option<Duration>,
    /// Do not keep the global file index (`/api/v1/file_index` then answers 404).
    #[arg(long)]
    pub disable_file_index: bool,
    /// Turn the TTL API off (`/api/v1/ttl` then answers 501).
    #[arg(long)]
    pub disable_ttl: bool,
    /// Turn the priority eviction API off (`/api/v1/priority` then answers 501).
    #[arg(long)]
    pub disable_priority: bool,
    /// Turn the quota API off (`/api/v1/quota` then answers 501).
    #[arg(long)]
    pub disable_quota: bool,
}

/// The coordinator's settings after merging flags, file and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorSettings {
    /// The cluster store.
    pub store: StoreBackend,
    /// Cluster name.
    pub cluster_name: String,
    /// Address to bind.
    pub host: String,
    /// REST API port.
    pub port: u16,
    /// Data directory.
    pub data_dir: PathBuf,
    /// How long finished jobs are kept.
    pub job_retention: Duration,
    /// Whether the global file index is kept.
    pub file_index: bool,
    /// Whether the TTL API is on.
    pub ttl: bool,
    /// Whether the priority eviction API is on.
    pub priority: bool,
    /// Whether the quota API is on.
    pub quota: bool,
}

impl CoordinatorSettings {
    /// Reads `args.config` (if given) and merges.
    pub fn resolve(args: &CoordinatorArgs, cluster: &ClusterFlags) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => config_file::load::<CoordinatorFile>(path)?,
            None => CoordinatorFile::default(),
        };
        Ok(Self::merge(args, cluster, file))
    }

    /// Flags over `file` over the defaults.
    pub fn merge(args: &CoordinatorArgs, cluster: &ClusterFlags, file: CoordinatorFile) -> Self {
        let mut endpoints = cluster.endpoints();
        if endpoints.is_empty() {
            endpoints = file.etcd.map(|e| e.0).unwrap_or_default();
        }
        let data_dir = args.data_dir.clone().or(file.data_dir).unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        Self {
            store: StoreBackend::choose(endpoints, &data_dir),
            cluster_name: cluster.cluster_name.clone().or(file.cluster_name).unwrap_or(DEFAULT_CLUSTER_NAME.into()),
            host: args.host.clone().or(file.host).unwrap_or(DEFAULT_HOST.into()),
            port: args.port.or(file.port).unwrap_or(DEFAULT_COORDINATOR_PORT),
            job_retention: args.job_retention.or(file.job_retention.map(|d| d.0)).unwrap_or(DEFAULT_JOB_RETENTION),
            file_index: !(args.disable_file_index || file.disable_file_index.unwrap_or(false)),
            ttl: !(args.disable_ttl || file.disable_ttl.unwrap_or(false)),
            priority: !(args.disable_priority || file.disable_priority.unwrap_or(false)),
            quota: !(args.disable_quota || file.disable_quota.unwrap_or(false)),
            data_dir,
        }
    }
}

/// Runs `loam coordinator` until SIGINT/SIGTERM.
pub async fn run(args: CoordinatorArgs, cluster: ClusterFlags) -> anyhow::Result<()> {
    let settings = CoordinatorSettings::resolve(&args, &cluster)?;
    let server = start(&settings).await?;
    println!("Loam coordinator is running (cluster {}, store {})", settings.cluster_name, settings.store);
    println!("  coordinator  {url}   (REST API /api/v1, LOAM_COORDINATOR={url})", url = server.url);
    println!("Press Ctrl-C to stop.");
    let signal = assembly::shutdown_signal().await?;
    eprintln!("{signal}: shutting down…");
    server.shutdown().await
}

/// Opens the store and starts serving.
pub async fn start(settings: &CoordinatorSettings) -> anyhow::Result<CoordinatorServer> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data directory {}", settings.data_dir.display()))?;
    let store = settings.store.open().await?;
    let mut cfg = assembly::coordinator_config(&settings.cluster_name, &settings.data_dir, settings.job_retention);
    cfg.file_index = settings.file_index;
    (cfg.ttl_enabled, cfg.priority_enabled, cfg.quota_enabled) = (settings.ttl, settings.priority, settings.quota);
    assembly::start_coordinator(store, UfsRegistry::new(), cfg, &settings.host, settings.port).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::Endpoints;

    fn file() -> CoordinatorFile {
        CoordinatorFile {
            version: Some(1),
            etcd: Some(Endpoints(vec!["http://file:2379".into()])),
            cluster_name: Some("from-file".into()),
            host: Some("10.0.0.1".into()),
            port: Some(1000),
            data_dir: Some("/file".into()),
            job_retention: Some(config_file::HumaneDuration(Duration::from_secs(3600))),
            disable_file_index: Some(true),
            disable_ttl: Some(true),
            disable_priority: None,
            disable_quota: None,
        }
    }

    #[test]
    fn defaults_without_flags_or_file() {
        let s = CoordinatorSettings::merge(&CoordinatorArgs::default(), &ClusterFlags::default(), Default::default());
        assert_eq!(s.store, StoreBackend::Embedded(PathBuf::from(DEFAULT_DATA_DIR).join("cluster.redb")));
        assert_eq!(s.cluster_name, DEFAULT_CLUSTER_NAME);
        assert_eq!((s.host.as_str(), s.port), (DEFAULT_HOST, DEFAULT_COORDINATOR_PORT));
        assert_eq!(s.job_retention, Duration::from_secs(7 * 24 * 3600));
        assert!(s.file_index, "the file index is on by default");
        assert!(s.ttl && s.priority && s.quota, "cache policies are on by default");
    }

    #[test]
    fn the_file_fills_what_flags_leave_out() {
        let s = CoordinatorSettings::merge(&CoordinatorArgs::default(), &ClusterFlags::default(), file());
        assert_eq!(s.store, StoreBackend::Etcd(vec!["http://file:2379".into()]));
        assert_eq!(s.cluster_name, "from-file");
        assert_eq!((s.host.as_str(), s.port), ("10.0.0.1", 1000));
        assert_eq!(s.data_dir, PathBuf::from("/file"));
        assert_eq!(s.job_retention, Duration::from_secs(3600));
        assert!(!s.file_index, "disable-file-index = true");
        assert!(!s.ttl && s.priority && s.quota, "disable-ttl = true");
    }

    #[test]
    fn flags_override_the_file() {
        let args = CoordinatorArgs {
            config: None,
            host: Some("h".into()),
            port: Some(2000),
            data_dir: Some("/flag".into()),
            job_retention: Some(Duration::from_secs(60)),
            disable_file_index: false,
            disable_quota: true,
            ..Default::default()
        };
        let cluster = ClusterFlags { etcd: vec!["http://flag:2379".into()], cluster_name: Some("from-flag".into()) };
        let s = CoordinatorSettings::merge(&args, &cluster, file());
        assert_eq!(s.store, StoreBackend::Etcd(vec!["http://flag:2379".into()]));
        assert_eq!(s.cluster_name, "from-flag");
        assert_eq!((s.host.as_str(), s.port), ("h", 2000));
        assert_eq!(s.data_dir, PathBuf::from("/flag"));
        assert_eq!(s.job_retention, Duration::from_secs(60));
        assert!(!s.ttl && !s.quota && s.priority, "--disable-quota adds to the file's disable-ttl");
    }

    #[test]
    fn without_etcd_the_store_is_embedded_in_the_data_dir() {
        let args = CoordinatorArgs { data_dir: Some("/d".into()), ..Default::default() };
        let s = CoordinatorSettings::merge(&args, &ClusterFlags::default(), CoordinatorFile::default());
        assert_eq!(s.store, StoreBackend::Embedded("/d/cluster.redb".into()));
    }

    #[test]
    fn resolve_reads_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "port = 1234\ncluster-name = \"x\"\njob-retention = \"1d 12h\"\n").unwrap();
        let args = CoordinatorArgs { config: Some(path.clone()), port: Some(4321), ..Default::default() };
        let s = CoordinatorSettings::resolve(&args, &ClusterFlags::default()).unwrap();
        assert_eq!((s.port, s.cluster_name.as_str()), (4321, "x"));
        assert_eq!(s.job_retention, Duration::from_secs(36 * 3600));
        std::fs::write(&path, "job-retention = 90\n").unwrap();
        let s = CoordinatorSettings::resolve(&args, &ClusterFlags::default()).unwrap();
        assert_eq!(s.job_retention, Duration::from_secs(90));
        std::fs::write(&path, "job-retention = \"soon\"\n").unwrap();
        let e = CoordinatorSettings::resolve(&args, &ClusterFlags::default()).unwrap_err();
        assert!(e.to_string().contains("job-retention") && e.to_string().contains("invalid duration"), "{e}");
        std::fs::write(&path, "prot = 1\n").unwrap();
        let e = CoordinatorSettings::resolve(&args, &ClusterFlags::default()).unwrap_err();
        assert!(e.to_string().contains("unknown field `prot`"), "{e}");
    }
}
