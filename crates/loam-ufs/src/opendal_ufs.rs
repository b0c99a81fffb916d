//! [`OpendalUfs`]: the [`Ufs`] trait over one Apache OpenDAL operator (fs or S3).
//!
//! One `OpendalUfs` serves one mount: its operator is rooted at the mount's UFS root
//! (`file:///srv/data` → fs service rooted at `/srv/data`; `s3://bucket/prefix` → S3 service for `bucket`
//! rooted at `prefix`). Methods take full URIs; a URI of another scheme or authority, or outside the
//! root, is `InvalidInput` — rooting the operator at the mount keeps a bad path from reaching files
//! outside it (OpenDAL's fs service also refuses keys that climb out of its root).
//!
//! Behaviour shared by both backends (the tests in `tests/ufs/behaviour` hold each to it):
//! - `stat` of a directory — an fs directory, or an S3 prefix with objects under it (or a `dir/` marker) —
//!   is `is_dir: true`, whether or not the URI ends in `/`. S3 answers a `HEAD` of `dir` with 404, so a
//!   `NotFound` file stat is retried as a directory stat (`dir/`, which OpenDAL answers with a one-key
//!   listing). ETags lose their surrounding quotes; the fs service has no ETag (`None`).
//! - `list` of a missing directory (or of a file) is an **empty stream** on both: S3 cannot tell a missing
//!   prefix from an empty one without an extra request, and OpenDAL's fs lister already answers so.
//!   Entries carry length and modification time from the listing itself (S3 also the ETag); fs
//!   entries that are neither file nor directory in `readdir` (symlinks) are resolved with a `stat`.
//! - `read_range` is one ranged request, shorter at end of file and empty past it, never an error.
//!   Surprise: OpenDAL insists that a bounded range is satisfied in full — `read_with(..).range(a..b)`
//!   fails with "reader got too little data" (S3) or `RangeNotSatisfied` (fs) when the file ends inside
//!   the range, and throws the bytes away. So we stream the range and keep what arrived before that
//!   error; S3 answers `416 InvalidRange` (`RangeNotSatisfied`) for a range starting at or past the
//!   end, which is empty bytes. Asking the length first would cost a second request per read. A
//!   zero-length read returns at once without touching the UFS (so it does not detect a missing file).
//!   A response that arrives in several network chunks is joined into one `Bytes` (one copy); a
//!   single-chunk response is returned without copying.
//! - `delete(recursive)` deletes the `dir/` tree and then a file of the same name: OpenDAL's recursive
//!   delete of a *file-like* path `a` deletes every key that starts with `a` (`ab/…` too), so we always
//!   pass it `a/`. Deleting the root itself is refused.
//! - `write_stream` is atomic on both: an S3 multipart upload, an fs write to a hidden sibling renamed into
//!   place (see `streamed_write`).
//! - Conditions (`WriteCondition`, `Ufs::delete_if_match`): S3 checks them itself (`If-None-Match: *`,
//!   `If-Match` on the write or delete); fs checks them with the rename under a lock (`commit`), so of
//!   Loam writers racing on one path at most one conditional write wins on both.
//! - `rename` on S3 is copy + delete (S3 has none; OpenDAL reports `Unsupported`), so it is not atomic.
//! - `file://` paths stay beneath the mount root, symlinks included: see `beneath` (reads and stats go
//!   through `openat2(RESOLVE_BENEATH)` descriptors; the other operations check the path that way first).
//! - Errors: a missing bucket is `InvalidInput` (OpenDAL files S3's `NoSuchBucket` under configuration);
//!   an endpoint that is down is `Unavailable` after the retry layer's attempts (see `transient` for why
//!   that needs a task-local flag); a path through a file (`file/x`) is `NotFound` on both backends.

mod beneath;
mod commit;
mod error_mapping;
mod exact_paths;
mod operators;
mod s3_meta;
pub mod s3_options;
mod static_keys;
mod streamed_read;
pub mod streamed_write;
mod transient;

use crate::{ListOptions, MountOptions, Ufs, UfsError, UfsResult, UfsStatus, WriteOptions};
use async_trait::async_trait;
use beneath::Beneath;
use bytes::Bytes;
use error_mapping::map_error;
use exact_paths::arm;
use futures::TryFutureExt;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use loam_core::path::UfsUri;
use opendal::{EntryMode, Metadata, Operator};
use std::fmt;
use std::future::Future;
use std::time::SystemTime;

pub use operators::install_process_defaults;

/// A [`Ufs`] over one OpenDAL operator, rooted at a mount's UFS root.
#[derive(Clone)]
pub struct OpendalUfs {
    op: Operator,
    root: UfsUri,
    /// `file://` mounts: the root directory, open, that every path is resolved beneath.
    beneath: Option<Beneath>,
}

impl fmt::Debug for OpendalUfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpendalUfs").field("root", &self.root.as_string()).finish_non_exhaustive()
    }
}

impl OpendalUfs {
    /// Builds the UFS for `root` (`file:///dir` or `s3://bucket/prefix`) with the mount's options.
    ///
    /// Makes no network request; an fs root must be an existing directory (`NotFound` otherwise). Secret
    /// options may be references (`crate::secret_refs`).
    pub fn new(root: &UfsUri, options: &MountOptions) -> UfsResult<Self> {
        // Secret references (`env:NAME`, `file:/path`) resolve here, in the process that uses them.
        let options = crate::secret_refs::resolve(options)?;
        let (op, beneath) = match root.scheme.as_str() {
            "file" => (operators::fs_operator(root)?, Some(Beneath::open(&format!("/{}", root.key))?)),
            "s3" => (operators::s3_operator(root, &options)?, None),
            other => return Err(UfsError::InvalidInput(format!("unsupported UFS scheme {other:?}"))),
        };
        Ok(Self { op, root: root.clone(), beneath })
    }

    /// The UFS root this instance serves, as a URI.
    pub fn root_uri(&self) -> String {
        self.root.as_string()
    }

    /// The key of `uri` relative to the root ("" for the root itself).
    fn rel_key(&self, uri: &str) -> UfsResult<String> {
        let u = UfsUri::parse(uri).map_err(|e| UfsError::InvalidInput(e.to_string()))?;
        u.strip_prefix(&self.root)
            .ok_or_else(|| UfsError::InvalidInput(format!("{uri} is outside this UFS ({})", self.root.as_string())))
    }

    /// The key of a file (not the root).
    fn file_key(&self, uri: &str) -> UfsResult<String> {
        let rel = self.rel_key(uri)?;
        if rel.is_empty() {
            return Err(UfsError::InvalidInput(format!("{uri} is the UFS root, not a file")));
        }
        Ok(rel)
    }

    /// Bytes `[offset, offset + len)`, only from version `tag` when given (see `Ufs::read_range_of`):
    /// `file://` checks its descriptor (`beneath`), S3 sends `If-Match` (every file of an S3 mount has an
    /// ETag, which is its tag).
    async fn read_pinned(&self, uri: &str, offset: u64, len: u64, tag: Option<&str>) -> UfsResult<Bytes> {
        let rel = self.file_key(uri)?;
        // No file is longer than i64::MAX (off_t, S3's 5 TiB); the OS refuses such offsets with EINVAL.
        if len == 0 || offset >= MAX_FILE_LEN {
            return Ok(Bytes::new());
        }
        if let Some(b) = &self.beneath {
            return b.read(&rel, uri, offset, len.min(MAX_FILE_LEN - offset), tag).await;
        }
        let if_match = tag.map(loam_core::version::quoted);
        let end = offset.saturating_add(len).min(MAX_FILE_LEN);
        let joined = Joined::new(end - offset);
        Ok(observed(uri, read_until_eof(&self.op, &rel, offset, end, if_match.as_deref(), joined)).await?.finish())
    }

    /// `file://`: refuses a path that leads outside the root before OpenDAL acts on it (see `beneath`).
    async fn check(&self, rel: &str, uri: &str) -> UfsResult<()> {
        match &self.beneath {
            Some(b) => b.check(rel, uri).await,
            None => Ok(()),
        }
    }

    /// The status of an entry; with `with_meta` (a stat, not a listing), a file's stored metadata too.
    fn status(root: &UfsUri, rel: &str, meta: &Metadata, with_meta: bool) -> UfsStatus {
        let is_dir = meta.is_dir();
        UfsStatus {
            uri: root.join(rel).as_string(),
            is_dir,
            length: if is_dir { 0 } else { meta.content_length() },
            etag: if is_dir { None } else { meta.etag().map(|e| e.trim_matches('"').to_string()) },
            modified: meta.last_modified().map(SystemTime::from),
            meta: (with_meta && !is_dir).then(|| s3_meta::from_stat(meta)),
        }
    }
}

/// An upper bound of every file length (`off_t` is signed).
const MAX_FILE_LEN: u64 = i64::MAX as u64;

/// Whether a read error only says that the file ended before the requested range did: S3's `416`
/// (`RangeNotSatisfied`), the fs reader's `RangeNotSatisfied` at EOF, or OpenDAL's completeness check
/// when a server answered a shorter range than asked (a truncated body fails earlier, in the HTTP
/// body's own length check, with another message).
fn ends_before_range(e: &opendal::Error) -> bool {
    match e.kind() {
        opendal::ErrorKind::RangeNotSatisfied => true,
        opendal::ErrorKind::Unexpected => e.message() == "reader got too little data",
        _ => false,
    }
}

/// Whether the OS said "not a directory" (OpenDAL's fs service reports it as `Unexpected`).
fn is_not_a_directory(e: &opendal::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if err.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::NotADirectory) {
            return true;
        }
        source = err.source();
    }
    false
}

/// OpenDAL's directory spelling of a relative key: `a/` (the root is `/`).
fn dir_key(rel: &str) -> String {
    if rel.is_empty() { "/".to_string() } else { format!("{rel}/") }
}

/// Runs one OpenDAL operation on `uri` and maps its error (knowing whether an attempt was temporary).
async fn observed<T>(uri: &str, fut: impl Future<Output = opendal::Result<T>>) -> UfsResult<T> {
    let (result, transient) = transient::observe(fut).await;
    result.map_err(|e| map_error(e, uri, transient))
}

/// Reads `[offset, end)` of `rel` into `out` until the range or the file ends (keeping what arrived when
/// the file ends inside the range); with `if_match`, only from the object whose ETag that is (S3 answers
/// `412`, OpenDAL's `ConditionNotMatch`, when it changed).
async fn read_until_eof<S: Sink>(
    op: &Operator,
    rel: &str,
    offset: u64,
    end: u64,
    if_match: Option<&str>,
    mut out: S,
) -> opendal::Result<S> {
    let rel = arm(rel);
    let reader = match if_match {
        Some(etag) => op.reader_with(&rel).if_match(etag).await?,
        None => op.reader(&rel).await?,
    };
    let mut stream = match reader.into_stream(offset..end).await {
        Ok(stream) => stream,
        Err(e) if ends_before_range(&e) => return Ok(out),
        Err(e) => return Err(e),
    };
    // The stream yields what the UFS sent, then (if the file ended first) the error that says so.
    loop {
        match stream.try_next().await {
            Ok(Some(buf)) => {
                for chunk in buf {
                    out.push(chunk);
                }
            }
            Ok(None) => break,
            Err(e) if ends_before_range(&e) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Where [`read_until_eof`] puts the chunks of a response as they arrive.
trait Sink {
    fn push(&mut self, chunk: Bytes);
}

/// A response's chunks joined into one buffer. Each chunk is copied as it arrives, while it is still in the
/// CPU's cache (joining them all at the end read them back from memory: 11 % of a worker's CPU in a large
/// load); a response of one chunk is passed on without a copy.
struct Joined {
    expected: u64,
    state: JoinState,
}

#[derive(Default)]
enum JoinState {
    #[default]
    Empty,
    One(Bytes),
    Many(bytes::BytesMut),
}

/// Most bytes reserved up front for a joined response.
const JOIN_RESERVE_CAP: u64 = 64 << 20;

impl Joined {
    /// A join of a response of about `expected` bytes (what is reserved when a second chunk comes).
    fn new(expected: u64) -> Self {
        Self { expected, state: JoinState::Empty }
    }

    fn finish(self) -> Bytes {
        match self.state {
            JoinState::Empty => Bytes::new(),
            JoinState::One(b) => b,
            JoinState::Many(buf) => buf.freeze(),
        }
    }
}

impl Sink for Joined {
    fn push(&mut self, chunk: Bytes) {
        self.state = match std::mem::take(&mut self.state) {
            JoinState::Empty => JoinState::One(chunk),
            JoinState::One(first) => {
                let mut buf = bytes::BytesMut::with_capacity(self.expected.min(JOIN_RESERVE_CAP) as usize);
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&chunk);
                JoinState::Many(buf)
            }
            JoinState::Many(mut buf) => {
                buf.extend_from_slice(&chunk);
                JoinState::Many(buf)
            }
        };
    }
}

/// A response's chunks copied, as they arrive, into buffers of `piece` bytes each (the last one shorter):
/// the same one copy as a join, into buffers that each page owns alone.
struct Pieces {
    piece: usize,
    done: Vec<Bytes>,
    current: bytes::BytesMut,
}

impl Pieces {
    fn new(piece: u64) -> Self {
        Self { piece: piece.clamp(1, JOIN_RESERVE_CAP) as usize, done: Vec::new(), current: bytes::BytesMut::new() }
    }

    fn finish(mut self) -> Vec<Bytes> {
        if !self.current.is_empty() {
            self.done.push(self.current.freeze());
        }
        self.done
    }
}

impl Sink for Pieces {
    fn push(&mut self, chunk: Bytes) {
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            if self.current.capacity() == 0 {
                self.current = bytes::BytesMut::with_capacity(self.piece);
            }
            let n = (self.piece - self.current.len()).min(rest.len());
            self.current.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.current.len() == self.piece {
                self.done.push(std::mem::take(&mut self.current).freeze());
            }
        }
    }
}

#[async_trait]
impl Ufs for OpendalUfs {
    async fn stat(&self, uri: &str) -> UfsResult<UfsStatus> {
        let rel = self.rel_key(uri)?;
        if let Some(b) = &self.beneath {
            let (found, meta) = b.stat_meta(&rel, uri).await?;
            let (length, modified) = (found.length, found.modified);
            return Ok(UfsStatus {
                uri: self.root.join(&rel).as_string(),
                is_dir: found.is_dir,
                length,
                etag: None,
                modified,
                meta,
            });
        }
        let op = &self.op;
        let meta = observed(uri, async {
            if rel.is_empty() {
                return op.stat(&arm("/")).await;
            }
            match op.stat(&arm(&rel)).await {
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => op.stat(&arm(&dir_key(&rel))).await,
                // fs: a path through a file (`file/x`) fails with ENOTDIR; it does not exist either.
                Err(e) if is_not_a_directory(&e) => Err(opendal::Error::new(opendal::ErrorKind::NotFound, "not found")),
                r => r,
            }
        })
        .await?;
        Ok(Self::status(&self.root, &rel, &meta, true))
    }

    fn list(&self, uri: &str, opts: ListOptions) -> BoxStream<'static, UfsResult<UfsStatus>> {
        let rel = match self.rel_key(uri) {
            Ok(rel) => rel,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        let (op, root, uri) = (self.op.clone(), self.root.clone(), uri.to_string());
        let beneath = self.beneath.clone();
        let recursive = opts.recursive;
        if let Some(b) = beneath {
            return b
                .list(&rel, &uri, recursive)
                .map_ok(move |(path, f)| UfsStatus {
                    uri: root.join(&path).as_string(),
                    is_dir: f.is_dir,
                    length: f.length,
                    etag: None,
                    modified: f.modified,
                    meta: None,
                })
                .boxed();
        }
        let open = async move {
            let dir = arm(&dir_key(&rel));
            let lister = observed(&uri, async {
                let mut fut = op.lister_with(&dir).recursive(recursive);
                if let Some(n) = opts.page_size {
                    fut = fut.limit(n.max(1));
                }
                fut.await
            })
            .await?;
            // Each page request is observed on its own, so a retried page marks only its own error.
            let entries = stream::unfold((lister, uri), |(mut lister, uri)| async move {
                let item = observed(&uri, async { lister.next().await.transpose() }).await.transpose()?;
                Some((item, (lister, uri)))
            });
            Ok::<_, UfsError>(
                entries
                    .try_filter_map(move |entry| {
                        let (op, root, rel) = (op.clone(), root.clone(), rel.clone());
                        async move {
                            let path = entry.path().trim_end_matches('/').trim_start_matches('/');
                            if path == rel {
                                return Ok(None); // the listed directory itself
                            }
                            let meta = match entry.metadata().mode() {
                                EntryMode::Unknown => {
                                    match observed(&root.join(path).as_string(), op.stat(&arm(path))).await {
                                        Ok(m) => m,
                                        Err(UfsError::NotFound(_)) => return Ok(None), // gone (or a dangling link)
                                        Err(e) => return Err(e),
                                    }
                                }
                                _ => entry.metadata().clone(),
                            };
                            if (recursive && meta.is_dir()) || meta.mode() == EntryMode::Unknown {
                                return Ok(None);
                            }
                            Ok(Some(Self::status(&root, path, &meta, false)))
                        }
                    })
                    .boxed(),
            )
        };
        open.try_flatten_stream().boxed()
    }

    async fn read_range(&self, uri: &str, offset: u64, len: u64) -> UfsResult<Bytes> {
        self.read_pinned(uri, offset, len, None).await
    }

    async fn read_range_of(&self, uri: &str, offset: u64, len: u64, tag: &str) -> UfsResult<Bytes> {
        self.read_pinned(uri, offset, len, Some(tag)).await
    }

    async fn read_pieces_of(&self, uri: &str, offset: u64, len: u64, tag: &str, piece: u64) -> UfsResult<Vec<Bytes>> {
        let rel = self.file_key(uri)?;
        if len == 0 || offset >= MAX_FILE_LEN {
            return Ok(Vec::new());
        }
        let len = len.min(MAX_FILE_LEN - offset);
        if let Some(b) = &self.beneath {
            return b.read_pieces(&rel, uri, offset, len, Some(tag), piece).await;
        }
        let if_match = loam_core::version::quoted(tag);
        let pieces = Pieces::new(piece);
        Ok(observed(uri, read_until_eof(&self.op, &rel, offset, offset + len, Some(&if_match), pieces)).await?.finish())
    }

    fn stream_pieces_of<'a>(
        &'a self,
        uri: &'a str,
        offset: u64,
        len: u64,
        tag: &'a str,
        piece: u64,
    ) -> BoxStream<'a, UfsResult<Bytes>> {
        let rel = match self.file_key(uri) {
            Ok(rel) => rel,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        if len == 0 || offset >= MAX_FILE_LEN {
            return stream::empty().boxed();
        }
        let len = len.min(MAX_FILE_LEN - offset);
        if let Some(b) = &self.beneath {
            return b.stream_pieces(rel, uri.to_string(), offset, len, tag.to_string(), piece);
        }
        let if_match = loam_core::version::quoted(tag);
        streamed_read::stream(self.op.clone(), rel, uri, offset, offset + len, if_match, piece)
    }

    async fn write(&self, uri: &str, data: Bytes) -> UfsResult<()> {
        let rel = self.file_key(uri)?;
        self.check(&rel, uri).await?;
        observed(uri, self.op.write(&arm(&rel), data)).await?;
        Ok(())
    }

    async fn write_stream(
        &self,
        uri: &str,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
        opts: WriteOptions,
    ) -> UfsResult<u64> {
        let rel = self.file_key(uri)?;
        self.check(&rel, uri).await?;
        streamed_write::write_stream(&self.op, &rel, uri, body, opts, self.beneath.as_ref()).await
    }

    async fn delete(&self, uri: &str, recursive: bool) -> UfsResult<()> {
        let rel = self.rel_key(uri)?;
        if rel.is_empty() {
            return Err(UfsError::InvalidInput(format!("refusing to delete the UFS root {uri}")));
        }
        self.check(&rel, uri).await?;
        if recursive {
            observed(uri, self.op.delete_with(&arm(&dir_key(&rel))).recursive(true).into_future()).await?;
        }
        // fs: a file is unlinked under its lock, so that no conditional write is between its check and its
        // rename meanwhile (`commit`); what is no regular file goes to OpenDAL.
        if let Some(b) = &self.beneath
            && b.delete_file(&rel, uri, None).await?
        {
            return Ok(());
        }
        observed(uri, self.op.delete(&arm(&rel))).await
    }

    async fn delete_if_match(&self, uri: &str, etag: &str) -> UfsResult<()> {
        let rel = self.file_key(uri)?;
        self.check(&rel, uri).await?;
        if let Some(b) = &self.beneath {
            return b.delete_file(&rel, uri, Some(etag.to_string())).await.map(drop);
        }
        let if_match = loam_core::version::quoted(etag);
        let (result, transient) =
            transient::observe(self.op.delete_with(&arm(&rel)).if_match(&if_match).into_future()).await;
        result.map_err(|e| match e.kind() {
            // OpenDAL answers S3's 404 to a conditional delete so; S3 clients expect `NoSuchKey`.
            opendal::ErrorKind::ConditionNotMatch if e.message() == "delete precondition requires a live target" => {
                UfsError::NotFound(uri.to_string())
            }
            opendal::ErrorKind::ConditionNotMatch | opendal::ErrorKind::Conflict => {
                UfsError::ConditionFailed(format!("{uri}: {e}"))
            }
            _ => map_error(e, uri, transient),
        })
    }

    async fn create_dir(&self, uri: &str) -> UfsResult<()> {
        let rel = self.rel_key(uri)?;
        if rel.is_empty() {
            return Ok(()); // the root exists by construction (fs) or needs no marker (S3)
        }
        self.check(&rel, uri).await?;
        observed(uri, self.op.create_dir(&arm(&dir_key(&rel)))).await
    }

    async fn copy(&self, from: &str, to: &str) -> UfsResult<()> {
        let (src, dst) = (self.file_key(from)?, self.file_key(to)?);
        self.check(&src, from).await?;
        self.check(&dst, to).await?;
        observed(from, self.op.copy(&arm(&src), &arm(&dst))).await?;
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> UfsResult<()> {
        let (src, dst) = (self.file_key(from)?, self.file_key(to)?);
        self.check(&src, from).await?;
        self.check(&dst, to).await?;
        if self.op.info().capability().rename {
            return observed(from, self.op.rename(&arm(&src), &arm(&dst))).await;
        }
        if src == dst {
            // Copy-then-delete onto itself would lose the file.
            return Err(UfsError::InvalidInput(format!("cannot rename {from} onto itself")));
        }
        observed(from, self.op.copy(&arm(&src), &arm(&dst))).await?;
        observed(from, self.op.delete(&arm(&src))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_passes_one_chunk_on_and_copies_many_in_order() {
        assert_eq!(Joined::new(0).finish(), Bytes::new());
        let one = Bytes::from_static(b"only");
        let mut j = Joined::new(4);
        j.push(one.clone());
        let out = j.finish();
        assert_eq!(out.as_ptr(), one.as_ptr(), "a single chunk is not copied");
        let mut j = Joined::new(6);
        for part in ["ab", "cde", "", "f"] {
            j.push(Bytes::from(part));
        }
        assert_eq!(j.finish(), Bytes::from_static(b"abcdef"));
        // More than was expected (a longer body) still arrives whole.
        let mut j = Joined::new(2);
        for part in ["abc", "def", "ghi"] {
            j.push(Bytes::from(part));
        }
        assert_eq!(j.finish(), Bytes::from_static(b"abcdefghi"));
    }

    #[test]
    fn pieces_are_cut_at_their_size_across_chunks_each_in_a_buffer_of_its_own() {
        assert!(Pieces::new(4).finish().is_empty());
        let mut p = Pieces::new(4);
        for part in ["ab", "cdefghij", "", "k"] {
            p.push(Bytes::from(part));
        }
        let out = p.finish();
        assert_eq!(out, [&b"abcd"[..], b"efgh", b"ijk"]);
        for pair in out.windows(2) {
            let end_of_first = pair[0].as_ptr().wrapping_add(pair[0].len());
            assert_ne!(end_of_first, pair[1].as_ptr(), "pieces must not be slices of one buffer");
        }
    }
}
