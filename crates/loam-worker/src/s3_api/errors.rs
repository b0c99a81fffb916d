//! The one place where worker errors become S3 errors. The code follows the error's kind: what does not
//! exist is `NoSuchKey` (`NoSuchBucket` when the path lies under no mount), a bad request is
//! `InvalidArgument` (`AccessDenied` when the UFS refused our credentials), a UFS or peer that cannot
//! answer now is `503 ServiceUnavailable` (S3 clients retry it), a conflict `OperationAborted`, what is
//! not implemented `NotImplemented`, and anything else is `InternalError` — never a panic. The message is the worker's, so the cause
//! reaches the client. A file and a directory of the same name on a file system (which S3 would hold
//! both of) is `409 PathConflict`, Loam's own code: no S3 code says it, and a 5xx would be retried.

use crate::error::WorkerError;
use crate::s3_api::multipart::store::UploadError;
use loam_core::ErrorKind;
use loam_ufs::UfsError;
use loam_ufs::mount_table::MountError;
use s3s::{S3Error, S3ErrorCode};

/// The code of a file/directory conflict (see the module header).
pub const PATH_CONFLICT: &str = "PathConflict";

/// `409 PathConflict` with `message`.
pub fn path_conflict(message: impl Into<String>) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(PATH_CONFLICT.into()), message.into());
    e.set_status_code(axum::http::StatusCode::CONFLICT);
    e
}

/// The S3 error of a worker error.
pub fn from_worker(e: WorkerError) -> S3Error {
    if let WorkerError::Ufs(UfsError::Conflict(_)) = &e {
        tracing::debug!("S3 request refused: {e}");
        return path_conflict(PATH_CONFLICT_MESSAGE);
    }
    if let WorkerError::Ufs(UfsError::ConditionFailed(_)) = &e {
        tracing::debug!("S3 request refused: {e}");
        return crate::s3_api::conditions::precondition_failed();
    }
    let code = match (&e, e.kind()) {
        (WorkerError::Mount(MountError::NotMounted(_)), _) => S3ErrorCode::NoSuchBucket,
        (WorkerError::Ufs(UfsError::PermissionDenied(_)), _) => S3ErrorCode::AccessDenied,
        (_, ErrorKind::NotFound | ErrorKind::Gone) => S3ErrorCode::NoSuchKey,
        (_, ErrorKind::InvalidInput) => S3ErrorCode::InvalidArgument,
        (_, ErrorKind::Conflict) => S3ErrorCode::OperationAborted,
        (_, ErrorKind::NotImplemented) => S3ErrorCode::NotImplemented,
        (_, ErrorKind::Unavailable) => S3ErrorCode::ServiceUnavailable,
        (_, ErrorKind::Changed) => S3ErrorCode::PreconditionFailed,
        (_, ErrorKind::Corrupt | ErrorKind::Internal) => S3ErrorCode::InternalError,
    };
    // Ours: a rate-limited warning; the client's (4xx): debug only.
    if matches!(code, S3ErrorCode::ServiceUnavailable | S3ErrorCode::InternalError) {
        loam_core::warn_limited!("S3 request failed: {e}");
    } else {
        tracing::debug!("S3 request refused: {e}");
    }
    let message = client_message(&code, e.to_string());
    S3Error::with_message(code, message)
}

/// What the client reads of a worker error: the cause, unless it may name what the client must not see
/// (UFS paths, which are the operator's): then S3's wording. The cause is in the worker's log.
fn client_message(code: &S3ErrorCode, cause: String) -> String {
    match code {
        S3ErrorCode::NoSuchKey => NO_SUCH_KEY.into(),
        S3ErrorCode::InternalError => "We encountered an internal error. Please try again.".into(),
        _ if cause.contains("://") => format!("{} (the cause is in the worker's log)", code.as_str()),
        _ => cause,
    }
}

/// The message of a file/directory conflict: the key is in the error document (`edge`), the UFS path not.
pub const PATH_CONFLICT_MESSAGE: &str = "An object and a folder would have one name: on this bucket's file system a \
     key cannot be both an object and a prefix of other keys (a file cannot hold entries); nothing was written";

/// The message of every `NoSuchKey` (S3's).
pub const NO_SUCH_KEY: &str = "The specified key does not exist.";

/// The S3 error of a multipart store error.
pub fn from_upload(e: UploadError) -> S3Error {
    let code = match e.kind() {
        _ if matches!(e, UploadError::TooLarge(_)) => S3ErrorCode::EntityTooLarge,
        ErrorKind::NotFound => S3ErrorCode::NoSuchUpload,
        ErrorKind::InvalidInput => S3ErrorCode::InvalidArgument,
        ErrorKind::Unavailable => S3ErrorCode::ServiceUnavailable,
        _ => S3ErrorCode::InternalError,
    };
    if code == S3ErrorCode::InternalError {
        loam_core::warn_limited!("S3 multipart request failed: {e}");
    } else {
        tracing::debug!("S3 multipart request refused: {e}");
    }
    S3Error::with_message(code, e.to_string())
}

impl From<WorkerError> for S3Error {
    fn from(e: WorkerError) -> Self {
        from_worker(e)
    }
}

impl From<UploadError> for S3Error {
    fn from(e: UploadError) -> Self {
        from_upload(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_s3_codes() {
        let code = |e: WorkerError| from_worker(e).code().clone();
        assert_eq!(code(WorkerError::NotFound("x".into())), S3ErrorCode::NoSuchKey);
        assert_eq!(code(WorkerError::Ufs(UfsError::NotFound("x".into()))), S3ErrorCode::NoSuchKey);
        let e = from_worker(WorkerError::Ufs(UfsError::NotFound("file:///srv/ufs/secret/k".into())));
        assert_eq!(e.message(), Some(NO_SUCH_KEY), "no server path reaches the client");
        assert_eq!(code(WorkerError::Mount(MountError::NotMounted("/x".into()))), S3ErrorCode::NoSuchBucket);
        assert_eq!(code(WorkerError::InvalidInput("x".into())), S3ErrorCode::InvalidArgument);
        assert_eq!(code(WorkerError::Ufs(UfsError::PermissionDenied("x".into()))), S3ErrorCode::AccessDenied);
        assert_eq!(code(WorkerError::Unavailable("x".into())), S3ErrorCode::ServiceUnavailable);
        assert_eq!(code(WorkerError::PageStore("x".into())), S3ErrorCode::InternalError);
        let e = from_worker(WorkerError::Unavailable("the UFS is down".into()));
        assert_eq!(e.status_code().map(|s| s.as_u16()), Some(503));
        assert_eq!(e.message(), Some("the UFS is down"));
        assert_eq!(from_upload(UploadError::NoSuchUpload("u".into())).code(), &S3ErrorCode::NoSuchUpload);
        let e = from_worker(WorkerError::Ufs(UfsError::Conflict("file:///srv/d/a/b is a file".into())));
        assert_eq!((e.code().as_str(), e.status_code().map(|s| s.as_u16())), (PATH_CONFLICT, Some(409)));
        assert!(!e.message().unwrap().contains("/srv/d"), "{e:?}");
        let e = from_worker(WorkerError::Ufs(UfsError::Unavailable("s3://b/k: timed out".into())));
        assert!(!e.message().unwrap().contains("s3://"), "{e:?}");
    }
}
