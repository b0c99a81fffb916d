//! What the mount shows of a file or directory: the few fields of a worker's file-info that a `stat`
//! needs, turned into the kernel's attributes. Everything is read-only: write bits are cleared so
//! tools do not offer to write, and the mount itself is `ro`.

use fuser::{FileAttr, FileType, INodeNo};
use loam_core::worker_api::FileInfo;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The block size `stat` reports: tools that size their buffers by it (`cat`, `cp`) then read a whole
/// cache page per call.
pub const BLOCK_SIZE: u32 = 1 << 20;

/// A file's or directory's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// A directory (else a regular file).
    pub dir: bool,
    /// Length in bytes (0 for directories).
    pub size: u64,
    /// Modification time.
    pub mtime: SystemTime,
    /// Permission bits as the UFS reports them (write bits are cleared when shown).
    pub mode: u32,
}

impl Meta {
    /// A directory that exists only in the mount (the root, a mount point), modified at `mtime`.
    pub fn synthetic_dir(mtime: SystemTime) -> Self {
        Self { dir: true, size: 0, mtime, mode: 0o755 }
    }

    /// The metadata of a worker's file-info.
    pub fn of(info: &FileInfo) -> Self {
        let dir = info.m_type == "directory";
        let ms = u64::try_from(info.m_last_modification_time_ms).unwrap_or(0);
        let default_mode = if dir { 0o755 } else { 0o644 };
        Self {
            dir,
            size: if dir { 0 } else { info.m_length },
            mtime: UNIX_EPOCH + Duration::from_millis(ms),
            mode: if info.m_mode & 0o777 == 0 { default_mode } else { info.m_mode & 0o777 },
        }
    }

    /// The version tag of a file's file-info (`loam_core::version`, as the workers tag what they serve);
    /// `None` for a directory.
    pub fn version_of(info: &FileInfo) -> Option<String> {
        let etag = Some(info.m_content_hash.as_str());
        (info.m_type != "directory")
            .then(|| loam_core::version::version_tag(info.m_length, etag, Some(info.m_last_modification_time_ms)))
    }

    /// The kernel's file type.
    pub fn kind(&self) -> FileType {
        if self.dir { FileType::Directory } else { FileType::RegularFile }
    }

    /// The attributes of inode `ino`, owned by `owner` (uid, gid).
    pub fn attr(&self, ino: u64, owner: (u32, u32)) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: self.size,
            blocks: self.size.div_ceil(512),
            atime: self.mtime,
            mtime: self.mtime,
            ctime: self.mtime,
            crtime: self.mtime,
            kind: self.kind(),
            perm: (self.mode & 0o555) as u16,
            nlink: if self.dir { 2 } else { 1 },
            uid: owner.0,
            gid: owner.1,
            rdev: 0,
            blksize: BLOCK_SIZE,
            flags: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: &str, len: u64, mode: u32, mtime_ms: i64) -> FileInfo {
        FileInfo {
            m_type: kind.into(),
            m_name: "f".into(),
            m_path: "/d/f".into(),
            m_ufs_path: "file:///u/f".into(),
            m_length: len,
            m_human_readable_file_size: String::new(),
            m_completed: true,
            m_owner: String::new(),
            m_group: String::new(),
            m_mode: mode,
            m_creation_time_ms: mtime_ms,
            m_last_modification_time_ms: mtime_ms,
            m_last_access_time_ms: mtime_ms,
            m_persisted: true,
            m_in_alluxio_percentage: 0,
            m_content_hash: String::new(),
        }
    }

    #[test]
    fn files_show_their_length_time_and_no_write_bits() {
        let m = Meta::of(&info("file", 1_048_577, 0o644, 1_700_000_000_123));
        let a = m.attr(7, (1000, 100));
        assert_eq!(
            (a.ino, a.size, a.blocks, a.kind, a.perm),
            (INodeNo(7), 1_048_577, 2049, FileType::RegularFile, 0o444)
        );
        assert_eq!(a.mtime, UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        assert_eq!((a.uid, a.gid, a.nlink), (1000, 100, 1));
    }

    #[test]
    fn a_files_version_is_its_etag_or_its_length_and_time() {
        assert_eq!(Meta::version_of(&info("file", 255, 0o644, 16)).as_deref(), Some("ff-10"));
        let mut s3 = info("file", 255, 0o644, 16);
        s3.m_content_hash = "abc".into();
        assert_eq!(Meta::version_of(&s3).as_deref(), Some("abc"));
        assert_eq!(Meta::version_of(&info("directory", 0, 0, 16)), None);
    }

    #[test]
    fn directories_have_no_length_and_a_missing_mode_gets_a_default() {
        let m = Meta::of(&info("directory", 4096, 0, -5));
        let a = m.attr(9, (0, 0));
        assert_eq!((a.size, a.kind, a.perm, a.nlink), (0, FileType::Directory, 0o555, 2));
        assert_eq!(a.mtime, UNIX_EPOCH, "a negative time is clamped to the epoch");
    }
}
