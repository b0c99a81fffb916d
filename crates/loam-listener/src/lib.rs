//! The one HTTP server of every Loam listener: the Coordinator's REST API, the worker's HTTP API and its S3
//! API all serve their axum router through [`Listener::serve`].
//!
//! - **TLS** (`tls`): when [`ListenerConfig::tls`] names a certificate and key, every connection is
//!   TLS (rustls, `ring`); the files are re-read when they change, so a rotated certificate is served to
//!   new connections without a restart. With a client CA, clients must present a certificate it signed.
//! - **Limits** (`conn`): a header-read timeout (from the accept, TLS handshake included, or from the
//!   first byte of a later request, to its last header line), an idle keep-alive timeout between
//!   requests, and a cap on open connections. Past the cap the listener stops accepting: new connections
//!   wait in the kernel's backlog until a slot frees, and those being served are not slowed. The timeouts
//!   free the slots that idle or slow clients hold, so they cannot keep a legitimate client out for longer
//!   than one header-read timeout.
//! - **`Expect: 100-continue`** (`expect`): hyper sends the `100 Continue` when the router reads the
//!   body; a request answered without one (refused unread, or with no body at all) closes its
//!   connection, so that no client takes the next request's `100` for its answer.
//! - **Graceful shutdown**: when the shutdown future resolves, the listener stops accepting, idle
//!   connections close, and requests in flight are answered before [`Listener::serve`] returns.
//!
//! - **Request ids** (`request_id`): every request gets one (the client's `x-request-id` when
//!   well-formed), answered in `x-request-id` and carried by a `request` span into its log lines.
//!
//! HTTP/1.1 only, as the routers are built (axum's `http1` feature).

mod conn;
mod expect;
pub mod request_id;
pub mod settings;
mod tls;

pub use settings::ListenerSettings;
pub use tls::TlsFiles;

use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

/// Default time a client has to send a request's head (and, on a new connection, finish TLS).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a kept-alive connection may stay idle between requests.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on a listener's open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// How long the accept loop pauses after an accept error (out of file descriptors), as axum does.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// How a listener serves: its TLS files, if any, and its limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerConfig {
    /// TLS on every connection (`None`: plain HTTP).
    pub tls: Option<TlsFiles>,
    /// The limits on each connection and on their number.
    pub limits: Limits,
}

impl ListenerConfig {
    /// `https` with TLS, else `http`: the scheme of URLs that reach this listener.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// The limits of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time to send a request's head: from the accept (TLS handshake included), or from the first byte
    /// of a later request on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// Time a connection may stay idle between requests.
    pub idle_timeout: Duration,
    /// Open connections at most; the next ones wait to be accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Why a listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// A TLS file cannot be read or used.
    #[error("TLS {what} {path}: {message}")]
    TlsFile {
        /// Which file (`certificate`, `key`, `client CA`).
        what: &'static str,
        /// Its path.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The TLS configuration cannot be built.
    #[error("TLS: {0}")]
    Tls(String),
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ListenerError {
    fn file(what: &'static str, path: &Path, e: impl std::fmt::Display) -> Self {
        Self::TlsFile { what, path: path.to_path_buf(), message: e.to_string() }
    }
}

/// A bound socket with its TLS and limits, ready to serve a router.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<Arc<tls::ReloadingTls>>,
    limits: Limits,
}

impl Listener {
    /// `tcp` served as `cfg` says; the TLS files are loaded now, so a bad file fails here, not later.
    pub fn new(tcp: TcpListener, cfg: &ListenerConfig) -> Result<Self, ListenerError> {
        let tls = cfg.tls.clone().map(tls::ReloadingTls::load).transpose()?.map(Arc::new);
        Ok(Self { tcp, tls, limits: cfg.limits })
    }

    /// `tcp` as plain HTTP with the default limits.
    pub fn plain(tcp: TcpListener) -> Self {
        Self { tcp, tls: None, limits: Limits::default() }
    }

    /// Binds `host:port` (0: a free port) and serves as `cfg` says.
    pub async fn bind(host: &str, port: u16, cfg: &ListenerConfig) -> Result<Self, ListenerError> {
        Self::new(TcpListener::bind((host, port)).await?, cfg)
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// `scheme://addr` of this listener.
    pub fn url(&self) -> std::io::Result<String> {
        Ok(format!("{}://{}", self.scheme(), self.local_addr()?))
    }

    /// Serves `app` until `shutdown` resolves, then stops accepting, closes idle connections and waits
    /// for the requests in flight.
    pub async fn serve(self, app: Router, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let app = app.layer(axum::middleware::from_fn(request_id::edge));
        let (stop, stopped) = watch::channel(false);
        let slots = Arc::new(Semaphore::new(self.limits.max_connections.max(1)));
        let tracker = TaskTracker::new();
        tokio::pin!(shutdown);
        loop {
            // A slot first, then the accept: past the cap, connections wait in the backlog.
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = &mut shutdown => break,
            };
            let tcp = tokio::select! {
                r = self.tcp.accept() => match r {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = self.tls.as_ref().map(|t| t.acceptor());
            let (app, limits, stopped) = (app.clone(), self.limits, stopped.clone());
            tracker.spawn(async move {
                conn::serve(tcp, acceptor, app, limits, stopped).await;
                drop(permit);
            });
        }
        drop(self.tcp);
        let _ = stop.send(true);
        tracker.close();
        tracker.wait().await;
        Ok(())
    }
}
