//! The one place where worker errors become HTTP answers: a status code from the error's kind and a
//! `{"status": "<message>"}` body, the same shape the Coordinator uses.

use crate::error::WorkerError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use loam_core::ErrorKind;
use loam_core::coordinator_api::StatusBody;

/// The HTTP status of an error kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Changed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Corrupt | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for WorkerError {
    fn into_response(self) -> Response {
        let status = status_of(self.kind());
        // A server error is ours: a warning, at most one per few seconds (`loam_core::log_limit`). A client
        // error is the caller's: debug only, so bad requests cannot flood the log.
        if status.is_server_error() {
            loam_core::warn_limited!(%status, "request failed: {self}");
        } else {
            tracing::debug!(%status, "request refused: {self}");
        }
        (status, Json(StatusBody { status: self.to_string() })).into_response()
    }
}
