//! `loam coordinator`: one Coordinator process. With `--etcd` it keeps the cluster state (mounts, and the
//! membership the workers write) in etcd, so workers on other machines join it; without, it uses the
//! embedded store under its data directory (a single node, like `loam local` without workers).
//!
//! Settings are the node and coordinator groups (`crate::settings`): flags over environment over the
//! `--config` file over the defaults; `[[mount]]` entries in the file make a static mount table. When
//! ready it prints, one line each (stable, for scripts):
//!
//! ```text
//! Loam coordinator is running (cluster DefaultAlluxioCluster, store etcd http://127.0.0.1:2379)
//!   coordinator  http://127.0.0.1:19999   (REST API /api/v1, LOAM_COORDINATOR=http://127.0.0.1:19999)
//! Press Ctrl-C to stop.
//! ```
//!
//! It runs until SIGINT or SIGTERM, then drains the requests in flight and exits 0.

use crate::assembly::{self, CoordinatorServer};
use crate::cluster_store::{ClusterFlags, StoreBackend};
use crate::settings::{self, ConfigFlags, Inputs};
use crate::startup::{self, Probes, Startup};
use clap::{ArgMatches, Args};
use loam_config::{ConfigError, Layered, LogSettings, NodeSettings, field_names};
use loam_coordinator::{CoordinatorConfig, CoordinatorSettings};
use loam_listener::{ListenerConfig, ListenerSettings};
use loam_store::{ClusterStore, EtcdStore};
use loam_ufs::UfsRegistry;
use std::path::PathBuf;
use std::sync::Arc;

/// Flags of `loam coordinator` (besides the global `--etcd` and `--cluster-name`).
#[derive(Args, Debug, Clone, Default)]
pub struct CoordinatorArgs {
    /// `--config`, `--print-config`.
    #[command(flatten)]
    pub config: ConfigFlags,
    /// Where it binds and keeps its state.
    #[command(flatten)]
    pub node: NodeSettings,
    /// The Coordinator's own settings.
    #[command(flatten)]
    pub coordinator: CoordinatorSettings,
    /// TLS and limits of its listener.
    #[command(flatten)]
    pub listener: ListenerSettings,
    /// The log's format.
    #[command(flatten)]
    pub log: LogSettings,
}

/// The merged settings groups of `loam coordinator`.
pub struct Resolved {
    /// Node settings.
    pub node: Layered<NodeSettings>,
    /// Coordinator settings.
    pub coordinator: Layered<CoordinatorSettings>,
    /// Listener settings.
    pub listener: Layered<ListenerSettings>,
    /// Log settings.
    pub log: Layered<LogSettings>,
    file: Option<PathBuf>,
}

/// What a coordinator process runs with.
#[derive(Debug, Clone)]
pub struct CoordinatorPlan {
    /// The cluster store.
    pub store: StoreBackend,
    /// Address to bind.
    pub host: String,
    /// Address printed (and, with HA, written to the leader record): `advertise-host`, else `host`.
    pub advertise_host: String,
    /// REST API port.
    pub port: u16,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The coordinator's configuration.
    pub config: CoordinatorConfig,
    /// TLS and limits of its listener.
    pub listener: ListenerConfig,
}

impl Resolved {
    /// Reads the `--config` file (if given) and merges.
    pub fn new(
        args: &CoordinatorArgs,
        cluster: &ClusterFlags,
        matches: Option<&ArgMatches>,
    ) -> Result<Self, ConfigError> {
        let known = [
            field_names::<NodeSettings>(),
            field_names::<CoordinatorSettings>(),
            field_names::<ListenerSettings>(),
            field_names::<LogSettings>(),
        ];
        let inputs = Inputs::new(&args.config, &known, matches, cluster, None)?;
        Ok(Self {
            node: inputs.node(&args.node)?,
            coordinator: inputs.group(None, &args.coordinator)?,
            listener: inputs.group(None, &args.listener)?,
            log: inputs.group(None, &args.log)?,
            file: inputs.file_path(),
        })
    }

    /// What `--print-config` shows.
    pub fn printout(&self) -> loam_config::render::Printout {
        settings::printout("loam coordinator", self.file.clone())
            .group(&self.node)
            .group(&self.coordinator)
            .group(&self.listener)
            .group(&self.log)
    }

    /// Where the REST API (and the probes) bind.
    pub fn address(&self) -> (String, u16) {
        let host = self.node.value.host.clone().unwrap_or_else(|| loam_config::DEFAULT_HOST.into());
        (host, self.coordinator.value.port.unwrap_or(loam_coordinator::settings::DEFAULT_PORT))
    }

    /// Checks the settings.
    pub fn plan(&self) -> Result<CoordinatorPlan, ConfigError> {
        let n = &self.node.value;
        let data_dir = n.data_dir.clone().unwrap_or_else(|| loam_config::DEFAULT_DATA_DIR.into());
        Ok(CoordinatorPlan {
            store: StoreBackend::choose(n, &data_dir),
            host: n.host.clone().unwrap_or_else(|| loam_config::DEFAULT_HOST.into()),
            advertise_host: n.advertised_host(),
            port: self.coordinator.value.port.unwrap_or(loam_coordinator::settings::DEFAULT_PORT),
            config: CoordinatorConfig::from_settings(&self.node, &self.coordinator)?,
            listener: ListenerConfig::from_settings(&self.listener)?,
            data_dir,
        })
    }
}

impl CoordinatorPlan {
    /// The URL the others reach this Coordinator at, serving on `port`.
    pub fn advertised_url(&self, port: u16) -> String {
        loam_config::url_of(self.listener.scheme(), &self.advertise_host, port)
    }
}

/// Runs `loam coordinator` until SIGINT/SIGTERM.
pub async fn run(args: CoordinatorArgs, cluster: ClusterFlags, matches: Option<&ArgMatches>) -> anyhow::Result<()> {
    let resolved = Resolved::new(&args, &cluster, matches)?;
    crate::logging::set_format(&resolved.log.value);
    let checked = || -> Result<CoordinatorPlan, ConfigError> {
        let mut plan = resolved.plan()?;
        plan.config.auth = plan.config.auth.require(&resolved.node, "loam coordinator")?;
        Ok(plan)
    };
    if settings::print_if_asked(&args.config, || resolved.printout()) {
        checked()?;
        return Ok(());
    }
    // What can be checked without the secret files, before waiting for them.
    loam_auth::NodeAuth::check_settings(&resolved.node, "loam coordinator")?;
    let listener = ListenerConfig::from_settings(&resolved.listener)?;
    let (host, port) = resolved.address();
    let mut signal = startup::signal();
    let mut startup = Startup::new(Probes::COORDINATOR, &host, port, &listener);
    let files = startup::secret_files(&resolved.node, &resolved.listener);
    if let Some(s) = startup.wait_for_files(&files, &mut signal).await? {
        eprintln!("{s}: stopped while waiting for a file");
        return Ok(());
    }
    let plan = checked()?;
    let store = match &plan.store {
        StoreBackend::Etcd(endpoints, security) => {
            match startup.wait_for_etcd(endpoints, security, &mut signal).await? {
                Ok(store) => Some(store),
                Err(s) => {
                    eprintln!("{s}: stopped while waiting for etcd");
                    return Ok(());
                }
            }
        }
        StoreBackend::Embedded(_) => None,
    };
    startup.finish().await;
    let server = start_on(&plan, store).await?;
    let url = plan.advertised_url(server.addr.port());
    println!("Loam coordinator is running (cluster {}, store {})", plan.config.cluster_name, plan.store);
    println!("  coordinator  {url}   (REST API /api/v1, LOAM_COORDINATOR={url})");
    println!("Press Ctrl-C to stop.");
    let signal = signal.await?;
    eprintln!("{signal}: shutting down…");
    server.shutdown().await
}

/// Opens the store and starts serving.
pub async fn start(plan: &CoordinatorPlan) -> anyhow::Result<CoordinatorServer> {
    start_on(plan, None).await
}

/// Starts serving over `store`, or the store `plan` names when none is given (opened here).
async fn start_on(plan: &CoordinatorPlan, store: Option<Arc<EtcdStore>>) -> anyhow::Result<CoordinatorServer> {
    assembly::create_data_dir(&plan.data_dir)?;
    assembly::install_client_tls(&plan.listener)?;
    // The connection the startup wait made is the store and the election both; without one, open it here.
    let (store, election): (Arc<dyn ClusterStore>, Option<Arc<dyn loam_store::Election>>) = match store {
        Some(etcd) => (etcd.clone(), Some(etcd)),
        None => plan.store.open_with_election().await?,
    };
    let mut config = plan.config.clone();
    config.election = election;
    // What the other Coordinators forward writes to: the advertised address (port 0: known once bound).
    if plan.port != 0 {
        config.advertise_url = Some(plan.advertised_url(plan.port));
    }
    assembly::start_coordinator(store, UfsRegistry::new(), config, &plan.host, plan.port, &plan.listener).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use loam_config::HumaneDuration;
    use loam_core::membership::DEFAULT_CLUSTER_NAME;
    use std::time::Duration;

    const FILE: &str = "version = 1\netcd = [\"http://file:2379\"]\ncluster-name = \"from-file\"\nhost = \"10.0.0.1\"\n\
                        port = 1000\ndata-dir = \"/file\"\njob-retention = 3600\ndisable-file-index = true\ndisable-ttl = true\n";

    fn merge(
        args: &CoordinatorArgs,
        cluster: &ClusterFlags,
        text: Option<&str>,
    ) -> Result<CoordinatorPlan, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let mut args = args.clone();
        if let Some(text) = text {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).unwrap();
            args.config.config = Some(path);
        }
        Resolved::new(&args, cluster, None)?.plan()
    }

    #[test]
    fn defaults_without_flags_or_file() {
        let s = merge(&CoordinatorArgs::default(), &ClusterFlags::default(), None).unwrap();
        assert_eq!(s.store, StoreBackend::Embedded(PathBuf::from(loam_config::DEFAULT_DATA_DIR).join("cluster.redb")));
        assert_eq!(s.config.cluster_name, DEFAULT_CLUSTER_NAME);
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 19999));
        assert_eq!(s.config.job_retention, Duration::from_secs(7 * 24 * 3600));
        assert!(s.config.file_index, "the file index is on by default");
        assert!(
            s.config.ttl_enabled && s.config.priority_enabled && s.config.quota_enabled,
            "cache policies are on by default"
        );
        assert!(s.config.static_mounts.is_none(), "mounts are managed through the API");
        assert_eq!(s.config.data_dir, PathBuf::from("./loam-data/coordinator"));
    }

    #[test]
    fn the_file_fills_what_flags_leave_out() {
        let s = merge(&CoordinatorArgs::default(), &ClusterFlags::default(), Some(FILE)).unwrap();
        assert_eq!(s.store, StoreBackend::Etcd(vec!["http://file:2379".into()], Default::default()));
        assert_eq!(s.config.cluster_name, "from-file");
        assert_eq!((s.host.as_str(), s.port), ("10.0.0.1", 1000));
        assert_eq!(s.data_dir, PathBuf::from("/file"));
        assert_eq!(s.config.job_retention, Duration::from_secs(3600));
        assert!(!s.config.file_index, "disable-file-index = true");
        assert!(!s.config.ttl_enabled && s.config.priority_enabled && s.config.quota_enabled, "disable-ttl = true");
    }

    #[test]
    fn flags_override_the_file() {
        let args = CoordinatorArgs {
            node: NodeSettings { host: Some("h".into()), data_dir: Some("/flag".into()), ..Default::default() },
            coordinator: CoordinatorSettings {
                port: Some(2000),
                job_retention: Some(HumaneDuration::secs(60)),
                disable_quota: Some(true),
                ..Default::default()
            },
            ..Default::default()
        };
        let cluster = ClusterFlags {
            etcd: vec!["http://flag:2379".into()],
            cluster_name: Some("from-flag".into()),
            ..Default::default()
        };
        let s = merge(&args, &cluster, Some(FILE)).unwrap();
        assert_eq!(s.store, StoreBackend::Etcd(vec!["http://flag:2379".into()], Default::default()));
        assert_eq!(s.config.cluster_name, "from-flag");
        assert_eq!((s.host.as_str(), s.port), ("h", 2000));
        assert_eq!(s.data_dir, PathBuf::from("/flag"));
        assert_eq!(s.config.job_retention, Duration::from_secs(60));
        let c = &s.config;
        assert!(
            !c.ttl_enabled && !c.quota_enabled && c.priority_enabled,
            "--disable-quota adds to the file's disable-ttl"
        );
    }

    #[test]
    fn without_etcd_the_store_is_embedded_in_the_data_dir() {
        let args = CoordinatorArgs {
            node: NodeSettings { data_dir: Some("/d".into()), ..Default::default() },
            ..Default::default()
        };
        let s = merge(&args, &ClusterFlags::default(), None).unwrap();
        assert_eq!(s.store, StoreBackend::Embedded("/d/cluster.redb".into()));
    }

    #[test]
    fn resolve_reads_the_config_file() {
        let args = CoordinatorArgs {
            coordinator: CoordinatorSettings { port: Some(4321), ..Default::default() },
            ..Default::default()
        };
        let s = merge(
            &args,
            &ClusterFlags::default(),
            Some("port = 1234\ncluster-name = \"x\"\njob-retention = \"1d 12h\"\n"),
        )
        .unwrap();
        assert_eq!((s.port, s.config.cluster_name.as_str()), (4321, "x"));
        assert_eq!(s.config.job_retention, Duration::from_secs(36 * 3600));
        let s = merge(&args, &ClusterFlags::default(), Some("job-retention = 90\nquota-check-interval = \"250ms\"\n"))
            .unwrap();
        assert_eq!(s.config.job_retention, Duration::from_secs(90));
        assert_eq!(s.config.quota_check_interval, Duration::from_millis(250), "the coordinator takes it too now");
        let e = merge(&args, &ClusterFlags::default(), Some("job-retention = \"soon\"\n")).unwrap_err();
        assert!(e.to_string().contains("job-retention") && e.to_string().contains("invalid duration"), "{e}");
        let e = merge(&args, &ClusterFlags::default(), Some("prot = 1\n")).unwrap_err();
        assert!(e.to_string().contains("unknown field `prot`"), "{e}");
        let e = merge(&args, &ClusterFlags::default(), Some("http-port = 1\n")).unwrap_err();
        assert!(e.to_string().contains("`http-port`"), "a worker key is unknown to the coordinator: {e}");
    }

    #[test]
    fn a_static_mount_table_comes_from_the_file() {
        // `/` allows every local path (these roots need not exist: they are judged by their existing ancestor).
        let text = "allow-local-ufs = \"/\"\n[[mount]]\npath = \"/data\"\nufs = \"file:///srv/data\"\n\n[[mount]]\npath = \"/s3\"\n\
                    ufs = \"s3://b/p\"\noptions = { \"s3.endpoint\" = \"http://e:9000\", \"s3a.secretKey\" = \"S\" }\n";
        let s = merge(&CoordinatorArgs::default(), &ClusterFlags::default(), Some(text)).unwrap();
        let mounts = s.config.static_mounts.unwrap();
        let paths: Vec<(&str, &str)> = mounts.iter().map(|m| (m.path.as_str(), m.ufs.as_str())).collect();
        assert_eq!(paths, [("/data", "file:///srv/data"), ("/s3", "s3://b/p")]);
        assert_eq!(mounts[1].options["s3a.secretKey"], "S");
        for (bad, needle) in [
            ("[[mount]]\npath = \"/a/b\"\nufs = \"file:///x\"\n", "entry 1 (/a/b)"),
            (
                "[[mount]]\npath = \"/a\"\nufs = \"file:///x\"\n[[mount]]\npath = \"/a\"\nufs = \"file:///y\"\n",
                "entry 2 (/a)",
            ),
            ("[[mount]]\npath = \"/a\"\nufs = \"gopher://x\"\n", "entry 1"),
        ] {
            let bad = format!("allow-local-ufs = \"/\"\n{bad}");
            let e = merge(&CoordinatorArgs::default(), &ClusterFlags::default(), Some(&bad)).unwrap_err().to_string();
            assert!(e.contains("`mount` (file") && e.contains(needle), "{bad}: {e}");
        }
        let e = merge(&CoordinatorArgs::default(), &ClusterFlags::default(), Some("[[mount]]\npath = \"/a\"\n"))
            .unwrap_err();
        assert!(e.to_string().contains("ufs"), "{e}");
        let e = merge(
            &CoordinatorArgs::default(),
            &ClusterFlags::default(),
            Some("[[mount]]\npath = \"/a\"\nufs = \"file:///x\"\nopts = 1\n"),
        );
        assert!(e.unwrap_err().to_string().contains("opts"));
    }
}
