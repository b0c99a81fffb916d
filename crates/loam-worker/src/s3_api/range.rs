//! `Range` on GetObject, as S3 answers it (checked against AWS's documented behaviour and what the
//! Python clients send):
//!
//! - `bytes=a-b`, `bytes=a-` and `bytes=-n` are served as `206 Partial Content` with `Content-Range`,
//!   `b` clipped to the end of the object.
//! - A range that starts at or past the end (`bytes=a-` with `a >= length`, any range of an empty object
//!   but a suffix) is `416 InvalidRange` with `Content-Range: bytes */<length>`, as S3 answers it: boto3
//!   and the AWS CLI raise `InvalidRange`, and s3fs reads it as end of file.
//! - A suffix range of an empty object is a `200` with the (empty) object, as S3 answers it.
//! - A `Range` header that is not a valid byte range is **ignored** (RFC 9110, and S3): the whole object
//!   comes back with `200`. s3fs sends such a header for an empty read (`cat_file(path, 0, 0)` becomes
//!   `bytes=0--1`). `s3s` would refuse the request while parsing it, before any operation runs, so
//!   [`IgnoredRangeRoute`] takes these GETs first (after the signature was checked) and serves the whole
//!   object itself.

use crate::s3_api::LoamS3;
use crate::s3_api::auth::Policy;
use crate::s3_api::objects::{self, GetRequest};
use axum::http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, LAST_MODIFIED, RANGE};
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, Uri};
use s3s::dto::{GetObjectOutput, Range, TimestampFormat};
use s3s::route::S3Route;
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use std::ops::Range as Span;

/// The bytes to send of an object of `length` bytes, and the `Content-Range` of a partial answer.
pub fn span(range: Option<Range>, length: u64) -> S3Result<(Span<u64>, Option<String>)> {
    let Some(range) = range else { return Ok((0..length, None)) };
    if length == 0 && matches!(range, Range::Suffix { .. }) {
        return Ok((0..0, None));
    }
    match range.check(length) {
        Ok(s) => {
            let content_range = format!("bytes {}-{}/{length}", s.start, s.end - 1);
            Ok((s, Some(content_range)))
        }
        Err(_) => {
            let mut e = S3Error::with_message(S3ErrorCode::InvalidRange, "The requested range is not satisfiable");
            // Tells the client the length, so that it can ask again for a range that exists.
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{length}")) {
                e.set_headers(HeaderMap::from_iter([(CONTENT_RANGE, v)]));
            }
            Err(e)
        }
    }
}

/// Serves the GETs of an object whose `Range` header `s3s` cannot parse, as if it were absent.
pub struct IgnoredRangeRoute {
    /// The operations to serve them with.
    pub s3: LoamS3,
    /// Who may call GetObject.
    pub policy: Policy,
}

/// Whether `headers` carry a `Range` that is not a valid byte range.
fn has_ignored_range(headers: &HeaderMap) -> bool {
    headers.get(RANGE).is_some_and(|v| v.to_str().map_or(true, |s| Range::parse(s).is_err()))
}

/// The bucket and (non-empty) key of a path-style object URI, percent-decoded.
pub fn bucket_and_key(uri: &Uri) -> Option<(String, String)> {
    let path = percent_encoding::percent_decode_str(uri.path()).decode_utf8().ok()?;
    let (bucket, key) = path.strip_prefix('/')?.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_string(), key.to_string()))
}

/// Whether a GET of an object with this query is a plain GetObject (not `?acl`, `?uploadId`, ...).
fn is_get_object_query(uri: &Uri) -> bool {
    uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()).all(|p| {
        let name = p.split_once('=').map_or(p, |(n, _)| n);
        name.starts_with("response-") || name.starts_with("X-Amz-") || matches!(name, "versionId" | "x-id")
    })
}

#[async_trait::async_trait]
impl S3Route for IgnoredRangeRoute {
    fn is_match(&self, method: &Method, uri: &Uri, headers: &HeaderMap, _: &mut Extensions) -> bool {
        method == Method::GET && has_ignored_range(headers) && bucket_and_key(uri).is_some() && is_get_object_query(uri)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        self.policy.check(req.credentials.is_some(), "GetObject")?;
        crate::s3_api::unsupported::check("GetObject", &req.headers, &req.uri)
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let (bucket, key) = bucket_and_key(&req.uri).ok_or_else(|| s3_error!(InvalidURI))?;
        let get = GetRequest { bucket, key, ..Default::default() };
        let out = objects::get_output(&self.s3.state, &self.s3.client, get).await?;
        serialize(out)
    }
}

/// The response of a whole-object GetObject (what `s3s` would write for it).
fn serialize(out: GetObjectOutput) -> S3Result<S3Response<Body>> {
    let mut headers = HeaderMap::new();
    let invalid = |e: axum::http::header::InvalidHeaderValue| s3_error!(e, InternalError, "invalid header value");
    headers.insert(CONTENT_LENGTH, HeaderValue::from(out.content_length.unwrap_or(0)));
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(t) = &out.content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(t).map_err(invalid)?);
    }
    if let Some(etag) = &out.e_tag {
        headers.insert(ETAG, etag.to_http_header().map_err(invalid)?);
    }
    if let Some(t) = &out.last_modified {
        let mut date = Vec::new();
        t.format(TimestampFormat::HttpDate, &mut date).map_err(|e| s3_error!(e, InternalError))?;
        headers.insert(LAST_MODIFIED, HeaderValue::from_bytes(&date).map_err(invalid)?);
    }
    let body = out.body.map(Body::from).unwrap_or_else(Body::empty);
    Ok(S3Response::with_headers(body, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<Range> {
        Some(Range::parse(s).unwrap())
    }

    #[test]
    fn spans_follow_s3() {
        assert_eq!(span(None, 10).unwrap(), (0..10, None));
        assert_eq!(span(parse("bytes=2-4"), 10).unwrap(), (2..5, Some("bytes 2-4/10".into())));
        assert_eq!(span(parse("bytes=8-"), 10).unwrap(), (8..10, Some("bytes 8-9/10".into())));
        assert_eq!(span(parse("bytes=8-100"), 10).unwrap(), (8..10, Some("bytes 8-9/10".into())));
        assert_eq!(span(parse("bytes=-3"), 10).unwrap(), (7..10, Some("bytes 7-9/10".into())));
        assert_eq!(span(parse("bytes=-30"), 10).unwrap(), (0..10, Some("bytes 0-9/10".into())));
        assert_eq!(span(parse("bytes=-3"), 0).unwrap(), (0..0, None), "a suffix of an empty object is all of it");
        for (r, len) in [("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=0-", 0), ("bytes=-0", 10)] {
            let e = span(parse(r), len).unwrap_err();
            assert_eq!(e.code(), &S3ErrorCode::InvalidRange, "{r}");
            assert_eq!(e.headers().unwrap()["content-range"], format!("bytes */{len}"));
        }
    }

    #[test]
    fn only_unparsable_ranges_of_plain_object_gets_are_taken() {
        let headers = |r: &str| {
            let mut h = HeaderMap::new();
            h.insert(RANGE, HeaderValue::from_str(r).unwrap());
            h
        };
        assert!(has_ignored_range(&headers("bytes=0--1")));
        assert!(has_ignored_range(&headers("bytes=5-3")));
        assert!(has_ignored_range(&headers("lines=1-2")));
        assert!(!has_ignored_range(&headers("bytes=0-1")));
        assert!(!has_ignored_range(&HeaderMap::new()));
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(bucket_and_key(&uri("/data/a%20b/c")), Some(("data".into(), "a b/c".into())));
        assert_eq!(bucket_and_key(&uri("/data/")), None);
        assert_eq!(bucket_and_key(&uri("/data")), None);
        assert!(is_get_object_query(&uri("/d/k?x-id=GetObject&response-content-type=a")));
        assert!(is_get_object_query(&uri("/d/k")));
        assert!(!is_get_object_query(&uri("/d/k?uploadId=1")));
        assert!(!is_get_object_query(&uri("/d/k?acl")));
    }
}
