//! Access to under file systems (UFS) — `file://` and `s3://` — over Apache OpenDAL, behind the [`Ufs`]
//! trait so that the worker, the coordinator and tests can swap in a fault-injecting implementation
//! (feature `testing`). Also the mount table: cluster path `/data/x` <-> UFS URI `s3://bucket/x`.
//!
//! This crate knows nothing about caching.

pub mod error;
#[cfg(feature = "testing")]
pub mod faulty;
pub mod mount_table;
pub mod object_meta;
pub mod opendal_ufs;
pub mod policy;
pub mod registry;
pub mod secret_refs;

pub use error::{UfsError, UfsResult};
pub use mount_table::{Mount, MountTable};
pub use object_meta::{ObjectMetadata, WriteCondition, WriteOptions};
pub use opendal_ufs::{OpendalUfs, install_process_defaults};
pub use policy::UfsPolicy;
pub use registry::UfsRegistry;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// What a stat or a listing says of one UFS entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UfsStatus {
    /// The full URI (`s3://bucket/dir/file`, `file:///tmp/x`), without trailing slash.
    pub uri: String,
    /// Whether this is a directory (or an S3 common prefix).
    pub is_dir: bool,
    /// Length in bytes (0 for directories).
    pub length: u64,
    /// The ETag (S3) or a content version string; `None` when the UFS has none.
    pub etag: Option<String>,
    /// Last modification time, when known.
    pub modified: Option<SystemTime>,
    /// What is stored with the object besides its bytes (`object_meta`), for this version: read by a
    /// `stat` of a file (`Some`, empty when nothing is stored), not by a listing (`None`).
    pub meta: Option<ObjectMetadata>,
}

/// Options of a listing.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Walk the whole tree (files only are returned when recursive; S3 has no directories).
    pub recursive: bool,
    /// Entries per UFS request (S3 `max-keys`); `None` leaves the UFS default.
    pub page_size: Option<usize>,
}

/// Mount options, as given to `POST /api/v1/mount` (`s3a.accessKeyId`, `s3.endpoint`, ...).
pub type MountOptions = BTreeMap<String, String>;

/// One under file system, rooted at a URI prefix (`s3://bucket/`, `file:///`).
///
/// All paths are full UFS URIs under the root. Reads return `Bytes` without copying what the UFS
/// library produced. Implementations are cheap to clone behind an `Arc`.
#[async_trait]
pub trait Ufs: Send + Sync + 'static {
    /// Length, ETag and modification time of a file or directory. `NotFound` when it does not exist.
    async fn stat(&self, uri: &str) -> UfsResult<UfsStatus>;

    /// The entries under a directory URI, streamed page by page (never the whole listing in memory).
    /// Non-recursive listings return files and sub-directories; recursive ones return files only.
    fn list(&self, uri: &str, opts: ListOptions) -> BoxStream<'static, UfsResult<UfsStatus>>;

    /// Bytes `[offset, offset + len)` of a file; shorter at end of file, empty past it.
    async fn read_range(&self, uri: &str, offset: u64, len: u64) -> UfsResult<Bytes>;

    /// Like [`read_range`](Ufs::read_range), but only from the version whose tag
    /// (`loam_core::version::version_tag`) is `tag`: [`UfsError::Changed`] when the file is another version
    /// now, or became one during the read, so that bytes of two versions are never joined. S3 sends
    /// `If-Match`; `file://` compares the tag of the descriptor it reads before and after the read.
    async fn read_range_of(&self, uri: &str, offset: u64, len: u64, tag: &str) -> UfsResult<Bytes>;

    /// Like [`read_range_of`](Ufs::read_range_of), in pieces of `piece` bytes (the last one shorter), each
    /// in a buffer of its own: the read-through caches and serves them as pages, and a page kept in memory
    /// or held by a slow response must not keep the whole run it was read in alive. Implementations fill
    /// piece-sized buffers as the bytes arrive (the copy out of the network buffers that a joined read
    /// makes anyway); this default splits one read, so its pieces share one buffer.
    async fn read_pieces_of(&self, uri: &str, offset: u64, len: u64, tag: &str, piece: u64) -> UfsResult<Vec<Bytes>> {
        let data = self.read_range_of(uri, offset, len, tag).await?;
        let piece = piece.max(1) as usize;
        Ok((0..data.len()).step_by(piece).map(|at| data.slice(at..(at + piece).min(data.len()))).collect())
    }

    /// Like [`read_pieces_of`](Ufs::read_pieces_of), each piece yielded as soon as it is complete, while
    /// the rest of the range is still on its way (a cold read streams to its client as the bytes arrive).
    /// Only bytes of version `tag` are yielded: a change detected mid-range ends the stream with
    /// [`UfsError::Changed`] after the pieces that were read before it, each of which was checked
    /// (`file://` checks its descriptor after each piece, S3 reads one `If-Match` response). The stream
    /// ends early, without an error, when the file does. This default yields the pieces of one
    /// [`read_pieces_of`](Ufs::read_pieces_of) once they have all arrived.
    fn stream_pieces_of<'a>(
        &'a self,
        uri: &'a str,
        offset: u64,
        len: u64,
        tag: &'a str,
        piece: u64,
    ) -> BoxStream<'a, UfsResult<Bytes>> {
        stream::once(self.read_pieces_of(uri, offset, len, tag, piece))
            .map(|r| match r {
                Ok(pieces) => stream::iter(pieces.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::once(futures::future::ready(Err(e))).right_stream(),
            })
            .flatten()
            .boxed()
    }

    /// Writes (creates or replaces) a whole file.
    async fn write(&self, uri: &str, data: Bytes) -> UfsResult<()>;

    /// Writes (creates or replaces) a file from a stream of chunks, never holding it whole; returns the
    /// bytes written. Readers see the old file or the new one, never a part: a failing body (an error
    /// from the stream, reported as `InvalidInput`) or UFS leaves the old file in place. The bytes and
    /// `opts.metadata` become visible together (see `object_meta` for what each UFS stores); a UFS that
    /// cannot store client metadata refuses with `Unsupported`, writing nothing.
    async fn write_stream(
        &self,
        uri: &str,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
        opts: WriteOptions,
    ) -> UfsResult<u64>;

    /// Deletes a file (missing is not an error), or a directory tree when `recursive`.
    async fn delete(&self, uri: &str, recursive: bool) -> UfsResult<()>;

    /// Deletes the file `uri` only while its ETag, as the S3 API answers it (`WriteCondition::Matches`),
    /// is `etag`: `ConditionFailed` when it is another, `NotFound` when there is no file. Atomic against
    /// the other writes of the same path as [`write_stream`](Ufs::write_stream)'s conditions are.
    async fn delete_if_match(&self, uri: &str, etag: &str) -> UfsResult<()>;

    /// Creates a directory (and its parents).
    async fn create_dir(&self, uri: &str) -> UfsResult<()>;

    /// Copies a file.
    async fn copy(&self, from: &str, to: &str) -> UfsResult<()>;

    /// Renames a file.
    async fn rename(&self, from: &str, to: &str) -> UfsResult<()>;
}
