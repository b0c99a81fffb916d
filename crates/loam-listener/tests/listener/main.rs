//! The listener's integration tests: its limits against raw TCP clients, its TLS against reqwest and curl
//! with certificates made by `openssl` (`loam_testsupport::tls`).
//!
//! The limits test holds 2,000 idle connections plus the server's side of them in one process: about
//! 4,100 file descriptors. Raise `ulimit -n` if it is lower (the project's machines have 20,000).

mod expect;
mod limits;
mod tls;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, put};
use loam_listener::{Listener, ListenerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// A generous bound on anything that must happen: long enough never to fail a working server on a busy
/// machine, short enough that the old server (no header-read or idle timeout) fails instead of hanging.
pub const BOUND: Duration = Duration::from_secs(30);

/// A listener serving `/hello`, `/slow` (answers after `SLOW`), `PUT /echo` (reads the body, answers its
/// length) and `PUT /refuse` (403 without reading the body), stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    /// Notified when `/slow` begins answering.
    pub slow_started: Arc<Notify>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
}

/// How long `/slow` takes.
pub const SLOW: Duration = Duration::from_secs(3);

impl TestServer {
    pub async fn start(cfg: ListenerConfig) -> Self {
        let listener = Listener::bind("127.0.0.1", 0, &cfg).await.expect("the listener starts");
        let (addr, url) = (listener.local_addr().unwrap(), listener.url().unwrap());
        let slow_started = Arc::new(Notify::new());
        let started = slow_started.clone();
        let app = Router::new().route("/hello", get(|| async { "hello" })).route(
            "/slow",
            get(|| async move {
                started.notify_one();
                tokio::time::sleep(SLOW).await;
                "slow"
            }),
        );
        let app = app
            .route("/echo", put(|body: axum::body::Bytes| async move { format!("got {}", body.len()) }))
            .route("/refuse", put(|| async { (StatusCode::FORBIDDEN, "refused") }));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(listener.serve(app, async move {
            let _ = stopped.await;
        }));
        Self { addr, url, slow_started, stop: Some(stop), task: Some(task) }
    }

    /// Begins a graceful shutdown; the task ends when the requests in flight are answered.
    pub fn begin_shutdown(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
    }
}

/// rustls's `ring` provider for the test's reqwest clients (reqwest is built without one).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
