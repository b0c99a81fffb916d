//! Cache directories that fill or fail: each directory's lock, health, room and capacity.
//!
//! - **One worker per directory.** `<dir>/loam-pages/lock` is held with `flock` (exclusive, not waiting)
//!   while the store is open: a second store on the same directory, in this process or another, finds it
//!   taken. The kernel drops the lock when its holder dies, so a crashed worker leaves nothing to clean.
//! - **Capacity from the room there is.** The configured disk capacity is split evenly over the
//!   directories (a file's directory is a hash of its id, so files spread evenly), and each share is
//!   clamped to what the directory's file system can hold: the page bytes the store has there plus the
//!   free space (`statvfs`), counted at what a page costs on disk (its header and block rounding), less a
//!   margin ([`MARGIN_DIVISOR`]) for the record log and other users of the file system. It is measured at
//!   open, at every health check, and when a write finds the disk full; the store evicts down to it.
//! - **Health.** A directory whose write or read fails for another reason than a full disk (EIO, removed,
//!   read-only, permissions) is marked unhealthy: its pages leave the index (they become misses), new
//!   pages of its files are cached in memory only, and its record log is not appended to. The health check
//!   re-initialises an unhealthy directory, or one removed or replaced (its layout root is another inode
//!   than the one opened): it takes the lock again, wipes the layout root, and starts an empty one with a
//!   record log of the files' current records. Until that succeeds it stays unhealthy.
//! - **Warnings.** A failing directory logs one warning per [`loam_core::log_limit::INTERVAL`] (with the
//!   number held back), and counts every failed operation in a per-directory counter.

use loam_core::log_limit::Limiter;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::disk::HEADER_LEN;

/// The margin left free in a directory's file system: 1/32 of what the store could use there.
pub(super) const MARGIN_DIVISOR: u64 = 32;
/// Name of the lock file beside the layout versions, in `<dir>/loam-pages`.
const LOCK_FILE: &str = "lock";

/// A configured cache directory.
#[derive(Debug)]
pub(super) struct CacheDir {
    /// The directory as configured.
    pub(super) path: PathBuf,
    /// Its layout root (`<dir>/loam-pages/<version>`).
    pub(super) root: PathBuf,
    /// Its share of the configured disk capacity.
    pub(super) share: u64,
    pub(super) state: parking_lot::Mutex<DirState>,
    limiter: Limiter,
    /// The store's instance id, written into the lock file once it is held (see `local_read.rs`).
    instance: String,
}

/// What is known of a directory now.
#[derive(Debug, Default)]
pub(super) struct DirState {
    pub(super) healthy: bool,
    /// The held lock file.
    lock: Option<File>,
    /// Device and inode of the layout root when it was (re-)initialised.
    identity: Option<(u64, u64)>,
    /// Why it is unhealthy.
    pub(super) problem: Option<String>,
}

impl CacheDir {
    pub(super) fn new(path: PathBuf, root: PathBuf, share: u64) -> Self {
        let limiter = Limiter::new(loam_core::log_limit::INTERVAL);
        Self {
            path,
            root,
            share,
            state: parking_lot::Mutex::new(DirState::default()),
            limiter,
            instance: String::new(),
        }
    }

    /// The same, writing `instance` into the lock file whenever it takes the lock.
    pub(super) fn with_instance(mut self, instance: &str) -> Self {
        self.instance = instance.to_owned();
        self
    }

    /// Whether the directory is in use.
    pub(super) fn healthy(&self) -> bool {
        self.state.lock().healthy
    }

    /// Takes the directory's lock (blocking I/O). An error names the directory and says why.
    pub(super) fn lock(&self) -> Result<(), String> {
        let file = take_lock(&self.path)?;
        if !self.instance.is_empty() {
            write_instance(&file, &self.instance)
                .map_err(|e| format!("cannot write the lock file of cache directory {}: {e}", self.path.display()))?;
        }
        self.state.lock().lock = Some(file);
        Ok(())
    }

    /// Lets go of the directory's lock.
    pub(super) fn unlock(&self) {
        self.state.lock().lock = None;
    }

    /// Marks the directory usable, remembering which inode its layout root is now.
    pub(super) fn mark_healthy(&self) -> io::Result<()> {
        let identity = identity(&self.root)?;
        let mut state = self.state.lock();
        state.identity = Some(identity);
        state.healthy = true;
        state.problem = None;
        Ok(())
    }

    /// Marks the directory unhealthy for `why`; returns whether it was healthy until now.
    pub(super) fn mark_unhealthy(&self, why: String) -> bool {
        let mut state = self.state.lock();
        let was = std::mem::replace(&mut state.healthy, false);
        state.problem = Some(why);
        was
    }

    /// Whether the layout root is still the directory that was initialised (not removed or replaced).
    pub(super) fn still_there(&self) -> bool {
        let expected = self.state.lock().identity;
        expected.is_some() && identity(&self.root).ok() == expected
    }

    /// Logs `message` about this directory, at most once per interval.
    pub(super) fn warn(&self, message: &str) {
        if let Some(suppressed) = self.limiter.admit("dir", Instant::now()) {
            tracing::warn!(dir = %self.path.display(), suppressed, "{message}");
        }
    }
}

/// Opens and locks `<dir>/loam-pages/lock`, creating it. Fails with a message naming `dir` when it cannot
/// be created or written, or another live store holds it.
fn take_lock(dir: &Path) -> Result<File, String> {
    let path = lock_path(dir);
    let parent = dir.join(super::disk::LAYOUT_DIR);
    let cannot = |e: io::Error| format!("cache directory {} is not writable: {e}", dir.display());
    loam_core::private_fs::create_dir_all(&parent).map_err(cannot)?;
    // 0600, as every file of a data directory (`loam_core::private_fs`).
    let file =
        std::os::unix::fs::OpenOptionsExt::mode(OpenOptions::new().create(true).truncate(false).write(true), 0o600)
            .open(&path)
            .map_err(cannot)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(format!(
            "cache directory {} is in use by another live worker (it holds {})",
            dir.display(),
            path.display()
        )),
        Err(TryLockError::Error(e)) => Err(format!("cannot lock cache directory {}: {e}", dir.display())),
    }
}

/// Replaces the held lock file's content with `instance`: who holds it, for a short-circuit reader to
/// check that a directory is that store's (the lock is `flock`, on the open file, not on its content).
fn write_instance(mut file: &File, instance: &str) -> io::Result<()> {
    use std::io::{Seek, Write};
    file.set_len(0)?;
    file.seek(io::SeekFrom::Start(0))?;
    file.write_all(instance.as_bytes())
}

/// The path of `dir`'s lock file, `<dir>/loam-pages/lock`.
pub(super) fn lock_path(dir: &Path) -> PathBuf {
    dir.join(super::disk::LAYOUT_DIR).join(LOCK_FILE)
}

/// Device and inode of `path`.
fn identity(path: &Path) -> io::Result<(u64, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// Bytes of page data a directory can hold: the `used` bytes it holds now plus what its file system's
/// free space holds at `page_size` pages (each costing its header, block checksums and block rounding), less
/// the margin.
pub(super) fn room(root: &Path, used: u64, page_size: u64) -> io::Result<u64> {
    let fs = rustix::fs::statvfs(root).map_err(io::Error::from)?;
    let block = fs.f_frsize.max(1);
    let free = fs.f_bavail.saturating_mul(block);
    let overhead = HEADER_LEN as u64 + crate::blocks::table_len(page_size as usize) as u64;
    let on_disk = (page_size + overhead).div_ceil(block) * block;
    let free_data = (u128::from(free) * u128::from(page_size) / u128::from(on_disk)) as u64;
    let room = used.saturating_add(free_data);
    Ok(room - room / MARGIN_DIVISOR)
}

/// Whether an I/O error means the disk is full (evict and retry) rather than the directory failing.
pub(super) fn is_full(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_directory_is_refused_until_its_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = CacheDir::new(dir.path().to_owned(), dir.path().join("r"), 0);
        first.lock().unwrap();
        let second = CacheDir::new(dir.path().to_owned(), dir.path().join("r"), 0);
        let err = second.lock().unwrap_err();
        assert!(err.contains("in use by another live worker"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "names the directory: {err}");
        drop(first);
        second.lock().unwrap();
    }

    #[test]
    fn room_counts_what_is_held_and_what_is_free_less_the_margin() {
        let dir = tempfile::tempdir().unwrap();
        let empty = room(dir.path(), 0, 1 << 20).unwrap();
        let held = room(dir.path(), 32 << 20, 1 << 20).unwrap();
        // Other processes may write to this file system meanwhile, so only the order is exact.
        assert!(held > empty, "held bytes count: {held} vs {empty}");
        assert!(held >= (32 << 20) - (32 << 20) / MARGIN_DIVISOR, "at most the margin is kept back: {held}");
    }
}
