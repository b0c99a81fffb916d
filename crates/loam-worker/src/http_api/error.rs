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
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Corrupt | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for WorkerError {
    fn into_response(self) -> Response {
        let status = status_of(self.kind());
        if status.is_server_error() {
            tracing::warn!("request failed: {self}");
        }
        (status, Json(StatusBody { status: self.to_string() })).into_response()
    }
}
