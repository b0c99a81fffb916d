//! `loam local`: the embedded default. One process runs the Coordinator and N workers on the embedded
//! cluster store (a file under the data directory), each worker with its own ports and cache directory.
//! It prints its endpoints when ready and shuts down cleanly on SIGINT (Ctrl-C) or SIGTERM. It is
//! assembled from the same pieces as `loam coordinator` and `loam worker` (`assembly`).
//!
//! Every worker serves the S3 API (worker i on `--worker-s3-port` + i). Local is for trying things out,
//! so anonymous reads are on, and without `--s3-access-key`/`--s3-secret-key` a key pair is generated
//! once and kept in `<data-dir>/s3-keys.json`, so that S3 clients keep working across restarts; the
//! endpoints and the keys are printed when ready.

use crate::assembly::{self, CacheSizing, CoordinatorServer, DEFAULT_WORKER_S3_PORT};
use crate::cluster_store;
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
    /// Number of workers.
    #[arg(long, default_value_t = 3)]
    pub workers: u16,
    /// HTTP port of worker 0; worker i serves on this + i.
    #[arg(long, default_value_t = 28080)]
    pub worker_http_port: u16,
    /// S3 API port of worker 0; worker i serves on this + i (0: free ports).
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
    /// How long finished load and free jobs are kept: seconds or a duration like `7d`, `12h`.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub job_retention: Duration,
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
    let keys = match assembly::s3_credentials(args.s3_access_key.clone(), args.s3_secret_key.clone()) {
        Ok(Some(keys)) => keys,
        Ok(None) => loam_worker::s3_api::keys::load_or_generate(&args.data_dir.join(S3_KEY_FILE))?,
        Err(e) => anyhow::bail!(e),
    };
    let store = cluster_store::open_embedded(&args.data_dir.join(cluster_store::EMBEDDED_STORE_FILE))?;
    let ufs = UfsRegistry::new();
    let cfg = assembly::coordinator_config(DEFAULT_CLUSTER_NAME, &args.data_dir, args.job_retention);
    let coordinator =
        assembly::start_coordinator(store.clone(), ufs.clone(), cfg, &args.host, args.coordinator_port).await?;
    let coordinator_url = coordinator.url.clone();
    let sizing = CacheSizing {
        cache_size: args.cache_size,
        memory_size: args.memory_size,
        page_size: args.page_size,
        max_age_secs: args.max_age,
        ttl_scan_secs: args.ttl_scan_interval,
    };
    let s3 = S3Config { port: 0, credentials: Some(keys.clone()), anonymous_read: args.s3_anonymous_read };
    let mut workers = Vec::new();
    for i in 0..args.workers {
        let dir = args.data_dir.join(format!("worker-{i}"));
        let port = if args.worker_http_port == 0 { 0 } else { args.worker_http_port + i };
        let mut cfg = assembly::worker_config(dir, &args.host, port, &sizing);
        let s3_port = if args.worker_s3_port == 0 { 0 } else { args.worker_s3_port + i };
        cfg.s3 = S3Config { port: s3_port, ..s3.clone() };
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

    #[tokio::test]
    async fn an_access_key_without_its_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = start(args(dir.path(), &["--s3-access-key", "ak"])).await.err().unwrap();
        assert!(e.to_string().contains("s3-secret-key"), "{e}");
        assert!(!dir.path().join(S3_KEY_FILE).exists());
    }
}
