//! `loam local`: the embedded default. One process runs the Coordinator and N workers on the embedded
//! cluster store (a file under the data directory), each worker with its own ports and cache directory.
//! It prints its endpoints when ready and shuts down cleanly on SIGINT (Ctrl-C) or SIGTERM. It is
//! assembled from the same pieces as `loam coordinator` and `loam worker` (`assembly`).
//!
//! Where the workers serve: by default all on `--host`, worker i on `--worker-http-port` + i and
//! `--worker-s3-port` + i. With `--worker-addresses a,b,c` worker i binds and advertises address i instead,
//! and every worker keeps the two ports as given: clients such as `alluxiofs` read from port 29998 of
//! whichever host `/v1/node` names, so each worker needs its own address with the default ports (Linux
//! routes all of 127.0.0.0/8 to loopback, so `127.0.0.2`, `127.0.0.3`, … need no setup). The Coordinator
//! stays on `--host`.
//!
//! Every worker serves the S3 API. Local is for trying things out,
//! so anonymous reads are on, and without `--s3-access-key`/`--s3-secret-key` a key pair is generated
//! once and kept in `<data-dir>/s3-keys.json`, so that S3 clients keep working across restarts; the
//! endpoints and the keys are printed when ready.

use crate::assembly::{self, CacheSizing, CoordinatorServer, DEFAULT_WORKER_S3_PORT};
use crate::cluster_store;
use crate::config_file::ConfigError;
use crate::duration::parse_duration;
use anyhow::Context;
use clap::Args;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_core::size::parse_size;
use loam_ufs::UfsRegistry;
use loam_worker::WorkerHandle;
use loam_worker::s3_api::S3Config;
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::time::Duration;

/// The file under the data directory that keeps the generated S3 key pair.
pub const S3_KEY_FILE: &str = "s3-keys.json";

/// Flags of `loam local`.
#[derive(Args, Debug, Clone)]
pub struct LocalArgs {
    /// Coordinator port.
    #[arg(long, default_value_t = 19999)]
    pub coordinator_port: u16,
    /// Number of workers [default: 3, or one per address of --worker-addresses].
    #[arg(long)]
    pub workers: Option<u16>,
    /// One address per worker (e.g. 127.0.0.2,127.0.0.3,127.0.0.4): worker i binds and advertises address
    /// i, and every worker serves on --worker-http-port and --worker-s3-port as given (no + i), as clients
    /// that assume port 29998 (alluxiofs) need. As many addresses as --workers (or it sets --workers).
    /// Linux routes all of 127.0.0.0/8 to loopback: no setup needed.
    #[arg(long, value_delimiter = ',', value_name = "ADDR,...")]
    pub worker_addresses: Vec<String>,
    /// HTTP port of worker 0; worker i serves on this + i (with --worker-addresses: every worker on this).
    #[arg(long, default_value_t = 28080)]
    pub worker_http_port: u16,
    /// S3 API port of worker 0; worker i serves on this + i (with --worker-addresses: every worker on
    /// this; 0: free ports).
    #[arg(long, default_value_t = DEFAULT_WORKER_S3_PORT)]
    pub worker_s3_port: u16,
    /// Access key id S3 requests are signed with (with --s3-secret-key) [default: generated, see s3-keys.json].
    #[arg(long, env = "LOAM_S3_ACCESS_KEY")]
    pub s3_access_key: Option<String>,
    /// Secret key of --s3-access-key.
    #[arg(long, env = "LOAM_S3_SECRET_KEY", hide_env_values = true)]
    pub s3_secret_key: Option<String>,
    /// Serve unsigned S3 reads (GET, HEAD, listings); `--s3-anonymous-read=false` turns them off.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub s3_anonymous_read: bool,
    /// Where all state lives (cluster store, worker identities and caches).
    #[arg(long, default_value = "./loam-data")]
    pub data_dir: PathBuf,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Disk cache per worker (e.g. 10GiB).
    #[arg(long, default_value = "10GiB", value_parser = parse_size)]
    pub cache_size: u64,
    /// Memory tier per worker (e.g. 256MiB; 0 for none).
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub memory_size: u64,
    /// Page size.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub page_size: u64,
    /// Seconds a cached file is trusted before it is re-validated against the UFS (0: every read).
    #[arg(long, default_value_t = 60)]
    pub max_age: u64,
    /// Seconds between scans that evict data past its TTL.
    #[arg(long, default_value_t = 60)]
    pub ttl_scan_interval: u64,
    /// How often workers report quota usage and the Coordinator's running loads check their quotas:
    /// seconds or a duration like `500ms`.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub quota_check_interval: Duration,
    /// How long finished load and free jobs are kept: seconds or a duration like `7d`, `12h`.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub job_retention: Duration,
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

/// Where each worker serves: every one on `--host` with ports counted up from the given ones, or each
/// on its own address of `--worker-addresses` with the ports as given.
pub fn worker_endpoints(args: &LocalArgs) -> Result<Vec<WorkerEndpoint>, ConfigError> {
    let invalid = |m: String| ConfigError::Invalid(m);
    // Port 0 asks every worker for a free port; otherwise worker i counts up from the base.
    let nth = |base: u16, i: u16, flag: &str| match base {
        0 => Ok(0),
        _ => base.checked_add(i).ok_or_else(|| invalid(format!("{flag} {base} + {i} is past port 65535"))),
    };
    if args.worker_addresses.is_empty() {
        let n = args.workers.unwrap_or(DEFAULT_WORKERS);
        return (0..n)
            .map(|i| {
                Ok(WorkerEndpoint {
                    host: args.host.clone(),
                    http_port: nth(args.worker_http_port, i, "--worker-http-port")?,
                    s3_port: nth(args.worker_s3_port, i, "--worker-s3-port")?,
                })
            })
            .collect();
    }
    let hosts: Vec<&str> = args.worker_addresses.iter().map(|a| a.trim()).collect();
    if let Some(n) = args.workers.filter(|&n| usize::from(n) != hosts.len()) {
        return Err(invalid(format!(
            "--workers {n} does not match the {} addresses of --worker-addresses (give one per worker)",
            hosts.len()
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
    let endpoint = |h: &&str| WorkerEndpoint {
        host: h.to_string(),
        http_port: args.worker_http_port,
        s3_port: args.worker_s3_port,
    };
    Ok(hosts.iter().map(endpoint).collect())
}

/// Runs `loam local` until SIGINT/SIGTERM.
pub async fn run(args: LocalArgs) -> anyhow::Result<()> {
    let cluster = start(args).await?;
    let signal = assembly::shutdown_signal().await;
    eprintln!("{}: shutting down…", signal.as_ref().copied().unwrap_or("error"));
    cluster.shutdown().await;
    signal.map(|_| ())
}

/// A running local cluster.
pub struct LocalCluster {
    /// The Coordinator's URL.
    pub coordinator_url: String,
    /// The workers.
    pub workers: Vec<WorkerHandle>,
    coordinator: CoordinatorServer,
}

/// Starts the coordinator and the workers and prints the endpoints.
pub async fn start(args: LocalArgs) -> anyhow::Result<LocalCluster> {
    let endpoints = worker_endpoints(&args)?;
    let keys = match assembly::s3_credentials(args.s3_access_key.clone(), args.s3_secret_key.clone()) {
        Ok(Some(keys)) => keys,
        Ok(None) => loam_worker::s3_api::keys::load_or_generate(&args.data_dir.join(S3_KEY_FILE))?,
        Err(e) => anyhow::bail!(e),
    };
    let store = cluster_store::open_embedded(&args.data_dir.join(cluster_store::EMBEDDED_STORE_FILE))?;
    let ufs = UfsRegistry::new();
    let mut cfg = assembly::coordinator_config(DEFAULT_CLUSTER_NAME, &args.data_dir, args.job_retention);
    cfg.quota_check_interval = args.quota_check_interval.max(Duration::from_millis(1));
    let coordinator =
        assembly::start_coordinator(store.clone(), ufs.clone(), cfg, &args.host, args.coordinator_port).await?;
    let coordinator_url = coordinator.url.clone();
    let sizing = CacheSizing {
        cache_size: args.cache_size,
        memory_size: args.memory_size,
        page_size: args.page_size,
        max_age_secs: args.max_age,
        ttl_scan_secs: args.ttl_scan_interval,
        quota_check_interval: args.quota_check_interval,
    };
    let s3 = S3Config { port: 0, credentials: Some(keys.clone()), anonymous_read: args.s3_anonymous_read };
    let mut workers = Vec::new();
    for (i, at) in endpoints.iter().enumerate() {
        let dir = args.data_dir.join(format!("worker-{i}"));
        let mut cfg = assembly::worker_config(dir, &at.host, at.http_port, &sizing);
        cfg.s3 = S3Config { port: at.s3_port, ..s3.clone() };
        // Each worker's `/v1/load` forwards to the coordinator of this process.
        cfg.coordinator_url = Some(coordinator_url.clone());
        let w = loam_worker::start(cfg, store.clone(), ufs.clone(), Registry::default())
            .await
            .with_context(|| format!("starting worker {i}"))?;
        workers.push(w);
    }
    println!("Loam is running (data in {})", args.data_dir.display());
    println!("  coordinator  {coordinator_url}   (REST API /api/v1, LOAM_COORDINATOR={coordinator_url})");
    for (i, w) in workers.iter().enumerate() {
        println!("  worker {i}     {}   {}", w.http_base(), w.id);
    }
    for (i, w) in workers.iter().enumerate() {
        println!("  s3 {i}         {}   (path-style; a bucket is a mount point)", w.s3_base());
    }
    let origin = match &args.s3_access_key {
        Some(_) => "given".to_string(),
        None => format!("kept in {}", args.data_dir.join(S3_KEY_FILE).display()),
    };
    let anonymous = if args.s3_anonymous_read { "on" } else { "off" };
    println!(
        "  s3 keys      AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}   ({origin}; anonymous read {anonymous})",
        keys.access_key, keys.secret_key
    );
    println!("Press Ctrl-C to stop.");
    Ok(LocalCluster { coordinator_url, workers, coordinator })
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
        assert!(a.s3_anonymous_read, "on by default in loam local");
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
        worker_endpoints(&Cli::parse_from(["loam"].iter().chain(extra)).local)
    }

    fn at(host: &str, http_port: u16, s3_port: u16) -> WorkerEndpoint {
        WorkerEndpoint { host: host.into(), http_port, s3_port }
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
        assert_eq!(args(dir, &[]).quota_check_interval, loam_worker::quota::DEFAULT_QUOTA_CHECK_INTERVAL);
        assert_eq!(args(dir, &["--quota-check-interval", "250ms"]).quota_check_interval, Duration::from_millis(250));
        assert_eq!(args(dir, &["--quota-check-interval", "5"]).quota_check_interval, Duration::from_secs(5));
    }

    #[tokio::test]
    async fn an_access_key_without_its_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = start(args(dir.path(), &["--s3-access-key", "ak"])).await.err().unwrap();
        assert!(e.to_string().contains("s3-secret-key"), "{e}");
        assert!(!dir.path().join(S3_KEY_FILE).exists());
    }
}
