//! Errors of mounting and unmounting, and the errno a failed cluster request becomes: a path that does
//! not exist is `ENOENT`, a handle whose version was replaced `ESTALE`, anything else a worker or the UFS fails with is `EIO` (and logged where it
//! happens, since the kernel passes on only the number).

use fuser::Errno;
use loam_client::ClientError;
use loam_core::ErrorKind;
use loam_ufs::mount_table::MountError;
use std::path::PathBuf;

/// Why a mount could not be made or taken down.
#[derive(Debug, thiserror::Error)]
pub enum FuseError {
    /// The kernel's FUSE device is missing.
    #[error("/dev/fuse is missing: load the fuse module (modprobe fuse) or give the container the device")]
    NoDevice,
    /// The mount point is not an existing directory.
    #[error("the mount point {0} is not a directory")]
    NotADirectory(PathBuf),
    /// The kernel (or fusermount3) refused the mount.
    #[error("cannot mount at {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The mount could not be taken down (even lazily).
    #[error("cannot unmount {path}: {message}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl FuseError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FuseError::NoDevice | FuseError::Mount { .. } | FuseError::Unmount { .. } => ErrorKind::Unavailable,
            FuseError::NotADirectory(_) => ErrorKind::InvalidInput,
        }
    }
}

/// The errno of a failed cluster request.
pub fn errno_of(e: &ClientError) -> Errno {
    match e {
        ClientError::Status { status: 404, .. } => Errno::ENOENT,
        // The version the handle reads was replaced in the UFS: the handle is stale (a new open reads on).
        ClientError::Status { status: 412, .. } => Errno::ESTALE,
        ClientError::Ufs(u) if u.kind() == ErrorKind::Changed => Errno::ESTALE,
        // Workers answer a missing path with a 500 that says so, as Alluxio's clients expect.
        ClientError::Status { status: 500, message } if message.contains("does not exist") => Errno::ENOENT,
        ClientError::Mount(MountError::NotMounted(_)) => Errno::ENOENT,
        ClientError::Ufs(u) if u.kind() == ErrorKind::NotFound => Errno::ENOENT,
        _ => Errno::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_paths_are_enoent_and_failures_eio() {
        let missing = ClientError::Status { status: 500, message: "File does not exist: file:///x".into() };
        assert_eq!(errno_of(&missing), Errno::ENOENT);
        assert_eq!(errno_of(&ClientError::Status { status: 404, message: String::new() }), Errno::ENOENT);
        assert_eq!(errno_of(&ClientError::Mount(MountError::NotMounted("/x".into()))), Errno::ENOENT);
        assert_eq!(errno_of(&ClientError::Ufs(loam_ufs::UfsError::NotFound("x".into()))), Errno::ENOENT);
        let broken = ClientError::Status { status: 500, message: "page store: disk full".into() };
        assert_eq!(errno_of(&broken), Errno::EIO);
        assert_eq!(errno_of(&ClientError::NoWorker("x".into(), "refused".into())), Errno::EIO);
        assert_eq!(errno_of(&ClientError::Ufs(loam_ufs::UfsError::Unavailable("x".into()))), Errno::EIO);
    }

    #[test]
    fn kinds() {
        assert_eq!(FuseError::NoDevice.kind(), ErrorKind::Unavailable);
        assert_eq!(FuseError::NotADirectory("/x".into()).kind(), ErrorKind::InvalidInput);
    }
}
