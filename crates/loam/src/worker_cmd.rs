//! `loam worker`: one cache worker process of a distributed cluster. It registers in etcd (its liveness
//! key on a lease it keeps alive), follows the mount table and the membership from there, and serves the
//! worker HTTP API. etcd is required: the embedded store belongs to one process, so a worker in another
//! process could not share it. Its identity lives in its data directory, so a restarted worker keeps its
//! place on the ring and its cache.
//!
//! Settings are the node and worker groups (`crate::settings`): flags over environment over the
//! `--config` file over the defaults. The `--coordinator` URL is kept in the worker's configuration for forwarding load requests; reads never
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
//! stops serving and exits 0. It does not drain on a signal: `loam worker drain` (the preStop hook,
//! `crate::worker_drain`) does, and a crash must not differ from a stop in correctness, only in what stays
//! cached.

use crate::assembly;
use crate::cluster_store::{self, ClusterFlags};
use crate::settings::{self, ConfigFlags, Inputs};
use crate::startup::{self, Probes, Startup};
use anyhow::Context;
use clap::{ArgMatches, Args};
use loam_config::{ConfigError, Layered, LogSettings, NodeSettings, field_names};
use loam_listener::{ListenerConfig, ListenerSettings};
use loam_ufs::UfsRegistry;
use loam_worker::{WorkerConfig, WorkerSettings};
use prometheus_client::registry::Registry;

/// Flags of `loam worker` (besides the global `--etcd`, `--cluster-name` and `--coordinator`): the worker's
/// settings, and an action other than running one. It derefs to the settings.
#[derive(Args, Debug, Clone, Default)]
pub struct WorkerArgs {
    /// The worker's settings.
    #[command(flatten)]
    pub settings: WorkerFlags,
    /// `loam worker drain`: instead of running a worker, drain the one running here.
    #[command(subcommand)]
    pub action: Option<WorkerAction>,
}

impl std::ops::Deref for WorkerArgs {
    type Target = WorkerFlags;

    fn deref(&self) -> &WorkerFlags {
        &self.settings
    }
}

impl std::ops::DerefMut for WorkerArgs {
    fn deref_mut(&mut self) -> &mut WorkerFlags {
        &mut self.settings
    }
}

/// What `loam worker` does besides running a worker.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum WorkerAction {
    /// Drain the worker running on this machine (the Kubernetes preStop hook): it leaves the ring and moves
    /// its cached files to their next owners; waits until that ends. Takes the worker's own settings
    /// (`--config FILE`). Exit 0 when every file moved, 1 otherwise.
    Drain(Box<WorkerFlags>),
}

/// The settings a worker runs with, as flags: `loam worker`'s and `loam worker drain`'s (the hook reads the
/// worker's own).
#[derive(Args, Debug, Clone, Default)]
pub struct WorkerFlags {
    /// `--config`, `--print-config`.
    #[command(flatten)]
    pub config: ConfigFlags,
    /// Where it binds and keeps its state.
    #[command(flatten)]
    pub node: NodeSettings,
    /// The worker's own settings.
    #[command(flatten)]
    pub worker: WorkerSettings,
    /// TLS and limits of its HTTP and S3 listeners.
    #[command(flatten)]
    pub listener: ListenerSettings,
    /// The log's format.
    #[command(flatten)]
    pub log: LogSettings,
}

/// The worker's settings after merging flags, environment, file and defaults.
#[derive(Debug, Clone)]
pub struct WorkerPlan {
    /// etcd endpoints (never empty).
    pub etcd: Vec<String>,
    /// etcd's TLS and user.
    pub etcd_security: loam_store::EtcdSecurity,
    /// The worker's configuration.
    pub worker: WorkerConfig,
}

/// The merged settings groups of `loam worker`.
pub struct Resolved {
    /// Node settings.
    pub node: Layered<NodeSettings>,
    /// Worker settings.
    pub worker: Layered<WorkerSettings>,
    /// Listener settings.
    pub listener: Layered<ListenerSettings>,
    /// Log settings.
    pub log: Layered<LogSettings>,
    file: Option<std::path::PathBuf>,
}

impl Resolved {
    /// Reads the `--config` file (if given) and merges; `coordinator` is the global `--coordinator`.
    pub fn new(
        args: &WorkerArgs,
        cluster: &ClusterFlags,
        coordinator: Option<&str>,
        matches: Option<&ArgMatches>,
    ) -> Result<Self, ConfigError> {
        let known = [
            field_names::<NodeSettings>(),
            field_names::<WorkerSettings>(),
            field_names::<ListenerSettings>(),
            field_names::<LogSettings>(),
        ];
        let inputs = Inputs::new(&args.config, &known, matches, cluster, coordinator)?;
        Ok(Self {
            node: inputs.node(&args.node)?,
            worker: inputs.worker(None, &args.worker)?,
            listener: inputs.group(None, &args.listener)?,
            log: inputs.group(None, &args.log)?,
            file: inputs.file_path(),
        })
    }

    /// What `--print-config` shows.
    pub fn printout(&self) -> loam_config::render::Printout {
        settings::printout("loam worker", self.file.clone())
            .group(&self.node)
            .group(&self.worker)
            .group(&self.listener)
            .group(&self.log)
    }

    /// Fails when the worker would advertise a wildcard address (`host = "0.0.0.0"` without
    /// `advertise-host`): no one could reach it there.
    pub fn check_advertised(&self) -> Result<(), ConfigError> {
        let advertised = self.node.value.advertised_host();
        if loam_config::is_unspecified_host(&advertised) {
            let key = if self.node.is_given("advertise-host") { "advertise-host" } else { "host" };
            return Err(ConfigError::Invalid(format!(
                "loam worker would advertise {advertised} ({}), an address no one can reach: set advertise-host \
                 (--advertise-host, LOAM_ADVERTISE_HOST) to the address the others connect to, e.g. the pod's DNS name",
                self.node.named(key)
            )));
        }
        Ok(())
    }

    /// Where the HTTP API (and the probes) bind.
    pub fn http_address(&self) -> (String, u16) {
        let host = self.node.value.host.clone().unwrap_or_else(|| loam_config::DEFAULT_HOST.into());
        (host, self.worker.value.http_port.unwrap_or(loam_worker::settings::DEFAULT_HTTP_PORT))
    }

    /// Checks the settings; fails when etcd or the data directory is missing.
    pub fn plan(&self) -> Result<WorkerPlan, ConfigError> {
        let etcd = self.node.value.etcd.clone().unwrap_or_default();
        if etcd.is_empty() {
            return Err(ConfigError::Invalid(
                "loam worker needs etcd: pass --etcd URL[,URL...] (or set LOAM_ETCD, or `etcd` in the config file); \
                 the embedded store belongs to one process, so only `loam local` runs workers without etcd"
                    .into(),
            ));
        }
        let data_dir = match &self.node.value.data_dir {
            Some(d) if self.node.is_given("data-dir") => d.clone(),
            _ => {
                return Err(ConfigError::Invalid(
                    "loam worker needs --data-dir (or `data-dir` in the config file): it keeps its identity there"
                        .into(),
                ));
            }
        };
        self.check_advertised()?;
        let mut worker = WorkerConfig::from_settings(&self.node, &self.worker, data_dir)?;
        worker.listener = ListenerConfig::from_settings(&self.listener)?;
        Ok(WorkerPlan { etcd, etcd_security: cluster_store::node_security(&self.node.value), worker })
    }
}

/// Runs `loam worker` until SIGINT/SIGTERM.
pub async fn run(
    args: WorkerArgs,
    cluster: ClusterFlags,
    coordinator: Option<String>,
    matches: Option<&ArgMatches>,
) -> anyhow::Result<()> {
    if let Some(WorkerAction::Drain(d)) = args.action {
        let args = WorkerArgs { settings: *d, action: None };
        let sub = matches.and_then(|m| m.subcommand().map(|(_, m)| m));
        return crate::worker_drain::run(args, cluster, coordinator, sub).await;
    }
    let resolved = Resolved::new(&args, &cluster, coordinator.as_deref(), matches)?;
    crate::logging::set_format(&resolved.log.value);
    let checked = || -> Result<WorkerPlan, ConfigError> {
        let mut plan = resolved.plan()?;
        plan.worker.auth = plan.worker.auth.require(&resolved.node, "loam worker")?;
        Ok(plan)
    };
    if settings::print_if_asked(&args.config, || resolved.printout()) {
        checked()?;
        return Ok(());
    }
    // What can be checked without the secret files, before waiting for them.
    resolved.check_advertised()?;
    loam_auth::NodeAuth::check_settings(&resolved.node, "loam worker")?;
    let listener = ListenerConfig::from_settings(&resolved.listener)?;
    let (host, port) = resolved.http_address();
    let mut signal = startup::signal();
    let mut startup = Startup::new(Probes::WORKER, &host, port, &listener);
    let files = startup::secret_files(&resolved.node, &resolved.listener);
    if let Some(s) = startup.wait_for_files(&files, &mut signal).await? {
        eprintln!(
            "{s}: stopped while waiting for {}",
            files.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
        );
        return Ok(());
    }
    let plan = checked()?;
    assembly::install_client_tls(&plan.worker.listener)?;
    let store = match startup.wait_for_etcd(&plan.etcd, &plan.etcd_security, &mut signal).await? {
        Ok(store) => store,
        Err(s) => {
            eprintln!("{s}: stopped while waiting for etcd");
            return Ok(());
        }
    };
    startup.finish().await;
    let cfg = plan.worker.clone();
    let worker =
        loam_worker::start(cfg, store, UfsRegistry::new(), Registry::default()).await.context("starting the worker")?;
    println!(
        "Loam worker is running (cluster {}, store etcd {}, data in {})",
        plan.worker.cluster_name,
        plan.etcd.join(","),
        plan.worker.data_dir.display()
    );
    let advertised = resolved.node.value.advertised_host();
    let url = |port| loam_config::url_of(worker.scheme, &advertised, port);
    println!("  worker  {}  {}", url(worker.http_addr.port()), worker.id);
    println!("  s3      {}", url(worker.s3_addr.port()));
    println!("Press Ctrl-C to stop.");
    let trimmer = crate::allocator::Trimmer::spawn(crate::allocator::TRIM_INTERVAL);
    let signal = signal.await;
    eprintln!("{}: leaving the cluster and shutting down…", signal.as_ref().copied().unwrap_or("error"));
    trimmer.stop().await;
    // Leave the ring even when listening for signals failed, so the worker is not left ONLINE.
    worker.shutdown().await;
    signal.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use loam_config::{ByteSize, HumaneDuration};
    use loam_core::membership::DEFAULT_CLUSTER_NAME;
    use std::path::PathBuf;
    use std::time::Duration;

    fn etcd() -> ClusterFlags {
        ClusterFlags { etcd: vec!["http://e:2379".into()], ..Default::default() }
    }

    fn with_data_dir() -> WorkerArgs {
        let node = NodeSettings { data_dir: Some("/w".into()), ..Default::default() };
        WorkerArgs { settings: WorkerFlags { node, ..Default::default() }, ..Default::default() }
    }

    /// `args` over the config file `text` (when given), as `loam worker` merges them.
    fn merge(
        args: &WorkerArgs,
        cluster: &ClusterFlags,
        coordinator: Option<&str>,
        text: Option<&str>,
    ) -> Result<WorkerPlan, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let mut args = args.clone();
        if let Some(text) = text {
            let path = dir.path().join("w.toml");
            std::fs::write(&path, text).unwrap();
            args.config.config = Some(path);
        }
        Resolved::new(&args, cluster, coordinator, None)?.plan()
    }

    #[test]
    fn defaults() {
        let s = merge(&with_data_dir(), &etcd(), None, None).unwrap();
        assert_eq!(s.etcd, ["http://e:2379"]);
        let w = s.worker;
        assert_eq!((w.host.as_str(), w.http_port, w.s3.port), ("127.0.0.1", 28080, 29998));
        assert_eq!((w.s3_port, w.s3.credentials.as_ref(), w.s3.anonymous_read), (0, None, false));
        assert_eq!(w.cluster_name, DEFAULT_CLUSTER_NAME);
        assert_eq!(w.lease_ttl, Duration::from_secs(15));
        assert_eq!(w.page_store.disk_dirs, [PathBuf::from("/w/cache")]);
        assert_eq!(w.page_store.disk_capacity, loam_worker::settings::DEFAULT_CACHE_SIZE);
        assert_eq!(w.page_store.memory_capacity, loam_worker::settings::DEFAULT_MEMORY_SIZE);
        assert_eq!(w.page_store.page_size, 1 << 20);
        assert_eq!(w.max_age, Duration::from_secs(60));
        assert_eq!(w.quota_check_interval, loam_worker::rules::quota::DEFAULT_QUOTA_CHECK_INTERVAL);
        assert!(w.coordinators.is_empty());
    }

    #[test]
    fn the_quota_check_interval_flag_parses_and_reaches_the_worker_config() {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            worker: WorkerArgs,
        }
        for (given, want) in [("500ms", Duration::from_millis(500)), ("3", Duration::from_secs(3))] {
            let cli = Cli::try_parse_from(["loam", "--data-dir", "/w", "--quota-check-interval", given]).unwrap();
            let s = merge(&cli.worker, &etcd(), None, None).unwrap();
            assert_eq!(s.worker.quota_check_interval, want, "{given}");
        }
        assert!(Cli::try_parse_from(["loam", "--quota-check-interval", "soon"]).is_err());
        let mut zero = with_data_dir();
        zero.node.quota_check_interval = Some(HumaneDuration(Duration::ZERO));
        let e = merge(&zero, &etcd(), None, None).unwrap_err();
        assert!(e.to_string().contains("quota-check-interval"), "{e}");
    }

    const FILE: &str = r#"
        etcd = "http://file:2379"
        cluster-name = "fc"
        coordinator = "http://file:19999"
        host = "fh"
        http-port = 1
        s3-port = 2
        s3-access-key = "fak"
        s3-secret-key = "fsk"
        s3-anonymous-read = true
        data-dir = "/fd"
        cache-size = 3
        memory-size = 4
        cache-dir = ["/c1", "/c2"]
        page-size = 5
        max-age = 6
        ttl-scan-interval = 8
        quota-check-interval = 9
        lease-ttl = 7
    "#;

    #[test]
    fn the_file_alone() {
        let s = merge(&WorkerArgs::default(), &ClusterFlags::default(), None, Some(FILE)).unwrap();
        assert_eq!(s.etcd, ["http://file:2379"]);
        let w = s.worker;
        assert_eq!((w.cluster_name.as_str(), w.host.as_str(), w.http_port, w.s3.port), ("fc", "fh", 1, 2));
        let keys = w.s3.credentials.as_ref().map(|c| (c.access_key.as_str(), c.secret_key.as_str()));
        assert_eq!((keys, w.s3.anonymous_read), (Some(("fak", "fsk")), true));
        assert_eq!(w.coordinators, ["http://file:19999"]);
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
        let settings = WorkerFlags {
            config: ConfigFlags::default(),
            node: NodeSettings {
                host: Some("ah".into()),
                data_dir: Some("/ad".into()),
                quota_check_interval: Some(HumaneDuration(Duration::from_millis(190))),
                ..Default::default()
            },
            listener: ListenerSettings::default(),
            log: Default::default(),
            worker: WorkerSettings {
                coordinator: None,
                http_port: Some(11),
                s3_port: Some(12),
                s3_access_key: Some("aak".into()),
                s3_secret_key: Some("ask".into()),
                anonymous_read: Some(false),
                cache_size: Some(ByteSize(13)),
                memory_size: Some(ByteSize(14)),
                cache_dir: Some(vec!["/ac".into()]),
                page_size: Some(ByteSize(15)),
                max_age: Some(HumaneDuration::secs(16)),
                ttl_scan_interval: Some(HumaneDuration::secs(18)),
                lease_ttl: Some(HumaneDuration::secs(17)),
                ..Default::default()
            },
        };
        let args = WorkerArgs { settings, action: None };
        let cluster = ClusterFlags {
            etcd: vec!["http://a:1,http://b:1".into()],
            cluster_name: Some("ac".into()),
            ..Default::default()
        };
        let s = merge(&args, &cluster, Some("http://a:19999,https://b:19999/"), Some(FILE)).unwrap();
        assert_eq!(s.etcd, ["http://a:1", "http://b:1"]);
        let w = s.worker;
        assert_eq!((w.cluster_name.as_str(), w.host.as_str(), w.http_port, w.s3.port), ("ac", "ah", 11, 12));
        let keys = w.s3.credentials.as_ref().map(|c| (c.access_key.as_str(), c.secret_key.as_str()));
        assert_eq!((keys, w.s3.anonymous_read), (Some(("aak", "ask")), false));
        assert_eq!(w.coordinators, ["http://a:19999", "https://b:19999"], "the flag's list, in order");
        assert_eq!(w.data_dir, PathBuf::from("/ad"));
        assert_eq!(w.page_store.disk_dirs, [PathBuf::from("/ac")]);
        let ps = &w.page_store;
        assert_eq!((ps.disk_capacity, ps.memory_capacity, ps.page_size), (13, 14, 15));
        assert_eq!((w.max_age, w.lease_ttl), (Duration::from_secs(16), Duration::from_secs(17)));
        assert_eq!(w.ttl_check_interval, Duration::from_secs(18));
        assert_eq!(w.quota_check_interval, Duration::from_millis(190));
    }

    #[test]
    fn the_coordinator_key_takes_a_list_and_refuses_bad_entries_by_number() {
        let list =
            FILE.replace(r#"coordinator = "http://file:19999""#, r#"coordinator = ["http://c1:1", "http://c2:2"]"#);
        let s = merge(&WorkerArgs::default(), &ClusterFlags::default(), None, Some(&list)).unwrap();
        assert_eq!(s.worker.coordinators, ["http://c1:1", "http://c2:2"]);
        let bad = |file: Option<&str>, flag: Option<&str>| {
            let text = file.map(|f| FILE.replace(r#"coordinator = "http://file:19999""#, f));
            merge(&with_data_dir(), &etcd(), flag, text.as_deref()).unwrap_err().to_string()
        };
        let e = bad(Some(r#"coordinator = "http://c1:1,,http://c2:2""#), None);
        assert!(e.starts_with("`coordinator` (file ") && e.ends_with(": entry 2 is empty"), "{e}");
        let e = bad(Some(r#"coordinator = ["http://c1:1", "ftp://c2"]"#), None);
        assert!(e.contains(r#"entry 2 ("ftp://c2") must be an http:// or https:// URL"#), "{e}");
        let e = bad(Some(r#"coordinator = []"#), None);
        assert!(e.ends_with("no Coordinator URL given"), "{e}");
        let e = bad(None, Some("http://ok:1, c2:19999"));
        assert!(e.starts_with("`coordinator` (flag --coordinator): entry 2"), "{e}");
    }

    #[test]
    fn the_default_cache_dir_follows_the_data_dir_of_the_flags() {
        let text = FILE.replace("cache-dir = [\"/c1\", \"/c2\"]", "");
        let s = merge(&with_data_dir(), &ClusterFlags::default(), None, Some(&text)).unwrap();
        assert_eq!(s.worker.page_store.disk_dirs, [PathBuf::from("/w/cache")]);
    }

    #[test]
    fn etcd_and_the_data_dir_are_required() {
        let e = merge(&with_data_dir(), &ClusterFlags::default(), None, None);
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("needs etcd") && msg.contains("--etcd"), "{msg}");
        let e = merge(&WorkerArgs::default(), &etcd(), None, None);
        assert!(e.unwrap_err().to_string().contains("--data-dir"));
    }

    #[test]
    fn an_s3_access_key_needs_its_secret() {
        let mut args = with_data_dir();
        args.worker.s3_access_key = Some("ak".into());
        let e = merge(&args, &etcd(), None, None).unwrap_err();
        assert!(e.to_string().contains("s3-secret-key"), "{e}");
        assert!(e.to_string().contains("`s3-access-key` (flag --s3-access-key)"), "names the source: {e}");
        let s = merge(&args, &etcd(), None, Some("s3-secret-key = \"sk\"\n")).unwrap();
        assert_eq!(s.worker.s3.credentials.unwrap().secret_key, "sk", "the flag's key, the file's secret");
    }

    #[test]
    fn zero_page_size_and_lease_ttl_are_refused() {
        let mut args = with_data_dir();
        args.worker.page_size = Some(ByteSize(0));
        assert!(merge(&args, &etcd(), None, None).is_err());
        let mut args = with_data_dir();
        let e = merge(&args, &etcd(), None, Some("\nlease-ttl = 0\n")).unwrap_err();
        assert!(e.to_string().contains("`lease-ttl` (file") && e.to_string().contains("line 2"), "{e}");
        args.worker.lease_ttl = Some(HumaneDuration(Duration::ZERO));
        let e = merge(&args, &etcd(), None, None).unwrap_err();
        assert!(e.to_string().contains("lease-ttl"), "{e}");
    }

    #[test]
    fn resolve_reads_the_config_file() {
        let text = "etcd = \"http://f:2379\"\ndata-dir = \"/fd\"\nhttp-port = 5\ncache-size = \"1GiB\"\n\
                    quota-check-interval = \"750ms\"\nmax-age = \"1h30m\"\n";
        let mut args = WorkerArgs::default();
        args.worker.http_port = Some(6);
        let s = merge(&args, &ClusterFlags::default(), None, Some(text)).unwrap();
        assert_eq!((s.worker.http_port, s.worker.page_store.disk_capacity), (6, 1 << 30));
        assert_eq!(s.etcd, ["http://f:2379"]);
        assert_eq!(s.worker.quota_check_interval, Duration::from_millis(750));
        assert_eq!(s.worker.max_age, Duration::from_secs(5400), "every duration takes units");
    }

    #[test]
    fn the_file_takes_only_worker_and_node_keys() {
        for (text, key) in
            [("port = 1\n", "`port`"), ("cache-szie = \"1GiB\"\n", "`cache-szie`"), ("mount = []\n", "`mount`")]
        {
            let e = merge(&with_data_dir(), &etcd(), None, Some(text)).unwrap_err().to_string();
            assert!(e.contains(&format!("unknown field {key}")) && e.contains("line 1"), "{e}");
        }
    }

    #[test]
    fn print_config_names_each_source_and_masks_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "s3-access-key = \"AKFILE\"\ns3-secret-key = \"SECRETFILE\"\npage-size = \"64KiB\"\n")
            .unwrap();
        let mut args = with_data_dir();
        args.config.config = Some(path.clone());
        args.worker.http_port = Some(9);
        let r = Resolved::new(&args, &etcd(), Some("http://c:1"), None).unwrap();
        let text = r.printout().to_string();
        assert!(!text.contains("SECRETFILE") && !text.contains("AKFILE"), "{text}");
        let line =
            |key: &str| text.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_default().to_string();
        assert!(line("s3-secret-key").contains("\"******\"") && line("s3-secret-key").contains("line 2"), "{text}");
        assert!(
            line("page-size").contains("\"64KiB\"")
                && line("page-size").contains(&format!("# file {}", path.display()))
        );
        assert!(line("http-port").ends_with("# flag --http-port"), "{text}");
        assert!(line("max-age").ends_with("# default"), "{text}");
        assert!(line("etcd").ends_with("# flag --etcd"), "{text}");
        assert!(line("coordinator").ends_with("# flag --coordinator"), "{text}");
    }
}
