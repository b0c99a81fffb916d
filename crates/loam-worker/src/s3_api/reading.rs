//! Reading an object through the cache, whichever worker the S3 request reached.
//!
//! - **The ring owner** (the primary of the object's UFS URI on the live ring, or this worker when the
//!   ring is empty) opens the file through its own `ReadThrough`: the record it serves (length, ETag,
//!   modification time) is trusted for `max_age`, and the bytes come from its page store, reading the UFS
//!   once per missing run of pages.
//! - **Any other worker** takes the object's length, version and metadata from the owner
//!   (`crate::non_owner::meta`: one internal request, kept for as long as the owner trusts its record, so
//!   no UFS stat per GET; the UFS itself only when the owner cannot answer), then streams the bytes from
//!   the owner with the cluster client, passing each piece on as it arrives (nothing buffered beyond the
//!   piece in hand, so the client's pace is the owner's), which fails over to the replicas and resumes a
//!   broken stream where it stopped. When every worker failed, this worker reads the rest through its own
//!   `ReadThrough`, from the byte the stream reached. If the bytes run out before the announced length
//!   (the object changed under the read), the body fails rather than ending short and looking complete.
//!   A forwarded stream that fails drops the owner's answer from this worker, so the retry asks again.
//! - **One version per response.** The ETag of the headers is the version tag (`loam_core::version`) the
//!   body is pinned to: the owner's own `OpenFile`, or, forwarded, a `VersionPin` that the owner, the
//!   replicas and this worker's fallback all honour (`If-Match`). If that version is replaced before the
//!   first byte, the answer is `503` (S3 clients retry it); after, the body is cut off. It never goes on
//!   with another version.
//!
//! - **Metadata** (`metadata`): the owner takes a version's stored metadata from the worker's
//!   `MetaCache` (one UFS stat per version, not per GET), a forwarding worker from the owner's answer. Stored metadata names the S3 ETag of its version (`file://`); that is what the headers say
//!   then, while the body stays pinned to the version tag.
//!
//! In both cases the first piece is read before the response headers go out, so that a failure at the
//! start is a proper S3 error rather than a `200` with a broken body; the rest streams, never whole in
//! memory. `s3s` wants a `Sync` body, which a boxed stream is not: [`SyncBody`] provides it without a
//! lock being taken (the stream is only polled through `&mut`).

use crate::error::{WorkerError, WorkerResult};
use crate::http_api::WorkerState;
use crate::read_through::OpenFile;
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use loam_client::{Client, ClientError, VersionPin};
use loam_core::time::epoch_millis;
use loam_ufs::{ObjectMetadata, UfsStatus};
use s3s::StdError;
use s3s::dto::StreamingBlob;
use s3s::stream::{ByteStream, RemainingLength};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the response headers say of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Length in bytes.
    pub length: u64,
    /// The version tag (`loam_core::version`) that the body is pinned to.
    pub tag: String,
    /// The ETag answered: the S3 ETag stored for this version when there is one, else the tag.
    pub etag: String,
    /// Last modification time, when the UFS knows it.
    pub modified: Option<SystemTime>,
    /// What is stored with this version besides its bytes.
    pub stored: Arc<ObjectMetadata>,
}

impl ObjectMeta {
    /// The metadata of an object of `length` bytes with the UFS's `etag` and modification time.
    pub fn new(length: u64, etag: Option<&str>, modified_ms: Option<i64>) -> Self {
        let tag = loam_core::version::version_tag(length, etag, modified_ms);
        let modified =
            modified_ms.and_then(|ms| u64::try_from(ms).ok()).map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        Self { length, etag: tag.clone(), tag, modified, stored: Arc::default() }
    }

    /// The metadata a UFS stat reported (with what is stored, when it read that).
    pub fn of_status(st: &UfsStatus) -> Self {
        let meta = Self::new(st.length, st.etag.as_deref(), st.modified.map(epoch_millis));
        meta.with_stored(Arc::new(st.meta.clone().unwrap_or_default()))
    }

    /// With `stored`, the metadata of this version (its ETag answered when it has one).
    pub fn with_stored(mut self, stored: Arc<ObjectMetadata>) -> Self {
        if let Some(e) = stored.etag.as_deref().filter(|e| !e.is_empty()) {
            self.etag = e.to_string();
        }
        self.stored = stored;
        self
    }
}

enum Source {
    /// This worker owns the object and serves this version of it.
    Local(Box<OpenFile>),
    /// Another worker owns it.
    Remote,
}

/// An object opened for reading.
pub struct Opened {
    /// Its metadata.
    pub meta: ObjectMeta,
    uri: String,
    source: Source,
}

impl Opened {
    /// When this worker's record of the object was last validated against the UFS (ms since the epoch);
    /// `None` when another worker serves it.
    pub fn validated_ms(&self) -> Option<i64> {
        match &self.source {
            Source::Local(f) => Some(f.record.validated_ms),
            Source::Remote => None,
        }
    }
}

/// Whether this worker is the ring owner of `uri` (an empty ring: nobody else can be).
pub fn owns(state: &WorkerState, uri: &str) -> bool {
    state.members.ring().primary(uri).is_none_or(|(_, w)| w.id == state.id)
}

/// Opens the object at UFS URI `uri`. A directory is no object: `NotFound`.
pub async fn open(state: &WorkerState, uri: &str) -> WorkerResult<Opened> {
    if owns(state, uri) {
        return open_here(state, uri).await;
    }
    let (resolved, _) = state.rt.resolve(uri)?;
    let meta = match crate::non_owner::meta::lookup(state, &resolved.ufs_uri).await {
        Some(meta) => meta,
        None => ObjectMeta::of_status(&stat_file(state, uri).await?),
    };
    Ok(Opened { meta, uri: resolved.ufs_uri, source: Source::Remote })
}

/// Opens the object at UFS URI `uri` through this worker's own cache, as its owner does (the answer of
/// `crate::non_owner::meta` to the other workers too).
pub async fn open_here(state: &WorkerState, uri: &str) -> WorkerResult<Opened> {
    // `uri` was resolved under a mount already, so the only invalid input left is "a directory".
    let f = state.rt.open(uri).await.map_err(|e| match e {
        WorkerError::InvalidInput(m) => WorkerError::NotFound(m),
        e => e,
    })?;
    let r = &f.record;
    let meta = ObjectMeta::new(r.length, r.etag.as_deref(), r.modified_ms);
    let cache = state.writes.meta_cache();
    if let Some(stored) = cache.get(uri, &meta.tag) {
        return Ok(Opened { meta: meta.with_stored(stored), uri: uri.to_string(), source: Source::Local(Box::new(f)) });
    }
    let st = stat_file(state, uri).await?;
    let now = ObjectMeta::of_status(&st);
    cache.put(uri, &now.tag, now.stored.clone());
    if now.tag == meta.tag {
        return Ok(Opened {
            meta: meta.with_stored(now.stored),
            uri: uri.to_string(),
            source: Source::Local(Box::new(f)),
        });
    }
    // The record is older than the UFS (within max_age): serve the version that was just stat'ed.
    let f = state.rt.open_version(uri, &now.tag).await.map_err(|e| match e {
        WorkerError::Changed(m) => WorkerError::Unavailable(format!("{m}; retry")),
        e => e,
    })?;
    Ok(Opened { meta: now, uri: uri.to_string(), source: Source::Local(Box::new(f)) })
}

/// The UFS status of the file `uri` (with its stored metadata); a directory is `NotFound`.
async fn stat_file(state: &WorkerState, uri: &str) -> WorkerResult<UfsStatus> {
    let (resolved, ufs) = state.rt.resolve(uri)?;
    let st = ufs.stat(&resolved.ufs_uri).await?;
    if st.is_dir {
        return Err(WorkerError::NotFound(format!("{uri} is a directory, not an object")));
    }
    Ok(st)
}

/// The body of bytes `[start, end)` of an opened object; fails before any byte is sent if its start
/// cannot be read.
pub async fn body(
    state: &Arc<WorkerState>,
    client: &Client,
    opened: Opened,
    start: u64,
    end: u64,
) -> WorkerResult<StreamingBlob> {
    let len = end.saturating_sub(start);
    let mut parts = match opened.source {
        Source::Local(f) => state.rt.read_range(*f, start, len),
        Source::Remote => Forward::start(state.clone(), client, opened.uri, &opened.meta.tag, start, end),
    };
    let first = match len {
        0 => None,
        // The S3 client asked for no version: the one of the headers was replaced before the first byte.
        _ => parts.next().await.transpose().map_err(|e| match e {
            WorkerError::Changed(m) => WorkerError::Unavailable(format!("{m}; retry")),
            e => e,
        })?,
    };
    let rest = futures::stream::iter(first.map(Ok)).chain(parts).map(|r| r.map_err(std::io::Error::other));
    Ok(StreamingBlob::new(SyncBody::new(rest.boxed(), len)))
}

/// The bytes of a remote owner (then replicas, then this worker's read-through), as worker results.
struct Forward {
    state: Arc<WorkerState>,
    uri: String,
    /// The version of the headers, which every byte must come from.
    tag: String,
    pos: u64,
    end: u64,
    remote: Option<BoxStream<'static, Result<Bytes, ClientError>>>,
    local: Option<BoxStream<'static, WorkerResult<Bytes>>>,
    done: bool,
}

impl Forward {
    fn start(
        state: Arc<WorkerState>,
        client: &Client,
        uri: String,
        tag: &str,
        start: u64,
        end: u64,
    ) -> BoxStream<'static, WorkerResult<Bytes>> {
        let remote = Some(client.read_pinned(&uri, start, end - start, VersionPin::to(tag)));
        let tag = tag.to_string();
        let this = Self { state, uri, tag, pos: start, end, remote, local: None, done: false };
        futures::stream::unfold(this, |mut f| async move {
            let item = f.next().await?;
            Some((item, f))
        })
        .boxed()
    }

    async fn next(&mut self) -> Option<WorkerResult<Bytes>> {
        loop {
            if self.done || self.pos >= self.end {
                return None;
            }
            if let Some(local) = &mut self.local {
                let item = match local.next().await {
                    Some(item) => item,
                    None => Err(self.short()),
                };
                return self.take(item);
            }
            if let Some(remote) = &mut self.remote {
                match remote.next().await {
                    Some(Ok(b)) => {
                        self.state.metrics.data.forwarded_bytes.inc_by(b.len() as u64);
                        return self.take(Ok(b));
                    }
                    Some(Err(ClientError::Status { status, message })) => {
                        let e = match status {
                            404 => WorkerError::NotFound(message),
                            412 => WorkerError::Changed(message),
                            _ => WorkerError::InvalidInput(format!("{message} (HTTP {status} from the owning worker)")),
                        };
                        return self.take(Err(e));
                    }
                    Some(Err(e)) => {
                        loam_core::warn_limited!(
                            "no worker could serve {} from byte {}; reading it here: {e}",
                            self.uri,
                            self.pos
                        );
                        self.remote = None;
                    }
                    None => return self.take(Err(self.short())),
                }
            }
            let f = match self.state.rt.open_version(&self.uri, &self.tag).await {
                Ok(f) if f.record.length >= self.end => f,
                Ok(_) => return self.take(Err(self.short())),
                Err(e) => return self.take(Err(e)),
            };
            self.local = Some(self.state.rt.read_range(f, self.pos, self.end - self.pos));
        }
    }

    /// Passes `item` on, counting its bytes; an error ends the stream.
    fn take(&mut self, item: WorkerResult<Bytes>) -> Option<WorkerResult<Bytes>> {
        match &item {
            Ok(b) => self.pos += b.len() as u64,
            Err(_) => {
                self.done = true;
                // The owner's answer named a version that could not be served whole: ask again next time.
                crate::non_owner::meta::forget(&self.state, &self.uri);
            }
        }
        Some(item)
    }

    fn short(&self) -> WorkerError {
        WorkerError::Unavailable(format!(
            "{} ended at byte {} of {}: the object changed while it was read; retry",
            self.uri, self.pos, self.end
        ))
    }
}

/// A body stream that is `Sync` (as `s3s` requires) and knows how many bytes it has left.
pub struct SyncBody {
    inner: Mutex<BoxStream<'static, std::io::Result<Bytes>>>,
    remaining: u64,
}

impl SyncBody {
    /// Wraps `inner`, which will yield `len` bytes.
    pub fn new(inner: BoxStream<'static, std::io::Result<Bytes>>, len: u64) -> Self {
        Self { inner: Mutex::new(inner), remaining: len }
    }
}

impl Stream for SyncBody {
    type Item = Result<Bytes, StdError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // `get_mut` takes no lock; nothing ever locks it, so it cannot be poisoned either.
        let inner = this.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        match inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(b))) => {
                this.remaining = this.remaining.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl ByteStream for SyncBody {
    fn remaining_length(&self) -> RemainingLength {
        RemainingLength::new_exact(usize::try_from(self.remaining).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_the_ufs_ones_or_made_of_length_and_time() {
        let m = ObjectMeta::new(10, Some("abc"), Some(1_000));
        assert_eq!(m.etag, "abc");
        assert_eq!(m.modified, Some(UNIX_EPOCH + Duration::from_secs(1)));
        let m = ObjectMeta::new(255, None, Some(16));
        assert_eq!(m.etag, "ff-10");
        assert_ne!(ObjectMeta::new(255, None, Some(17)).etag, m.etag, "a newer write changes the ETag");
        assert_eq!(ObjectMeta::new(0, Some(""), None).modified, None);
    }

    #[tokio::test]
    async fn sync_body_counts_down_what_it_passes_on() {
        let parts = vec![Ok(Bytes::from_static(b"abc")), Ok(Bytes::from_static(b"de"))];
        let mut body = SyncBody::new(futures::stream::iter(parts).boxed(), 5);
        assert_eq!(body.remaining_length().exact(), Some(5));
        assert_eq!(body.next().await.unwrap().unwrap(), "abc");
        assert_eq!(body.remaining_length().exact(), Some(2));
        assert_eq!(body.next().await.unwrap().unwrap(), "de");
        assert!(body.next().await.is_none());
    }
}
