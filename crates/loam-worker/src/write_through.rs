//! Write-through: UFS operations through the worker (write, delete, copy, rename, mkdir, touch) that keep
//! every worker's cache coherent with what they did.
//!
//! **Coherence.** After the UFS operation, the cached pages and file record of every affected file (under
//! the prefix, for a directory) are dropped on this worker *before the call returns*, so a re-read through
//! this worker never serves old bytes however long `max_age` is. The other live workers of the
//! `MembershipView` — any of them may hold the file, as primary, replica, or a reader's fallback — are
//! told the same through `POST /v1/internal/invalidate` ([`Invalidation`]), concurrently, before the call
//! returns too. Each file dropped is read again from the UFS on its next read.
//!
//! The drop happens whatever the UFS answered once the operation was started: a failed S3 rename may
//! have copied without deleting, a failed directory delete may have deleted half; dropping an unchanged
//! file costs one re-read, keeping a changed one would serve old bytes.
//!
//! **A peer that cannot be reached** does not fail the operation: the UFS already changed, and failing
//! would make the client retry a write that succeeded. The peer's freshness check (ETag, length and
//! modification time, re-validated every `max_age`) drops the old version on its first read after that;
//! until then it may serve it. A warning is logged and `loam_worker_peer_invalidations_failed` counts it.
//! A peer that is down loses its memory tier anyway, and checks its disk records on their next read.
//!
//! Directories: S3 has none, so a directory rename moves file by file (listed first, then moved up to
//! [`MOVES_IN_PARALLEL`] at a time) and then deletes what is left of the source (empty directories,
//! markers); empty sub-directories are not recreated at the destination. Copies and renames across two
//! mounts stream the bytes through this worker.

use crate::error::{WorkerError, WorkerResult};
use crate::meta_cache::MetaCache;
use crate::metrics::WorkerMetrics;
use crate::path_ids::PathIds;
use crate::read_through::ReadThrough;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use loam_client::{MembershipView, PeerClient, PeerError};
use loam_core::WorkerId;
use loam_ufs::mount_table::Resolved;
use loam_ufs::{ListOptions, Ufs, UfsError, UfsStatus, WriteOptions};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Version of the [`Invalidation`] JSON.
pub const INVALIDATION_VERSION: u32 = 1;
/// How long a peer may take to answer an invalidation.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// Files of a directory rename moved at once.
pub const MOVES_IN_PARALLEL: usize = 8;
/// Bytes per UFS read when a copy streams between two mounts.
const COPY_CHUNK: u64 = 8 * 1024 * 1024;

/// Where a worker takes an [`Invalidation`] (`POST`, answer [`Invalidated`]).
pub const INVALIDATE_PATH: &str = "/v1/internal/invalidate";

/// `POST /v1/internal/invalidate`: drop these files from the cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Invalidation {
    /// Format version ([`INVALIDATION_VERSION`]).
    pub version: u32,
    /// Full UFS URIs of files to drop.
    #[serde(default)]
    pub uris: Vec<String>,
    /// Directory URIs (no trailing slash): every cached file under one is dropped.
    #[serde(default)]
    pub prefixes: Vec<String>,
}

/// The answer to an [`Invalidation`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Invalidated {
    /// Format version ([`INVALIDATION_VERSION`]).
    pub version: u32,
    /// Cached files dropped.
    pub files: u64,
}

/// UFS operations through this worker, keeping the cluster's caches coherent.
pub struct WriteThrough {
    rt: Arc<ReadThrough>,
    members: MembershipView,
    id: WorkerId,
    path_ids: Arc<PathIds>,
    metrics: WorkerMetrics,
    peers: PeerClient,
    /// Object metadata by URI and version (`meta_cache`), dropped with whatever is invalidated.
    meta: MetaCache,
}

impl WriteThrough {
    /// The write-through layer of worker `id`, telling the other workers of `members` what changed.
    pub fn new(
        rt: Arc<ReadThrough>,
        members: MembershipView,
        id: WorkerId,
        path_ids: Arc<PathIds>,
        metrics: WorkerMetrics,
        token: loam_auth::Credential,
    ) -> WorkerResult<Arc<Self>> {
        let http = loam_client::peer::build(
            loam_client::peer::client_builder().timeout(PEER_TIMEOUT).connect_timeout(PEER_TIMEOUT),
        )
        .map_err(|e| WorkerError::Unavailable(format!("cannot build the HTTP client for peers: {e}")))?;
        let peers = PeerClient::new(http, token);
        Ok(Arc::new(Self { rt, members, id, path_ids, metrics, peers, meta: MetaCache::default() }))
    }

    /// This worker's object metadata by URI and version.
    pub fn meta_cache(&self) -> &MetaCache {
        &self.meta
    }

    /// The client this worker calls the other members with (the cluster token, the peer timeout).
    pub fn peers(&self) -> &PeerClient {
        &self.peers
    }

    /// Writes `body` to `uri` in the UFS (streamed) with `opts` (its metadata, a condition), then
    /// invalidates the cache for `uri` on this worker and on its ring owners; returns the new UFS status.
    pub async fn put(
        &self,
        uri: &str,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
        opts: WriteOptions,
    ) -> WorkerResult<UfsStatus> {
        let (target, ufs) = self.resolve(uri)?;
        let uri = target.ufs_uri;
        let written = ufs.write_stream(&uri, body, opts).await;
        let dropped = self.invalidate(Invalidation::files(vec![uri.clone()])).await;
        written?;
        dropped?;
        self.path_ids.remember(&uri);
        Ok(ufs.stat(&uri).await?)
    }

    /// Deletes a file, or a directory (an empty one, or any when `recursive`); missing is `NotFound`.
    pub async fn delete(&self, uri: &str, recursive: bool) -> WorkerResult<()> {
        let (target, ufs) = self.resolve(uri)?;
        refuse_root(&target, "delete")?;
        let uri = target.ufs_uri;
        let st = ufs.stat(&uri).await?;
        if st.is_dir && !recursive && !is_empty_dir(ufs.as_ref(), &uri).await? {
            return Err(WorkerError::InvalidInput(format!("{uri} is a directory that is not empty; pass recursive")));
        }
        // An empty directory goes with a recursive delete, which also takes an S3 `dir/` marker.
        let deleted = ufs.delete(&uri, st.is_dir).await;
        let gone = if st.is_dir { Invalidation::tree(&uri) } else { Invalidation::files(vec![uri]) };
        let dropped = self.invalidate(gone).await;
        deleted?;
        dropped
    }

    /// Deletes the file `uri` only while its ETag (as the S3 API answers it) is `etag` (`Ufs::delete_if_match`).
    pub async fn delete_if_match(&self, uri: &str, etag: &str) -> WorkerResult<()> {
        let (target, ufs) = self.resolve(uri)?;
        refuse_root(&target, "delete")?;
        let uri = target.ufs_uri;
        let deleted = ufs.delete_if_match(&uri, etag).await;
        // Dropped whether or not the condition held: a copy of a version that failed it is no less valid.
        let dropped = self.invalidate(Invalidation::files(vec![uri])).await;
        deleted?;
        dropped
    }

    /// Copies a file (replacing `to`); across mounts the bytes stream through this worker.
    pub async fn copy(&self, from: &str, to: &str) -> WorkerResult<()> {
        let (src, src_ufs) = self.resolve(from)?;
        let (dst, dst_ufs) = self.resolve(to)?;
        if src.ufs_uri == dst.ufs_uri {
            return Err(WorkerError::InvalidInput(format!("cannot copy {} onto itself", src.ufs_uri)));
        }
        let st = src_ufs.stat(&src.ufs_uri).await?;
        if st.is_dir {
            return Err(WorkerError::InvalidInput(format!("{} is a directory; only files can be copied", st.uri)));
        }
        let copied = copy_file(&src, &src_ufs, &dst, &dst_ufs, st.length).await;
        let dropped = self.invalidate(Invalidation::files(vec![dst.ufs_uri.clone()])).await;
        copied?;
        dropped?;
        self.path_ids.remember(&dst.ufs_uri);
        Ok(())
    }

    /// Renames a file (replacing `to`) or a directory (`to` must not exist).
    pub async fn rename(&self, from: &str, to: &str) -> WorkerResult<()> {
        let (src, src_ufs) = self.resolve(from)?;
        let (dst, dst_ufs) = self.resolve(to)?;
        refuse_root(&src, "rename")?;
        refuse_root(&dst, "rename onto")?;
        if src.ufs_uri == dst.ufs_uri {
            return Err(WorkerError::InvalidInput(format!("cannot rename {} onto itself", src.ufs_uri)));
        }
        let st = src_ufs.stat(&src.ufs_uri).await?;
        match dst_ufs.stat(&dst.ufs_uri).await {
            Ok(d) if d.is_dir || st.is_dir => {
                return Err(WorkerError::InvalidInput(format!("cannot rename {} onto {}: it exists", st.uri, d.uri)));
            }
            Ok(_) | Err(UfsError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if !st.is_dir {
            let moved = move_file(&src, &src_ufs, &dst, &dst_ufs, st.length).await;
            let dropped = self.invalidate(Invalidation::files(vec![src.ufs_uri.clone(), dst.ufs_uri.clone()])).await;
            moved?;
            dropped?;
            self.path_ids.remember(&dst.ufs_uri);
            return Ok(());
        }
        if dst.ufs_uri.starts_with(&format!("{}/", src.ufs_uri)) {
            return Err(WorkerError::InvalidInput(format!("cannot move {} into itself", src.ufs_uri)));
        }
        let moved = self.move_tree(&src, &src_ufs, &dst, &dst_ufs).await;
        let mut dropped = Invalidation::tree(&src.ufs_uri);
        dropped.add_tree(&dst.ufs_uri);
        let dropped = self.invalidate(dropped).await;
        moved?;
        dropped
    }

    /// Creates a directory (and its parents); an existing directory is a success.
    pub async fn mkdir(&self, uri: &str) -> WorkerResult<()> {
        let (target, ufs) = self.resolve(uri)?;
        match ufs.stat(&target.ufs_uri).await {
            Ok(st) if st.is_dir => return Ok(()),
            // A file and a directory of one name: the conflict the UFS reports when the file is a parent.
            Ok(st) => return Err(UfsError::Conflict(format!("{} exists and is a file", st.uri)).into()),
            Err(UfsError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(ufs.create_dir(&target.ufs_uri).await?)
    }

    /// Creates an empty file if there is none; an existing file is left as it is (an object store cannot
    /// change a modification time without rewriting the object), so its cache stays valid.
    pub async fn touch(&self, uri: &str) -> WorkerResult<()> {
        let (target, ufs) = self.resolve(uri)?;
        let uri = target.ufs_uri;
        match ufs.stat(&uri).await {
            Ok(st) if st.is_dir => return Err(WorkerError::InvalidInput(format!("{uri} is a directory"))),
            Ok(_) => return Ok(()),
            Err(UfsError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let written = ufs.write(&uri, Bytes::new()).await;
        // A record of a file deleted and re-created behind the cache's back must not outlive this.
        let dropped = self.invalidate(Invalidation::files(vec![uri.clone()])).await;
        written?;
        dropped?;
        self.path_ids.remember(&uri);
        Ok(())
    }

    /// Drops the files of `inv` from this worker's cache; returns how many were cached.
    pub async fn invalidate_local(&self, inv: &Invalidation) -> WorkerResult<u64> {
        self.meta.forget(&inv.uris, &inv.prefixes);
        let pages = self.rt.pages();
        let mut ids: Vec<String> = inv.uris.iter().map(|u| loam_core::file_id(u)).collect();
        if !inv.prefixes.is_empty() {
            let dirs: Vec<String> = inv.prefixes.iter().map(|p| format!("{}/", p.trim_end_matches('/'))).collect();
            for id in pages.file_ids() {
                if pages.file(&id).is_some_and(|rec| dirs.iter().any(|d| rec.ufs_uri.starts_with(d.as_str()))) {
                    ids.push(id);
                }
            }
        }
        let mut dropped = 0;
        for id in ids {
            if pages.file(&id).is_some() {
                pages.remove_file(&id).await?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Drops `inv` here, then on every other live worker (see the module docs for a peer that fails).
    async fn invalidate(&self, inv: Invalidation) -> WorkerResult<()> {
        let local = self.invalidate_local(&inv).await;
        let ring = self.members.ring();
        let peers: Vec<String> = ring.members().filter(|(_, w)| w.id != self.id).map(|(_, w)| w.http_base()).collect();
        stream::iter(peers)
            .for_each_concurrent(None, |base| {
                let inv = &inv;
                async move {
                    if let Err(e) = self.tell_peer(&base, inv).await {
                        self.metrics.peer_invalidations_failed.inc();
                        tracing::warn!(
                            "could not invalidate {} files and {} directories on {base} (it re-validates them \
                             within max_age): {e}",
                            inv.uris.len(),
                            inv.prefixes.len()
                        );
                    }
                }
            })
            .await;
        local.map(|_| ())
    }

    async fn tell_peer(&self, base: &str, inv: &Invalidation) -> Result<(), PeerError> {
        let url = format!("{base}{INVALIDATE_PATH}");
        self.peers.send(base, self.peers.request(reqwest::Method::POST, &url).json(inv)).await.map(|_| ())
    }

    fn resolve(&self, path: &str) -> WorkerResult<(Resolved, Arc<dyn Ufs>)> {
        self.rt.resolve(path)
    }

    /// Moves every file under `src` to the same relative path under `dst`, then deletes `src`'s tree.
    async fn move_tree(
        &self,
        src: &Resolved,
        src_ufs: &Arc<dyn Ufs>,
        dst: &Resolved,
        dst_ufs: &Arc<dyn Ufs>,
    ) -> WorkerResult<()> {
        let opts = ListOptions { recursive: true, page_size: None };
        // Listed whole before moving: a listing is not promised to be stable while its keys move away.
        let files: Vec<UfsStatus> = src_ufs.list(&src.ufs_uri, opts).try_collect().await?;
        dst_ufs.create_dir(&dst.ufs_uri).await?;
        let prefix = format!("{}/", src.ufs_uri);
        let prefix = prefix.as_str();
        stream::iter(files)
            .map(|f| async move {
                let rel = f.uri.strip_prefix(prefix).unwrap_or(&f.uri);
                let from = Resolved { ufs_uri: f.uri.clone(), ..src.clone() };
                let to = Resolved { ufs_uri: format!("{}/{rel}", dst.ufs_uri), ..dst.clone() };
                move_file(&from, src_ufs, &to, dst_ufs, f.length).await?;
                self.path_ids.remember(&to.ufs_uri);
                Ok::<_, WorkerError>(())
            })
            .buffer_unordered(MOVES_IN_PARALLEL)
            .try_collect::<()>()
            .await?;
        Ok(src_ufs.delete(&src.ufs_uri, true).await?)
    }
}

impl Invalidation {
    /// Drops these files.
    pub fn files(uris: Vec<String>) -> Self {
        Self { version: INVALIDATION_VERSION, uris, prefixes: Vec::new() }
    }

    /// Drops `uri` and every file under it.
    pub fn tree(uri: &str) -> Self {
        let mut inv = Self::files(Vec::new());
        inv.add_tree(uri);
        inv
    }

    /// Adds `uri` and every file under it.
    pub fn add_tree(&mut self, uri: &str) {
        let uri = uri.trim_end_matches('/').to_string();
        self.uris.push(uri.clone());
        self.prefixes.push(uri);
    }
}

fn refuse_root(r: &Resolved, what: &str) -> WorkerResult<()> {
    if r.ufs_uri.trim_end_matches('/') == r.mount.ufs.trim_end_matches('/') {
        return Err(WorkerError::InvalidInput(format!("cannot {what} the root of mount {}", r.mount.path)));
    }
    Ok(())
}

async fn is_empty_dir(ufs: &dyn Ufs, uri: &str) -> WorkerResult<bool> {
    let mut entries = ufs.list(uri, ListOptions { recursive: false, page_size: Some(1) });
    match entries.next().await {
        None => Ok(true),
        Some(Ok(_)) => Ok(false),
        Some(Err(e)) => Err(e.into()),
    }
}

fn same_ufs(a: &Resolved, b: &Resolved) -> bool {
    a.mount.path == b.mount.path
}

/// Copies one file of `length` bytes: within a UFS by its own copy, across two by streaming.
async fn copy_file(
    src: &Resolved,
    src_ufs: &Arc<dyn Ufs>,
    dst: &Resolved,
    dst_ufs: &Arc<dyn Ufs>,
    length: u64,
) -> WorkerResult<()> {
    if same_ufs(src, dst) {
        return Ok(src_ufs.copy(&src.ufs_uri, &dst.ufs_uri).await?);
    }
    dst_ufs
        .write_stream(&dst.ufs_uri, read_stream(src_ufs.clone(), src.ufs_uri.clone(), length), Default::default())
        .await?;
    Ok(())
}

/// Moves one file: within a UFS by its own rename, across two by a streamed copy and a delete.
async fn move_file(
    src: &Resolved,
    src_ufs: &Arc<dyn Ufs>,
    dst: &Resolved,
    dst_ufs: &Arc<dyn Ufs>,
    length: u64,
) -> WorkerResult<()> {
    if same_ufs(src, dst) {
        return Ok(src_ufs.rename(&src.ufs_uri, &dst.ufs_uri).await?);
    }
    copy_file(src, src_ufs, dst, dst_ufs, length).await?;
    Ok(src_ufs.delete(&src.ufs_uri, false).await?)
}

/// The bytes of a file of `length` bytes, read in [`COPY_CHUNK`] ranges. A file that turns out shorter
/// changed while it was read: that fails the stream rather than writing a truncated copy. UFS errors
/// travel inside the `io::Error`, so the write reports the source's own error kind.
fn read_stream(ufs: Arc<dyn Ufs>, uri: String, length: u64) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    stream::try_unfold(0u64, move |offset| {
        let (ufs, uri) = (ufs.clone(), uri.clone());
        async move {
            if offset >= length {
                return Ok(None);
            }
            let want = COPY_CHUNK.min(length - offset);
            let data = ufs.read_range(&uri, offset, want).await.map_err(std::io::Error::other)?;
            if data.len() as u64 != want {
                let changed = UfsError::Unavailable(format!("{uri} changed while it was copied; retry"));
                return Err(std::io::Error::other(changed));
            }
            Ok(Some((data, offset + want)))
        }
    })
    .boxed()
}
