//! Cluster store errors.

use loam_core::ErrorKind;

/// A cluster store operation's error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store (etcd) cannot be reached or timed out; a retry may succeed.
    #[error("cluster store unreachable: {0}")]
    Unavailable(String),
    /// The lease has expired or was revoked.
    #[error("lease {0} not found (expired or revoked)")]
    LeaseNotFound(i64),
    /// A watch asked for history the store has compacted away.
    #[error("revision {0} has been compacted")]
    Compacted(i64),
    /// The on-disk data could not be read (wrong format version, corrupt file).
    #[error("cluster store data is corrupt: {0}")]
    Corrupt(String),
    /// Anything else.
    #[error("cluster store error: {0}")]
    Other(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The layer-independent kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable(_) => ErrorKind::Unavailable,
            StoreError::LeaseNotFound(_) => ErrorKind::NotFound,
            StoreError::Compacted(_) => ErrorKind::Gone,
            StoreError::Corrupt(_) => ErrorKind::Corrupt,
            StoreError::Other(_) => ErrorKind::Internal,
        }
    }
}
