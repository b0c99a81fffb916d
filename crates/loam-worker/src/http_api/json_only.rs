//! The worker's JSON endpoints (internal tasks, invalidations, clear-stale) take a body only when it is
//! declared `Content-Type: application/json`; anything else is `415` with a `{"status": …}` body before
//! the handler runs, so nothing changes. A cross-origin page can send form and text bodies without a
//! preflight; a JSON one it cannot. Page writes (`application/octet-stream`, as the Alluxio client sends
//! them) and bodiless requests do not pass through here.

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use loam_core::coordinator_api::{StatusBody, is_json_media_type};

/// Middleware: refuses a request with a body that is not declared JSON.
pub async fn require_json(req: Request, next: Next) -> Response {
    let h = req.headers();
    let has_body = h.contains_key(TRANSFER_ENCODING)
        || h.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|n| n.trim() != "0");
    let content_type = h.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if has_body && !content_type.is_some_and(is_json_media_type) {
        let given = content_type.map_or("none".to_string(), |c| format!("{c:?}"));
        let status = format!("the body must be sent with Content-Type: application/json (Content-Type was {given})");
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(StatusBody { status })).into_response();
    }
    next.run(req).await
}
