//! Keeping the paths of a `file://` mount beneath its root, symlinks included.
//!
//! The kernel resolves every path: `openat2(root_fd, rel, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, with
//! `root_fd` the mount's root directory opened once. A `..`, an absolute symlink, or a relative one that
//! climbs out of the root fails with `EXDEV` wherever it appears in the path, so no spelling and no chain of
//! links reaches a file outside. Such a path is [`UfsError::PermissionDenied`] ("leads outside the mount
//! root"), never followed.
//!
//! - **Reads and stats** go through the descriptor that `openat2` returned (`pread`, `fstat`): what is read is
//!   what was resolved, with no window between the check and the use.
//! - **Writes, deletes, renames, copies and directory creation** then go through OpenDAL's fs
//!   service by path, after the path (or, for one that does not exist yet, its deepest existing ancestor)
//!   resolved beneath the root ([`Beneath::check`]). That is check-then-act: someone who can create
//!   symlinks *inside* the mount directory on the host, between the check and the operation, could redirect
//!   it. Loam's APIs cannot create symlinks, so this needs local write access to the mount directory
//!   already; doing every operation through descriptors would close it, at the cost of a second fs backend.
//! - **Listings** read directories through descriptors too ([`Beneath::list`]); a listed symlink is stat'ed
//!   as what it points to, beneath the root, and one that leads outside is left out, as a dangling one is.
//!   (OpenDAL's fs lister follows symlinks wherever they lead, and its debug builds panic on a symlinked
//!   directory.)
//! - `openat2` needs Linux 5.6 or later; on an older kernel every operation fails with `Unavailable`.
//! - **Metadata records** (`object_meta`): read from, and written to, a descriptor resolved beneath the
//!   root ([`Beneath::stat_meta`], [`Beneath::set_record`]); the stat and the record come from one
//!   descriptor, so the record's tag is compared with the version that was stat'ed.

use crate::object_meta::{FileRecord, ObjectMetadata, RECORD_VERSION, XATTR_NAME};
use crate::{UfsError, UfsResult};
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use rustix::fs::{Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::SystemTime;

/// What a stat through the root's descriptor found.
pub struct Found {
    /// A directory.
    pub is_dir: bool,
    /// Its length (0 for directories).
    pub length: u64,
    /// Its modification time.
    pub modified: Option<SystemTime>,
}

/// The root directory of one `file://` mount, open, and the paths resolved beneath it.
#[derive(Clone)]
pub struct Beneath {
    root: Arc<OwnedFd>,
}

/// How many times a resolution that raced a rename (`EAGAIN`) is tried.
const RESOLVE_TRIES: usize = 8;

impl Beneath {
    /// Opens the root directory `dir` (an absolute local path).
    pub fn open(dir: &str) -> UfsResult<Self> {
        let fd = rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| map_errno(e, &format!("file://{dir}")))?;
        Ok(Self { root: Arc::new(fd) })
    }

    /// Opens `rel` (`""`: the root) with `flags`, resolved beneath the root.
    pub(super) fn resolve(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        let path = if rel.is_empty() { "." } else { rel };
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(&*self.root, path, flags | OFlags::CLOEXEC, Mode::empty(), how) {
                Err(Errno::AGAIN | Errno::INTR) if tries < RESOLVE_TRIES => tries += 1,
                r => return r,
            }
        }
    }

    /// Stats `rel` (`""`: the root) through a descriptor resolved beneath the root.
    pub async fn stat(&self, rel: &str, uri: &str) -> UfsResult<Found> {
        let (me, rel, uri) = (self.clone(), rel.to_string(), uri.to_string());
        blocking(move || me.stat_now(&rel, &uri)).await
    }

    fn stat_now(&self, rel: &str, uri: &str) -> UfsResult<Found> {
        let fd = self.resolve(rel, OFlags::PATH).map_err(|e| map_errno(e, uri))?;
        let meta = File::from(fd).metadata().map_err(|e| map_io(e, uri))?;
        Ok(Found {
            is_dir: meta.is_dir(),
            length: if meta.is_dir() { 0 } else { meta.len() },
            modified: meta.modified().ok(),
        })
    }

    /// Like [`stat`](Self::stat), and for a regular file also its metadata record when it describes this
    /// version (empty otherwise: none, a stale one of a file rewritten outside Loam, or an unreadable one).
    pub async fn stat_meta(&self, rel: &str, uri: &str) -> UfsResult<(Found, Option<ObjectMetadata>)> {
        let (me, rel, uri) = (self.clone(), rel.to_string(), uri.to_string());
        blocking(move || {
            let found = me.stat_now(&rel, &uri)?;
            if found.is_dir {
                return Ok((found, None));
            }
            // O_PATH descriptors have no xattrs: the file is opened (O_NONBLOCK: a FIFO must not hang).
            let Ok(fd) = me.resolve(&rel, OFlags::RDONLY | OFlags::NONBLOCK) else { return Ok((found, None)) };
            let file = File::from(fd);
            let meta = file.metadata().map_err(|e| map_io(e, &uri))?;
            if !meta.is_file() {
                return Ok((found, None));
            }
            let found = Found { is_dir: false, length: meta.len(), modified: meta.modified().ok() };
            Ok((found, Some(read_record(&file, &tag_of(&meta), &uri))))
        })
        .await
    }

    /// Stores `meta` as the record of the regular file `rel` (a write's hidden sibling, before its rename),
    /// naming the version it is now. A file system without user xattrs is `Unsupported`.
    ///
    /// A file system keeps little with a file (ext4: one 4 KiB block), and a multipart object's part
    /// sizes and checksums grow with its parts (S3 allows 10,000). What the S3 API derives for parts
    /// is left out when the record does not fit, part checksums first, then part sizes (`partNumber`
    /// reads then use the completing worker's own record); what the client sent is never dropped:
    /// when it alone does not fit, the write is refused (`InvalidInput`).
    pub async fn set_record(&self, rel: &str, uri: &str, mut meta: ObjectMetadata) -> UfsResult<()> {
        let (me, rel, uri) = (self.clone(), rel.to_string(), uri.to_string());
        blocking(move || {
            let fd = me.resolve(&rel, OFlags::RDONLY | OFlags::NONBLOCK).map_err(|e| map_errno(e, &uri))?;
            let file = File::from(fd);
            let stat = file.metadata().map_err(|e| map_io(e, &uri))?;
            loop {
                let record = FileRecord { v: RECORD_VERSION, tag: tag_of(&stat), meta: meta.clone() };
                let value = serde_json::to_vec(&record).map_err(|e| UfsError::Other(format!("{uri}: {e}")))?;
                let too_big = match rustix::fs::fsetxattr(&file, XATTR_NAME, &value, rustix::fs::XattrFlags::empty()) {
                    Ok(()) => return Ok(()),
                    Err(Errno::NOTSUP) => {
                        return Err(UfsError::Unsupported(format!(
                            "{uri}: the file system of this file:// mount has no user extended attributes, where \
                             Loam keeps object metadata (Content-Type, x-amz-meta-*, ...); write it without \
                             metadata, or mount a file system that has them"
                        )));
                    }
                    Err(Errno::TOOBIG | Errno::NOSPC | Errno::RANGE) => value.len(),
                    Err(e) => return Err(map_errno(e, &uri)),
                };
                if !meta.part_checksums.is_empty() {
                    meta.part_checksums.clear();
                } else if !meta.parts.is_empty() {
                    meta.parts.clear();
                } else {
                    return Err(UfsError::InvalidInput(format!(
                        "{uri}: the object's metadata ({too_big} bytes) is larger than the file system keeps with a file"
                    )));
                }
                tracing::debug!("{uri}: a {too_big}-byte record does not fit; storing it without its part details");
            }
        })
        .await
    }

    /// The entries under directory `rel` (`""`: the root), read through descriptors resolved beneath the
    /// root, [`LIST_BATCH`] per blocking call; each `(relative path, what it is)`. Symlinks are stat'ed as
    /// what they point to; one that leads outside (or dangles) is left out. Recursive listings walk real
    /// subdirectories (not symlinked ones) and answer files only. A missing directory, or a file, lists
    /// as empty.
    pub fn list(&self, rel: &str, uri: &str, recursive: bool) -> BoxStream<'static, UfsResult<(String, Found)>> {
        let walk = Walk { beneath: self.clone(), pending: vec![rel.to_string()], open: None, recursive };
        let uri = uri.to_string();
        stream::unfold(Some(walk), move |walk| {
            let uri = uri.clone();
            async move {
                let walk = walk?;
                match blocking(move || walk.next_batch(&uri)).await {
                    Ok((_, batch)) if batch.is_empty() => None,
                    Ok((walk, batch)) => Some((stream::iter(batch.into_iter().map(Ok)).boxed(), walk)),
                    Err(e) => Some((stream::iter([Err(e)]).boxed(), None)),
                }
            }
        })
        .flatten()
        .boxed()
    }

    /// Bytes `[offset, offset + len)` of the regular file `rel`, shorter at its end, read through a
    /// descriptor resolved beneath the root. Allocates at most what the file holds past `offset`.
    ///
    /// With `tag`, only from that version (`loam_core::version`): the descriptor's length and modification
    /// time must make that tag before the read and still after it (a rename replaced the file: another
    /// inode, another time; a write in place: another time), else [`UfsError::Changed`].
    pub async fn read(&self, rel: &str, uri: &str, offset: u64, len: u64, tag: Option<&str>) -> UfsResult<Bytes> {
        let pieces = self.read_pieces(rel, uri, offset, len, tag, len).await?;
        Ok(pieces.into_iter().next().unwrap_or_default())
    }

    /// Like [`read`](Self::read), into buffers of `piece` bytes each (the last one shorter).
    pub async fn read_pieces(
        &self,
        rel: &str,
        uri: &str,
        offset: u64,
        len: u64,
        tag: Option<&str>,
        piece: u64,
    ) -> UfsResult<Vec<Bytes>> {
        let (me, rel, uri, tag) = (self.clone(), rel.to_string(), uri.to_string(), tag.map(str::to_string));
        blocking(move || {
            let file = me.open_version(&rel, &uri, tag.as_deref())?;
            let n = len.min(file.metadata().map_err(|e| map_io(e, &uri))?.len().saturating_sub(offset));
            let piece = piece.clamp(1, n.max(1));
            let mut out = Vec::new();
            let mut at = offset;
            while at < offset + n {
                let (buf, short) = read_piece(&file, at, piece.min(offset + n - at), &uri)?;
                at += buf.len() as u64;
                if !buf.is_empty() {
                    out.push(buf);
                }
                if short {
                    break;
                }
            }
            check_version(&file, &uri, tag.as_deref())?;
            Ok(out)
        })
        .await
    }

    /// Like [`read_pieces`](Self::read_pieces), each piece yielded once it is read and the descriptor still
    /// makes `tag` (one `fstat` per piece): a change ends the stream with `Changed`, after only pieces that
    /// were read before it. One blocking task per piece, so a slow consumer holds no thread.
    pub fn stream_pieces(
        &self,
        rel: String,
        uri: String,
        offset: u64,
        len: u64,
        tag: String,
        piece: u64,
    ) -> BoxStream<'static, UfsResult<Bytes>> {
        let me = self.clone();
        let open = {
            let (uri, tag) = (uri.clone(), tag.clone());
            blocking(move || {
                let file = me.open_version(&rel, &uri, Some(&tag))?;
                let n = len.min(file.metadata().map_err(|e| map_io(e, &uri))?.len().saturating_sub(offset));
                Ok((Arc::new(file), n))
            })
        };
        let piece = piece.max(1);
        stream::once(open)
            .map_ok(move |(file, n)| {
                let (uri, tag) = (uri.clone(), tag.clone());
                stream::try_unfold(offset, move |at| {
                    let (file, uri, tag) = (file.clone(), uri.clone(), tag.clone());
                    async move {
                        if at >= offset + n {
                            return Ok(None);
                        }
                        let size = piece.min(offset + n - at);
                        let (buf, short) = blocking(move || {
                            let got = read_piece(&file, at, size, &uri)?;
                            check_version(&file, &uri, Some(&tag))?;
                            Ok(got)
                        })
                        .await?;
                        // A short piece (the file shrank since the open) is the last one.
                        let next = if short || buf.is_empty() { offset + n } else { at + buf.len() as u64 };
                        Ok(if buf.is_empty() { None } else { Some((buf, next)) })
                    }
                })
            })
            .try_flatten()
            .boxed()
    }

    /// Opens the regular file `rel` beneath the root; with `tag`, only when it is that version.
    fn open_version(&self, rel: &str, uri: &str, tag: Option<&str>) -> UfsResult<File> {
        // O_NONBLOCK: opening a FIFO placed in the mount must not hang the worker.
        let fd = self.resolve(rel, OFlags::RDONLY | OFlags::NONBLOCK).map_err(|e| map_errno(e, uri))?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(|e| map_io(e, uri))?;
        if meta.is_dir() {
            return Err(UfsError::InvalidInput(format!("{uri} is a directory")));
        }
        if !meta.is_file() {
            return Err(UfsError::InvalidInput(format!("{uri} is not a regular file")));
        }
        check_version(&file, uri, tag)?;
        Ok(file)
    }

    /// Checks that `rel` — or, when it does not exist yet, its deepest existing ancestor — resolves beneath
    /// the root, before OpenDAL acts on it by path (see the module header: check-then-act).
    pub async fn check(&self, rel: &str, uri: &str) -> UfsResult<()> {
        let (me, rel, uri) = (self.clone(), rel.to_string(), uri.to_string());
        blocking(move || {
            let mut at = rel.as_str();
            loop {
                match me.resolve(at, OFlags::PATH) {
                    Ok(_) => return Ok(()),
                    Err(Errno::NOENT) if !at.is_empty() => at = at.rsplit_once('/').map_or("", |(parent, _)| parent),
                    // The operation itself reports what is left (a path through a file, a long name, ...).
                    Err(e) if !is_escape(e) && e != Errno::NOSYS => return Ok(()),
                    Err(e) => return Err(map_errno(e, &uri)),
                }
            }
        })
        .await
    }
}

/// Entries of a listing read per blocking call.
pub const LIST_BATCH: usize = 256;

/// Entries of one step of a listing: `(relative path, what it is)`.
type Batch = Vec<(String, Found)>;

/// A listing in progress: the directory being read and those still to read.
struct Walk {
    beneath: Beneath,
    pending: Vec<String>,
    open: Option<(String, Dir)>,
    recursive: bool,
}

impl Walk {
    /// Up to [`LIST_BATCH`] entries; an empty batch only at the end. `None` once done.
    fn next_batch(mut self, uri: &str) -> UfsResult<(Option<Walk>, Batch)> {
        let mut out = Vec::new();
        while out.len() < LIST_BATCH {
            let Some((dir, entries)) = &mut self.open else {
                let Some(next) = self.pending.pop() else { return Ok((None, out)) };
                match self.beneath.resolve(&next, OFlags::RDONLY | OFlags::DIRECTORY) {
                    Ok(fd) => self.open = Some((next, Dir::new(fd).map_err(|e| map_errno(e, uri))?)),
                    // Gone, or a file: nothing under it.
                    Err(Errno::NOENT | Errno::NOTDIR) => {}
                    Err(e) => return Err(map_errno(e, uri)),
                }
                continue;
            };
            let Some(entry) = entries.next() else {
                self.open = None;
                continue;
            };
            let entry = entry.map_err(|e| map_errno(e, uri))?;
            let name = entry.file_name().to_string_lossy();
            if name == "." || name == ".." {
                continue;
            }
            let path = if dir.is_empty() { name.into_owned() } else { format!("{dir}/{name}") };
            let found = match self.beneath.stat_now(&path, &path) {
                Ok(f) => f,
                Err(UfsError::NotFound(_) | UfsError::PermissionDenied(_)) => continue,
                Err(e) => return Err(e),
            };
            if found.is_dir && self.recursive {
                if entry.file_type() == FileType::Directory {
                    self.pending.push(path);
                }
                continue;
            }
            out.push((path, found));
        }
        Ok((Some(self), out))
    }
}

/// Whether a resolution failed because the path leads outside the root (or loops).
fn is_escape(e: Errno) -> bool {
    e == Errno::XDEV || e == Errno::LOOP
}

/// `Changed` unless the descriptor (its length and modification time) makes `tag`.
fn check_version(file: &File, uri: &str, tag: Option<&str>) -> UfsResult<()> {
    let Some(tag) = tag else { return Ok(()) };
    let meta = file.metadata().map_err(|e| map_io(e, uri))?;
    let now = tag_of(&meta);
    if now != tag {
        return Err(UfsError::Changed(format!("{uri} is version {now} now, not {tag}")));
    }
    Ok(())
}

/// Reads up to `size` bytes at `at` into a buffer of their own; `true` when the file ended first.
fn read_piece(file: &File, at: u64, size: u64, uri: &str) -> UfsResult<(Bytes, bool)> {
    let size = usize::try_from(size).map_err(|_| UfsError::InvalidInput(format!("{uri}: range too large")))?;
    let buf = loam_core::read_at::read_at_most(file, size, at).map_err(|e| map_io(e, uri))?;
    let short = buf.len() < size; // the file shrank since the fstat
    Ok((Bytes::from(buf), short))
}

pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> UfsResult<T> + Send + 'static) -> UfsResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| UfsError::Other(format!("fs task failed: {e}")))?
}

pub(super) fn map_errno(e: Errno, uri: &str) -> UfsError {
    match e {
        _ if is_escape(e) => UfsError::PermissionDenied(format!(
            "{uri} leads outside the mount root (through a symlink or `..`), or is a symlink loop"
        )),
        Errno::NOSYS => UfsError::Unavailable(format!("{uri}: file:// mounts need openat2 (Linux 5.6 or later)")),
        _ => map_io(std::io::Error::from_raw_os_error(e.raw_os_error()), uri),
    }
}

pub(super) fn map_io(e: std::io::Error, uri: &str) -> UfsError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound | K::NotADirectory => UfsError::NotFound(uri.to_string()),
        K::InvalidFilename => {
            UfsError::InvalidInput(format!("{uri}: a path component is longer than the file system allows"))
        }
        K::PermissionDenied => UfsError::PermissionDenied(format!("{uri}: {e}")),
        K::IsADirectory => UfsError::InvalidInput(format!("{uri} is a directory")),
        _ => UfsError::Other(format!("{uri}: {e}")),
    }
}

/// The metadata in `file`'s record when the record describes version `tag`; empty otherwise.
pub(super) fn read_record(file: &File, tag: &str, uri: &str) -> ObjectMetadata {
    let mut buf = Vec::with_capacity(1024);
    let value = match rustix::fs::fgetxattr(file, XATTR_NAME, spare(&mut buf)) {
        Ok(_) => buf,
        Err(Errno::RANGE) => match rustix::fs::fgetxattr_query(file, XATTR_NAME) {
            Ok(n) => {
                let mut big = Vec::with_capacity(n);
                match rustix::fs::fgetxattr(file, XATTR_NAME, spare(&mut big)) {
                    Ok(_) => big,
                    Err(_) => return ObjectMetadata::default(),
                }
            }
            Err(_) => return ObjectMetadata::default(),
        },
        // ENODATA: none; ENOTSUP: a file system without xattrs. Either way nothing is stored.
        Err(_) => return ObjectMetadata::default(),
    };
    match serde_json::from_slice::<FileRecord>(&value) {
        Ok(rec) if rec.v == RECORD_VERSION && rec.tag == tag => rec.meta,
        Ok(rec) if rec.v == RECORD_VERSION => ObjectMetadata::default(), // rewritten outside Loam: stale
        Ok(rec) => {
            loam_core::warn_limited!(
                "{uri}: metadata record of version {} ignored (this build reads {RECORD_VERSION})",
                rec.v
            );
            ObjectMetadata::default()
        }
        Err(e) => {
            loam_core::warn_limited!("{uri}: unreadable metadata record ignored: {e}");
            ObjectMetadata::default()
        }
    }
}

/// The spare capacity of `buf`, which `fgetxattr` fills (and sets the length of).
fn spare(buf: &mut Vec<u8>) -> rustix::buffer::SpareCapacity<'_, u8> {
    rustix::buffer::spare_capacity(buf)
}

/// The version tag of an open file: its length and modification time (ms), as `stat` reports them.
pub(super) fn tag_of(meta: &std::fs::Metadata) -> String {
    let modified = meta.modified().ok().map(loam_core::time::epoch_millis);
    loam_core::version::version_tag(meta.len(), None, modified)
}
