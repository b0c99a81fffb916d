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
//! - **Listings, writes, deletes, renames, copies and directory creation** then go through OpenDAL's fs
//!   service by path, after the path (or, for one that does not exist yet, its deepest existing ancestor)
//!   resolved beneath the root ([`Beneath::check`]). That is check-then-act: someone who can create
//!   symlinks *inside* the mount directory on the host, between the check and the operation, could redirect
//!   it. Loam's APIs cannot create symlinks, so this needs local write access to the mount directory
//!   already; doing every operation through descriptors would close it, at the cost of a second fs backend.
//! - A listed symlink is stat'ed through `openat2` too; one that leads outside is left out of the listing,
//!   as a dangling one is.
//! - `openat2` needs Linux 5.6 or later; on an older kernel every operation fails with `Unavailable`.

use crate::{UfsError, UfsResult};
use bytes::Bytes;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
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

    fn resolve(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
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

    /// Stats each of `rels` beneath the root in one blocking call; each path with its own result.
    pub async fn stat_many(&self, rels: Vec<String>) -> UfsResult<Vec<(String, UfsResult<Found>)>> {
        let me = self.clone();
        blocking(move || Ok(rels.into_iter().map(|rel| (rel.clone(), me.stat_now(&rel, &rel))).collect())).await
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

    /// Bytes `[offset, offset + len)` of the regular file `rel`, shorter at its end, read through a
    /// descriptor resolved beneath the root. Allocates at most what the file holds past `offset`.
    pub async fn read(&self, rel: &str, uri: &str, offset: u64, len: u64) -> UfsResult<Bytes> {
        let (me, rel, uri) = (self.clone(), rel.to_string(), uri.to_string());
        blocking(move || {
            // O_NONBLOCK: opening a FIFO placed in the mount must not hang the worker.
            let fd = me.resolve(&rel, OFlags::RDONLY | OFlags::NONBLOCK).map_err(|e| map_errno(e, &uri))?;
            let file = File::from(fd);
            let meta = file.metadata().map_err(|e| map_io(e, &uri))?;
            if meta.is_dir() {
                return Err(UfsError::InvalidInput(format!("{uri} is a directory")));
            }
            if !meta.is_file() {
                return Err(UfsError::InvalidInput(format!("{uri} is not a regular file")));
            }
            let n = len.min(meta.len().saturating_sub(offset));
            let mut buf =
                vec![0u8; usize::try_from(n).map_err(|_| UfsError::InvalidInput(format!("{uri}: range too large")))?];
            let mut filled = 0;
            while filled < buf.len() {
                match file.read_at(&mut buf[filled..], offset + filled as u64) {
                    Ok(0) => break, // the file shrank since the fstat
                    Ok(k) => filled += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(map_io(e, &uri)),
                }
            }
            buf.truncate(filled);
            Ok(Bytes::from(buf))
        })
        .await
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

/// Whether a resolution failed because the path leads outside the root (or loops).
fn is_escape(e: Errno) -> bool {
    e == Errno::XDEV || e == Errno::LOOP
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> UfsResult<T> + Send + 'static) -> UfsResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| UfsError::Other(format!("fs task failed: {e}")))?
}

fn map_errno(e: Errno, uri: &str) -> UfsError {
    match e {
        _ if is_escape(e) => UfsError::PermissionDenied(format!(
            "{uri} leads outside the mount root (through a symlink or `..`), or is a symlink loop"
        )),
        Errno::NOSYS => UfsError::Unavailable(format!("{uri}: file:// mounts need openat2 (Linux 5.6 or later)")),
        _ => map_io(std::io::Error::from_raw_os_error(e.raw_os_error()), uri),
    }
}

fn map_io(e: std::io::Error, uri: &str) -> UfsError {
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
