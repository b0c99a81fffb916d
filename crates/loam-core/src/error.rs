//! Error kinds shared by every layer. Each layer has its own `thiserror` type that maps to a kind; the
//! kind says whether a retry can help and, at the HTTP edge, which status code the user sees.

/// What kind of failure an error is, independent of the layer that raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something invalid (4xx; retrying the same request cannot help).
    InvalidInput,
    /// The named thing does not exist.
    NotFound,
    /// The request conflicts with existing state (already mounted, job exists).
    Conflict,
    /// The thing existed but is gone or finished.
    Gone,
    /// The operation is not available in this configuration.
    NotImplemented,
    /// A dependency (UFS, etcd, a worker) is unreachable or overloaded; a retry may succeed.
    Unavailable,
    /// Stored data failed its checksum or could not be decoded.
    Corrupt,
    /// A bug or an unexpected condition.
    Internal,
}

impl ErrorKind {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Corrupt)
    }
}
