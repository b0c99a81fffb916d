//! The edge every listener's requests pass first: the request id ([`loam_core::request_id`]) taken or
//! made, put in the request's `x-request-id` (so the handlers, the S3 API's `x-amz-request-id` included,
//! see the one id), answered in the response's, and carried by a `request` span and the id's scope.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use loam_core::request_id::{self, HEADER};
use tracing::Instrument;

/// The middleware [`crate::Listener::serve`] puts in front of every router.
pub async fn edge(mut req: Request, next: Next) -> Response {
    let id = request_id::accept(req.headers().get(HEADER).map(HeaderValue::as_bytes));
    // A well-formed id is visible ASCII: always a header value.
    let value = HeaderValue::from_str(&id).ok();
    if let Some(v) = &value {
        req.headers_mut().insert(HEADER, v.clone());
    }
    let span = tracing::info_span!("request", request_id = %id);
    let mut resp = request_id::scope(id, next.run(req)).instrument(span).await;
    if let Some(v) = value {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}
