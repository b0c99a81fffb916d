//! Reads through the cluster: the file's primary worker by the ring, then its replicas, then the UFS.
//! A stream that breaks mid-way resumes at the byte where it stopped on the next candidate, so a worker
//! dying during a read costs a reconnect, not the read.

use crate::membership::{MembershipView, WorkerEndpoint};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use loam_core::worker_api::FileInfo;
use loam_ufs::{MountTable, UfsRegistry};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use std::sync::Arc;

/// Characters escaped in query values: enough for `&`, `#`, `+`, `%` and spaces to survive.
const QUERY_VALUE: &AsciiSet =
    &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'&').add(b'+').add(b'<').add(b'>');

/// Encodes a query value.
pub fn encode_query(v: &str) -> String {
    utf8_percent_encode(v, QUERY_VALUE).to_string()
}

/// A client error.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No worker is live and the UFS fallback is off or impossible.
    #[error("no worker could serve {0}: {1}")]
    NoWorker(String, String),
    /// The worker answered with an error status that a retry elsewhere cannot fix (4xx).
    #[error("{message} (HTTP {status})")]
    Status {
        /// HTTP status.
        status: u16,
        /// The worker's message.
        message: String,
    },
    /// The UFS fallback failed.
    #[error(transparent)]
    Ufs(#[from] loam_ufs::UfsError),
    /// The path lies under no mount.
    #[error(transparent)]
    Mount(#[from] loam_ufs::mount_table::MountError),
}

/// Direct UFS access for the fallback path.
#[derive(Clone)]
pub struct UfsFallback {
    /// Mount table with real (unmasked) options.
    pub mounts: MountTable,
    /// UFS instances.
    pub registry: UfsRegistry,
}

/// A cluster client.
#[derive(Clone)]
pub struct Client {
    http: crate::PeerClient,
    members: MembershipView,
    /// Workers tried before falling back to the UFS (primary + replicas).
    pub attempts: usize,
    fallback: Option<Arc<UfsFallback>>,
}

impl Client {
    /// A client over `members`, trying up to three workers, with the UFS fallback if given.
    pub fn new(http: crate::PeerClient, members: MembershipView, fallback: Option<UfsFallback>) -> Self {
        Self { http, members, attempts: 3, fallback: fallback.map(Arc::new) }
    }

    /// The membership view.
    pub fn members(&self) -> &MembershipView {
        &self.members
    }

    /// The workers to try for `ufs_uri`, primary first.
    pub fn candidates(&self, ufs_uri: &str) -> Vec<WorkerEndpoint> {
        self.members.ring().lookup(ufs_uri, self.attempts).into_iter().map(|(_, w)| w.clone()).collect()
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str, query: &str) -> Result<T, ClientError> {
        let mut last = String::from("no live worker");
        for w in self.candidates(path) {
            let url = format!("{}{query}", w.http_base());
            match self.http.request(reqwest::Method::GET, &url).send().await {
                Ok(r) if r.status().is_success() => match r.json::<T>().await {
                    Ok(v) => return Ok(v),
                    Err(e) => last = format!("{}: {e}", w.id),
                },
                Ok(r) if r.status().is_client_error() || r.status().as_u16() == 500 => {
                    let status = r.status().as_u16();
                    return Err(ClientError::Status { status, message: error_text(r).await });
                }
                Ok(r) => last = format!("{}: HTTP {}", w.id, r.status()),
                Err(e) => last = format!("{}: {e}", w.id),
            }
        }
        Err(ClientError::NoWorker(path.to_string(), last))
    }

    /// `GET <worker>{path_and_query}` of one worker as JSON, with this client's credentials (no failover:
    /// the caller asked for that worker).
    pub async fn worker_json<T: serde::de::DeserializeOwned>(
        &self,
        w: &WorkerEndpoint,
        path_and_query: &str,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path_and_query}", w.http_base());
        let r = self.http.request(reqwest::Method::GET, &url).send().await;
        let r = r.map_err(|e| ClientError::NoWorker(path_and_query.to_string(), format!("{}: {e}", w.id)))?;
        if !r.status().is_success() {
            let status = r.status().as_u16();
            return Err(ClientError::Status { status, message: error_text(r).await });
        }
        r.json::<T>().await.map_err(|e| ClientError::NoWorker(path_and_query.to_string(), format!("{}: {e}", w.id)))
    }

    /// The file-info of a UFS URI (`/v1/info`).
    pub async fn info(&self, ufs_uri: &str) -> Result<FileInfo, ClientError> {
        let q = format!("/v1/info?path={}", encode_query(ufs_uri));
        let list: Vec<FileInfo> = self.get_json(ufs_uri, &q).await?;
        list.into_iter().next().ok_or_else(|| ClientError::Status { status: 404, message: "no such file".into() })
    }

    /// The entries of a directory (`/v1/files`).
    pub async fn list(&self, ufs_uri: &str) -> Result<Vec<FileInfo>, ClientError> {
        let q = format!("/v1/files?path={}", encode_query(ufs_uri));
        self.get_json(ufs_uri, &q).await
    }

    /// Streams `[offset, offset + len)` of a file, failing over between workers and then to the UFS, all
    /// from one version of it (the first worker's answer names it).
    pub fn read(&self, ufs_uri: &str, offset: u64, len: u64) -> BoxStream<'static, Result<Bytes, ClientError>> {
        self.read_pinned(ufs_uri, offset, len, VersionPin::default())
    }

    /// Like [`read`](Self::read), from the version `pin` holds (or, when it holds none yet, the version of
    /// the first answer, which `pin` then keeps for the reads that share it). When that version is gone:
    /// `ClientError::Status { status: 412 }`.
    pub fn read_pinned(
        &self,
        ufs_uri: &str,
        offset: u64,
        len: u64,
        pin: VersionPin,
    ) -> BoxStream<'static, Result<Bytes, ClientError>> {
        let state = ReadState {
            pin,
            client: self.clone(),
            uri: ufs_uri.to_string(),
            pos: offset,
            end: offset.saturating_add(len),
            candidates: self.candidates(ufs_uri).into_iter().collect(),
            body: None,
            last_error: String::from("no live worker"),
            done: len == 0,
            warned: false,
        };
        futures::stream::unfold(state, |mut s| async move {
            let item = s.next_chunk().await?;
            Some((item, s))
        })
        .boxed()
    }
}

async fn error_text(r: reqwest::Response) -> String {
    crate::peer::error_message(&r.text().await.unwrap_or_default())
}

/// The version of a file that reads are pinned to (its version tag, `loam_core::version`). Reads that share a
/// pin (the reads of one open file, the pieces of one response) send it as `If-Match`, and the UFS fallback
/// reads only that version, so they never join bytes of two versions. An empty pin takes the version of
/// the first worker answer (its `ETag`).
#[derive(Clone, Debug, Default)]
pub struct VersionPin(Arc<parking_lot::Mutex<Option<String>>>);

impl VersionPin {
    /// A pin to version `tag`.
    pub fn to(tag: &str) -> Self {
        Self(Arc::new(parking_lot::Mutex::new(Some(loam_core::version::unquote(tag).to_string()))))
    }

    /// The version pinned, if any yet.
    pub fn get(&self) -> Option<String> {
        self.0.lock().clone()
    }

    /// Takes the version of an answer (its `ETag`): kept if none was pinned; `false` if another one was.
    fn learn(&self, etag: Option<&str>) -> bool {
        let Some(tag) = etag.map(loam_core::version::unquote) else { return true };
        let mut pinned = self.0.lock();
        match pinned.as_deref() {
            None => {
                *pinned = Some(tag.to_string());
                true
            }
            Some(p) => p == tag,
        }
    }
}

struct ReadState {
    pin: VersionPin,
    client: Client,
    uri: String,
    pos: u64,
    end: u64,
    candidates: std::collections::VecDeque<WorkerEndpoint>,
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    last_error: String,
    done: bool,
    warned: bool,
}

impl ReadState {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, ClientError>> {
        loop {
            if self.done || self.pos >= self.end {
                return None;
            }
            if let Some(body) = &mut self.body {
                match body.next().await {
                    Some(Ok(b)) => {
                        self.pos += b.len() as u64;
                        return Some(Ok(b));
                    }
                    Some(Err(e)) => {
                        self.last_error = e.to_string();
                        self.body = None;
                        continue;
                    }
                    None => {
                        // The worker ended the body: end of file (or it said all it had).
                        self.done = true;
                        return None;
                    }
                }
            }
            let Some(w) = self.candidates.pop_front() else {
                return Some(self.read_from_ufs().await);
            };
            let url = format!(
                "{}/v1/range/{}?ufsFullPath={}&offset={}&length={}",
                w.http_base(),
                loam_core::file_id(&self.uri),
                encode_query(&self.uri),
                self.pos,
                self.end - self.pos
            );
            let mut request = self.client.http.request(reqwest::Method::GET, &url);
            if let Some(tag) = self.pin.get() {
                request = request.header(reqwest::header::IF_MATCH, loam_core::version::quoted(&tag));
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => {
                    let etag = r.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok());
                    if !self.pin.learn(etag) {
                        // A worker that ignored If-Match (an older release) answered another version.
                        self.done = true;
                        let message = format!("{} changed: {} answered another version", self.uri, w.id);
                        return Some(Err(ClientError::Status { status: 412, message }));
                    }
                    self.body = Some(r.bytes_stream().boxed());
                }
                Ok(r) if r.status().is_client_error() => {
                    self.done = true;
                    let status = r.status().as_u16();
                    return Some(Err(ClientError::Status { status, message: error_text(r).await }));
                }
                Ok(r) => self.last_error = format!("{}: HTTP {}: {}", w.id, r.status(), error_text(r).await),
                Err(e) => self.last_error = format!("{}: {e}", w.id),
            }
        }
    }

    /// Last resort: read the rest straight from the UFS, a bounded chunk per call.
    async fn read_from_ufs(&mut self) -> Result<Bytes, ClientError> {
        const UFS_CHUNK: u64 = 8 << 20;
        let Some(fb) = self.client.fallback.clone() else {
            self.done = true;
            return Err(ClientError::NoWorker(self.uri.clone(), self.last_error.clone()));
        };
        if !self.warned {
            self.warned = true;
            loam_core::warn_limited!("reading {} from the UFS: {}", self.uri, self.last_error);
        }
        let resolved = fb.mounts.resolve(&self.uri).inspect_err(|_| self.done = true)?;
        let ufs = fb.registry.for_mount(&resolved.mount).inspect_err(|_| self.done = true)?;
        let want = (self.end - self.pos).min(UFS_CHUNK);
        let read = match self.pin.get() {
            Some(tag) => ufs.read_range_of(&resolved.ufs_uri, self.pos, want, &tag).await,
            None => ufs.read_range(&resolved.ufs_uri, self.pos, want).await,
        };
        let b = read.inspect_err(|_| self.done = true)?;
        if (b.len() as u64) < want {
            self.done = true;
        }
        self.pos += b.len() as u64;
        Ok(b)
    }
}
