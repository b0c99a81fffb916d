//! The page store's error type. A corrupt page is not an error (it is dropped and reported as a miss),
//! so what remains is bad input from the caller, a missing record, and disk I/O failures.

use loam_core::ErrorKind;
use std::io;
use std::path::PathBuf;

/// A page store failure.
#[derive(Debug, thiserror::Error)]
pub enum PageStoreError {
    /// A disk operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The caller passed something the store cannot accept.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// There is no record for the file.
    #[error("no record for file {0}")]
    NotFound(String),
    /// No cache directory could be opened (each named, with why: not writable, in use by another worker).
    #[error("{0}")]
    CacheDirs(String),
    /// A blocking disk task panicked or was cancelled.
    #[error("disk task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl PageStoreError {
    /// The error's kind. Disk I/O is `Unavailable` when it is a resource running out (full disk, quota,
    /// interruption), which may pass, and `Internal` otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PageStoreError::Io { source, .. } => match source.kind() {
                io::ErrorKind::StorageFull
                | io::ErrorKind::QuotaExceeded
                | io::ErrorKind::Interrupted
                | io::ErrorKind::TimedOut
                | io::ErrorKind::WouldBlock
                | io::ErrorKind::ResourceBusy => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            PageStoreError::InvalidInput(_) | PageStoreError::CacheDirs(_) => ErrorKind::InvalidInput,
            PageStoreError::NotFound(_) => ErrorKind::NotFound,
            PageStoreError::Task(_) => ErrorKind::Internal,
        }
    }

    /// Wraps an I/O error with what was being done and where.
    pub(super) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| PageStoreError::Io { op, path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let full = PageStoreError::io("write", "/x")(io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(full.kind(), ErrorKind::Unavailable);
        let denied = PageStoreError::io("write", "/x")(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(denied.kind(), ErrorKind::Internal);
        assert!(denied.to_string().starts_with("cannot write /x:"), "{denied}");
        assert_eq!(PageStoreError::InvalidInput("x".into()).kind(), ErrorKind::InvalidInput);
        assert_eq!(PageStoreError::NotFound("f".into()).kind(), ErrorKind::NotFound);
    }
}
