//! A real Coordinator for tests: on 127.0.0.1 (a free port the OS picks), over a real embedded store in a
//! temp dir or a real etcd of its own ([`Backend`]), spoken to over real HTTP; plus the helpers that send
//! requests and read status bodies. [`crate::cluster::Cluster`] runs the same server beside its workers.

use loam_coordinator::{Coordinator, CoordinatorConfig};
use loam_store::{ClusterStore, EmbeddedStore, EtcdOptions, EtcdStore};
use loam_ufs::UfsRegistry;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::EtcdServer;

/// A Coordinator serving on a listener, on the caller's runtime, until stopped.
pub(crate) struct Served {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Served {
    /// Serves a Coordinator over `store` and `ufs` with `cfg` on `listener`.
    pub fn start(
        store: Arc<dyn ClusterStore>,
        ufs: UfsRegistry,
        cfg: CoordinatorConfig,
        listener: tokio::net::TcpListener,
    ) -> Self {
        let coordinator = Coordinator::new(store, ufs, cfg);
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(coordinator.serve(loam_listener::Listener::plain(listener), async move {
            let _ = rx.await;
        }));
        Self { base, stop: Some(tx), task: Some(task) }
    }

    /// Stops serving gracefully (job runners persist their progress) and waits until it has.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task panicked").expect("serve returned an error");
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A running Coordinator and the temp dir holding its store and the test's UFS directories.
pub struct TestCoordinator {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The store the Coordinator uses.
    pub store: Arc<dyn ClusterStore>,
    /// The cluster name.
    pub cluster: String,
    /// A clone of the Coordinator's UFS registry (clones share its cache of built UFS clients).
    pub ufs: UfsRegistry,
    /// Holds `store.redb` and whatever the test creates (UFS directories).
    pub dir: tempfile::TempDir,
    served: Option<Served>,
    /// The etcd the store talks to, when the test runs on etcd (stopped with the Coordinator).
    etcd: Option<EtcdServer>,
}

/// Which cluster store a test Coordinator runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store, a file in the test's temp dir.
    Embedded,
    /// A real etcd started for the test.
    Etcd,
}

/// Turns each scenario `async fn name(backend: Backend)` into two tests, `name::embedded` and `name::etcd`,
/// so a behaviour is written once and checked on both cluster stores.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn embedded() {
                super::$name($crate::coordinator::Backend::Embedded).await
            }
            #[tokio::test]
            async fn etcd() {
                super::$name($crate::coordinator::Backend::Etcd).await
            }
        }
    )*};
}

/// Opens (or reopens) the embedded store file in `dir`.
pub fn open_store(dir: &Path) -> Arc<dyn ClusterStore> {
    EmbeddedStore::open(&dir.join("store.redb")).expect("open embedded store")
}

/// A Coordinator with an API-managed mount table over a fresh embedded store.
pub async fn start() -> TestCoordinator {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(dir.path());
    start_with(dir, store, CoordinatorConfig::default()).await
}

/// A Coordinator with an API-managed mount table over a fresh store of `backend`.
pub async fn start_on(backend: Backend) -> TestCoordinator {
    match backend {
        Backend::Embedded => start().await,
        Backend::Etcd => {
            let etcd = EtcdServer::start();
            let store =
                EtcdStore::connect(vec![etcd.endpoint()], EtcdOptions::default()).await.expect("connect to etcd");
            let dir = tempfile::tempdir().expect("temp dir");
            let mut c = start_with(dir, store, CoordinatorConfig::default()).await;
            c.etcd = Some(etcd);
            c
        }
    }
}

/// A Coordinator over `store` (which lives in `dir`) with `cfg`; `file://` mounts are allowed under `dir`
/// (where [`TestCoordinator::ufs_dir`] makes them), as an operator allows a data directory.
pub async fn start_with(
    dir: tempfile::TempDir,
    store: Arc<dyn ClusterStore>,
    mut cfg: CoordinatorConfig,
) -> TestCoordinator {
    if !cfg.auth.authenticator.is_configured() {
        cfg.auth = crate::auth::node_auth();
    }
    cfg.ufs_policy.allow_local(dir.path()).expect("the test's temp dir is a directory");
    let cluster = cfg.cluster_name.clone();
    let ufs = UfsRegistry::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let served = Served::start(store.clone(), ufs.clone(), cfg, listener);
    TestCoordinator { base: served.base.clone(), store, cluster, ufs, dir, served: Some(served), etcd: None }
}

impl TestCoordinator {
    /// The full URL of `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// Creates a directory under the temp dir and returns its path.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }

    /// `file://<dir>/<name>` for a directory under the temp dir (created when `create`).
    pub fn ufs_dir(&self, name: &str, create: bool) -> String {
        let p = self.dir.path().join(name);
        if create {
            std::fs::create_dir_all(&p).expect("mkdir");
        }
        format!("file://{}", p.display())
    }

    /// Sends `method path` with an optional raw JSON body (`Content-Type: application/json`).
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        call(method, &self.url(path), body, Some("application/json")).await
    }

    /// Stops the server gracefully; returns the store and the temp dir so the test can reopen them.
    pub async fn shutdown(mut self) -> (Arc<dyn ClusterStore>, tempfile::TempDir) {
        if let Some(served) = self.served.take() {
            served.stop().await;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let dir = std::mem::replace(&mut self.dir, dir);
        (self.store.clone(), dir)
    }
}

/// Sends a request and returns the status and the JSON body (`Null` when the body is not JSON).
pub async fn call(method: &str, url: &str, body: Option<&str>, content_type: Option<&str>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client().request(method, url);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// An HTTP client sending the token of every role ([`crate::auth::ALL_ROLES`]).
pub fn client() -> reqwest::Client {
    crate::auth::client_with(crate::auth::ALL_ROLES)
}

/// The `status` string of an error body.
pub fn status_text(body: &Value) -> &str {
    body["status"].as_str().unwrap_or_else(|| panic!("no status string in {body}"))
}
