//! UFS errors: a kind that says whether to retry, and the message of the underlying library.

use loam_core::ErrorKind;

/// A UFS operation's error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UfsError {
    /// The file or directory does not exist.
    #[error("not found in UFS: {0}")]
    NotFound(String),
    /// The URI or mount options are not usable (bad scheme, bad endpoint, missing bucket).
    #[error("invalid UFS request: {0}")]
    InvalidInput(String),
    /// The UFS refused the credentials.
    #[error("UFS permission denied: {0}")]
    PermissionDenied(String),
    /// The UFS is unreachable, timed out, or asked us to slow down; a retry may succeed.
    #[error("UFS unavailable: {0}")]
    Unavailable(String),
    /// A file and a directory would share a name: a write under a file (`a/b/c` where `a/b` is a file),
    /// or a file where a directory is (`a/b` where `a/b/` holds entries). A file system cannot hold both
    /// (S3 can); no retry helps until one of them is removed.
    #[error("conflict in UFS: {0}")]
    Conflict(String),
    /// The file is no longer the version a read was pinned to (its version tag, `loam_core::version`).
    #[error("changed in UFS: {0}")]
    Changed(String),
    /// The UFS cannot do what was asked (store metadata on a file system without extended attributes).
    #[error("not supported by the UFS: {0}")]
    Unsupported(String),
    /// A conditional write's condition did not hold (`WriteCondition`); nothing was written.
    #[error("precondition failed: {0}")]
    ConditionFailed(String),
    /// Anything else the UFS library reported.
    #[error("UFS error: {0}")]
    Other(String),
}

/// Result of a UFS operation.
pub type UfsResult<T> = Result<T, UfsError>;

impl UfsError {
    /// The layer-independent kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            UfsError::NotFound(_) => ErrorKind::NotFound,
            UfsError::InvalidInput(_) | UfsError::PermissionDenied(_) => ErrorKind::InvalidInput,
            UfsError::Unavailable(_) => ErrorKind::Unavailable,
            UfsError::Changed(_) | UfsError::ConditionFailed(_) => ErrorKind::Changed,
            UfsError::Unsupported(_) => ErrorKind::NotImplemented,
            UfsError::Conflict(_) => ErrorKind::Conflict,
            UfsError::Other(_) => ErrorKind::Internal,
        }
    }

    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}
