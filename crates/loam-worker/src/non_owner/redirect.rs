//! `redirect-to-owner`: answering an anonymous read of a file another worker owns with
//! `307 Temporary Redirect` to the same path and query at that owner's advertised address.
//!
//! **Which requests.** Only reads that carry no credentials, and only when this worker's ring names
//! another live owner with a known address; everything else is served as without the option (so a request
//! is redirected at most once: the owner serves what it owns):
//!
//! - **S3** GetObject and HeadObject sent unsigned (under `anonymous-read`). A SigV4 request signs the
//!   `Host` header (header-signed and presigned alike: `X-Amz-SignedHeaders` always holds `host`), so at
//!   another host its signature would not match; SigV2 requests carry credentials too. Signed requests are
//!   proxied.
//! - **Worker HTTP API** `GET` of `/v1/range`, `/v1/chunk`, `/v1/head`, `/v1/tail` and page reads that name
//!   the file by `ufsFullPath` and send no `Authorization`. Requests with a token are served here: a client
//!   drops `Authorization` on a redirect to another host (curl, reqwest, browsers; botocore's S3 redirect
//!   handling re-signs for the new host only for its region redirects), so redirecting them would either
//!   fail them with `401` at the owner or, in a client that kept the header, hand the token to another
//!   host. Cluster members always send their token, so their reads (peer copies, forwarded S3 reads,
//!   failover to replicas) are never redirected.
//!
//! **Auth first.** The check runs after the worker's own guard (HTTP) or `s3s`'s signature and access
//! check (S3): a request this worker would refuse is refused here (`401`/`403`), never redirected.
//!
//! The setting is read per request from [`WorkerState::redirect_to_owner`] (an atomic, so a benchmark can
//! compare both ways on one cluster).

use crate::http_api::WorkerState;
use crate::http_api::query::Query;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use loam_client::WorkerEndpoint;
use loam_core::path::UfsUri;
use s3s::{S3Error, S3ErrorCode};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The worker HTTP API's data reads, which name a file (by `ufsFullPath`) that may have another owner.
const DATA_PREFIXES: [&str; 5] = ["/v1/range/", "/v1/chunk/", "/v1/head/", "/v1/tail/", "/v1/file/"];

/// The owner of `uri` when redirects are on and it is another worker.
fn other_owner(state: &WorkerState, uri: &str) -> Option<WorkerEndpoint> {
    if !state.redirect_to_owner.load(Ordering::Relaxed) {
        return None;
    }
    state.members.ring().primary(uri).map(|(_, w)| w.clone()).filter(|w| w.id != state.id)
}

/// `base` followed by the path and query of `uri`.
fn location(base: &str, uri: &Uri) -> String {
    format!("{base}{}", uri.path_and_query().map_or("/", |p| p.as_str()))
}

/// Axum middleware for the worker HTTP API (inside its guard): redirects an anonymous data read of a file
/// that another worker owns.
pub async fn http(State(s): State<Arc<WorkerState>>, req: Request, next: Next) -> Response {
    match http_target(&s, req.method(), req.uri(), req.headers()) {
        Some(to) => {
            s.metrics.data.redirects.inc();
            let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(LOCATION, v);
            }
            r
        }
        None => next.run(req).await,
    }
}

fn http_target(s: &WorkerState, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<String> {
    // The flag first: with redirects off (the default) every request pays one atomic load, nothing more.
    if !s.redirect_to_owner.load(Ordering::Relaxed) || method != Method::GET || headers.contains_key(AUTHORIZATION) {
        return None;
    }
    if !DATA_PREFIXES.iter().any(|p| uri.path().starts_with(p)) {
        return None;
    }
    let q = Query::raw(uri.query(), &["ufsFullPath", "offset", "length", "chunkSize", "numOfBytes"]);
    // An invalid path is the handler's to refuse (400), not a redirect's.
    let file = UfsUri::parse(q.get("ufsFullPath")?).ok()?.as_string();
    let owner = other_owner(s, &file)?;
    Some(location(&owner.http_base(), uri))
}

/// For S3 GetObject/HeadObject of the object at UFS URI `object`: `Err(307 TemporaryRedirect)` with
/// `Location` at the owner's S3 API when the request is unsigned (`signed` false) and another worker owns
/// the object; `Ok` to serve it here.
pub fn s3(state: &WorkerState, object: &str, signed: bool, uri: &Uri) -> Result<(), S3Error> {
    if signed {
        return Ok(());
    }
    let Some(owner) = other_owner(state, object).filter(|w| w.s3_port != 0) else { return Ok(()) };
    let scheme = if owner.tls { "https" } else { "http" };
    let to = location(&format!("{scheme}://{}:{}", owner.host, owner.s3_port), uri);
    let Ok(value) = HeaderValue::from_str(&to) else { return Ok(()) };
    state.metrics.data.redirects.inc();
    let mut e =
        S3Error::with_message(S3ErrorCode::TemporaryRedirect, "Please re-send this request to the object's owner.");
    e.set_status_code(StatusCode::TEMPORARY_REDIRECT);
    // These replace the error's headers (`s3s`), the XML body's type included.
    let mut headers = HeaderMap::new();
    headers.insert(LOCATION, value);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    e.set_headers(headers);
    Err(e)
}
