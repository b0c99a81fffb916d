//! `loam local`: the embedded default. One process runs the Coordinator and N workers on the embedded
//! cluster store (a file under the data directory), each worker with its own ports and cache directory.
//! It prints its endpoints when ready and shuts down cleanly on Ctrl-C.

use anyhow::Context;
use clap::Args;
use loam_coordinator::{Coordinator, CoordinatorConfig};
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_core::size::parse_size;
use loam_store::{ClusterStore, EmbeddedStore};
use loam_ufs::UfsRegistry;
use loam_worker::{WorkerConfig, WorkerHandle};
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::sync::Arc;
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
}

/// Runs `loam local` until Ctrl-C.
pub async fn run(args: LocalArgs) -> anyhow::Result<()> {
    let cluster = start(args).await?;
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    eprintln!("shutting down…");
    cluster.shutdown().await;
    Ok(())
}

/// A running local cluster.
pub struct LocalCluster {
    /// The Coordinator's URL.
    pub coordinator_url: String,
    /// The workers.
    pub workers: Vec<WorkerHandle>,
    coordinator_stop: tokio::sync::oneshot::Sender<()>,
    coordinator_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts the coordinator and the workers and prints the endpoints.
pub async fn start(args: LocalArgs) -> anyhow::Result<LocalCluster> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
    let store_path = args.data_dir.join("cluster.redb");
    let store: Arc<dyn ClusterStore> =
        EmbeddedStore::open(&store_path).with_context(|| format!("opening {}", store_path.display()))?;
    let ufs = UfsRegistry::new();
    let coordinator = Coordinator::new(
        store.clone(),
        ufs.clone(),
        CoordinatorConfig { cluster_name: DEFAULT_CLUSTER_NAME.into(), static_mounts: None },
    );
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.coordinator_port))
        .await
        .with_context(|| format!("binding the coordinator on {}:{}", args.host, args.coordinator_port))?;
    let coordinator_url = format!("http://{}", listener.local_addr()?);
    let (coordinator_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let coordinator_task = tokio::spawn(coordinator.serve(listener, async move {
        let _ = stop_rx.await;
    }));
    let mut workers = Vec::new();
    for i in 0..args.workers {
        let dir = args.data_dir.join(format!("worker-{i}"));
        let mut cfg = WorkerConfig::new(dir, args.memory_size, args.cache_size);
        cfg.host = args.host.clone();
        cfg.http_port = if args.worker_http_port == 0 { 0 } else { args.worker_http_port + i };
        cfg.page_store.page_size = args.page_size;
        cfg.max_age = Duration::from_secs(args.max_age);
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
    Ok(LocalCluster { coordinator_url, workers, coordinator_stop, coordinator_task })
}

impl LocalCluster {
    /// Stops the workers (they leave the ring first), then the Coordinator.
    pub async fn shutdown(self) {
        for w in self.workers {
            w.shutdown().await;
        }
        let _ = self.coordinator_stop.send(());
        let _ = self.coordinator_task.await;
    }
}
