//! The one error type of the HTTP edge and the one place that turns an error into a status code.
//!
//! Every handler and extractor returns [`ApiError`]; service errors convert into it with `?`. The status
//! comes from the error's [`ErrorKind`] (plus two HTTP-only cases, 405 and 413), and the body is always
//! `{"status": "<message>"}` with the error's `Display` text, so no handler can answer an error in
//! another shape.
//!
//! **Decision:** a dependency that cannot be reached (`Unavailable`: the cluster store, etcd, above all)
//! answers `503`, so a client can tell "try again" from a fault; the message says what is unreachable
//! (`cluster store unreachable: …`). Every other server-side failure (`Corrupt`, `Internal`) answers
//! `500`, the server error the spec's tables list. A `503` carries `Retry-After`. Every operation documents the `503` once
//! (`openapi::finish`).

use crate::file_index::FileIndexError;
use crate::jobs::JobError;
use crate::mounts::MountServiceError;
use crate::rules::RuleError;
use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use loam_core::ErrorKind;
use loam_core::coordinator_api::StatusBody;
use loam_store::StoreError;

/// The `Retry-After` of every `503`, in seconds: a store or leader outage is short, or is not fixed by waiting.
pub const RETRY_AFTER_SECS: u16 = 1;

/// Why a request failed, as the user sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No body, malformed JSON, a missing or mistyped field, a missing or malformed query parameter.
    #[error("Required parameters not provided: {0}")]
    MissingParameters(String),
    /// A well-formed request whose content is refused (e.g. a malformed worker id).
    #[error("{0}")]
    InvalidInput(String),
    /// The body exceeds the size limit.
    #[error("request body too large: {0}")]
    BodyTooLarge(String),
    /// A body that is not declared JSON (`415`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No endpoint at this path.
    #[error("unknown endpoint: {method} {path}")]
    UnknownEndpoint {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
    },
    /// The endpoint exists but not with this method.
    #[error("method {method} is not allowed for {path}")]
    MethodNotAllowed {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
    },
    /// `GET`/`DELETE /api/v1/nodes?id=` of a worker that is not registered.
    #[error("worker not found: {0}")]
    WorkerNotFound(String),
    /// A mount table operation failed.
    #[error(transparent)]
    Mounts(#[from] MountServiceError),
    /// The cluster store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A load or free job operation failed.
    #[error(transparent)]
    Jobs(#[from] JobError),
    /// A TTL, priority or quota rule operation failed.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// A file index operation failed (e.g. the index is disabled).
    #[error(transparent)]
    FileIndex(#[from] FileIndexError),
    /// `GET /api/v1/file_index?file=` of a file the index does not hold.
    #[error("File not found in the global file index: {0}")]
    NotIndexed(String),
    /// A file index report for a worker that is not a current member of the ring: `400`, not `403`, which
    /// the auth layer answers for a missing role (the caller's credentials are fine; the report is not).
    #[error("worker {0} is not a current member of the cluster; its report was refused")]
    NotAMember(String),
    /// A worker asked on the caller's behalf (a drain) could not be reached or failed.
    #[error("{0}")]
    Worker(loam_client::PeerError),
    /// `/api/v1/cache` with an `op` other than `clear-stale`.
    #[error("OP not implemented")]
    OpNotImplemented,
    /// A write reached a Coordinator that does not lead, and no leader is known or reachable (`api::leader`).
    #[error("no Coordinator leader: {0}")]
    NoLeader(String),
    /// A bug: a handler panicked or an invariant broke.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The layer-independent kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::MissingParameters(_)
            | ApiError::InvalidInput(_)
            | ApiError::BodyTooLarge(_)
            | ApiError::UnsupportedMediaType(_)
            | ApiError::MethodNotAllowed { .. }
            | ApiError::NotAMember(_) => ErrorKind::InvalidInput,
            ApiError::UnknownEndpoint { .. } | ApiError::WorkerNotFound(_) | ApiError::NotIndexed(_) => {
                ErrorKind::NotFound
            }
            ApiError::FileIndex(e) => e.kind(),
            ApiError::OpNotImplemented => ErrorKind::NotImplemented,
            ApiError::Mounts(e) => e.kind(),
            ApiError::Store(e) => e.kind(),
            ApiError::Jobs(e) => e.kind(),
            ApiError::Rules(e) => e.kind(),
            ApiError::NoLeader(_) => ErrorKind::Unavailable,
            ApiError::Internal(_) => ErrorKind::Internal,
            // Unreachable or failing: try again (`503`); any other answer is a fault of the cluster's setup.
            ApiError::Worker(e) if e.is_retryable() => ErrorKind::Unavailable,
            ApiError::Worker(_) => ErrorKind::Internal,
        }
    }

    /// The HTTP status of this error: the one mapping from errors to status codes.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::FileIndex(FileIndexError::Full { .. }) => StatusCode::INSUFFICIENT_STORAGE,
            _ => match self.kind() {
                ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::Conflict => StatusCode::CONFLICT,
                ErrorKind::Gone => StatusCode::GONE,
                ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
                ErrorKind::Changed => StatusCode::PRECONDITION_FAILED,
                ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::Corrupt | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.to_string();
        // A server error is ours: a warning, at most one per few seconds (`loam_core::log_limit`). A client
        // error is the caller's: debug only, so bad requests cannot flood the log.
        if status.is_server_error() {
            loam_core::warn_limited!(%status, error = %message, "request failed");
        } else {
            tracing::debug!(%status, error = %message, "request refused");
        }
        let mut response = (status, Json(StatusBody { status: message })).into_response();
        // A 503 passes (the store or a leader is back): say when to try again.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loam_ufs::mount_table::MountError;

    #[test]
    fn statuses_follow_the_spec() {
        let cases = [
            (ApiError::MissingParameters("x".into()), 400),
            (ApiError::UnknownEndpoint { method: "GET".into(), path: "/x".into() }, 404),
            (ApiError::MethodNotAllowed { method: "PUT".into(), path: "/x".into() }, 405),
            (ApiError::BodyTooLarge("x".into()), 413),
            (ApiError::WorkerNotFound("w".into()), 404),
            (MountServiceError::Mount(MountError::Conflict("c".into())).into(), 409),
            (MountServiceError::Mount(MountError::NotMounted("/d/".into())).into(), 404),
            (MountServiceError::NotMounted("/d/".into()).into(), 410),
            (MountServiceError::Static.into(), 501),
            (MountServiceError::UfsMissing("file:///x/".into()).into(), 400),
            (StoreError::Unavailable("down".into()).into(), 503),
            (JobError::Store(StoreError::Unavailable("down".into())).into(), 503),
            (StoreError::Corrupt("bad".into()).into(), 500),
            (ApiError::Internal("bug".into()), 500),
            (RuleError::Disabled("TTL not enabled").into(), 501),
            (RuleError::NotFound("No TTL policy found for path: /d".into()).into(), 404),
            (RuleError::NoMount.into(), 400),
            (RuleError::NoRuleAt { kind: "ttl", path: "/d".into() }.into(), 400),
            (FileIndexError::Disabled.into(), 404),
            (ApiError::NotIndexed("s3://b/f".into()), 404),
            (ApiError::OpNotImplemented, 501),
            (ApiError::NoLeader("none".into()), 503),
        ];
        for (err, status) in cases {
            assert_eq!(err.status().as_u16(), status, "{err}");
        }
    }

    #[test]
    fn a_503_says_when_to_retry() {
        let r = ApiError::NoLeader("none is elected yet".into()).into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[RETRY_AFTER], RETRY_AFTER_SECS.to_string().as_str());
        let r = ApiError::InvalidInput("x".into()).into_response();
        assert!(!r.headers().contains_key(RETRY_AFTER), "only a 503 asks for a retry");
    }

    #[test]
    fn bad_input_reads_as_required_parameters() {
        let e = ApiError::MissingParameters("missing field `ufs`".into());
        assert_eq!(e.to_string(), "Required parameters not provided: missing field `ufs`");
    }
}
