//! Data endpoints: pages (`GET`/`POST /v1/file/<id>/page/<n>`), `/v1/range`, `/v1/chunk`, `/v1/head`,
//! `/v1/tail`. A file is named by its id and, optionally, `ufsFullPath`; without it the worker resolves the
//! id from its own records (a file it has cached or been asked about, else a scan of the mounts: see
//! `crate::path_ids`). Bodies stream page by page; nothing holds a whole file.
//!
//! **One version per response** (Loam addition to Alluxio's API): every data answer names the version it
//! serves in `ETag` (`"<version tag>"`, see `loam_core::version`) and is served from that version only (a
//! stream that outlives it is cut off, see `crate::read_through`). A request with `If-Match: "<tag>"` is
//! served from that version or answered `412`: a client that reads a file in several requests (or resumes
//! on another worker) pins them all to the version of the first.

use super::WorkerState;
use super::openapi::{FileQuery, ReadErrors};
use super::query::Query;
use crate::error::{WorkerError, WorkerResult};
use crate::read_through::OpenFile;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures::StreamExt;
use loam_core::coordinator_api::StatusBody;
use loam_core::path::UfsUri;
use loam_core::worker_api::Success;
use std::sync::Arc;

const KNOWN: &[&str] = &["ufsFullPath", "offset", "length", "chunkSize", "numOfBytes"];

/// The version a request is pinned to: its `If-Match` (one strong tag; `*` pins nothing).
fn pinned(headers: &HeaderMap) -> WorkerResult<Option<String>> {
    let Some(v) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let v = v.to_str().map_err(|_| WorkerError::InvalidInput("If-Match is not ASCII".into()))?.trim();
    if v == "*" {
        return Ok(None);
    }
    if v.contains(',') {
        return Err(WorkerError::InvalidInput("If-Match must name one version".into()));
    }
    Ok(Some(loam_core::version::unquote(v).to_string()))
}

/// Opens the file named by `id` (and `ufsFullPath` when given), at the version `headers` pin, if any.
async fn open(s: &WorkerState, id: &str, q: &Query, headers: &HeaderMap) -> WorkerResult<OpenFile> {
    let pin = pinned(headers)?;
    if !loam_core::id::is_file_id(id) {
        return Err(WorkerError::InvalidInput(format!("{id:?} is not a file id (64 lowercase hex digits)")));
    }
    let (uri, asked) = match q.get("ufsFullPath").filter(|u| !u.is_empty()) {
        Some(raw) => {
            let normalized = UfsUri::parse(raw).map_err(|e| WorkerError::InvalidInput(e.to_string()))?.as_string();
            if loam_core::file_id(raw) != id && loam_core::file_id(&normalized) != id {
                return Err(WorkerError::InvalidInput(format!("file id {id} is not the SHA-256 of ufsFullPath {raw}")));
            }
            (normalized, Some(raw))
        }
        // Cached files by their record; others by what this worker was told, or a scan (`crate::path_ids`).
        None => match s.pages.file(id) {
            Some(r) => (r.ufs_uri, None),
            None => (s.path_ids.resolve(id).await?, None),
        },
    };
    let f = match pin {
        Some(tag) => s.rt.open_version(&uri, &tag).await?,
        None => s.rt.open(&uri).await?,
    };
    if let Some(raw) = asked {
        s.path_ids.remember_as(raw, &uri);
    }
    Ok(f)
}

/// An `application/octet-stream` answer of version `tag`.
fn octets(body: Body, len: Option<u64>, tag: &str) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = header::HeaderValue::from_str(&loam_core::version::quoted(tag)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    if let Some(len) = len {
        r.headers_mut().insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    }
    r
}

fn parse_index(n: &str) -> WorkerResult<u64> {
    n.parse().map_err(|_| WorkerError::InvalidInput(format!("page index must be a non-negative integer, got {n:?}")))
}

/// `GET /v1/file/<id>/page/<n>[?offset=&length=][&ufsFullPath=]`.
#[utoipa::path(get, path = "/v1/file/{id}/page/{n}", tag = "data",
    params(("id" = String, Path, description = "The file id"), ("n" = String, Path, description = "The page index"),
        FileQuery,
        ("If-Match" = Option<String>, Header, description = "Serve only this version (an `ETag` of an earlier answer)"),
        ("offset" = Option<u64>, Query, description = "Bytes of the page to skip"),
        ("length" = Option<u64>, Query, description = "Most bytes to return")),
    responses(
        (status = 200, description = "The page's bytes", content_type = "application/octet-stream", body = [u8]),
        ReadErrors))]
pub async fn get_page(
    State(s): State<Arc<WorkerState>>,
    Path((id, n)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> WorkerResult<Response> {
    let q = Query::raw(q.as_deref(), KNOWN);
    let index = parse_index(&n)?;
    let (offset, length) = (q.u64("offset")?, q.u64("length")?);
    let f = open(&s, &id, &q, &headers).await?;
    let (f, page) = match s.rt.read_page(&f, index).await {
        // Replaced in the UFS between the open and the read (an object PUT, a rename over the file): an
        // unpinned page answer is one page, so it is read again whole from the new version instead of
        // failing (a pinned one asked for the old version, so `412` is its answer).
        Err(WorkerError::Changed(_)) if pinned(&headers)?.is_none() => {
            let f = open(&s, &id, &q, &headers).await?;
            let page = s.rt.read_page(&f, index).await?;
            (f, page)
        }
        r => (f, r?),
    };
    let lo = (offset.unwrap_or(0) as usize).min(page.len());
    let hi = length.map_or(page.len(), |l| lo.saturating_add(l as usize).min(page.len()));
    let part = page.slice(lo..hi);
    s.metrics.served_bytes.inc_by(part.len() as u64);
    s.metrics.data.sent(part.len());
    Ok(octets(Body::from(part.clone()), Some(part.len() as u64), &f.tag()))
}

/// `POST /v1/file/<id>/page/<n>`: the body is the page's bytes; stores it — only when it is what the UFS holds.
///
/// **Decision: verify, not write through.** The page is read from the UFS (one ranged read of exactly that
/// page) and cached only when the bytes are equal; otherwise `409` and nothing is cached. Writing the body
/// through would let a page POST change the UFS (that is the write API's job, under its own role), and
/// trusting it — as before — let anyone make even signed S3 GETs serve bytes the UFS never held. A caller
/// that posts what it just read from the UFS (Alluxio's page clients) keeps working, at the cost of one
/// UFS read per POST.
#[utoipa::path(post, path = "/v1/file/{id}/page/{n}", tag = "data",
    params(("id" = String, Path, description = "The file id"), ("n" = String, Path, description = "The page index"),
        FileQuery,
        ("If-Match" = Option<String>, Header, description = "Cache the page only into this version")),
    request_body(content = [u8], description = "The page's bytes", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Cached", body = Success),
        ReadErrors,
        (status = 409, description = "Not what the UFS holds: nothing cached", body = StatusBody)))]
pub async fn post_page(
    State(s): State<Arc<WorkerState>>,
    Path((id, n)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> WorkerResult<Json<Success>> {
    let q = Query::raw(q.as_deref(), KNOWN);
    let index = parse_index(&n)?;
    let f = open(&s, &id, &q, &headers).await?;
    let ps = s.pages.page_size();
    let expected = f.record.length.saturating_sub(index.saturating_mul(ps)).min(ps);
    if expected == 0 || body.len() as u64 != expected {
        return Err(WorkerError::InvalidInput(format!(
            "page {index} of {} must be {expected} bytes, got {}",
            f.record.ufs_uri,
            body.len()
        )));
    }
    let held = f.ufs.read_range_of(&f.record.ufs_uri, index * ps, expected, &f.tag()).await?;
    if held != body {
        return Err(WorkerError::Conflict(format!(
            "page {index} of {} is not what the UFS holds; nothing was cached",
            f.record.ufs_uri
        )));
    }
    s.pages.put_pages_of(f.file_id(), f.generation, vec![(index, body)]).await?;
    Ok(Json(Success { success: true }))
}

/// Streams a range. The first piece is read before the headers go out, so that a UFS failure at the start
/// becomes a proper error status rather than a 200 with a broken body.
async fn stream(s: &WorkerState, f: OpenFile, offset: u64, len: u64, with_length: bool) -> WorkerResult<Response> {
    let total = f.record.length;
    let tag = f.tag();
    let clipped = offset.saturating_add(len).min(total).saturating_sub(offset);
    let mut parts = s.rt.read_range(f, offset, len);
    let first = match parts.next().await {
        Some(r) => Some(r?),
        None => None,
    };
    let body = futures::stream::iter(first.map(Ok)).chain(parts).map(|r| r.map_err(std::io::Error::other));
    Ok(octets(Body::from_stream(body), with_length.then_some(clipped), &tag))
}

/// `GET /v1/range/<id>?ufsFullPath=&offset=&length=`.
#[utoipa::path(get, path = "/v1/range/{id}", tag = "data",
    params(("id" = String, Path, description = "The file id"), FileQuery,
        ("If-Match" = Option<String>, Header, description = "Serve only this version (an `ETag` of an earlier answer)"),
        ("offset" = Option<u64>, Query, description = "The first byte (default 0)"),
        ("length" = Option<u64>, Query, description = "Most bytes (default to the end)")),
    responses(
        (status = 200, description = "The bytes, with their `Content-Length`", content_type = "application/octet-stream", body = [u8]),
        ReadErrors))]
pub async fn range(
    State(s): State<Arc<WorkerState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> WorkerResult<Response> {
    let q = Query::raw(q.as_deref(), KNOWN);
    let (offset, length) = (q.u64("offset")?.unwrap_or(0), q.u64("length")?);
    let f = open(&s, &id, &q, &headers).await?;
    let len = length.unwrap_or(u64::MAX);
    stream(&s, f, offset, len, true).await
}

/// `GET /v1/chunk/<id>?ufsFullPath=&chunkSize=`: the whole file with chunked transfer encoding.
#[utoipa::path(get, path = "/v1/chunk/{id}", tag = "data",
    params(("id" = String, Path, description = "The file id"), FileQuery,
        ("If-Match" = Option<String>, Header, description = "Serve only this version (an `ETag` of an earlier answer)"),
        ("chunkSize" = Option<u64>, Query, description = "Accepted for Alluxio's clients (positive); the worker cuts its own")),
    responses(
        (status = 200, description = "The whole file, chunked", content_type = "application/octet-stream", body = [u8]),
        ReadErrors))]
pub async fn chunk(
    State(s): State<Arc<WorkerState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> WorkerResult<Response> {
    let q = Query::raw(q.as_deref(), KNOWN);
    if q.u64("chunkSize")? == Some(0) {
        return Err(WorkerError::InvalidInput("query parameter `chunkSize` must be positive".into()));
    }
    let f = open(&s, &id, &q, &headers).await?;
    stream(&s, f, 0, u64::MAX, false).await
}

/// Which end of a file `/v1/head` and `/v1/tail` answer.
enum End {
    Head,
    Tail,
}

/// The first or last `numOfBytes` bytes of the file `id` names (what `/v1/head` and `/v1/tail` share).
async fn end_bytes(
    s: &WorkerState,
    id: &str,
    q: Option<String>,
    headers: &HeaderMap,
    end: End,
) -> WorkerResult<Response> {
    let q = Query::raw(q.as_deref(), KNOWN);
    let n =
        q.u64("numOfBytes")?.ok_or_else(|| WorkerError::InvalidInput("missing query parameter `numOfBytes`".into()))?;
    let f = open(s, id, &q, headers).await?;
    let start = match end {
        End::Head => 0,
        End::Tail => f.record.length.saturating_sub(n),
    };
    stream(s, f, start, n, true).await
}

/// `GET /v1/head/<id>?ufsFullPath=&numOfBytes=`: the first bytes.
#[utoipa::path(get, path = "/v1/head/{id}", tag = "data",
    params(("id" = String, Path, description = "The file id"), FileQuery,
        ("If-Match" = Option<String>, Header, description = "Serve only this version (an `ETag` of an earlier answer)"),
        ("numOfBytes" = u64, Query, description = "How many bytes")),
    responses(
        (status = 200, description = "The first bytes", content_type = "application/octet-stream", body = [u8]),
        ReadErrors))]
pub async fn head(
    State(s): State<Arc<WorkerState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> WorkerResult<Response> {
    end_bytes(&s, &id, q, &headers, End::Head).await
}

/// `GET /v1/tail/<id>?ufsFullPath=&numOfBytes=`: the last bytes.
#[utoipa::path(get, path = "/v1/tail/{id}", tag = "data",
    params(("id" = String, Path, description = "The file id"), FileQuery,
        ("If-Match" = Option<String>, Header, description = "Serve only this version (an `ETag` of an earlier answer)"),
        ("numOfBytes" = u64, Query, description = "How many bytes")),
    responses(
        (status = 200, description = "The last bytes", content_type = "application/octet-stream", body = [u8]),
        ReadErrors))]
pub async fn tail(
    State(s): State<Arc<WorkerState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> WorkerResult<Response> {
    end_bytes(&s, &id, q, &headers, End::Tail).await
}
