//! The worker's errors. Each says its kind; `http_api::error` maps kinds to HTTP status codes in one place.

use loam_core::ErrorKind;
use loam_page_store::PageStoreError;
use loam_ufs::UfsError;
use loam_ufs::mount_table::MountError;

/// An error of a worker operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WorkerError {
    /// The request is malformed (a bad parameter, a path with `..`, a wrong page length).
    #[error("{0}")]
    InvalidInput(String),
    /// The file, page or id is unknown.
    #[error("{0}")]
    NotFound(String),
    /// The path lies under no mount.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// The UFS failed.
    #[error(transparent)]
    Ufs(#[from] UfsError),
    /// The page store failed (disk I/O).
    #[error("page store: {0}")]
    PageStore(String),
    /// The request contradicts the UFS (a posted page that is not what the UFS holds).
    #[error("{0}")]
    Conflict(String),
    /// The worker is shutting down or was deregistered.
    #[error("{0}")]
    Unavailable(String),
    /// The file is no longer the version the request is pinned to (`If-Match`, or a stream that outlived
    /// its version): `412`, and a stream is cut off rather than continued with another version.
    #[error("{0}")]
    Changed(String),
}

impl From<PageStoreError> for WorkerError {
    fn from(e: PageStoreError) -> Self {
        match e.kind() {
            ErrorKind::InvalidInput => WorkerError::InvalidInput(e.to_string()),
            ErrorKind::NotFound => WorkerError::NotFound(e.to_string()),
            _ => WorkerError::PageStore(e.to_string()),
        }
    }
}

impl WorkerError {
    /// The layer-independent kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            WorkerError::InvalidInput(_) => ErrorKind::InvalidInput,
            WorkerError::NotFound(_) => ErrorKind::NotFound,
            WorkerError::Conflict(_) => ErrorKind::Conflict,
            WorkerError::Mount(MountError::NotMounted(_)) => ErrorKind::NotFound,
            WorkerError::Mount(MountError::Conflict(_)) => ErrorKind::Conflict,
            WorkerError::Mount(_) => ErrorKind::InvalidInput,
            WorkerError::Ufs(e) => e.kind(),
            WorkerError::PageStore(_) => ErrorKind::Internal,
            WorkerError::Unavailable(_) => ErrorKind::Unavailable,
            WorkerError::Changed(_) => ErrorKind::Changed,
        }
    }
}

/// Result of a worker operation.
pub type WorkerResult<T> = Result<T, WorkerError>;
