//! How `loam coordinator` and `loam worker` start when what they need is not there yet, so that
//! Kubernetes shows a reason instead of a crash loop:
//!
//! - **A secret file that does not exist yet** (a Secret mounted late, a token file rotated in): the
//!   process logs the file and the setting that names it at once, then every minute, and waits
//!   ([`Startup::wait_for_files`]). Any other problem with a file (unreadable, malformed) is a config
//!   error that will not fix itself: one line, exit 2, as before. The table is in docs/SEMANTICS.md.
//! - **etcd unreachable** ([`Startup::wait_for_etcd`]): it logs at once which endpoints it cannot reach and
//!   why, and retries with backoff until the store answers. An etcd that answers and refuses (TLS, a wrong
//!   password) stays a config error (exit 2): retrying would not change the answer.
//!
//! While it waits it serves its probes on its own port ([`Probes`]): liveness `200`, readiness `503`
//! `{"ready":false,"reason":…}` with the reason it logged, every other path `503` with the same reason. When
//! the wait ends, [`Startup::finish`] closes that small server and the real one binds the same port.
//! SIGINT or SIGTERM during a wait ends it: the caller exits 0.

use crate::assembly;
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use loam_config::{ConfigError, Layered, NodeSettings};
use loam_core::coordinator_api::StatusBody;
use loam_core::probe_api::{self, Readiness};
use loam_listener::{ListenerConfig, ListenerSettings};
use loam_store::{ClusterStore, EtcdSecurity, EtcdStore};
use std::cell::RefCell;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// The first pause between two checks; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest pause between two checks.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often an unchanged reason is logged again.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// How long one check of one etcd endpoint may take.
const ENDPOINT_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The settings that name a secret file, waited for while it does not exist.
const NODE_FILES: [&str; 7] = [
    "auth-token-file",
    "cluster-token-file",
    "jwks-file",
    "etcd-ca-cert",
    "etcd-cert",
    "etcd-key",
    "etcd-password-file",
];
/// The listener's files, waited for likewise.
const LISTENER_FILES: [&str; 3] = ["tls-cert", "tls-key", "tls-client-ca"];

/// SIGINT/SIGTERM, awaited across the waits and then by the running process.
pub type Signal = Pin<Box<dyn Future<Output = anyhow::Result<&'static str>> + Send>>;

/// The signal future of this process (`assembly::shutdown_signal`), made once before the first wait.
pub fn signal() -> Signal {
    Box::pin(assembly::shutdown_signal())
}

/// Which probe paths a process answers.
#[derive(Clone, Copy, Debug)]
pub struct Probes {
    /// Liveness.
    pub health: &'static str,
    /// Readiness.
    pub ready: &'static str,
}

impl Probes {
    /// The Coordinator's.
    pub const COORDINATOR: Self =
        Self { health: probe_api::COORDINATOR_HEALTH_PATH, ready: probe_api::COORDINATOR_READY_PATH };
    /// The worker's (on its HTTP port).
    pub const WORKER: Self = Self { health: probe_api::WORKER_HEALTH_PATH, ready: probe_api::WORKER_READY_PATH };
}

/// A secret file a setting names: the setting with its source (`` `auth-token-file` (flag …) ``) and the path.
pub type NamedFile = (String, PathBuf);

/// The secret files `node` and `listener` name, each with the setting that names it.
pub fn secret_files(node: &Layered<NodeSettings>, listener: &Layered<ListenerSettings>) -> Vec<NamedFile> {
    fn named<G>(g: &Layered<G>, keys: &[&str]) -> Vec<NamedFile> {
        let path =
            |key: &str| g.entries().find(|(k, _, _)| *k == key).and_then(|(_, v, _)| v.as_str().map(PathBuf::from));
        keys.iter().filter_map(|key| path(key).map(|p| (g.named(key), p))).collect()
    }
    [named(node, &NODE_FILES), named(listener, &LISTENER_FILES)].concat()
}

/// A process on its way to serving: the probe server while it waits.
pub struct Startup {
    probes: Probes,
    host: String,
    port: u16,
    listener: ListenerConfig,
    reason: watch::Sender<String>,
    server: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
}

impl Startup {
    /// Ready to wait, answering `probes` on `host:port` with `listener`'s TLS (once its files exist).
    pub fn new(probes: Probes, host: &str, port: u16, listener: &ListenerConfig) -> Self {
        let (reason, _) = watch::channel("starting".to_string());
        Self { probes, host: host.to_string(), port, listener: listener.clone(), reason, server: None }
    }

    /// Waits until every file of `files` exists; `Some(signal)` when SIGINT/SIGTERM came first.
    pub async fn wait_for_files(
        &mut self,
        files: &[NamedFile],
        signal: &mut Signal,
    ) -> anyhow::Result<Option<&'static str>> {
        self.wait(signal, move || async move {
            let (setting, path) = files.iter().find(|(_, p)| matches!(p.try_exists(), Ok(false)))?;
            Some(format!("waiting for {}, named by {setting}: it does not exist (yet)", path.display()))
        })
        .await
    }

    /// Connects to etcd at `endpoints` and waits until it answers: `Err(signal)` when SIGINT/SIGTERM came
    /// first. An etcd that answers and refuses (TLS, authentication) is a config error (exit 2).
    pub async fn wait_for_etcd(
        &mut self,
        endpoints: &[String],
        security: &EtcdSecurity,
        signal: &mut Signal,
    ) -> anyhow::Result<Result<Arc<EtcdStore>, &'static str>> {
        // The store once connected, or the refusal that ends the wait.
        let state: RefCell<Option<anyhow::Result<Arc<EtcdStore>>>> = RefCell::new(None);
        let state_ref = &state;
        let stopped = self
            .wait(signal, move || async move {
                let connected = match &*state_ref.borrow() {
                    Some(Ok(s)) => Some(s.clone()),
                    _ => None,
                };
                let store = match connected {
                    Some(s) => s,
                    None => match crate::cluster_store::connect_etcd_store(endpoints, security).await {
                        Ok(s) => {
                            *state_ref.borrow_mut() = Some(Ok(s.clone()));
                            s
                        }
                        Err(e) if e.chain().any(|c| c.is::<ConfigError>()) => {
                            *state_ref.borrow_mut() = Some(Err(e));
                            return None;
                        }
                        Err(_) => return Some(unreachable_endpoints(endpoints, security).await),
                    },
                };
                match store.revision().await {
                    Ok(_) => None,
                    Err(_) => Some(unreachable_endpoints(endpoints, security).await),
                }
            })
            .await?;
        if let Some(s) = stopped {
            return Ok(Err(s));
        }
        match state.into_inner() {
            Some(Ok(store)) => Ok(Ok(store)),
            Some(Err(e)) => Err(e),
            None => Err(anyhow::anyhow!("the wait for etcd ended without a store")),
        }
    }

    /// Checks with `check` (`None`: done, `Some(reason)`: not yet) with backoff until done, serving the probes
    /// with the reason meanwhile and logging it once, when it changes, and every [`LOG_EVERY`].
    async fn wait<F, Fut>(&mut self, signal: &mut Signal, mut check: F) -> anyhow::Result<Option<&'static str>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<String>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut logged: Option<(String, Instant)> = None;
        loop {
            let reason = tokio::select! {
                r = check() => r,
                s = &mut *signal => return s.map(Some),
            };
            let Some(reason) = reason else { return Ok(None) };
            let stale = logged.as_ref().is_none_or(|(r, at)| *r != reason || at.elapsed() >= LOG_EVERY);
            if stale {
                tracing::warn!("not ready: {reason}");
                logged = Some((reason.clone(), Instant::now()));
            }
            self.reason.send_replace(reason);
            self.serve_if_possible().await?;
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                s = &mut *signal => return s.map(Some),
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Starts the probe server unless it runs, or its TLS files do not exist yet (then the port stays closed:
    /// nothing could answer a kubelet's `https` probe).
    async fn serve_if_possible(&mut self) -> anyhow::Result<()> {
        let tls_missing = self.listener.tls.as_ref().is_some_and(|t| {
            [Some(&t.cert), Some(&t.key), t.client_ca.as_ref()].into_iter().flatten().any(|p| !p.exists())
        });
        if self.server.is_some() || tls_missing {
            return Ok(());
        }
        let listener = loam_listener::Listener::bind(&self.host, self.port, &self.listener)
            .await
            .map_err(|e| anyhow::anyhow!("serving the probes on {}:{} while waiting: {e}", self.host, self.port))?;
        let app = router(self.probes, self.reason.subscribe());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(listener.serve(app, async move {
            let _ = stopped.await;
        }));
        self.server = Some((stop, task));
        Ok(())
    }

    /// Closes the probe server (if it ran), freeing the port for the real one.
    pub async fn finish(mut self) {
        if let Some((stop, task)) = self.server.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

/// The probe server's router: liveness `200`, readiness and everything else `503` with the reason.
fn router(probes: Probes, reason: watch::Receiver<String>) -> Router {
    let now = |r: &watch::Receiver<String>| r.borrow().clone();
    let (ready, other) = (reason.clone(), reason);
    Router::new()
        .route(probes.health, get(|| async { "OK" }))
        .route(
            probes.ready,
            get(move || {
                let r = Readiness::not_ready(now(&ready));
                async move { (StatusCode::SERVICE_UNAVAILABLE, Json(r)) }
            }),
        )
        .fallback(move || {
            let body = StatusBody { status: format!("starting: {}", now(&other)) };
            async move { (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response() }
        })
}

/// Which of `endpoints` etcd cannot be reached at, and why, checked one by one.
async fn unreachable_endpoints(endpoints: &[String], security: &EtcdSecurity) -> String {
    let mut failures = Vec::new();
    for endpoint in endpoints {
        let one = std::slice::from_ref(endpoint);
        let why = match tokio::time::timeout(ENDPOINT_CHECK_TIMEOUT, async {
            // The TCP connection first: its error says exactly why (refused, no route), which the etcd
            // client's transport error does not.
            let address = endpoint.split_once("://").map_or(endpoint.as_str(), |(_, rest)| rest);
            let address = address.trim_end_matches('/');
            tokio::net::TcpStream::connect(address).await.map_err(|e| anyhow::anyhow!("TCP connect: {e}"))?;
            crate::cluster_store::connect_etcd(one, security).await?.revision().await.map_err(anyhow::Error::new)
        })
        .await
        {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => format!("no answer within {}s", ENDPOINT_CHECK_TIMEOUT.as_secs()),
        };
        failures.push(format!("{endpoint} ({why})"));
    }
    if failures.is_empty() {
        format!("etcd at {} does not answer yet", endpoints.join(","))
    } else {
        format!("etcd unreachable at {}", failures.join("; "))
    }
}
