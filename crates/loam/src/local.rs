//! `loam local`: the embedded default. One process runs the Coordinator and N workers on the embedded
//! cluster store (a file under the data directory), each worker with its own ports and cache directory.
//! It prints its endpoints when ready and shuts down cleanly on SIGINT (Ctrl-C) or SIGTERM. It is
//! assembled from the same pieces as `loam coordinator` and `loam worker` (`assembly`).

use crate::assembly::{self, CacheSizing, CoordinatorServer};
use crate::cluster_store;
use crate::duration::parse_duration;
use anyhow::Context;
use clap::Args;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_core::size::parse_size;
use loam_ufs::UfsRegistry;
use loam_worker::WorkerHandle;
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::time::Duration;

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
    let mut workers = Vec::new();
    for i in 0..args.workers {
        let dir = args.data_dir.join(format!("worker-{i}"));
        let port = if args.worker_http_port == 0 { 0 } else { args.worker_http_port + i };
        let mut cfg = assembly::worker_config(dir, &args.host, port, &sizing);
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
