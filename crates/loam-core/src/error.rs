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
    /// The data changed under the request: the version it is pinned to (`If-Match`) is no longer the one
    /// stored. Retrying the same pinned request cannot help; a new request reads the new version.
    Changed,
    /// A dependency (UFS, etcd, a worker) is unreachable or overloaded; a retry may succeed.
    Unavailable,
    /// Stored data failed its checksum or could not be decoded.
    Corrupt,
    /// A bug or an unexpected condition.
    Internal,
}

impl ErrorKind {
    /// The kind an HTTP error status stands for, as a caller of another node reads it: the inverse of the
    /// edges' mappings, so that a `4xx` (the request is wrong) is never retried like a `5xx` or a timeout.
    pub fn from_http_status(status: u16) -> Self {
        match status {
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            410 => ErrorKind::Gone,
            412 => ErrorKind::Changed,
            501 => ErrorKind::NotImplemented,
            // A server error may pass (the Coordinator answers every server-side failure with 500).
            408 | 429 | 500..=599 => ErrorKind::Unavailable,
            400..=499 => ErrorKind::InvalidInput,
            _ => ErrorKind::Internal,
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn statuses_read_back_as_kinds() {
        for (status, kind, retry) in [
            (400, ErrorKind::InvalidInput, false),
            (401, ErrorKind::InvalidInput, false),
            (404, ErrorKind::NotFound, false),
            (409, ErrorKind::Conflict, false),
            (412, ErrorKind::Changed, false),
            (413, ErrorKind::InvalidInput, false),
            (429, ErrorKind::Unavailable, true),
            (500, ErrorKind::Unavailable, true),
            (302, ErrorKind::Internal, false),
            (501, ErrorKind::NotImplemented, false),
            (503, ErrorKind::Unavailable, true),
            (504, ErrorKind::Unavailable, true),
        ] {
            assert_eq!(ErrorKind::from_http_status(status), kind, "{status}");
            assert_eq!(kind.is_retryable(), retry, "{status}");
        }
    }
}
