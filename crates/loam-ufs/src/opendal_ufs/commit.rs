//! `file://` commits: how a finished write's hidden sibling replaces its target, and how a file is
//! deleted, atomically against every other Loam writer of the same path, with a condition
//! ([`WriteCondition`]) checked in the same step.
//!
//! - **`NotExists`** (`If-None-Match: *`): `renameat2(RENAME_NOREPLACE)`; the kernel refuses (`EEXIST`)
//!   when the target exists, so of writers racing to create one name exactly one wins, in any number of
//!   processes.
//! - **`Matches`** (`If-Match`), **plain writes and deletes**: the target's inode is locked (`flock`,
//!   `LOCK_EX`, on a descriptor opened beneath the root); with the lock held, the path must still name that
//!   inode (a writer that renamed over it meanwhile makes us lock the new one instead), the condition is
//!   checked against that inode (its ETag as the S3 API answers it: the MD5 in its metadata record when
//!   the record describes this version, else its version tag), and the sibling is renamed over it (or it
//!   is unlinked). Every Loam writer of a path takes that lock, conditional or not, so no write lands
//!   between another's check and its rename. The lock goes with the descriptor, after the rename.
//! - **`Exists`** (`If-Match: *`) and **`NoneMatch`** (`If-None-Match: <etag>`) take the same lock and
//!   check; a missing target fails `Exists` (`NotFound`) and passes `NoneMatch` (then the write is a plain
//!   rename: another writer creating the name meanwhile is not excluded, as there is no inode to lock).
//! - Writers outside Loam (a process writing the directory directly) take no lock: against them a
//!   `Matches` is check-then-act. `NotExists` holds against them too (the kernel checks).
//! - A target that is not a regular file (a directory) is not locked: the rename reports the conflict. Nor
//!   is one the worker may not open (made unreadable outside Loam): a plain write replaces it unlocked, a
//!   `Matches` fails (`PermissionDenied`), as its ETag cannot be read.

use super::beneath::{Beneath, blocking, map_errno, read_record, tag_of};
use crate::{UfsError, UfsResult, WriteCondition};
use rustix::fs::{AtFlags, FlockOperation, OFlags, RenameFlags};
use rustix::io::Errno;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;

/// How many times the lock is taken again because the path was replaced while we waited for it (each
/// retry means another writer committed; the bound only keeps a pathological loop finite).
const LOCK_TRIES: usize = 10_000;

impl Beneath {
    /// Renames the finished sibling `tmp` over `rel` (both relative to the root, in one directory) when
    /// `condition` holds (see the module header); `ConditionFailed` when it does not (`NotFound` for
    /// `Matches` of a missing target, as S3 answers), and the sibling stays for the caller to delete.
    pub async fn commit(&self, tmp: &str, rel: &str, uri: &str, condition: Option<WriteCondition>) -> UfsResult<()> {
        let (me, tmp, rel, uri) = (self.clone(), tmp.to_string(), rel.to_string(), uri.to_string());
        blocking(move || {
            let (dir, name) = me.parent(&rel, &uri)?;
            let tmp_name = tmp.rsplit_once('/').map_or(tmp.as_str(), |(_, n)| n);
            if condition == Some(WriteCondition::NotExists) {
                return rustix::fs::renameat_with(&dir, tmp_name, &dir, name, RenameFlags::NOREPLACE).map_err(
                    |e| match e {
                        Errno::EXIST => UfsError::ConditionFailed(format!("{uri} exists")),
                        e => rename_error(e, &uri),
                    },
                );
            }
            let _lock = me.lock_checked(&rel, &uri, condition.as_ref())?;
            rustix::fs::renameat(&dir, tmp_name, &dir, name).map_err(|e| rename_error(e, &uri))
        })
        .await
    }

    /// Deletes the regular file `rel` under its lock, when its ETag is `if_match` (if given). `Ok(false)`:
    /// there is no regular file there (missing, or a directory) and nothing was done; with `if_match`
    /// that is `NotFound` instead.
    pub async fn delete_file(&self, rel: &str, uri: &str, if_match: Option<String>) -> UfsResult<bool> {
        let (me, rel, uri) = (self.clone(), rel.to_string(), uri.to_string());
        blocking(move || {
            let condition = if_match.map(WriteCondition::Matches);
            let Some(_lock) = me.lock_checked(&rel, &uri, condition.as_ref())? else { return Ok(false) };
            let (dir, name) = me.parent(&rel, &uri)?;
            match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => Ok(true),
                Err(e) => Err(map_errno(e, &uri)),
            }
        })
        .await
    }

    /// The directory of `rel`, open beneath the root, and the last component of `rel`.
    fn parent<'a>(&self, rel: &'a str, uri: &str) -> UfsResult<(OwnedFd, &'a str)> {
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let dir = self.resolve(parent, OFlags::PATH | OFlags::DIRECTORY).map_err(|e| map_errno(e, uri))?;
        Ok((dir, name))
    }

    /// Locks the regular file that `rel` names now and checks `condition` (`Matches`) against it; `None`
    /// when there is no regular file (`NotFound` when `Matches` needs one). The lock lasts as long as the
    /// returned file.
    fn lock_checked(&self, rel: &str, uri: &str, condition: Option<&WriteCondition>) -> UfsResult<Option<File>> {
        let needs_object = matches!(condition, Some(WriteCondition::Matches(_) | WriteCondition::Exists));
        let missing = || match needs_object {
            true => Err(UfsError::NotFound(uri.to_string())),
            false => Ok(None),
        };
        for _ in 0..LOCK_TRIES {
            // O_NONBLOCK: a FIFO placed in the mount must not hang the open.
            let file = match self.resolve(rel, OFlags::RDONLY | OFlags::NONBLOCK) {
                Ok(fd) => File::from(fd),
                Err(Errno::NOENT | Errno::NOTDIR) => return missing(),
                // A file the worker may not read (made so outside Loam) can still be replaced, as a rename
                // needs only the directory; a plain write goes on unlocked rather than failing.
                Err(Errno::ACCESS) if condition.is_none() => return Ok(None),
                Err(e) => return Err(map_errno(e, uri)),
            };
            let meta = file.metadata().map_err(|e| UfsError::Other(format!("{uri}: {e}")))?;
            if !meta.is_file() {
                return missing();
            }
            rustix::fs::flock(&file, FlockOperation::LockExclusive).map_err(|e| map_errno(e, uri))?;
            // Still the file the path names? A writer may have renamed over it while we waited.
            let now = match self.resolve(rel, OFlags::PATH) {
                Ok(fd) => File::from(fd).metadata().ok(),
                Err(Errno::NOENT) => None,
                Err(e) => return Err(map_errno(e, uri)),
            };
            if !now.is_some_and(|n| n.dev() == meta.dev() && n.ino() == meta.ino()) {
                continue;
            }
            if let Some(condition) = condition {
                // The lock is held: nobody changes this inode's record or replaces it until we drop it.
                let meta = file.metadata().map_err(|e| UfsError::Other(format!("{uri}: {e}")))?;
                let tag = tag_of(&meta);
                let stored = read_record(&file, &tag, uri);
                let etag = stored.etag.filter(|e| !e.is_empty()).unwrap_or(tag);
                if !condition.holds(Some(&etag))? {
                    return Err(UfsError::ConditionFailed(format!("{uri} has the ETag {etag}: {condition:?} fails")));
                }
            }
            return Ok(Some(file));
        }
        Err(UfsError::Unavailable(format!("{uri} kept being replaced while a write waited for it; retry")))
    }
}

/// A failed rename of a sibling over its target: a directory in the way is a conflict, as OpenDAL's
/// rename reported it (`error_mapping`).
fn rename_error(e: Errno, uri: &str) -> UfsError {
    match e {
        Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST | Errno::NOTDIR => UfsError::Conflict(format!(
            "{uri}: a file and a directory would have the same name (a file cannot hold entries, and a directory \
             cannot be replaced by a file)"
        )),
        e => map_errno(e, uri),
    }
}
