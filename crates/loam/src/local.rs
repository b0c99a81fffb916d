//! `loam local`: the embedded default. One process runs the Coordinator and N workers on the embedded
//! cluster store (a file under the data directory), each worker with its own ports and cache directory.
//! It prints its endpoints when ready and shuts down cleanly on SIGINT (Ctrl-C) or SIGTERM. It is
//! assembled from the same pieces as `loam coordinator` and `loam worker` (`assembly`), and takes their
//! settings groups as they are (`crate::settings`): every coordinator and worker setting is a flag and
//! a config-file key here too, each worker getting the worker settings.
//!
//! Where the workers serve: by default all on `--host`, worker i on `--http-port` + i and `--s3-port` + i
//! (also spelt `--worker-http-port`, `--worker-s3-port`; the Coordinator's `--port` also
//! `--coordinator-port`). With `--cache-dir`, worker i caches in `<dir>/worker-<i>` of each. With `--worker-addresses a,b,c` worker i binds and advertises address i instead,
//! and every worker keeps the two ports as given: clients such as `alluxiofs` read from port 29998 of
//! whichever host `/v1/node` names, so each worker needs its own address with the default ports (Linux
//! routes all of 127.0.0.0/8 to loopback, so `127.0.0.2`, `127.0.0.3`, … need no setup). The Coordinator
//! stays on `--host`.
//!
//! `file://` mounts may name any path while the Coordinator and every worker bind to loopback; bound to
//! another address, `loam local` takes them only under `--allow-local-ufs`, as `loam coordinator` does.
//!
//! Every worker serves the S3 API. Local is for trying things out,
//! so anonymous reads are on (its one default of its own), and without `--s3-access-key`/`--s3-secret-key` a key pair is generated
//! once and kept in `<data-dir>/s3-keys.json`, so that S3 clients keep working across restarts; the
//! endpoints and the keys are printed when ready.

use crate::assembly::{self, CoordinatorServer};
use crate::cluster_store::{self, ClusterFlags};
use crate::settings::{self, ConfigFlags, Inputs};
use anyhow::Context;
use clap::{ArgMatches, Args};
use loam_config::{ConfigError, Group, Layered, LogSettings, NodeSettings, field_names, values};
use loam_coordinator::{CoordinatorConfig, CoordinatorSettings};
use loam_listener::{ListenerConfig, ListenerSettings};
use loam_ufs::UfsRegistry;
use loam_ufs::policy::LocalRoots;
use loam_worker::{WorkerConfig, WorkerHandle, WorkerSettings};
use prometheus_client::registry::Registry;
use std::path::PathBuf;

/// The file under the data directory that keeps the generated S3 key pair.
pub const S3_KEY_FILE: &str = "s3-keys.json";

/// Flags of `loam local`: the groups of the Coordinator and of the workers, and its own.
#[derive(Args, Debug, Clone, Default)]
pub struct LocalArgs {
    /// `--config`, `--print-config`.
    #[command(flatten)]
    pub config: ConfigFlags,
    /// Where it binds and keeps its state.
    #[command(flatten)]
    pub node: NodeSettings,
    /// The Coordinator's settings.
    #[command(flatten)]
    pub coordinator: CoordinatorSettings,
    /// Every worker's settings.
    #[command(flatten)]
    pub worker: WorkerSettings,
    /// TLS and limits of every listener.
    #[command(flatten)]
    pub listener: ListenerSettings,
    /// How many workers, and where.
    #[command(flatten)]
    pub local: LocalSettings,
    /// The log's format.
    #[command(flatten)]
    pub log: LogSettings,
}

/// Settings of `loam local` alone.
#[derive(Args, serde::Serialize, serde::Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct LocalSettings {
    /// Number of workers [default: 3, or one per address of --worker-addresses].
    #[arg(long, value_name = "N")]
    pub workers: Option<u16>,
    /// One address per worker (e.g. 127.0.0.2,127.0.0.3,127.0.0.4): worker i binds and advertises address
    /// i, and every worker serves on --http-port and --s3-port as given (no + i), as clients that assume
    /// port 29998 (alluxiofs) need. Linux routes all of 127.0.0.0/8 to loopback: no setup needed.
    #[arg(long, value_delimiter = ',', value_name = "ADDR,...")]
    #[serde(default, deserialize_with = "values::string_list_with_empties", skip_serializing_if = "Option::is_none")]
    pub worker_addresses: Option<Vec<String>>,
}

impl Group for LocalSettings {
    const TITLE: &'static str = "loam local";

    fn defaults() -> Self {
        Self::default()
    }
}

/// The number of workers when neither `--workers` nor `--worker-addresses` is given.
pub const DEFAULT_WORKERS: u16 = 3;

/// Where one worker of `loam local` binds and what it advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerEndpoint {
    /// Address to bind and advertise.
    pub host: String,
    /// HTTP API port (0: a free one).
    pub http_port: u16,
    /// S3 API port (0: a free one).
    pub s3_port: u16,
}

/// The merged settings groups of `loam local`.
pub struct Resolved {
    /// Node settings.
    pub node: Layered<NodeSettings>,
    /// The Coordinator's settings.
    pub coordinator: Layered<CoordinatorSettings>,
    /// Every worker's settings.
    pub worker: Layered<WorkerSettings>,
    /// Every listener's settings.
    pub listener: Layered<ListenerSettings>,
    /// `loam local`'s own.
    pub local: Layered<LocalSettings>,
    /// Log settings.
    pub log: Layered<LogSettings>,
    file: Option<PathBuf>,
}

impl Resolved {
    /// Reads the `--config` file (if given) and merges; `loam local` turns anonymous S3 reads on by default.
    pub fn new(args: &LocalArgs, cluster: &ClusterFlags, matches: Option<&ArgMatches>) -> Result<Self, ConfigError> {
        let known = [
            field_names::<NodeSettings>(),
            field_names::<CoordinatorSettings>(),
            field_names::<WorkerSettings>(),
            field_names::<ListenerSettings>(),
            field_names::<LocalSettings>(),
            field_names::<LogSettings>(),
        ];
        // The embedded store is the point of `loam local`: etcd settings are not taken.
        let cluster = ClusterFlags { etcd: Vec::new(), ..cluster.clone() };
        let inputs = Inputs::new(&args.config, &known, matches, &cluster, None)?;
        let node = inputs.node(&args.node)?;
        let local: Layered<LocalSettings> = inputs.group(None, &args.local)?;
        // Anonymous reads stay on while nothing listens beyond this machine.
        let host = node.value.host.clone().unwrap_or_else(|| loam_config::DEFAULT_HOST.into());
        let addresses = local.value.worker_addresses.clone().unwrap_or_default();
        let loopback = std::iter::once(host.as_str()).chain(addresses.iter().map(|a| a.trim())).all(is_loopback);
        let local_defaults = WorkerSettings { anonymous_read: Some(loopback), ..Default::default() };
        Ok(Self {
            node,
            coordinator: inputs.group(None, &args.coordinator)?,
            worker: inputs.worker(Some(&local_defaults), &args.worker)?,
            listener: inputs.group(None, &args.listener)?,
            local,
            log: inputs.group(None, &args.log)?,
            file: inputs.file_path(),
        })
    }

    /// What `--print-config` shows.
    pub fn printout(&self) -> loam_config::render::Printout {
        let p = settings::printout("loam local", self.file.clone()).group(&self.node).group(&self.coordinator);
        p.group(&self.worker).group(&self.listener).group(&self.local).group(&self.log)
    }

    fn data_dir(&self) -> PathBuf {
        self.node.value.data_dir.clone().unwrap_or_else(|| loam_config::DEFAULT_DATA_DIR.into())
    }
}

/// Whether `host` names this machine only (`localhost`, `127.0.0.0/8`, `::1`).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Where each worker serves: every one on `host` with ports counted up from the given ones, or each
/// on its own address of `worker-addresses` with the ports as given.
pub fn worker_endpoints(r: &Resolved) -> Result<Vec<WorkerEndpoint>, ConfigError> {
    let invalid = |m: String| ConfigError::Invalid(m);
    let host = r.node.value.host.clone().unwrap_or_else(|| loam_config::DEFAULT_HOST.into());
    let (w, l) = (&r.worker.value, &r.local.value);
    let (http_port, s3_port) = (w.http_port.unwrap_or_default(), w.s3_port.unwrap_or_default());
    // Port 0 asks every worker for a free port; otherwise worker i counts up from the base.
    let nth = |base: u16, i: u16, key: &str| match base {
        0 => Ok(0),
        _ => base
            .checked_add(i)
            .ok_or_else(|| invalid(format!("{} {base} + {i} is past port 65535", r.worker.named(key)))),
    };
    let addresses = l.worker_addresses.clone().unwrap_or_default();
    if addresses.is_empty() {
        let n = l.workers.unwrap_or(DEFAULT_WORKERS);
        return (0..n)
            .map(|i| {
                Ok(WorkerEndpoint {
                    host: host.clone(),
                    http_port: nth(http_port, i, "http-port")?,
                    s3_port: nth(s3_port, i, "s3-port")?,
                })
            })
            .collect();
    }
    let hosts: Vec<&str> = addresses.iter().map(|a| a.trim()).collect();
    if let Some(n) = l.workers.filter(|&n| usize::from(n) != hosts.len()) {
        return Err(invalid(format!(
            "--workers {n} does not match the {} addresses of --worker-addresses (give one per worker; {} and {})",
            hosts.len(),
            r.local.named("workers"),
            r.local.named("worker-addresses")
        )));
    }
    for (i, h) in hosts.iter().enumerate() {
        if h.is_empty() {
            return Err(invalid(format!("--worker-addresses: address {i} is empty")));
        }
        if hosts[..i].contains(h) {
            return Err(invalid(format!("--worker-addresses: {h} is given twice; each worker needs its own")));
        }
    }
    Ok(hosts.iter().map(|h| WorkerEndpoint { host: h.to_string(), http_port, s3_port }).collect())
}

/// Runs `loam local` until SIGINT/SIGTERM.
pub async fn run(args: LocalArgs, cluster: ClusterFlags, matches: Option<&ArgMatches>) -> anyhow::Result<()> {
    let resolved = Resolved::new(&args, &cluster, matches)?;
    crate::logging::set_format(&resolved.log.value);
    if settings::print_if_asked(&args.config, || resolved.printout()) {
        plan(&resolved)?;
        return Ok(());
    }
    let cluster = start_resolved(&resolved).await?;
    let trimmer = crate::allocator::Trimmer::spawn(crate::allocator::TRIM_INTERVAL);
    let signal = assembly::shutdown_signal().await;
    eprintln!("{}: shutting down…", signal.as_ref().copied().unwrap_or("error"));
    trimmer.stop().await;
    cluster.shutdown().await;
    signal.map(|_| ())
}

/// A running local cluster.
pub struct LocalCluster {
    /// The Coordinator's URL.
    pub coordinator_url: String,
    /// The workers.
    pub workers: Vec<WorkerHandle>,
    /// The admin token (`<data-dir>/admin-token`).
    pub admin_token: String,
    coordinator: CoordinatorServer,
}

/// The checked configuration of the Coordinator and of each worker (S3 keys not yet generated).
struct Plan {
    coordinator: CoordinatorConfig,
    listener: ListenerConfig,
    workers: Vec<WorkerConfig>,
}

fn plan(r: &Resolved) -> Result<Plan, ConfigError> {
    let endpoints = worker_endpoints(r)?;
    let data_dir = r.data_dir();
    // `file://` mounts of any path while every listener is on loopback (only this machine's users reach
    // it); otherwise, as `loam coordinator`, only under `--allow-local-ufs`.
    let host = r.node.value.host.clone().unwrap_or_else(|| loam_config::DEFAULT_HOST.into());
    let loopback = std::iter::once(host.as_str()).chain(endpoints.iter().map(|e| e.host.as_str())).all(is_loopback);
    let unset = if loopback { LocalRoots::Any } else { LocalRoots::Under(Vec::new()) };
    let coordinator = CoordinatorConfig::from_settings_with(&r.node, &r.coordinator, unset)?;
    let listener = ListenerConfig::from_settings(&r.listener)?;
    let mut workers = Vec::new();
    for (i, at) in endpoints.iter().enumerate() {
        let name = format!("worker-{i}");
        let mut cfg = WorkerConfig::from_settings(&r.node, &r.worker, data_dir.join(&name))?;
        if let Some(dirs) = r.worker.value.cache_dir.as_ref().filter(|d| !d.is_empty()) {
            cfg.page_store.disk_dirs = dirs.iter().map(|d| d.join(&name)).collect();
        }
        (cfg.host, cfg.http_port, cfg.s3.port) = (at.host.clone(), at.http_port, at.s3_port);
        // One machine: every worker advertises where it binds, whatever advertise-host says.
        cfg.advertise_host = None;
        cfg.listener = listener.clone();
        workers.push(cfg);
    }
    Ok(Plan { coordinator, listener, workers })
}

/// Starts the coordinator and the workers and prints the endpoints (flags only: tests, benches).
pub async fn start(args: LocalArgs) -> anyhow::Result<LocalCluster> {
    start_resolved(&Resolved::new(&args, &ClusterFlags::default(), None)?).await
}

/// Starts the coordinator and the workers of `r` and prints the endpoints.
pub async fn start_resolved(r: &Resolved) -> anyhow::Result<LocalCluster> {
    let plan = plan(r)?;
    let data_dir = r.data_dir();
    let given = plan.workers.first().and_then(|w| w.s3.credentials.clone());
    let keys = match given.clone() {
        Some(keys) => keys,
        None => loam_worker::s3_api::keys::load_or_generate(&data_dir.join(S3_KEY_FILE))?,
    };
    let tokens = loam_auth::local::load_or_generate(&data_dir).map_err(anyhow::Error::msg)?;
    let with_local_tokens = |mut auth: loam_auth::NodeAuth| {
        auth.authenticator = auth.authenticator.with(tokens.provider.clone());
        if !auth.cluster_token.is_some() {
            auth.cluster_token = tokens.cluster.clone();
        }
        auth
    };
    let mut coordinator_cfg = plan.coordinator;
    coordinator_cfg.auth = with_local_tokens(coordinator_cfg.auth);
    let store = cluster_store::open_embedded(&data_dir.join(cluster_store::EMBEDDED_STORE_FILE))?;
    let ufs = UfsRegistry::new();
    let host = r.node.value.host.clone().unwrap_or_else(|| loam_config::DEFAULT_HOST.into());
    let port = r.coordinator.value.port.unwrap_or(loam_coordinator::settings::DEFAULT_PORT);
    assembly::install_client_tls(&plan.listener)?;
    let coordinator =
        assembly::start_coordinator(store.clone(), ufs.clone(), coordinator_cfg, &host, port, &plan.listener).await?;
    let coordinator_url = coordinator.url.clone();
    let mut workers = Vec::new();
    for (i, mut cfg) in plan.workers.into_iter().enumerate() {
        cfg.s3.credentials = Some(keys.clone());
        cfg.auth = with_local_tokens(cfg.auth);
        // Each worker's `/v1/load` forwards to the coordinator of this process.
        cfg.coordinators = vec![coordinator_url.clone()];
        let w = loam_worker::start(cfg, store.clone(), ufs.clone(), Registry::default())
            .await
            .with_context(|| format!("starting worker {i}"))?;
        workers.push(w);
    }
    println!("Loam is running (data in {})", data_dir.display());
    println!("  coordinator  {coordinator_url}   (REST API /api/v1, LOAM_COORDINATOR={coordinator_url})");
    let console = loam_coordinator::api::console::CONSOLE_PATH;
    println!("  console      {coordinator_url}{console}   (web console: sign in with the admin token below)");
    for (i, w) in workers.iter().enumerate() {
        println!("  worker {i}     {}   {}", w.http_base(), w.id);
    }
    for (i, w) in workers.iter().enumerate() {
        println!("  s3 {i}         {}   (path-style; a bucket is a mount point)", w.s3_base());
    }
    let origin = match given {
        Some(_) => "given".to_string(),
        None => format!("kept in {}", data_dir.join(S3_KEY_FILE).display()),
    };
    let anonymous = if r.worker.value.anonymous_read == Some(true) { "on" } else { "off" };
    println!(
        "  s3 keys      AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}   ({origin}; anonymous read {anonymous})",
        keys.access_key, keys.secret_key
    );
    println!("  admin token  kept in {}; for the CLI and curl:", tokens.admin_file.display());
    println!("LOAM_TOKEN={}", tokens.admin);
    println!("Press Ctrl-C to stop.");
    Ok(LocalCluster { coordinator_url, workers, admin_token: tokens.admin, coordinator })
}

impl LocalCluster {
    /// Stops the workers (they leave the ring first), then the Coordinator.
    pub async fn shutdown(self) {
        for w in self.workers {
            w.shutdown().await;
        }
        if let Err(e) = self.coordinator.shutdown().await {
            tracing::warn!("{e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        local: LocalArgs,
    }

    fn args(dir: &std::path::Path, extra: &[&str]) -> LocalArgs {
        let base = ["loam", "--coordinator-port", "0", "--worker-http-port", "0", "--worker-s3-port", "0"];
        let dir = dir.display().to_string();
        let all = base.iter().copied().chain(["--workers", "2", "--data-dir", &dir]).chain(extra.iter().copied());
        Cli::parse_from(all).local
    }

    async fn list_buckets_unsigned(w: &WorkerHandle) -> u16 {
        reqwest::get(format!("{}/", w.s3_base())).await.unwrap().status().as_u16()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn workers_serve_s3_with_generated_keys_and_anonymous_read() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(dir.path(), &[]);
        let resolved = Resolved::new(&a, &ClusterFlags::default(), None).unwrap();
        assert_eq!(resolved.worker.value.anonymous_read, Some(true), "on by default in loam local");
        let cluster = start(a).await.unwrap();
        let ports: Vec<u16> = cluster.workers.iter().map(|w| w.s3_addr.port()).collect();
        assert!(ports[0] != ports[1] && !ports.contains(&0), "{ports:?}");
        for w in &cluster.workers {
            assert_eq!(list_buckets_unsigned(w).await, 200, "an unsigned read is served");
            assert!(w.state.members.ring().members().all(|(_, e)| e.s3_port != 0), "S3 ports are advertised");
        }
        let keys: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(S3_KEY_FILE)).unwrap()).unwrap();
        assert_eq!(keys["version"], 1);
        assert!(keys["access_key"].as_str().is_some_and(|k| k.starts_with("LOAM")), "{keys}");
        cluster.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn kept_keys_are_read_back_and_anonymous_read_can_be_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let kept = br#"{"version": 1, "access_key": "LOAMKEPT", "secret_key": "kept-secret"}"#;
        std::fs::write(dir.path().join(S3_KEY_FILE), kept).unwrap();
        let cluster = start(args(dir.path(), &["--s3-anonymous-read=false"])).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join(S3_KEY_FILE)).unwrap(), kept, "not generated again");
        assert_eq!(list_buckets_unsigned(&cluster.workers[0]).await, 403, "anonymous read turned off");
        cluster.shutdown().await;
    }

    fn endpoints(extra: &[&str]) -> Result<Vec<WorkerEndpoint>, ConfigError> {
        let args = Cli::parse_from(["loam"].iter().chain(extra)).local;
        worker_endpoints(&Resolved::new(&args, &ClusterFlags::default(), None)?)
    }

    fn at(host: &str, http_port: u16, s3_port: u16) -> WorkerEndpoint {
        WorkerEndpoint { host: host.into(), http_port, s3_port }
    }

    #[test]
    fn file_mounts_of_any_path_only_on_loopback() {
        let roots = |extra: &[&str]| {
            let args = Cli::parse_from(["loam"].iter().chain(extra)).local;
            plan(&Resolved::new(&args, &ClusterFlags::default(), None).unwrap()).unwrap().coordinator.ufs_policy
        };
        assert_eq!(roots(&[]).local_roots(), &LocalRoots::Any);
        assert_eq!(roots(&["--worker-addresses", "127.0.0.2,127.0.0.3"]).local_roots(), &LocalRoots::Any);
        let none = LocalRoots::Under(Vec::new());
        assert_eq!(roots(&["--host", "0.0.0.0"]).local_roots(), &none);
        assert_eq!(roots(&["--worker-addresses", "127.0.0.2,10.1.2.3"]).local_roots(), &none);
    }

    #[test]
    fn without_addresses_workers_share_the_host_and_count_ports_up() {
        let e = endpoints(&[]).unwrap();
        let want: Vec<_> = (0..3).map(|i| at("127.0.0.1", 28080 + i, 29998 + i)).collect();
        assert_eq!(e, want);
        let e = endpoints(&["--workers", "2", "--host", "10.0.0.1", "--worker-s3-port", "0"]).unwrap();
        assert_eq!(e, [at("10.0.0.1", 28080, 0), at("10.0.0.1", 28081, 0)]);
        let e = endpoints(&["--workers", "2", "--worker-http-port", "65535"]).unwrap_err();
        assert!(e.to_string().contains("past port 65535"), "{e}");
    }

    #[test]
    fn each_address_is_one_worker_on_the_same_ports() {
        let e = endpoints(&["--worker-addresses", "127.0.0.2, 127.0.0.3,127.0.0.4"]).unwrap();
        let want: Vec<_> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"].iter().map(|h| at(h, 28080, 29998)).collect();
        assert_eq!(e, want, "the count sets --workers; the ports are not counted up");
        let e = endpoints(&["--workers", "2", "--worker-addresses", "a,b", "--worker-http-port", "7"]).unwrap();
        assert_eq!(e, [at("a", 7, 29998), at("b", 7, 29998)]);
    }

    #[test]
    fn addresses_must_match_the_worker_count_and_differ() {
        let e = endpoints(&["--workers", "3", "--worker-addresses", "a,b"]).unwrap_err();
        assert!(e.to_string().contains("--workers 3 does not match the 2 addresses"), "{e}");
        assert_eq!(e.kind(), loam_core::ErrorKind::InvalidInput);
        let e = endpoints(&["--worker-addresses", "a,b,a"]).unwrap_err();
        assert!(e.to_string().contains("a is given twice"), "{e}");
        let e = endpoints(&["--worker-addresses", "a,,b"]).unwrap_err();
        assert!(e.to_string().contains("address 1 is empty"), "{e}");
    }

    /// Two loopback addresses no other test run is likely to use at the same moment.
    fn loopback_pair() -> [String; 2] {
        let seed = std::process::id()
            ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let (a, b) = ((seed % 250) + 1, ((seed >> 8) % 250) + 1);
        [format!("127.{a}.{b}.2"), format!("127.{a}.{b}.3")]
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn workers_bind_and_advertise_their_own_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let [a, b] = loopback_pair();
        let addrs = format!("{a},{b}");
        let cluster = start(args(dir.path(), &["--worker-addresses", &addrs])).await.unwrap();
        let hosts: Vec<String> = cluster.workers.iter().map(|w| w.http_addr.ip().to_string()).collect();
        assert_eq!(hosts, [a.clone(), b.clone()]);
        for w in &cluster.workers {
            assert_eq!(w.s3_addr.ip(), w.http_addr.ip(), "the S3 API is on the worker's address too");
            assert_eq!(list_buckets_unsigned(w).await, 200);
        }
        let ring = cluster.workers[0].state.members.ring();
        let mut advertised: Vec<String> = ring.members().map(|(_, e)| e.host.clone()).collect();
        advertised.sort();
        assert_eq!(advertised, [a, b], "the ring names each worker by its own address");
        cluster.shutdown().await;
    }

    #[test]
    fn the_quota_check_interval_is_a_duration_defaulting_to_the_workers() {
        let dir = std::path::Path::new("/d");
        let interval = |extra: &[&str]| {
            let r = Resolved::new(&args(dir, extra), &ClusterFlags::default(), None).unwrap();
            let plan = plan(&r).unwrap();
            assert_eq!(
                plan.coordinator.quota_check_interval, plan.workers[0].quota_check_interval,
                "one setting for both"
            );
            plan.workers[0].quota_check_interval
        };
        assert_eq!(interval(&[]), loam_worker::rules::quota::DEFAULT_QUOTA_CHECK_INTERVAL);
        assert_eq!(interval(&["--quota-check-interval", "250ms"]), Duration::from_millis(250));
        assert_eq!(interval(&["--quota-check-interval", "5"]), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn an_access_key_without_its_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = start(args(dir.path(), &["--s3-access-key", "ak"])).await.err().unwrap();
        assert!(e.to_string().contains("s3-secret-key"), "{e}");
        assert!(!dir.path().join(S3_KEY_FILE).exists());
    }

    #[test]
    fn every_coordinator_and_worker_setting_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("local.toml");
        std::fs::write(
            &config,
            "disable-ttl = true
worker-addresses = \"127.0.0.9\"\n",
        )
        .unwrap();
        let config = config.display().to_string();
        let extra = ["--config", &config, "--lease-ttl", "30s", "--disable-quota", "--cache-dir", "/c", "--port", "7"];
        let parse = |extra: &[&str]| Cli::parse_from(["loam"].iter().chain(extra)).local;
        let r = Resolved::new(&parse(&extra), &ClusterFlags::default(), None).unwrap();
        let p = plan(&r).unwrap();
        assert!(!p.coordinator.ttl_enabled && !p.coordinator.quota_enabled && p.coordinator.priority_enabled);
        let w = &p.workers[0];
        assert_eq!((p.workers.len(), w.host.as_str()), (1, "127.0.0.9"), "worker-addresses from the file");
        assert_eq!(w.lease_ttl, Duration::from_secs(30));
        assert_eq!(w.page_store.disk_dirs, [PathBuf::from("/c/worker-0")], "each worker its own directory");
        assert_eq!(r.coordinator.value.port, Some(7), "--port is the coordinator's (also --coordinator-port)");
        let e = Resolved::new(&parse(&["--config", &config, "--workers", "2"]), &ClusterFlags::default(), None)
            .and_then(|r| worker_endpoints(&r))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--workers 2 does not match the 1 addresses"), "{e}");
        assert!(
            e.contains("`workers` (flag --workers)") && e.contains("`worker-addresses` (file"),
            "names both sources: {e}"
        );
    }
}
