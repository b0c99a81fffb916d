//! The one client of the Coordinator's REST API, for every caller: the CLI, `loam fs` and `loam fuse`
//! (mounts and nodes), and the worker (load forwarding, file index reports).
//!
//! A highly available deployment runs several Coordinators on one etcd; one leads, the others serve
//! reads and forward writes to it (`loam_coordinator::api::leader`). A caller is given their URLs as a
//! list ([`parse_list`]: `URL,URL`, or an array in a config file) and [`Coordinators::send`] does the
//! rest:
//!
//! - **Order.** A request goes to the Coordinator that answered last (the first of the list at start),
//!   then to the next ones in list order, wrapping around, each at most once.
//! - **What moves it on:** no answer (connect refused or failed, a timeout, the connection lost before an
//!   answer) or a `503`, which a follower that knows no reachable leader answers (with `Retry-After`).
//!   Every other answer, an error status included, is the answer: a `4xx` would be the same anywhere,
//!   since every Coordinator serves the same cluster.
//! - **Stickiness.** The Coordinator that answered is tried first by every later request of this client
//!   and its clones, so a dead first URL costs one failed connect, not one per request.
//! - **Nobody answered:** when some Coordinator answered `503`, the last such answer is returned, so the
//!   caller shows its message (`no Coordinator leader: …`) as it shows any error answer; otherwise a
//!   [`PeerError`] of kind `Unavailable` naming every URL and why it failed.
//!
//! The HTTP client, the token and the timeouts are the caller's: it passes its [`PeerClient`] (TLS and
//! token) and sets a timeout on each request in the builder closure, which is called once per attempt.
//!
//! **Decision (retrying writes):** a write whose answer was lost (a timeout, a dropped connection) may
//! have been done; sending it to the next Coordinator may then meet its own first attempt. Loam's writes
//! take that: a job submit answers `409` with the existing job (the CLI and `/v1/load` report it as
//! such), a mount or a rule written twice is the same record. Waiting for the same Coordinator instead
//! would leave a client stuck on a dead one, which is what the list is for.

use crate::PeerClient;
use crate::peer::PeerError;
use loam_core::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why a list of Coordinator URLs cannot be used (1-based entry numbers, as a user counts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlListError {
    /// No URL at all.
    #[error("no Coordinator URL given")]
    Empty,
    /// An entry is empty (`a,,b`).
    #[error("entry {0} is empty")]
    EmptyEntry(usize),
    /// An entry is not a URL.
    #[error("entry {index} ({entry:?}) is not a URL: {why}")]
    NotAUrl {
        /// Its number.
        index: usize,
        /// The entry.
        entry: String,
        /// The parser's reason.
        why: String,
    },
    /// An entry's scheme is not `http` or `https`, or it has no host.
    #[error("entry {index} ({entry:?}) must be an http:// or https:// URL with a host")]
    Scheme {
        /// Its number.
        index: usize,
        /// The entry.
        entry: String,
    },
}

/// Checks a list of Coordinator base URLs (already split on commas, empty entries kept so that they are
/// refused by number: `loam_config::values::split_list_with_empties`): each an `http://` or `https://`
/// URL with a host. Answers them without a trailing `/`.
pub fn parse_list(items: &[String]) -> Result<Vec<String>, UrlListError> {
    if items.is_empty() {
        return Err(UrlListError::Empty);
    }
    items
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let index = i + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(UrlListError::EmptyEntry(index));
            }
            let url = reqwest::Url::parse(entry).map_err(|e| UrlListError::NotAUrl {
                index,
                entry: entry.to_string(),
                why: e.to_string(),
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
                return Err(UrlListError::Scheme { index, entry: entry.to_string() });
            }
            Ok(entry.trim_end_matches('/').to_string())
        })
        .collect()
}

/// The Coordinators of a cluster, tried in order, sticking to the one that answered (see the module).
/// Clones share the stickiness.
#[derive(Clone, Debug)]
pub struct Coordinators {
    urls: Arc<[String]>,
    /// The index of the Coordinator that answered last.
    current: Arc<AtomicUsize>,
    http: PeerClient,
}

impl Coordinators {
    /// The Coordinators at `urls` (checked by [`parse_list`]), reached through `http`.
    pub fn new(urls: &[String], http: PeerClient) -> Result<Self, UrlListError> {
        let urls = parse_list(urls)?;
        Ok(Self { urls: urls.into(), current: Arc::new(AtomicUsize::new(0)), http })
    }

    /// The base URLs, in order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The base URL tried first now (the one that answered last).
    pub fn current(&self) -> &str {
        &self.urls[self.current.load(Ordering::Relaxed) % self.urls.len()]
    }

    /// The URLs for messages: `http://a` or `http://a, http://b`.
    pub fn describe(&self) -> String {
        self.urls.join(", ")
    }

    /// The client the requests go out on (its token and TLS).
    pub fn peer(&self) -> &PeerClient {
        &self.http
    }

    /// Sends `method` on `path` (from `/api/v1/…`, with its query if any) to the Coordinators in turn;
    /// `build` adds what the request carries (query, body, timeout, headers) and is called once per
    /// attempt. Answers the first answer that is not a `503` (any status: the caller decodes it), else the
    /// last `503`, else why no Coordinator answered.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, PeerError> {
        let n = self.urls.len();
        let start = self.current.load(Ordering::Relaxed) % n;
        let mut failures = Vec::new();
        let mut unavailable = None;
        for k in 0..n {
            let i = (start + k) % n;
            let base = &self.urls[i];
            let req = build(self.http.request(method.clone(), format!("{base}{path}")));
            match req.send().await {
                Ok(r) if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                    failures.push(format!("{base} answered 503"));
                    unavailable = Some(r);
                }
                Ok(r) => {
                    if i != start {
                        tracing::info!("the Coordinator at {base} answered; later requests go to it first");
                        self.current.store(i, Ordering::Relaxed);
                    }
                    return Ok(r);
                }
                // A request that cannot be built fails alike everywhere.
                Err(e) if e.is_builder() => {
                    return Err(PeerError::new(ErrorKind::Internal, format!("a request to {base}: {e}")));
                }
                Err(e) => {
                    let what = if e.is_timeout() { "timed out" } else { "unreachable" };
                    tracing::debug!("the Coordinator at {base} {what}: {e:#}");
                    failures.push(format!("{base} {what}: {}", error_chain(&e)));
                }
            }
        }
        match unavailable {
            Some(r) => Ok(r),
            None => Err(PeerError::new(
                ErrorKind::Unavailable,
                format!("no Coordinator could be reached ({})", failures.join("; ")),
            )),
        }
    }
}

impl Coordinators {
    /// [`Coordinators::send`], then the JSON body of a success; an error status is a [`PeerError`] of its
    /// kind, naming the Coordinator that answered.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<T, PeerError> {
        let resp = self.send(method, path, build).await?;
        let peer = format!("the Coordinator at {}", self.current());
        crate::peer::decode(&peer, crate::peer::success(&peer, resp).await?).await
    }
}

/// `e` and its causes, which say why a connection failed (`Connection refused`, a TLS error).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
