//! What every S3 request and response passes through outside `s3s` (an axum middleware in front of the
//! `s3s` service), for what `s3s` does not do itself:
//!
//! - **Request ids.** Every response carries `x-amz-request-id`, the request's id that the listener's edge
//!   took or made (`loam_core::request_id`, also answered in `x-request-id`; 16 hex digits when made), and
//!   `x-amz-id-2` (the worker's id, S3's "host id"); the worker's log lines for the request carry the same
//!   id (the edge's `request` span, inside it a `s3` one), so a client's report can be found in the log.
//! - **Complete error documents.** `s3s` writes `<Error><Code/><Message/></Error>`; S3 adds what the
//!   client needs to report and act on it. Error bodies (small, whole) get `<Resource>` (the path as the
//!   client sent it, percent-decoded), `<Key>` for `NoSuchKey`, `<RequestId>` and `<HostId>`. The body of
//!   a HEAD is never sent, and a `200` whose body turns into an error later (CompleteMultipartUpload)
//!   is left as it is.
//! - **Presigned URLs live at most 7 days**, as on S3: `X-Amz-Expires` above 604800 seconds, negative
//!   or not a number is `400 AuthorizationQueryParametersError` (`s3s` accepts any expiry). A SigV2
//!   URL's `Expires` (a time) more than 7 days ahead is refused the same way. A negative `X-Amz-Expires`
//!   has expired: `403 AccessDenied`, as S3.
//! - **SigV2 request times.** `s3s` checks a SigV4 request's time (15 minutes of skew) but not a SigV2
//!   one's, so a captured SigV2 request could be replayed for ever. A header-signed SigV2 request needs a
//!   `x-amz-date` (or, without one, a `Date`) within 15 minutes of the worker's clock: none, empty or not
//!   an HTTP date (or before 1970) is `403 AccessDenied`, too far off `403 RequestTimeTooSkewed`, as S3.
//! - **Chunked PutObject without a length** is spooled so that `s3s` gets a length (`spool`), when
//!   `s3-unsized-puts` is on.

use crate::s3_api::spool::Spool;
use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use s3s::{S3Error, S3ErrorCode, S3Result};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::Instrument;

/// The longest a presigned URL may be valid (S3's limit): 7 days.
pub const MAX_PRESIGNED_EXPIRY_SECS: i64 = 7 * 24 * 60 * 60;
/// How far a signed request's time may be from the worker's clock (S3's and `s3s`'s SigV4 limit).
pub const MAX_SKEW_SECS: i64 = 15 * 60;
/// Error bodies up to this size are completed (`s3s`'s are a few hundred bytes).
const MAX_ERROR_BODY: u64 = 64 << 10;

/// What the middleware knows of the worker.
#[derive(Clone, Debug)]
pub struct Edge {
    /// S3's host id (`x-amz-id-2`, `<HostId>`): the worker's id.
    pub host_id: Arc<str>,
    /// Spools chunked PutObject bodies without a length (`spool`); `None` without a key pair or with
    /// `s3-unsized-puts` off.
    pub spool: Option<Arc<Spool>>,
}

/// The request's id: the listener's edge set it (a new one when the router is served without it, as in
/// unit tests).
fn request_id() -> String {
    loam_core::request_id::current().unwrap_or_else(loam_core::request_id::fresh)
}

/// The middleware: refuses presigned URLs that live too long, runs the request, then stamps the response.
pub async fn stamp(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let id = request_id();
    let span = tracing::info_span!("s3");
    async move {
        let head = req.method() == Method::HEAD;
        let resource = decoded_path(req.uri());
        let now = SystemTime::now();
        let checked = check_presigned_expiry(req.uri(), now).and_then(|()| check_v2_time(req.headers(), now));
        let req = match (checked, &edge.spool) {
            (Ok(()), Some(spool)) if spool.applies(&req) => spool.spool(req).await,
            (checked, _) => checked.map(|()| req),
        };
        let resp = match req {
            Ok(req) => next.run(req).await,
            Err(e) => error_response(e),
        };
        finish(resp, &id, &edge.host_id, head, &resource).await
    }
    .instrument(span)
    .await
}

/// `Ok` unless the request is a presigned URL that lives too long: a SigV4 `X-Amz-Expires` S3 would
/// refuse, or a SigV2 `Expires` (a time, which S3 does not limit) more than 7 days after `now` (held to
/// the same limit, so that no URL outlives it).
pub fn check_presigned_expiry(uri: &Uri, now: SystemTime) -> S3Result<()> {
    let query = uri.query().unwrap_or("");
    let param = |name: &str| {
        query.split('&').find_map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (n == name).then_some(v)
        })
    };
    let refuse = |why: String| Err(S3Error::with_message(S3ErrorCode::AuthorizationQueryParametersError, why));
    if let (Some(_), Some(expires)) = (param("Signature"), param("Expires")) {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        return match expires.parse::<i64>() {
            Ok(t) if t - now <= MAX_PRESIGNED_EXPIRY_SECS => Ok(()),
            Ok(_) => refuse(format!("Expires must be at most {MAX_PRESIGNED_EXPIRY_SECS} seconds (a week) from now")),
            Err(_) => refuse("Expires should be a number".into()),
        };
    }
    let (Some(_), Some(expires)) = (param("X-Amz-Signature"), param("X-Amz-Expires")) else { return Ok(()) };
    match expires.parse::<i64>() {
        Err(_) => refuse("X-Amz-Expires should be a number".into()),
        Ok(n) if n < 0 => Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Request has expired")),
        Ok(n) if n > MAX_PRESIGNED_EXPIRY_SECS => {
            refuse(format!("X-Amz-Expires must be less than a week (in seconds) that is; {MAX_PRESIGNED_EXPIRY_SECS}"))
        }
        Ok(_) => Ok(()),
    }
}

/// `Ok` unless the request is signed with SigV2 in its headers (`Authorization: AWS <key>:<signature>`)
/// and its time (`x-amz-date`, else `Date`) is missing, not a date, or more than [`MAX_SKEW_SECS`] from
/// `now`. (A SigV2 presigned URL has `Expires` instead; SigV4 is checked by `s3s`.)
pub fn check_v2_time(headers: &axum::http::HeaderMap, now: SystemTime) -> S3Result<()> {
    let auth = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !auth.is_some_and(|a| a.starts_with("AWS ")) {
        return Ok(());
    }
    let denied = || {
        S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    };
    let value = match headers.get("x-amz-date") {
        Some(v) => v,
        None => headers.get(axum::http::header::DATE).ok_or_else(denied)?,
    };
    let when = value
        .to_str()
        .ok()
        // The weekday is left out: clients' (and s3-tests') dates do not always agree with it, and S3
        // judges the time, not the name of the day.
        .map(|v| v.trim().split_once(", ").map_or(v.trim(), |(_, rest)| rest))
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp())
        .filter(|t| *t >= 0)
        .ok_or_else(denied)?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    if (when - now).abs() > MAX_SKEW_SECS {
        return Err(S3Error::with_message(
            S3ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        ));
    }
    Ok(())
}

fn error_response(e: S3Error) -> Response {
    match e.to_http_response() {
        Ok(r) => r.map(Body::new),
        Err(_) => axum::http::StatusCode::BAD_REQUEST.into_response(),
    }
}

fn decoded_path(uri: &Uri) -> String {
    percent_encoding::percent_decode_str(uri.path()).decode_utf8_lossy().into_owned()
}

async fn finish(resp: Response, id: &str, host_id: &str, head: bool, resource: &str) -> Response {
    let (mut parts, body) = resp.into_parts();
    if let Ok(v) = HeaderValue::from_str(id) {
        parts.headers.insert("x-amz-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(host_id) {
        parts.headers.insert("x-amz-id-2", v);
    }
    let small = body.size_hint().exact().is_some_and(|n| n > 0 && n <= MAX_ERROR_BODY);
    if head || !small || parts.status.as_u16() < 400 {
        return Response::from_parts(parts, body);
    }
    let bytes = match axum::body::to_bytes(body, MAX_ERROR_BODY as usize).await {
        Ok(b) => b,
        Err(_) => return Response::from_parts(parts, Body::empty()),
    };
    match complete_error(&bytes, id, host_id, resource) {
        Some(xml) => {
            parts.headers.remove(CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(xml))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// The error document `xml` with `<Key>` (for `NoSuchKey`), `<Resource>`, `<RequestId>` and `<HostId>`
/// added where missing; `None` when it is no S3 error document.
fn complete_error(xml: &[u8], id: &str, host_id: &str, resource: &str) -> Option<String> {
    let text = std::str::from_utf8(xml).ok()?;
    let end = text.rfind("</Error>")?;
    let mut extra = String::new();
    let mut add = |tag: &str, value: &str| {
        if !text.contains(&format!("<{tag}>")) {
            extra.push_str(&format!("<{tag}>{}</{tag}>", escape(value)));
        }
    };
    if text.contains("<Code>NoSuchKey</Code>")
        && let Some((_, key)) = resource.trim_start_matches('/').split_once('/')
    {
        add("Key", key);
    }
    add("Resource", resource);
    add("RequestId", id);
    add("HostId", host_id);
    Some(format!("{}{extra}{}", &text[..end], &text[end..]))
}

/// `s` as XML character data.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", c as u32)),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'), // not representable in XML 1.0
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_urls_live_at_most_a_week() {
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let code = |q: &str| {
            check_presigned_expiry(&format!("/d/k?{q}").parse().unwrap(), now).err().map(|e| e.code().clone())
        };
        let bad = Some(S3ErrorCode::AuthorizationQueryParametersError);
        assert_eq!(code("X-Amz-Expires=604800&X-Amz-Signature=s"), None);
        assert_eq!(code("X-Amz-Expires=604801&X-Amz-Signature=s"), bad);
        assert_eq!(code("X-Amz-Expires=-1&X-Amz-Signature=s"), Some(S3ErrorCode::AccessDenied), "expired");
        assert_eq!(code("X-Amz-Expires=soon&X-Amz-Signature=s"), bad);
        assert_eq!(code("X-Amz-Expires=999999999"), None, "not a presigned URL");
        assert_eq!(code("list-type=2"), None);
        assert_eq!(code("Expires=1604800&Signature=s"), None, "SigV2: a week from now");
        assert_eq!(code("Expires=1604801&Signature=s"), bad);
        assert_eq!(code("Expires=never&Signature=s"), bad);
    }

    #[test]
    fn sigv2_requests_carry_a_time_within_fifteen_minutes() {
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_765_000_000); // 2025-12-06T05:46:40Z
        let code = |pairs: &[(&str, &str)]| {
            let mut h = axum::http::HeaderMap::new();
            for (n, v) in pairs {
                h.insert(axum::http::HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            }
            check_v2_time(&h, now).err().map(|e| e.code().clone())
        };
        let v2 = ("authorization", "AWS AK:c2ln");
        let (denied, skewed) = (Some(S3ErrorCode::AccessDenied), Some(S3ErrorCode::RequestTimeTooSkewed));
        assert_eq!(code(&[v2, ("date", "Sat, 06 Dec 2025 05:50:00 GMT")]), None);
        assert_eq!(code(&[v2, ("x-amz-date", "Sat, 06 Dec 2025 05:40:00 GMT"), ("date", "")]), None);
        assert_eq!(code(&[v2, ("x-amz-date", "Sat, 06 Dec 2025 06:10:00 GMT")]), skewed);
        assert_eq!(code(&[v2, ("x-amz-date", "Tue, 07 Jul 2010 21:53:04 GMT")]), skewed);
        assert_eq!(code(&[v2, ("x-amz-date", "Tue, 07 Jul 9999 21:53:04 GMT")]), skewed);
        assert_eq!(code(&[v2, ("x-amz-date", "Tue, 07 Jul 1950 21:53:04 GMT")]), denied);
        assert_eq!(code(&[v2, ("x-amz-date", "Bad Date"), ("date", "Sat, 06 Dec 2025 05:50:00 GMT")]), denied);
        assert_eq!(code(&[v2, ("x-amz-date", "")]), denied);
        assert_eq!(code(&[v2]), denied);
        assert_eq!(code(&[("authorization", "AWS4-HMAC-SHA256 Credential=x")]), None, "SigV4: s3s checks it");
        assert_eq!(code(&[]), None, "unsigned");
    }

    #[test]
    fn error_documents_name_the_resource_and_the_request() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>m</Message></Error>"#;
        let out = complete_error(xml.as_bytes(), "ABC", "w1", "/data/a <b>/c").unwrap();
        assert!(out.ends_with(
            "<Message>m</Message><Key>a &lt;b&gt;/c</Key><Resource>/data/a &lt;b&gt;/c</Resource>\
             <RequestId>ABC</RequestId><HostId>w1</HostId></Error>"
        ));
        let xml = "<Error><Code>AccessDenied</Code><RequestId>X</RequestId></Error>";
        let out = complete_error(xml.as_bytes(), "ABC", "w1", "/data").unwrap();
        assert_eq!(
            out,
            "<Error><Code>AccessDenied</Code><RequestId>X</RequestId><Resource>/data</Resource><HostId>w1</HostId></Error>"
        );
        assert_eq!(complete_error(b"not xml", "A", "h", "/"), None);
        assert_eq!(request_id().len(), 16);
        assert_ne!(request_id(), request_id());
    }
}
