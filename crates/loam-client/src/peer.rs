//! The one client for calls between nodes: coordinator → worker (task batches, listings, clear-stale),
//! worker → worker (invalidations, peer copies, S3 forwarding), worker → coordinator (file index reports,
//! load forwarding), and the CLI and FUSE mount → coordinator.
//!
//! - [`http_client`] is the one place an HTTP client is built: the TLS provider installed once, a connect
//!   timeout, pooled keep-alive connections, and the process's TLS roots and client certificate
//!   ([`crate::tls`]).
//! - Every request goes out through [`PeerClient::request`], which adds the node's bearer token
//!   ([`Credential`]: the `cluster` token between members, the user's token for the CLI and FUSE), read
//!   anew for each request so a rotated token is used at once, and marked sensitive so it is never logged,
//!   and the id of the request being served (`x-request-id`, [`loam_core::request_id`]), so the other
//!   node's log lines for it carry the same id.
//! - [`PeerClient`] sends a request and turns every failure into a [`PeerError`] whose kind comes from the
//!   HTTP status ([`ErrorKind::from_http_status`]) or the transport (unreachable, timed out:
//!   `Unavailable`), so a caller retries what may pass and never a `4xx`. Error answers are read with
//!   [`error_message`], the one decoder of `{"status": "…"}` bodies.
//! - [`PeerClient::cached_files_page`] is the one place a worker's listing is fetched, a page at a time,
//!   and it refuses an answer from another worker than the one asked (a dead worker's port may have been
//!   taken by another). Each page it returns is ascending and after its cursor, whatever the worker sent
//!   (a worker of an older release answers its whole list, unsorted, to any query), so a caller can
//!   merge listings; [`PeerClient::cached_files`] reads every page.
//!
//! Paths are constants beside their wire types in `loam_core` (`job_api`, `cluster_ops_api`).

use crate::membership::WorkerEndpoint;
use loam_auth::Credential;
use loam_core::ErrorKind;
use loam_core::cluster_ops_api::{CACHED_FILES_PATH, CLUSTER_OPS_API_VERSION, CachedFiles, MAX_CACHED_FILES_PAGE};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How long connecting to another node may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle pooled connection is kept.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a worker may take to list its cached files.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// The most of an error answer's body kept in a message.
const MAX_MESSAGE: usize = 1024;

/// The builder of every HTTP client for calls to other nodes, for callers that set more (a read timeout
/// for streams, a shorter connect timeout); most use [`http_client`].
pub fn client_builder() -> reqwest::ClientBuilder {
    loam_ufs::install_process_defaults();
    let b = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true);
    crate::tls::apply(b)
}

/// The HTTP client for calls to other nodes; `timeout` bounds each whole request (`None`: calls set their
/// own, as streaming reads must).
pub fn http_client(timeout: Option<Duration>) -> Result<reqwest::Client, PeerError> {
    let mut b = client_builder();
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    build(b)
}

/// Builds a client from [`client_builder`].
pub fn build(b: reqwest::ClientBuilder) -> Result<reqwest::Client, PeerError> {
    b.build().map_err(|e| PeerError::new(ErrorKind::Internal, format!("cannot build an HTTP client: {e}")))
}

/// Why a call to another node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PeerError {
    kind: ErrorKind,
    message: String,
}

impl PeerError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the same call may pass later (unreachable, timed out, a server error; never a `4xx`).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// The message with `context` in front.
    pub fn context(self, context: impl std::fmt::Display) -> Self {
        Self { message: format!("{context}: {}", self.message), ..self }
    }

    fn transport(peer: &str, e: &reqwest::Error) -> Self {
        let kind = if e.is_builder() { ErrorKind::Internal } else { ErrorKind::Unavailable };
        let what = if e.is_timeout() { "timed out" } else { "unreachable" };
        Self::new(kind, format!("{peer} {what}: {e}"))
    }

    fn status(peer: &str, status: reqwest::StatusCode, body: &str) -> Self {
        let kind = ErrorKind::from_http_status(status.as_u16());
        Self::new(kind, format!("{peer} answered {}: {}", status.as_u16(), error_message(body)))
    }

    fn malformed(peer: &str, what: impl std::fmt::Display) -> Self {
        // Another release, or not a Loam node at all: asking again gives the same answer.
        Self::new(ErrorKind::InvalidInput, format!("{peer} answered {what}"))
    }
}

/// The message of an error answer: the `status` of a `{"status": "…"}` body, else the body itself
/// (trimmed, at most 1 KiB, so an upstream's page is never echoed whole).
pub fn error_message(body: &str) -> String {
    let status = serde_json::from_str::<serde_json::Value>(body).ok().and_then(|v| v.get("status").cloned());
    if let Some(serde_json::Value::String(s)) = status {
        return s;
    }
    let text = body.trim();
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Calls to other nodes over one pooled client, carrying this node's token.
#[derive(Clone, Debug)]
pub struct PeerClient {
    http: reqwest::Client,
    token: Credential,
}

impl PeerClient {
    /// A client over `http` (from [`http_client`]) sending `token`.
    pub fn new(http: reqwest::Client, token: Credential) -> Self {
        Self { http, token }
    }

    /// The client with no whole-request timeout ([`http_client`]`(None)`), sending `token`.
    pub fn build(token: Credential) -> Result<Self, PeerError> {
        http_client(None).map(|http| Self::new(http, token))
    }

    /// The token it sends.
    pub fn token(&self) -> &Credential {
        &self.token
    }

    /// A request to another node, carrying the token and the id of the request being served, if any
    /// (every request of this client starts here).
    pub fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, url);
        if let Some(id) = loam_core::request_id::current() {
            req = req.header(loam_core::request_id::HEADER, id);
        }
        match self.token.header().and_then(|h| reqwest::header::HeaderValue::from_str(&h).ok()) {
            Some(mut value) => {
                value.set_sensitive(true);
                req.header(reqwest::header::AUTHORIZATION, value)
            }
            None => req,
        }
    }

    /// Sends `req` to `peer` (a name for messages); the answer when its status is a success.
    pub async fn send(&self, peer: &str, req: reqwest::RequestBuilder) -> Result<reqwest::Response, PeerError> {
        let resp = req.send().await.map_err(|e| PeerError::transport(peer, &e))?;
        success(peer, resp).await
    }

    /// Sends `req` and decodes the JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, peer: &str, req: reqwest::RequestBuilder) -> Result<T, PeerError> {
        decode(peer, self.send(peer, req).await?).await
    }

    /// `GET url` of `peer`, decoded.
    pub async fn get<T: DeserializeOwned>(&self, peer: &str, url: &str, timeout: Duration) -> Result<T, PeerError> {
        self.json(peer, self.request(reqwest::Method::GET, url).timeout(timeout)).await
    }

    /// `POST url` of `peer` with a JSON body, decoded.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        peer: &str,
        url: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, PeerError> {
        self.json(peer, self.request(reqwest::Method::POST, url).json(body).timeout(timeout)).await
    }

    /// Every file `w` holds (UFS URIs), ascending, read a page at a time.
    pub async fn cached_files(&self, w: &WorkerEndpoint) -> Result<Vec<String>, PeerError> {
        let mut page = self.cached_files_page(w, None, MAX_CACHED_FILES_PAGE).await?;
        let mut files = std::mem::take(&mut page.files);
        while let Some(after) = page.next.take() {
            page = self.cached_files_page(w, Some(&after), MAX_CACHED_FILES_PAGE).await?;
            files.append(&mut page.files);
        }
        Ok(files)
    }

    /// The page of at most `limit` files `w` holds after `after` (from the first without), ascending and
    /// each once; its `next` is the cursor of the following page. Refuses an answer in another version,
    /// from another worker, or whose cursor does not move on.
    pub async fn cached_files_page(
        &self,
        w: &WorkerEndpoint,
        after: Option<&str>,
        limit: u64,
    ) -> Result<CachedFiles, PeerError> {
        let peer = worker_name(w);
        let mut url = format!("{}{CACHED_FILES_PATH}?limit={limit}", w.http_base());
        if let Some(after) = after {
            url.push_str("&after=");
            url.push_str(&crate::reader::encode_query(after));
        }
        let mut page: CachedFiles = self.get(&peer, &url, LIST_TIMEOUT).await?;
        if page.version != CLUSTER_OPS_API_VERSION {
            return Err(PeerError::malformed(&peer, format!("version {}", page.version)));
        }
        // Another process may have taken a dead worker's port: its files are not this worker's.
        if page.worker != w.id.to_string() {
            return Err(PeerError::new(ErrorKind::Unavailable, format!("{peer} answered as {}", page.worker)));
        }
        if !page.files.is_sorted_by(|a, b| a < b) {
            page.files.sort_unstable();
            page.files.dedup();
        }
        if let Some(after) = after {
            let behind = page.files.partition_point(|u| u.as_str() <= after);
            page.files.drain(..behind);
        }
        if page.next.as_deref().is_some_and(|n| page.files.is_empty() || after.is_some_and(|a| n <= a)) {
            return Err(PeerError::malformed(&peer, "a listing page whose cursor does not move on".to_string()));
        }
        Ok(page)
    }
}

/// `resp` of `peer` when its status is a success, else the error it answered.
pub async fn success(peer: &str, resp: reqwest::Response) -> Result<reqwest::Response, PeerError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(PeerError::status(peer, status, &body))
}

/// The JSON body of a successful answer of `peer`.
pub async fn decode<T: DeserializeOwned>(peer: &str, resp: reqwest::Response) -> Result<T, PeerError> {
    let body = resp.bytes().await.map_err(|e| PeerError::transport(peer, &e))?;
    serde_json::from_slice(&body).map_err(|e| PeerError::malformed(peer, format!("a malformed body: {e}")))
}

/// How a worker is named in messages: `worker <id> (http://host:port)`.
pub fn worker_name(w: &WorkerEndpoint) -> String {
    format!("worker {} ({})", w.id, w.http_base())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_come_from_status_bodies_or_the_text() {
        assert_eq!(error_message(r#"{"status": "Path not found"}"#), "Path not found");
        assert_eq!(error_message("  plain words \n"), "plain words");
        let long = "x".repeat(5000);
        assert_eq!(error_message(&long).chars().count(), MAX_MESSAGE + 1, "cut, with an ellipsis");
        assert_eq!(error_message(r#"{"other": 1}"#), r#"{"other": 1}"#);
    }

    /// A peer that answers every request with `status` and `body`, over real HTTP on loopback.
    async fn peer(status: u16, body: String) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(format!("{head}{body}").as_bytes()).await;
            }
        });
        port
    }

    fn worker(port: u16) -> WorkerEndpoint {
        WorkerEndpoint {
            id: loam_core::WorkerId::random(),
            host: "127.0.0.1".into(),
            http_port: port,
            s3_port: 0,
            tls: false,
        }
    }

    #[tokio::test]
    async fn a_listing_from_another_worker_than_the_one_asked_is_refused() {
        let peers = PeerClient::build(Credential::none()).unwrap();
        let other = loam_core::WorkerId::random();
        let w = worker(peer(200, format!(r#"{{"version": 1, "worker": "{other}", "files": ["s3://b/f"]}}"#)).await);
        let e = peers.cached_files(&w).await.unwrap_err();
        assert!(e.to_string().contains(&format!("answered as {other}")), "{e}");
        let w2 = worker(0);
        let me = format!(r#"{{"version": 1, "worker": "{}", "files": ["s3://b/f"]}}"#, w2.id);
        let w2 = WorkerEndpoint { http_port: peer(200, me).await, ..w2 };
        assert_eq!(peers.cached_files(&w2).await.unwrap(), ["s3://b/f"]);
        let w = worker(peer(200, r#"{"version": 9, "worker": "x", "files": []}"#.into()).await);
        let e = peers.cached_files(&w).await.unwrap_err();
        assert!(!e.is_retryable() && e.to_string().contains("version 9"), "{e}");
    }

    #[tokio::test]
    async fn statuses_and_transport_failures_become_kinds() {
        let peers = PeerClient::build(Credential::none()).unwrap();
        for (status, kind) in
            [(400, ErrorKind::InvalidInput), (404, ErrorKind::NotFound), (503, ErrorKind::Unavailable)]
        {
            let port = peer(status, r#"{"status": "why not"}"#.into()).await;
            let e = peers.get::<serde_json::Value>("p", &format!("http://127.0.0.1:{port}/x"), LIST_TIMEOUT).await;
            let e = e.unwrap_err();
            assert_eq!((e.kind(), e.to_string()), (kind, format!("p answered {status}: why not")));
        }
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let e = peers.get::<serde_json::Value>("p", &format!("http://127.0.0.1:{closed}/x"), LIST_TIMEOUT).await;
        let e = e.unwrap_err();
        assert!(e.is_retryable() && e.to_string().starts_with("p unreachable"), "{e}");
    }
}
