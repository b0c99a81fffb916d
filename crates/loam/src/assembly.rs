//! The pieces `loam local`, `loam coordinator` and `loam worker` are assembled from, so the three
//! commands start a coordinator or a worker the same way and differ only in where their settings and
//! their cluster store come from: the coordinator's HTTP server with its stop handle, the data
//! directory, and the wait for SIGINT/SIGTERM. (Their settings are `crate::settings`.)

use anyhow::Context;
use loam_coordinator::{Coordinator, CoordinatorConfig};
use loam_listener::{Listener, ListenerConfig};
use loam_store::ClusterStore;
use loam_ufs::UfsRegistry;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A coordinator serving its REST API; `shutdown` (or drop) stops it.
pub struct CoordinatorServer {
    /// `http://host:port` (`https://` with TLS) of the REST API.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Starts a coordinator over `store` configured by `cfg`, serving on `host:port` (0: a free port) with the
/// TLS and limits of `listener`.
pub async fn start_coordinator(
    store: Arc<dyn ClusterStore>,
    ufs: UfsRegistry,
    cfg: CoordinatorConfig,
    host: &str,
    port: u16,
    listener: &ListenerConfig,
) -> anyhow::Result<CoordinatorServer> {
    let coordinator = Coordinator::new(store, ufs, cfg);
    let listener = Listener::bind(host, port, listener)
        .await
        .with_context(|| format!("starting the coordinator on {host}:{port}"))?;
    let addr = listener.local_addr()?;
    let url = listener.url()?;
    let (stop, stop_rx) = oneshot::channel::<()>();
    // A dropped sender resolves the receiver too, so dropping the handle also stops the server.
    let task = tokio::spawn(coordinator.serve(listener, async move {
        let _ = stop_rx.await;
    }));
    Ok(CoordinatorServer { url, addr, stop, task })
}

impl CoordinatorServer {
    /// Stops accepting requests, drains those in flight, and waits for the server to end.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the coordinator task panicked")?.context("the coordinator server failed")
    }
}

/// Creates a process's data directory (and its parents), `0700` (`loam_core::private_fs`).
pub fn create_data_dir(dir: &Path) -> anyhow::Result<()> {
    loam_core::private_fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))
}

/// Presents the process's listener certificate as its client certificate to the other members (mutual
/// TLS), unless the CLI's `--client-cert` chose another (`loam_client::tls`).
pub fn install_client_tls(listener: &ListenerConfig) -> anyhow::Result<()> {
    let identity = listener.tls.as_ref().map(|t| (t.cert.clone(), t.key.clone()));
    loam_client::tls::install_for_server(identity).context("loading the TLS files of the clients")
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
        let data_dir = loam_coordinator::settings::coordinator_files(dir.path());
        let auth = loam_testsupport::auth::node_auth();
        let cfg = CoordinatorConfig { cluster_name: "c".into(), data_dir, auth, ..CoordinatorConfig::default() };
        let server =
            start_coordinator(store, UfsRegistry::new(), cfg, loam_config::DEFAULT_HOST, 0, &ListenerConfig::default())
                .await
                .unwrap();
        let url = format!("{}/api/v1/nodes", server.url);
        let r = loam_testsupport::auth::anonymous_client().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401, "the API is served, and not to anyone");
        let r = loam_testsupport::auth::client_with(loam_testsupport::auth::READ).get(&url).send().await.unwrap();
        assert!(r.status().is_success());
        let addr = server.addr;
        server.shutdown().await.unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed after shutdown");
    }
}
